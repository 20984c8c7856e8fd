"""``scdx query``, ``datasets``, ``docs``, ``report``, ``runs``, ``lineage``, ``freshness``, ``contracts check``, ``airflow-pools``: looking at what is there."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

# A run that found no data in its window (months not yet released) is not a failure.
from pipelines.cli.app import (
    DataDirOption,
    RestrictedOption,
    app,
    cli_registry,
    cli_settings,
    console,
    err_console,
    print_query,
    tier_name,
)
from pipelines.common.errors import ScdxError
from pipelines.common.settings import load_settings
from pipelines.contracts import ContractError


@app.command("airflow-pools")
def airflow_pools_command(
    out: Annotated[Path | None, typer.Option(help="Write the JSON here (default: print it).")] = None,
) -> None:
    """The Airflow pools the DAGs use, for `airflow pools import FILE`."""
    import json

    from pipelines.orchestration.tasks import airflow_pools

    text = json.dumps(airflow_pools(cli_registry(load_settings())), indent=2)
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n")
        console.print(f"pools written to {out}; load them with: airflow pools import {out}", highlight=False)


@app.command()
def freshness(data_dir: DataDirOption = None) -> None:
    """Each dataset's data age against its contract's freshness SLA (late ones in red)."""
    from datetime import date as date_type

    from pipelines.orchestration.freshness import check_freshness
    from pipelines.store.layout import Layout

    settings = cli_settings(data_dir, live=False, replay_url=None)
    registry = cli_registry(settings)
    today = date_type.today()
    for contract in sorted(registry.contracts.values(), key=lambda c: c.dataset):
        report = check_freshness(contract, Layout(settings.data_dir), today)
        console.print(("[red]" if report.late else "") + report.describe(), highlight=False)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL to run read-only against the public database.")],
    data_dir: DataDirOption = None,
) -> None:
    """Run a read-only SQL query against the current published version."""
    settings = cli_settings(data_dir, live=False, replay_url=None)
    print_query(settings, sql)


@app.command()
def datasets(
    as_json: Annotated[bool, typer.Option("--json", help="Print the metadata as JSON.")] = False,
) -> None:
    """List the datasets with their data-sharing metadata (provider, steward, terms, cadence)."""
    import json

    settings = load_settings()
    registry = cli_registry(settings)
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
    from pipelines.dictionary import write_catalog
    from pipelines.store.layout import Layout

    settings = cli_settings(data_dir, live=False, replay_url=None)
    index = write_catalog(
        cli_registry(settings), Layout(settings.data_dir), out or settings.data_dir / "catalog"
    )
    console.print(f"data dictionary written: {index}", highlight=False)


@app.command()
def report(
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default $SCDX_DATA_DIR/report).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write the risk report of the current release: one self-contained HTML page of charts that
    opens offline, each with its method, data table and the release and runs it came from."""
    from pipelines.report import write_report

    settings = cli_settings(data_dir, live=False, replay_url=None)
    index = write_report(settings, out or settings.data_dir / "report")
    console.print(f"risk report written: {index}", highlight=False, soft_wrap=True)


@app.command()
def runs(
    dataset: Annotated[str | None, typer.Argument(help="Only this dataset's runs.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs, newest first.")] = 20,
    data_dir: DataDirOption = None,
) -> None:
    """The run history (from the operational catalog): every run, whether it published or not."""
    from pipelines.store.layout import Layout
    from pipelines.store.tiers import catalog_of

    settings = cli_settings(data_dir, live=False, replay_url=None)
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
    from pipelines.marts.lineage import table_lineage
    from pipelines.store.layout import Layout

    settings = cli_settings(data_dir, live=False, replay_url=None)
    try:
        rows = table_lineage(Layout(settings.data_dir), table, tier_name(restricted))
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
    from pipelines.contracts.compatibility import check

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
