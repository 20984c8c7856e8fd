"""``python -m devtools``: the benches and the fault catalogue (developer tooling, not the product)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

# A run that found no data in its window (months not yet released) is not a failure.
from devtools import PROJECT_ROOT
from pipelines.cli.app import console, err_console, setup_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


bench_app = typer.Typer(help="Benchmarks: figures and ratios against a baseline.")


app.add_typer(bench_app, name="bench")


@bench_app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    rows: Annotated[int, typer.Option(help="Rows of the generated Census-shaped input.")] = 10_000_000,
    out: Annotated[Path, typer.Option(help="Where the figures go (JSON).")] = Path(
        "bench-results/bench.json"
    ),
    workdir: Annotated[Path, typer.Option(help="Inputs (cached) and scratch.")] = Path("bench-results/work"),
    dlt: Annotated[
        bool, typer.Option("--dlt/--no-dlt", help="Also run dlt (installs it in its own venv).")
    ] = True,
    demo: Annotated[
        bool,
        typer.Option("--demo/--no-demo", help="Also time docs/analysts.md's queries on the demo's release."),
    ] = True,
    forms: Annotated[str, typer.Option(help="Input forms: json,csv.")] = "json,csv",
    rounds: Annotated[
        int,
        typer.Option(
            min=1,
            help="Times every approach runs, round after round; each ratio is the median of the rounds'.",
        ),
    ] = 3,
) -> None:
    """scdx against DuckDB alone (the floor), pandas + GX, and dlt, on the same generated input."""
    if ctx.invoked_subcommand is not None:
        return
    import json

    from devtools.bench import run_bench

    results = run_bench(
        rows,
        workdir.resolve(),
        with_dlt=dlt,
        forms=tuple(f.strip() for f in forms.split(",")),
        rounds=rounds,
        with_demo=demo,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    table = Table(title=f"scdx bench, {rows:,} rows")
    for column in ("approach", "input", "round", "rows", "seconds", "rows/s", "peak RSS MiB", "ok"):
        table.add_column(column)
    for f in results["figures"]:
        table.add_row(
            f["approach"],
            f["form"],
            str(f["round_number"]),
            f"{f['rows']:,}",
            f"{f['seconds']:.1f}",
            f"{f['rows_per_second']:,}",
            f"{f['peak_rss_mb']:.0f}",
            "yes" if f["ok"] else f"no: {f['note'][:60]}",
        )
    console.print(table)
    releases = results.get("releases") or {}
    demo_figures = releases.get("demo_queries") or {}
    shown = (
        ("bench table, as published", releases.get("bench_queries")),
        ("bench table, materialized", releases.get("bench_queries_materialized")),
        ("demo, as published", demo_figures.get("views")),
        ("demo, materialized", demo_figures.get("materialized")),
    )
    for label, compared in shown:
        for query, figure in (compared or {}).get("queries", {}).items():
            console.print(
                f"{label}: {query}: release {figure['release_ms']} ms, DuckDB tables "
                f"{figure['tables_ms']} ms ({figure['ratio']}x)",
                highlight=False,
            )
    if releases.get("materialize"):
        made = releases["materialize"]
        console.print(
            f"materializing the bench's release: {made['seconds']} s, {made['mib']} MiB", highlight=False
        )
    if releases.get("publish_cost"):
        cost = releases["publish_cost"]
        console.print(
            f"publishing {cost['month']} into 10M rows: {cost['into_full_s']} s; into that month alone: "
            f"{cost['into_month_only_s']} s",
            highlight=False,
        )
    for name, value in results["ratios"].items():
        each = results["ratios_by_round"].get(name, [])
        rounds_note = (
            f" (median of rounds: {', '.join('n/a' if r is None else str(r) for r in each)})"
            if len(each) > 1
            else ""
        )
        console.print(f"{name}: {value if value is not None else 'n/a'}{rounds_note}", highlight=False)
    code = results["code"]
    if code["commit"]:
        changes = " with uncommitted changes" if code["uncommitted_changes"] else ""
        console.print(f"code: {code['commit']}{changes}, started {results['started_at']}", highlight=False)
    console.print(f"figures written to {out}", highlight=False)


@bench_app.command("dag-parse")
def bench_dag_parse(
    repeats: Annotated[int, typer.Option(help="Timed parses per folder (median reported).")] = 5,
    target: Annotated[float, typer.Option(help="Budget for parsing all DAG files, seconds.")] = 0.5,
) -> None:
    """Time to parse all DAG files (Airflow's own import excluded), against a one-DAG baseline."""

    from devtools.bench_dags import dag_parse_bench

    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    figures = dag_parse_bench(PROJECT_ROOT / "dags", repeats, env)
    project, baseline = figures["project"], figures["baseline"]
    console.print(
        f"project DAGs: {project['dags']} parsed in {project['median_s']:.3f} s median (min {project['min_s']:.3f} s), "
        f"{project['import_errors']} import errors",
        highlight=False,
    )
    console.print(f"baseline (one trivial DAG): {baseline['median_s']:.3f} s median", highlight=False)
    verdict = "within" if project["median_s"] <= target else "OVER"
    console.print(
        f"ratio project/baseline: {figures['ratio_project_to_baseline']:.1f}x; {verdict} the {target:.2f} s budget",
        highlight=False,
    )


@bench_app.command("validate")
def bench_validate(
    rows: Annotated[int, typer.Option(help="Rows of the staged Census-shaped batch.")] = 10_000_000,
    rounds: Annotated[int, typer.Option(min=1, help="Validations per dialect, alternating.")] = 3,
    out: Annotated[Path, typer.Option(help="Where the figures go (JSON).")] = Path(
        "bench-results/bench-validate.json"
    ),
    workdir: Annotated[Path, typer.Option(help="Inputs (cached) and scratch.")] = Path("bench-results/work"),
) -> None:
    """Validation of one staged batch: scdx's dialect against its old pg_catalog reflection."""
    import json

    from devtools.bench_validate import run_validate_bench

    results = run_validate_bench(rows, workdir.resolve(), rounds)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    table = Table(title=f"scdx bench validate, {rows:,} rows")
    columns = (
        "dialect",
        "round",
        "validate() s",
        "CPU s",
        "statements",
        "failed",
        "catalog",
        "lookup ms",
        "outcome",
    )
    for column in columns:
        table.add_column(column)
    for f in results["figures"]:
        table.add_row(
            "baseline (pg_catalog reflection)" if f["variant"] == "baseline" else "scdx (DuckDB catalog)",
            str(f["round_number"]),
            f"{f['seconds']:.2f}",
            f"{f['cpu_seconds']:.2f}",
            str(f["statements"]),
            str(f["failed_statements"]),
            str(f["catalog_statements"]),
            f"{f['lookup_ms']:.1f}",
            f["outcome"],
        )
    console.print(table)
    each = ", ".join(str(r) for r in results["ratios_by_round"])
    console.print(f"scdx/baseline: {results['ratio_scdx_to_baseline']} (rounds: {each})", highlight=False)
    cpu_each = ", ".join(str(r) for r in results["cpu_ratios_by_round"])
    console.print(
        f"scdx/baseline, CPU: {results['cpu_ratio_scdx_to_baseline']} (rounds: {cpu_each})", highlight=False
    )
    saved = ", ".join(f"{s:.2f}" for s in results["seconds_saved_by_round"])
    console.print(
        f"saved per validation: {results['seconds_saved']:.2f} s (rounds: {saved})", highlight=False
    )
    lookup = results["lookup_ms"]
    console.print(
        f"GX's column lookup: {lookup['baseline']:.1f} ms baseline, {lookup['scdx']:.1f} ms scdx (median)",
        highlight=False,
    )
    code = results["code"]
    if code["commit"]:
        changes = " with uncommitted changes" if code["uncommitted_changes"] else ""
        console.print(f"code: {code['commit']}{changes}, started {results['started_at']}", highlight=False)
    console.print(f"figures written to {out}", highlight=False)


@app.command()
def reliability(
    write: Annotated[Path | None, typer.Option(help="Write the report here (docs/reliability.md).")] = None,
) -> None:
    """Run the fault catalogue (HTTP faults, crashes, retries, bad input, concurrency) and report."""
    from devtools.reliability import render_report, run_catalogue

    setup_logging(False)
    logging.getLogger().setLevel(logging.ERROR)  # the cases fail on purpose; the report says how
    outcomes = run_catalogue()
    report = render_report(outcomes)
    if write is not None:
        write.write_text(report)
        console.print(f"report written to {write}", highlight=False)
    else:
        console.print(report, highlight=False, markup=False)
    failed = [o.case for o in outcomes if not o.passed]
    if failed:
        err_console.print(f"[red]{len(failed)} case(s) do not hold:[/red] {', '.join(failed)}")
        raise typer.Exit(1)


@bench_app.command("iceberg")
def bench_iceberg(
    rows: Annotated[
        int, typer.Option(help="Rows of the table published into (120 monthly partitions).")
    ] = 10_000_000,
    repeats: Annotated[
        int, typer.Option(help="Publishes of a one-month batch per case (median reported).")
    ] = 3,
    out: Annotated[Path, typer.Option(help="Where the figures go (JSON).")] = Path(
        "bench-results/iceberg.json"
    ),
) -> None:
    """Publishing a one-month batch into an Iceberg table holding ``rows`` rows against into an empty one
    (catalog on the local PostgreSQL, warehouse on the local S3 API)."""
    import json

    from devtools.bench_iceberg import run_iceberg_bench

    figures = run_iceberg_bench(rows, repeats=repeats)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    console.print(
        f"Iceberg store: one month ({figures['batch_rows']:,} rows) into {figures['table_rows']:,} rows: "
        f"{figures['median_full_s']:.2f} s; into an empty table: {figures['median_empty_s']:.2f} s; "
        f"ratio {figures['ratio_full_to_empty']:.2f}x (initial load {figures['initial_load_s']:.1f} s)",
        highlight=False,
    )
    console.print(figures, highlight=False)


@bench_app.command("workers")
def bench_workers(
    datasets: Annotated[
        str | None,
        typer.Option(
            help="Ingest DAGs triggered at once, by dataset (comma-separated; default: six of them)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where the figures go (JSON).")] = Path(
        "bench-results/workers.json"
    ),
    workdir: Annotated[Path, typer.Option(help="Airflow homes and scratch.")] = Path("bench-results/workers"),
) -> None:
    """One Celery worker against two on the same ingest runs (data root on the local S3 API,
    releases in Iceberg on the local PostgreSQL), and what limits the second."""
    import json
    import shutil

    from devtools.bench_workers import DEFAULT_DATASETS, run_workers_bench

    chosen = tuple(d.strip() for d in datasets.split(",") if d.strip()) if datasets else DEFAULT_DATASETS
    shutil.rmtree(workdir, ignore_errors=True)
    figures = run_workers_bench(workdir.resolve(), chosen)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    table = Table(title=f"{len(figures['datasets'])} ingest runs triggered at once")
    for column in (
        "workers",
        "seconds",
        "runs/min",
        "task tries",
        "task s",
        "queued s",
        "publish s",
        "busy cores",
        "slowest run s (its tasks s)",
    ):
        table.add_column(column)
    for r in figures["rounds"]:
        table.add_row(
            str(r["workers"]),
            f"{r['seconds']:.1f}",
            f"{r['runs_per_minute']:.2f}",
            str(r["task_tries"]),
            f"{r['task_seconds']:.1f}",
            f"{r['queued_seconds']:.1f}",
            f"{r['publish_seconds']:.1f}",
            f"{r['busy_cores']:.2f} of {r['cores']}",
            f"{r['longest_run_seconds']:.1f} ({r['longest_run_task_seconds']:.1f})",
        )
    console.print(table)
    console.print(
        f"two workers / one: {figures['two_over_one_throughput']:.2f}x the runs per minute", highlight=False
    )


if __name__ == "__main__":
    app()
