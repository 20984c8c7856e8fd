"""``scdx datasets``, ``docs``, ``report``, ``contracts check``, ``airflow-pools``: what the contracts say."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli.app import (
    EXPLORE,
    OPERATE,
    DataDirOption,
    app,
    cli_registry,
    cli_settings,
    console,
    say,
)
from pipelines.common.errors import UsageError
from pipelines.common.settings import load_settings
from pipelines.contracts import Contract, contract_paths

_EVERY = {"*"}


def cadence(schedule: str) -> str:
    """A contract's cron schedule in words ("daily 06:30 UTC"); other forms as written."""
    fields = schedule.split()
    if len(fields) != 5 or not (fields[0].isdigit() and fields[1].isdigit()):
        return schedule.removeprefix("@")
    minute, hour, day, month, weekday = fields
    at = f"{int(hour):02d}:{int(minute):02d} UTC"
    if {day, month, weekday} == _EVERY:
        return f"daily {at}"
    if day.isdigit() and {month, weekday} == _EVERY:
        return f"monthly, day {int(day)}, {at}"
    return schedule


def _row(c: Contract) -> dict[str, object]:
    return {
        "dataset": c.dataset,
        "version": c.version,
        "title": c.title,
        "agency": c.provider.agency,
        "steward": c.provider.steward,
        "classification": c.classification,
        "allowed_use": c.allowed_use,
        "license": c.license,
        "schedule": c.schedule,
        "cadence": cadence(c.schedule),
        "freshness_days": c.freshness.max_age_days if c.freshness else None,
        "retention_raw": c.retention.raw,
        "retention_curated": c.retention.curated,
    }


def _print_contract(contract: Contract, schemas_dir: Path, as_json: bool) -> None:
    if as_json:
        say(json.dumps(contract.model_dump(mode="json"), indent=2))
        return
    sys.stdout.write((schemas_dir / f"{contract.dataset}.yaml").read_text(encoding="utf-8"))


@app.command(rich_help_panel=EXPLORE)
def datasets(
    name: Annotated[str | None, typer.Argument(help="One dataset: print its whole contract.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, with every data-sharing field.")] = False,
) -> None:
    """The datasets, one line each: name, title, agency, classification, cadence, freshness SLA.

    With a NAME, that dataset's whole contract (the YAML file, or the loaded contract with --json)."""
    settings = load_settings()
    registry = cli_registry(settings)
    if name is not None:
        _print_contract(registry.get(name), settings.schemas_dir, as_json)
        return
    rows = [_row(c) for c in sorted(registry.contracts.values(), key=lambda c: c.dataset)]
    if as_json:
        say(json.dumps(rows, indent=2))
        return
    table = Table(box=None, header_style="bold", pad_edge=False, expand=True)
    widest = max(len(str(r["dataset"])) for r in rows)
    # One line per dataset: its name in full; the title takes what the terminal leaves, shortened.
    table.add_column("dataset", no_wrap=True, min_width=widest)
    table.add_column("title", no_wrap=True, overflow="ellipsis", ratio=1, min_width=12)
    table.add_column("agency", no_wrap=True, overflow="ellipsis", max_width=20)
    for column in ("classification", "cadence", "freshness"):
        table.add_column(column, no_wrap=True)
    for r in rows:
        freshness = f"{r['freshness_days']} days" if r["freshness_days"] else "no SLA"
        table.add_row(
            str(r["dataset"]), str(r["title"]), str(r["agency"]), str(r["classification"]),
            str(r["cadence"]), freshness,
        )  # fmt: skip
    console.print(table)


@app.command(rich_help_panel=EXPLORE)
def docs(
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default $SCDX_DATA_DIR/catalog).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write the catalog (static HTML): lineage, a page per dataset, mart and code list, meta.*."""
    from pipelines.dictionary import write_catalog
    from pipelines.store.layout import Layout

    settings = cli_settings(data_dir, writes=out is None)
    target = out or settings.data_dir / "catalog"
    if out is not None and not (out.is_dir() or out.parent.is_dir()):
        raise UsageError(f"docs: --out {out}: no directory {out.parent}")
    index = write_catalog(cli_registry(settings), Layout(settings.data_dir), target, settings.recordings_dir)
    say(f"data dictionary written: {index}")


@app.command(rich_help_panel=EXPLORE)
def report(
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default $SCDX_DATA_DIR/report).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write the risk report of the current release: one self-contained HTML page of charts that
    opens offline, each with its method, data table and the release and runs it came from."""
    from pipelines.report import write_report

    settings = cli_settings(data_dir, writes=out is None)
    if out is not None and not (out.is_dir() or out.parent.is_dir()):
        raise UsageError(f"report: --out {out}: no directory {out.parent}")
    say(f"risk report written: {write_report(settings, out or settings.data_dir / 'report')}")


contracts_app = typer.Typer(no_args_is_help=True, help="Contract lint and compatibility.")
app.add_typer(contracts_app, name="contracts", rich_help_panel=OPERATE)


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
    if not schemas_dir.is_dir():
        raise UsageError(f"contracts check: no schemas directory {schemas_dir}")
    problems = check(schemas_dir, against)  # a contract at the ref that does not load: exit code 2
    for problem in problems:
        say(f"✗ {problem}", err=True, style="red")
    if problems:
        raise typer.Exit(1)
    count = len(contract_paths(schemas_dir))
    say(f"✓ {count} contract(s) in {schemas_dir} pass" + (f", compatible with {against}" if against else ""))


@app.command("airflow-pools", rich_help_panel=OPERATE)
def airflow_pools_command(
    out: Annotated[Path | None, typer.Option(help="Write the JSON here (default: print it).")] = None,
) -> None:
    """The Airflow pools the DAGs use, for `airflow pools import FILE`."""
    from pipelines.orchestration.tasks import airflow_pools

    text = json.dumps(airflow_pools(cli_registry(load_settings())), indent=2)
    if out is None:
        say(text)
        return
    if not out.parent.is_dir():
        raise UsageError(f"airflow-pools: --out {out}: no directory {out.parent}")
    out.write_text(text + "\n")
    say(f"pools written to {out}; load them with: airflow pools import {out}")
