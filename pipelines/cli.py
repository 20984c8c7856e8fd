"""``scdx``: the command line of the pipeline (refresh, demo, replay server, datasets, query)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from pipelines.contracts import ContractError, Registry, load_registry
from pipelines.errors import ScdxError
from pipelines.redact import install_log_redaction, redact_text
from pipelines.runs import RunInterrupted, RunRecord
from pipelines.settings import Settings, load_settings
from pipelines.window import Window, parse_month

# A run that found no data in its window (months not yet released) is not a failure.
OK_STATUSES = ("published", "no_data", "unchanged")

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _width(stream: object) -> int | None:
    # Rich assumes 80 columns when not on a terminal (make, CI logs); the summary needs more.
    if os.environ.get("COLUMNS"):
        return None
    return None if getattr(stream, "isatty", lambda: False)() else 140


console = Console(width=_width(sys.stdout))
err_console = Console(stderr=True, width=_width(sys.stderr))

EXAMPLE_QUERY = """\
-- Imports from China of the EV-basket headings over the latest 12 published months
SELECT hs_code,
       any_value(hs_description)            AS description,
       round(sum(general_value_usd) / 1e6, 1) AS usd_millions
FROM curated.census_trade_imports
WHERE country_code = '5700'
  AND period > (SELECT max(period) FROM curated.census_trade_imports) - INTERVAL 12 MONTH
GROUP BY hs_code
ORDER BY usd_millions DESC
LIMIT 8"""


CHAPTER_CONCENTRATION_QUERY = """\
-- How concentrated were 2025 U.S. imports of the HS chapters holding the EV basket (85: batteries,
-- magnets, semiconductors)? From the USA Trade Online reports of 16 partners (total = their sum).
SELECT hs_code AS chapter, category, round(total_import_value_usd / 1e9, 1) AS usd_billions,
       supplier_countries AS suppliers, top_supplier, top_supplier_share_pct AS top_share_pct, hhi,
       feoc_share_pct
FROM marts.import_concentration
WHERE hs_level = 'HS2' AND period_grain = 'year' AND period = DATE '2025-01-01'
ORDER BY hhi DESC"""

SCORECARD_QUERY = """\
-- The EV supply-chain scorecard: four risk pillars per mineral and product, 0-100 (higher = more exposed)
SELECT item, raw_materials_score AS raw_materials, manufacturing_score AS manufacturing,
       workforce_score AS workforce, logistics_score AS logistics, mean_score
FROM marts.supply_chain_scorecard"""


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    for noisy in ("great_expectations", "urllib3", "filelock", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install_log_redaction()


def _settings(data_dir: Path | None, live: bool, replay_url: str | None) -> Settings:
    settings = load_settings()
    changes: dict[str, object] = {}
    if data_dir is not None:
        changes["data_dir"] = data_dir.expanduser().resolve()
    if live:
        changes["live"] = True
    if replay_url:
        changes["replay_url"] = replay_url
    return settings.with_overrides(**changes) if changes else settings


def _registry(settings: Settings) -> Registry:
    try:
        return load_registry(settings.schemas_dir)
    except ContractError as exc:
        err_console.print(f"[red]contract error:[/red] {exc}")
        raise typer.Exit(2) from None


def _summary_table(runs: list[RunRecord]) -> Table:
    table = Table(title="scdx refresh")
    for column in (
        "dataset",
        "status",
        "rows landed",
        "rows published",
        "rows quarantined",
        "validation",
        "drift",
        "seconds",
    ):
        table.add_column(column, justify="right" if column.startswith(("rows", "sec")) else "left")
    for run in runs:
        colour = {
            "published": "green",
            "no_data": "cyan",
            "unchanged": "cyan",
            "quarantined": "yellow",
            "blocked": "yellow",
        }.get(run.status, "red")
        table.add_row(
            run.dataset,
            f"[{colour}]{run.status}[/{colour}]",
            f"{run.rows_landed:,}",
            f"{run.rows_published:,}",
            f"{run.rows_quarantined:,}",
            run.validation or "-",
            run.drift_summary(),
            f"{run.seconds:.1f}",
        )
    return table


AllowShrinkOption = Annotated[
    bool,
    typer.Option(
        "--allow-shrink",
        help="Publish even when it removes more of a table's rows than its contract's max_shrink_pct.",
    ),
]


def _recorded(run: RunRecord, steps: Callable[[], object]) -> RunRecord:
    """Run one dataset's steps; however they end, the run record says how.

    Each step records its own failure in the run history before raising, so an error here is
    already recorded; it ends the dataset's run, never the command (the next dataset still runs).
    """
    try:
        steps()
    except Exception as exc:  # the one place a dataset's error of any kind becomes its run's outcome
        if run.status == "running":
            run.finish("failed", error=redact_text(str(exc)))
    return run


def _refresh(
    settings: Settings,
    datasets: list[str],
    window: Window | None,
    force: bool = False,
    allow_shrink: bool = False,
) -> list[RunRecord]:
    from pipelines.refresh import TransportError, refresh_dataset, source_endpoints, start_run

    registry = _registry(settings)
    names = datasets or sorted(registry.contracts)
    contracts = []
    for name in names:
        try:
            contracts.append(registry.get(name))
        except ContractError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    runs: list[RunRecord] = []
    with ExitStack() as stack:
        try:
            endpoint = stack.enter_context(source_endpoints(settings))
        except (TransportError, FileNotFoundError) as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        for contract in contracts:
            run = start_run(contract)
            runs.append(
                _recorded(
                    run,
                    partial(
                        refresh_dataset,
                        contract,
                        registry,
                        settings,
                        endpoint(contract),
                        window=window,
                        run=run,
                        force=force,
                        allow_shrink=allow_shrink,
                    ),
                )
            )
    return runs


def _window(start: str | None, end: str | None) -> Window | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        err_console.print("[red]--start and --end go together[/red]")
        raise typer.Exit(2)
    return Window(parse_month(start), parse_month(end))


DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default $SCDX_DATA_DIR or ./data).")
]


@app.command()
def refresh(
    datasets: Annotated[
        list[str] | None, typer.Argument(help="Datasets to refresh (default: all contracts).")
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Call the agency APIs instead of the replay server.")
    ] = False,
    replay_url: Annotated[str | None, typer.Option(help="Use a running replay server at this URL.")] = None,
    start: Annotated[str | None, typer.Option(help="First month (YYYY-MM); default from the cursor.")] = None,
    end: Annotated[str | None, typer.Option(help="Last month (YYYY-MM); default this month.")] = None,
    data_dir: DataDirOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Normalize and publish even when the agency sent the bytes already published."
        ),
    ] = False,
    allow_shrink: AllowShrinkOption = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run extract -> land -> normalize -> stage -> validate -> publish for each dataset, then the marts.

    A dataset whose upstream bytes are identical to its latest published run ends as "unchanged"
    and publishes nothing (--force to publish anyway)."""
    _setup_logging(verbose)
    settings = _settings(data_dir, live, replay_url)
    runs = _refresh(settings, datasets or [], _window(start, end), force, allow_shrink)
    console.print(_summary_table(runs))
    for run in runs:
        if run.status not in OK_STATUSES and run.error:
            err_console.print(f"[red]{run.dataset}:[/red] {run.error}")
    _print_marts(settings, runs)
    if any(run.status not in OK_STATUSES for run in runs):
        raise typer.Exit(1)


@app.command("ingest-file")
def ingest_file_command(
    dataset: Annotated[str, typer.Argument(help="Dataset whose contract describes the file.")],
    path: Annotated[Path, typer.Argument(help="A file downloaded from the agency (CSV, JSON ...).")],
    data_dir: DataDirOption = None,
    allow_shrink: AllowShrinkOption = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Land a file in hand and run it through normalize -> stage -> validate -> publish.

    The file must be what the dataset's source reads (CSV, JSON ...), or it is refused before
    anything lands. It is merged by primary key: rows it does not hold stay published."""
    from pipelines.contracts import ContractError
    from pipelines.refresh import ingest_file, start_run

    _setup_logging(verbose)
    settings = _settings(data_dir, live=False, replay_url=None)
    registry = _registry(settings)
    try:
        contract = registry.get(dataset)
    except ContractError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if not path.exists():
        err_console.print(f"[red]{dataset}: no such file {path}[/red]")
        raise typer.Exit(2)
    run = start_run(contract)
    _recorded(
        run, partial(ingest_file, contract, registry, settings, path, run=run, allow_shrink=allow_shrink)
    )
    console.print(_summary_table([run]))
    if run.status not in OK_STATUSES:
        err_console.print(f"[red]{run.dataset}:[/red] {run.error}")
        raise typer.Exit(1)


def _print_marts(settings: Settings, runs: list[RunRecord]) -> None:
    """The marts of the current public release (each publish rebuilt those reading its table), and
    any mart a run's publish had to leave out."""
    from pipelines.layout import Layout
    from pipelines.publish import open_store

    store = open_store(Layout(settings.data_dir), "public", settings.keep_versions)
    current = store.current()
    if current is None:
        return
    marts = {n.removeprefix("marts."): t.rows for n, t in store.tables().items() if n.startswith("marts.")}
    listed = ", ".join(f"{name} ({rows:,} rows)" for name, rows in sorted(marts.items())) or "none"
    console.print(f"marts in release {current.number}: {listed}", highlight=False)
    for run in runs:
        for warning in run.warnings:
            if warning.startswith("marts."):
                err_console.print(f"[yellow]{run.dataset}:[/yellow] {warning}", highlight=False)


def _build_marts(settings: Settings) -> bool:
    """Build the risk marts; print what was built and skipped. False when the build failed."""
    from pipelines.layout import Layout
    from pipelines.marts import MartError, publish_marts

    try:
        build = publish_marts(Layout(settings.data_dir), settings.keep_versions)
    except MartError as exc:
        err_console.print(f"[red]marts not published:[/red] {exc}")
        return False
    built = ", ".join(f"{name} ({rows:,} rows)" for name, rows in build.built.items())
    if build.version is None:
        console.print("marts are up to date with the published tables: no release", highlight=False)
    else:
        console.print(f"marts built in release {build.version}: {built or 'none'}", highlight=False)
    for name, reason in build.skipped.items():
        console.print(f"  [yellow]skipped[/yellow] marts.{name}: {reason}", highlight=False)
    for name, reason in build.failed.items():
        err_console.print(f"  [red]left out[/red] marts.{name}: {reason}", highlight=False)
    return not build.failed


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

    from pipelines.bench import run_bench

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
    for label in ("bench_queries", "demo_queries"):
        for query, figure in (releases.get(label) or {}).get("queries", {}).items():
            console.print(
                f"{'bench table' if label == 'bench_queries' else 'demo'}: {query}: release "
                f"{figure['release_ms']} ms, DuckDB tables {figure['tables_ms']} ms ({figure['ratio']}x)",
                highlight=False,
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
    import os

    from pipelines.bench_dags import dag_parse_bench
    from pipelines.settings import PROJECT_ROOT

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

    from pipelines.bench_validate import run_validate_bench

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
    from pipelines.reliability import render_report, run_catalogue

    _setup_logging(False)
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


@app.command("airflow-pools")
def airflow_pools_command(
    out: Annotated[Path | None, typer.Option(help="Write the JSON here (default: print it).")] = None,
) -> None:
    """The Airflow pools the DAGs use, for `airflow pools import FILE`."""
    import json

    from pipelines.tasks import airflow_pools

    text = json.dumps(airflow_pools(_registry(load_settings())), indent=2)
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n")
        console.print(f"pools written to {out}; load them with: airflow pools import {out}", highlight=False)


@app.command()
def freshness(data_dir: DataDirOption = None) -> None:
    """Each dataset's data age against its contract's freshness SLA (late ones in red)."""
    from datetime import date as date_type

    from pipelines.freshness import check_freshness
    from pipelines.layout import Layout

    settings = _settings(data_dir, live=False, replay_url=None)
    registry = _registry(settings)
    today = date_type.today()
    for contract in sorted(registry.contracts.values(), key=lambda c: c.dataset):
        report = check_freshness(contract, Layout(settings.data_dir), today)
        console.print(("[red]" if report.late else "") + report.describe(), highlight=False)


@app.command()
def marts(
    data_dir: DataDirOption = None, verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False
) -> None:
    """Build the risk marts from the published curated tables, as one new public version."""
    _setup_logging(verbose)
    if not _build_marts(_settings(data_dir, live=False, replay_url=None)):
        raise typer.Exit(1)


@app.command()
def demo(
    data_dir: DataDirOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """The nightly refresh of every dataset against the bundled replay server, then a query."""
    _setup_logging(verbose)
    settings = _settings(data_dir, live=False, replay_url=None)
    started = time.monotonic()
    runs = _refresh(settings, [], None)
    runs += _ingest_hand_downloads(settings)
    console.print(_summary_table(runs))
    failed = [run for run in runs if run.status not in OK_STATUSES]
    for run in failed:
        err_console.print(f"[red]{run.dataset}:[/red] {run.error}")
    if failed:
        raise typer.Exit(1)
    _print_marts(settings, runs)
    _print_query(settings, EXAMPLE_QUERY)
    _print_query(settings, SCORECARD_QUERY)
    _print_query(settings, CHAPTER_CONCENTRATION_QUERY)
    console.print(
        f"[dim]demo finished in {time.monotonic() - started:.1f} s; database {settings.data_dir / 'scdx.duckdb'}[/dim]"
    )


# Files an analyst downloads by hand, bundled with the recordings, that the demo ingests after the
# refresh: USA Trade Online reports of many partners (real values; recordings/PROVENANCE.md).
HAND_DOWNLOADS = (("census_trade_imports", "census_intltrade/usatradeonline"),)


def _ingest_hand_downloads(settings: Settings) -> list[RunRecord]:
    """``scdx ingest-file`` of every bundled hand download, as the demo's analyst would."""
    from pipelines.refresh import ingest_file, start_run

    registry = _registry(settings)
    runs = []
    for dataset, folder in HAND_DOWNLOADS:
        contract = registry.get(dataset)
        for path in sorted((settings.recordings_dir / folder).glob("*.csv")):
            run = start_run(contract)
            runs.append(_recorded(run, partial(ingest_file, contract, registry, settings, path, run=run)))
    return runs


def _print_query(settings: Settings, sql: str) -> None:
    from pipelines.layout import Layout
    from pipelines.publish import open_public

    with open_public(Layout(settings.data_dir)) as con:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    console.print(f"[bold]Example analyst query[/bold] (read-only):\n[cyan]{sql}[/cyan]")
    table = Table()
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL to run read-only against the public database.")],
    data_dir: DataDirOption = None,
) -> None:
    """Run a read-only SQL query against the current published version."""
    settings = _settings(data_dir, live=False, replay_url=None)
    _print_query(settings, sql)


@app.command()
def datasets(
    as_json: Annotated[bool, typer.Option("--json", help="Print the metadata as JSON.")] = False,
) -> None:
    """List the datasets with their data-sharing metadata (provider, steward, terms, cadence)."""
    import json

    settings = load_settings()
    registry = _registry(settings)
    rows = [
        {
            "dataset": c.dataset,
            "version": c.version,
            "agency": c.provider.agency,
            "steward": c.provider.steward,
            "classification": c.classification,
            "allowed_use": c.allowed_use,
            "license": c.license,
            "schedule": c.schedule,
            "freshness_days": c.freshness.max_age_days if c.freshness else None,
            "retention_raw": c.retention.raw,
            "retention_curated": c.retention.curated,
            "title": c.title,
        }
        for c in sorted(registry.contracts.values(), key=lambda c: c.dataset)
    ]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"contracts in {settings.schemas_dir}", show_lines=True)
    for column in (
        "dataset",
        "provider / steward",
        "classification",
        "allowed use / license",
        "cadence / freshness",
        "retention",
    ):
        table.add_column(column)
    for r in rows:
        freshness = f"{r['freshness_days']} days" if r["freshness_days"] else "no SLA"
        table.add_row(
            f"{r['dataset']}\nv{r['version']}",
            f"{r['agency']}\n{r['steward']}",
            str(r["classification"]),
            f"{r['allowed_use']}\n{r['license']}",
            f"{r['schedule']}\n{freshness}",
            f"raw: {r['retention_raw']}\ncurated: {r['retention_curated']}",
        )
    console.print(table)


@app.command()
def docs(
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default $SCDX_DATA_DIR/catalog).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write the data dictionary (static HTML): one page per dataset and per code list."""
    from pipelines.catalog import write_catalog
    from pipelines.layout import Layout

    settings = _settings(data_dir, live=False, replay_url=None)
    index = write_catalog(
        _registry(settings), Layout(settings.data_dir), out or settings.data_dir / "catalog"
    )
    console.print(f"data dictionary written: {index}", highlight=False)


publish_app = typer.Typer(no_args_is_help=True, help="Releases: list, roll back, verify.")
app.add_typer(publish_app, name="publish")
RestrictedOption = Annotated[
    bool, typer.Option("--restricted", help="The restricted tier instead of the public one.")
]


def _tier(restricted: bool) -> str:
    return "restricted" if restricted else "public"


@publish_app.command("list")
def publish_list(data_dir: DataDirOption = None, restricted: RestrictedOption = False) -> None:
    """One line per release, newest first: number, time, what changed, runs, whether still kept."""
    from pipelines.layout import Layout
    from pipelines.publish import list_publishes

    settings = _settings(data_dir, live=False, replay_url=None)
    try:
        releases = list_publishes(Layout(settings.data_dir), _tier(restricted))
    except ScdxError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if not releases:
        console.print(f"nothing published yet in the {_tier(restricted)} tier", highlight=False)
        return
    current = releases[0].number
    for r in releases:
        kind = r.kind + (f" of {r.restored}" if r.restored else "")
        changed = ", ".join(t for t in r.changed if not t.startswith("curated.ref_")) or "-"
        runs = ", ".join(r.run_ids) or "-"
        state = "current" if r.number == current else ("kept" if r.kept else "not kept")
        console.print(
            f"{r.number:>5}  {r.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}  {kind:<13} {state:<8}  "
            f"changed: {changed}  runs: {runs}",
            highlight=False,
            soft_wrap=True,
        )


@publish_app.command("rollback")
def publish_rollback(
    version: Annotated[
        int | None, typer.Argument(help="Release to restore (default: the release before the current).")
    ] = None,
    data_dir: DataDirOption = None,
    restricted: RestrictedOption = False,
) -> None:
    """Restore a kept release's tables and marts as a new release (history only grows); works from
    the catalog alone, even when the current release's file is damaged or gone."""
    from pipelines.layout import Layout
    from pipelines.publish import rollback

    settings = _settings(data_dir, live=False, replay_url=None)
    try:
        new, restored = rollback(
            Layout(settings.data_dir), version, _tier(restricted), settings.keep_versions
        )
    except ScdxError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"release {new} is current; it restores the tables and marts of release {restored}")


@publish_app.command("verify")
def publish_verify(data_dir: DataDirOption = None, restricted: RestrictedOption = False) -> None:
    """Check every kept release's files against the checksums recorded when they were written."""
    from pipelines.layout import Layout
    from pipelines.publish import open_store

    settings = _settings(data_dir, live=False, replay_url=None)
    store = open_store(Layout(settings.data_dir), _tier(restricted), settings.keep_versions)
    damage = store.verify()
    kept = [r.number for r in store.releases() if r.kept]
    for item in damage:
        err_console.print(f"[red]release {item.release}: {item.path}: {item.problem}[/red]", highlight=False)
    if damage:
        good = sorted(set(kept) - {d.release for d in damage})
        hint = f"`scdx publish rollback {good[-1]}`" if good else "no undamaged release is kept"
        err_console.print(f"{len(damage)} damaged file(s); restore an undamaged release with {hint}")
        raise typer.Exit(1)
    console.print(f"{len(kept)} kept release(s) of the {_tier(restricted)} tier verified", highlight=False)


@app.command()
def runs(
    dataset: Annotated[str | None, typer.Argument(help="Only this dataset's runs.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs, newest first.")] = 20,
    data_dir: DataDirOption = None,
) -> None:
    """The run history (from the operational catalog): every run, whether it published or not."""
    from pipelines.layout import Layout
    from pipelines.publish import catalog_of

    settings = _settings(data_dir, live=False, replay_url=None)
    for row in catalog_of(Layout(settings.data_dir)).runs(dataset, status)[:limit]:
        error = f"  {row['error']}" if row["error"] else ""
        release = f" release {row['publish_version']}" if row["publish_version"] else ""
        console.print(
            f"{row['run_id']}  {row['dataset']:<24} {row['status']:<11} "
            f"{row['rows_published'] or 0:>10,} rows{release}{error}",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def lineage(
    table: Annotated[str, typer.Argument(help="curated.<dataset>, marts.<mart> (or the dataset name)")],
    data_dir: DataDirOption = None,
    restricted: RestrictedOption = False,
) -> None:
    """The chain from a table back to the agency URLs (without secrets) and raw checksums."""
    from pipelines.layout import Layout
    from pipelines.publish import table_lineage

    settings = _settings(data_dir, live=False, replay_url=None)
    try:
        rows = table_lineage(Layout(settings.data_dir), table, _tier(restricted))
    except ScdxError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if not rows:
        err_console.print(f"[red]no lineage for {table}[/red]")
        raise typer.Exit(1)
    console.print(f"[bold]{table}[/bold] as of release {rows[0]['version']}", highlight=False)
    run = None
    for r in rows:
        if r["run_id"] != run:
            run = r["run_id"]
            console.print(
                f"  {r['table_name']} run {run} ({r['run_status']}, started {r['run_started_at']})",
                highlight=False,
            )
        source = f" <- {r['url']} fetched {r['fetched_at']}" if r["kind"] == "raw" else ""
        console.print(
            f"    {r['kind']:6} {r['path']} sha256 {r['sha256'][:16]}…{source}",
            highlight=False,
            soft_wrap=True,
        )


contracts_app = typer.Typer(no_args_is_help=True, help="Contract lint and compatibility.")
app.add_typer(contracts_app, name="contracts")


@contracts_app.command("check")
def contracts_check(
    against: Annotated[
        str | None,
        typer.Option("--against", help="Git ref to compare with (breaking changes need a major bump)."),
    ] = None,
    schemas: Annotated[
        Path | None, typer.Option(help="Schemas directory (default $SCDX_SCHEMAS_DIR).")
    ] = None,
) -> None:
    """Lint every contract; with --against, refuse breaking changes that lack a major version bump."""
    from pipelines.contract_check import check
    from pipelines.contracts import ContractError

    schemas_dir = (schemas or load_settings().schemas_dir).resolve()
    try:
        problems = check(schemas_dir, against)
    except ContractError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    for problem in problems:
        err_console.print(f"[red]✗[/red] {problem}", highlight=False)
    if problems:
        raise typer.Exit(1)
    count = len(list(schemas_dir.glob("*.yaml"))) - 1
    console.print(
        f"✓ {count} contract(s) in {schemas_dir} pass" + (f", compatible with {against}" if against else "")
    )


@app.command("replay-server")
def replay_server(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8765,
    recordings: Annotated[Path | None, typer.Option(help="Recordings directory.")] = None,
) -> None:
    """Serve the recorded agency responses on 127.0.0.1 with each agency's query semantics."""
    from pipelines.replay.server import ReplayServer

    _setup_logging(False)
    settings = load_settings()
    server = ReplayServer(recordings or settings.recordings_dir, port=port)
    console.print(
        f"replay server on {server.url} (endpoints: {', '.join(sorted(server.routes))})", highlight=False
    )
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.stop()


def _interrupt(signum: int, _frame: object) -> None:
    """SIGINT or SIGTERM: end the command through the runs in progress, which record themselves
    as interrupted on the way out (pipelines.refresh)."""
    raise RunInterrupted(signal.Signals(signum).name, 128 + signum)


def main() -> None:
    """Console-script entry point.

    SIGINT and SIGTERM end a command cleanly: the run in progress is recorded as interrupted,
    nothing half-published stays, one line says so, and the exit code is 130 or 143.

    Ends with ``os._exit`` after flushing: DuckDB 2.0's nanobind bindings print dozens of
    "leaked instance" lines at interpreter shutdown once GX and duckdb_engine are both imported
    (harmless, but it buries the summary). Everything we own is closed and flushed first.
    """
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except RunInterrupted as exc:
        err_console.print(
            f"scdx: {exc}; the run in progress is recorded as interrupted, nothing was half-published",
            highlight=False,
        )
        code = exc.exit_code
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
