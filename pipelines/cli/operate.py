"""``scdx lineage``, ``freshness``, ``runs``: where a table came from, how old and how it ran."""

from __future__ import annotations

import json
import signal
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.table import Table

from pipelines.cli.app import (
    EXPLORE,
    OPERATE,
    DataDirOption,
    RestrictedOption,
    app,
    cli_registry,
    cli_settings,
    console,
    say,
    setup_logging,
    tier_name,
)
from pipelines.common.errors import UsageError
from pipelines.common.settings import load_settings


def short_url(url: str | None) -> str:
    """An agency URL for a table: host and path, the query (the month, the codes) left out."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return parts.path.rsplit("/", 1)[-1]
    return f"{parts.netloc}{parts.path}" + ("?…" if parts.query else "")


def _when(value: Any) -> str:
    """A time to the second, ISO 8601 in UTC."""
    if isinstance(value, str) and value:
        value = datetime.fromisoformat(value)
    return f"{value.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}" if isinstance(value, datetime) else ""


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


def _lineage_table(rows: list[dict[str, Any]]) -> Table:
    """Each curated table, its runs and their files; URLs shortened (``--json`` has them whole)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("table / run", no_wrap=True)
    table.add_column("file", no_wrap=True, overflow="ellipsis", max_width=28)
    table.add_column("sha256", no_wrap=True)
    # The other columns take about 104 characters; the source has the rest, 36 at least.
    table.add_column("source", no_wrap=True, overflow="ellipsis", max_width=max(36, console.width - 104))
    table.add_column("fetched", no_wrap=True)
    current: tuple[str, str] | None = None
    for r in rows:
        if current is None or r["table_name"] != current[0]:
            table.add_row(f"[bold]{r['table_name']}[/bold]")
        if current is None or (r["table_name"], r["run_id"]) != current:
            table.add_row(f"  {r['run_id']}", f"[italic]{r['run_status'] or 'unknown'}[/italic]")
        current = (r["table_name"], r["run_id"])
        table.add_row(
            "", str(r["path"]).rsplit("/", 1)[-1], str(r["sha256"])[:10], short_url(r["url"]),
            _when(r["fetched_at"]),
        )  # fmt: skip
    return table


@app.command(rich_help_panel=EXPLORE)
def lineage(
    table: Annotated[
        str, typer.Argument(help="curated.<dataset> or marts.<mart> (or the bare dataset or mart name).")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Every file as JSON, with full URLs, paths and checksums.")
    ] = False,
    data_dir: DataDirOption = None,
    restricted: RestrictedOption = False,
) -> None:
    """Where a table's current release came from: for a mart, the curated tables it reads; for each,
    the runs whose rows it holds and their files (agency URL without secrets, sha256)."""
    from pipelines.marts.lineage import source_tables, table_lineage
    from pipelines.store.layout import Layout
    from pipelines.store.tiers import is_published

    settings = cli_settings(data_dir)
    layout = Layout(settings.data_dir)
    if not is_published(layout, tier_name(restricted)):
        raise UsageError(f"lineage: nothing published yet in {settings.data_dir} (run `scdx refresh` first)")
    rows = table_lineage(layout, table, tier_name(restricted))
    if not rows:
        raise UsageError(f"lineage: {table} is not a table of the current {tier_name(restricted)} release")
    if as_json:
        say(json.dumps(rows, indent=2, default=_json_value))
        return
    sources = source_tables(table)
    built = f", built from {', '.join(sources)}" if sources != [rows[0]["table_name"]] else ""
    say(f"{table} as of release {rows[0]['version']}{built}")
    console.print(_lineage_table(rows))


@app.command(rich_help_panel=OPERATE)
def freshness(
    warn_only: Annotated[
        bool, typer.Option("--warn-only", help="Report late datasets but exit 0 all the same.")
    ] = False,
    as_of: Annotated[
        str | None, typer.Option(help="Measure on this day (YYYY-MM-DD) instead of today.")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Each dataset's data age against its contract's freshness SLA; exit code 1 when any is late."""
    from pipelines.orchestration.freshness import check_freshness
    from pipelines.store.layout import Layout

    try:
        day = date.fromisoformat(as_of) if as_of else date.today()
    except ValueError:
        raise UsageError(f"freshness: --as-of {as_of!r} is not a day (YYYY-MM-DD)") from None
    settings = cli_settings(data_dir)
    registry = cli_registry(settings)
    reports = [
        check_freshness(contract, Layout(settings.data_dir), day)
        for contract in sorted(registry.contracts.values(), key=lambda c: c.dataset)
    ]
    for report in reports:
        say(report.describe(), style="red" if report.late else None)
    late = [r.dataset for r in reports if r.late]
    if late:
        say(f"{len(late)} of {len(reports)} datasets late: {', '.join(late)}", err=True)
        if not warn_only:
            raise typer.Exit(1)


@app.command(rich_help_panel=OPERATE)
def runs(
    dataset: Annotated[str | None, typer.Argument(help="Only this dataset's runs.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only runs with this status (published, quarantined, failed ...).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs, newest first.")] = 20,
    data_dir: DataDirOption = None,
) -> None:
    """The run history (from the operational catalog): every run, whether it published or not."""
    from pipelines.store.layout import Layout
    from pipelines.store.tiers import catalog_of

    settings = cli_settings(data_dir)
    if dataset is not None:
        cli_registry(settings).get(dataset)  # an unknown dataset: ContractError, exit code 2
    for row in catalog_of(Layout(settings.data_dir)).runs(dataset, status)[:limit]:
        error = f"  {row['error']}" if row["error"] else ""
        release = f" release {row['publish_version']}" if row["publish_version"] else ""
        say(
            f"{row['run_id']}  {row['dataset']:<24} {row['status']:<11} "
            f"{row['rows_published'] or 0:>10,} rows{release}{error}"
        )


@app.command("replay-server", rich_help_panel=OPERATE)
def replay_server(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8765,
    recordings: Annotated[Path | None, typer.Option(help="Recordings directory.")] = None,
) -> None:
    """Serve the recorded agency responses on 127.0.0.1 with each agency's query semantics."""
    from pipelines.replay.server import ReplayServer

    setup_logging(False)
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
