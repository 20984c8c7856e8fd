"""``scdx refresh``, ``ingest-file``, ``demo``, ``marts``, ``replay-server``: running the pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli.app import (
    OK_STATUSES,
    PIPELINE,
    AllowShrinkOption,
    DataDirOption,
    VerboseOption,
    app,
    cli_registry,
    cli_settings,
    console,
    err_console,
    setup_logging,
)
from pipelines.cli.progress import refresh_progress
from pipelines.common.errors import ScdxError, UsageError
from pipelines.common.progress import NO_PROGRESS, Progress
from pipelines.common.redact import redact_text
from pipelines.common.settings import Settings
from pipelines.sources.window import Window, parse_month
from pipelines.store.runs import RunRecord

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


def _summary_table(runs: list[RunRecord], recordings: list[str] | None = None) -> Table:
    """One row per run; with ``recordings`` (one entry per run), a column saying what the bundled
    recordings a replayed run read hold: ``constructed`` or ``recorded`` values (blank: live)."""
    table = Table(title="scdx refresh")
    columns = [
        "dataset",
        "status",
        "rows landed",
        "rows published",
        "rows quarantined",
        "validation",
        "drift",
    ]
    for column in [*columns, "seconds", *(["recordings"] if recordings else [])]:
        table.add_column(column, justify="right" if column.startswith(("rows", "sec")) else "left")
    for index, run in enumerate(runs):
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
            *([_recordings_cell(recordings[index])] if recordings else []),
        )
    return table


def _recordings_cell(kind: str) -> str:
    return "[yellow]constructed[/yellow]" if kind == "constructed" else kind


def _replayed_recordings(settings: Settings, runs: list[RunRecord]) -> list[str]:
    """For each run, what its contract's ``source.offline_recordings`` says the bundled recordings
    hold, when the run was replayed from them (not ``--live``); blank for a live run."""
    if settings.live:
        return ["" for _ in runs]
    registry = cli_registry(settings)
    kinds: list[str] = []
    for run in runs:
        recordings = registry.get(run.dataset).source.offline_recordings
        kinds.append(recordings.kind if recordings else "recorded")
    return kinds


def _print_constructed(settings: Settings, runs: list[RunRecord], recordings: list[str]) -> None:
    """Where the provenance of each constructed dataset the runs replayed is written down."""
    registry = cli_registry(settings)
    constructed = sorted(
        {r.dataset for r, kind in zip(runs, recordings, strict=True) if kind == "constructed"}
    )
    for dataset in constructed:
        recordings_of = registry.get(dataset).source.offline_recordings
        link = recordings_of.provenance if recordings_of else "recordings/PROVENANCE.md"
        console.print(
            f"[yellow]constructed[/yellow] {dataset}: replayed from constructed recordings, not statistics ({link})",
            highlight=False,
            soft_wrap=True,
        )


def _recorded(run: RunRecord, steps: Callable[[], object], progress: Progress = NO_PROGRESS) -> RunRecord:
    """Run one dataset's steps; however they end, the run record says how.

    Each step records its own failure in the run history before raising, so an error here is
    already recorded: scdx's own errors and the machine's (a disk, a socket) end the dataset's run,
    never the command (the next dataset still runs). Anything else is a bug and propagates.
    """
    try:
        steps()
    except (ScdxError, OSError) as exc:
        if run.status == "running":
            run.finish("failed", error=redact_text(str(exc)))
    progress.finished(run.dataset, run.status)
    return run


def _refresh(
    settings: Settings,
    datasets: list[str],
    window: Window | None,
    force: bool = False,
    allow_shrink: bool = False,
) -> list[RunRecord]:
    from pipelines.orchestration.guards import start_run
    from pipelines.orchestration.refresh import refresh_dataset
    from pipelines.replay.endpoints import source_endpoints
    from pipelines.sources.transport import TransportError

    registry = cli_registry(settings)
    # Partner datasets come through the inbox (scdx partner ingest), never from a refresh.
    names = datasets or sorted(n for n, c in registry.contracts.items() if not c.source.inbox)
    # An unknown name ends the command before any run starts: ContractError, exit code 2.
    contracts = [registry.get(name) for name in names]
    runs: list[RunRecord] = []
    with ExitStack() as stack:
        try:
            endpoint = stack.enter_context(source_endpoints(settings))
        except (TransportError, FileNotFoundError) as exc:
            raise UsageError(str(exc)) from None
        progress = stack.enter_context(refresh_progress(len(contracts)))
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
                        progress=progress,
                    ),
                    progress,
                )
            )
    return runs


def _window(start: str | None, end: str | None) -> Window | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise UsageError("refresh: --start and --end go together")
    try:
        return Window(parse_month(start), parse_month(end))
    except ValueError as exc:
        raise UsageError(f"refresh: {exc}") from None


@app.command(rich_help_panel=PIPELINE)
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
    verbose: VerboseOption = False,
) -> None:
    """Run extract -> land -> normalize -> stage -> validate -> publish for each dataset, then the marts.

    A dataset whose upstream bytes are identical to its latest published run ends as "unchanged"
    and publishes nothing (--force to publish anyway)."""
    window = _window(start, end)
    setup_logging(verbose)
    settings = cli_settings(data_dir, live, replay_url, writes=True)
    runs = _refresh(settings, datasets or [], window, force, allow_shrink)
    recordings = _replayed_recordings(settings, runs)
    console.print(_summary_table(runs, recordings))
    _print_constructed(settings, runs, recordings)
    for run in runs:
        if run.status not in OK_STATUSES and run.error:
            err_console.print(f"[red]{run.dataset}:[/red] {run.error}")
    _print_marts(settings, runs)
    if any(run.status not in OK_STATUSES for run in runs):
        raise typer.Exit(1)


@app.command("ingest-file", rich_help_panel=PIPELINE)
def ingest_file_command(
    dataset: Annotated[str, typer.Argument(help="Dataset whose contract describes the file.")],
    path: Annotated[Path, typer.Argument(help="A file downloaded from the agency (CSV, JSON ...).")],
    data_dir: DataDirOption = None,
    allow_shrink: AllowShrinkOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Land a file in hand and run it through normalize -> stage -> validate -> publish.

    The file must be what the dataset's source reads (CSV, JSON ...), or it is refused before
    anything lands. It is merged by primary key: rows it does not hold stay published."""
    from pipelines.orchestration.guards import start_run
    from pipelines.orchestration.refresh import ingest_file

    setup_logging(verbose)
    settings = cli_settings(data_dir, writes=True)
    registry = cli_registry(settings)
    contract = registry.get(dataset)
    # A directory, an empty or binary file is refused by the format check (exit 1, naming what it found).
    if not path.exists():
        raise UsageError(f"{dataset}: no such file {path}")
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
    from pipelines.store.layout import Layout
    from pipelines.store.tiers import open_store

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
    from pipelines.marts import MartError, publish_marts
    from pipelines.store.layout import Layout

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


@app.command(rich_help_panel=PIPELINE)
def marts(data_dir: DataDirOption = None, verbose: VerboseOption = False) -> None:
    """Build the risk marts from the published curated tables, as one new public version."""
    setup_logging(verbose)
    if not _build_marts(cli_settings(data_dir, writes=True)):
        raise typer.Exit(1)


@app.command(rich_help_panel=PIPELINE)
def demo(
    data_dir: DataDirOption = None,
    verbose: VerboseOption = False,
) -> None:
    """The nightly refresh of every dataset against the bundled replay server, the partners' signed
    submissions and their public aggregates, then a query."""
    setup_logging(verbose)
    settings = cli_settings(data_dir, writes=True)
    started = time.monotonic()
    runs = _refresh(settings, [], None)
    recordings = _replayed_recordings(settings, runs)
    hand_downloads = _ingest_hand_downloads(settings)
    runs += hand_downloads
    recordings += ["recorded" for _ in hand_downloads]  # real agency reports (recordings/PROVENANCE.md)
    console.print(_summary_table(runs, recordings))
    _print_constructed(settings, runs, recordings)
    failed = [run for run in runs if run.status not in OK_STATUSES]
    for run in failed:
        err_console.print(f"[red]{run.dataset}:[/red] {run.error}")
    if failed:
        raise typer.Exit(1)
    from pipelines.cli.flow_demo import run_flow_demo

    if not run_flow_demo(settings):
        raise typer.Exit(1)
    _print_marts(settings, runs)
    from pipelines.cli.query import run_query
    from pipelines.cli.releases import materialize_and_say

    materialize_and_say(settings)  # the night's last step: analysts' queries at DuckDB's own speed

    for sql in (EXAMPLE_QUERY, SCORECARD_QUERY, CHAPTER_CONCENTRATION_QUERY):
        console.print(f"[cyan]{sql}[/cyan]", highlight=False)
        run_query(settings, sql)
    console.print(
        f"[dim]demo finished in {time.monotonic() - started:.1f} s; database {settings.data_dir / 'scdx.duckdb'}[/dim]"
    )


# Files an analyst downloads by hand, bundled with the recordings, that the demo ingests after the
# refresh: USA Trade Online reports of many partners (real values; recordings/PROVENANCE.md).
HAND_DOWNLOADS = (("census_trade_imports", "census_intltrade/usatradeonline"),)


def _ingest_hand_downloads(settings: Settings) -> list[RunRecord]:
    """``scdx ingest-file`` of every bundled hand download, as the demo's analyst would."""
    from pipelines.orchestration.guards import start_run
    from pipelines.orchestration.refresh import ingest_file

    registry = cli_registry(settings)
    runs = []
    for dataset, folder in HAND_DOWNLOADS:
        contract = registry.get(dataset)
        for path in sorted((settings.recordings_dir / folder).glob("*.csv")):
            run = start_run(contract)
            runs.append(_recorded(run, partial(ingest_file, contract, registry, settings, path, run=run)))
    return runs
