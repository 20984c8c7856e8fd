"""``scdx partner list | add | rotate-key | submit | ingest | extract``: partners, their signed
submissions and their extracts."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.app import OPERATE, DataDirOption, app, cli_registry, cli_settings, say
from pipelines.common.errors import UsageError
from pipelines.contracts import (
    Partner,
    PartnerRegistry,
    SecretRef,
    default_env,
    load_partners,
    save_partners,
)

partner_app = typer.Typer(no_args_is_help=True, help="Data-sharing partners and their signed submissions.")
app.add_typer(partner_app, name="partner", rich_help_panel=OPERATE)

ROLES = ("shipper", "port_terminal", "carrier", "warehouse")


def _partners(data_dir: Path | None) -> tuple[Path, PartnerRegistry]:
    settings = cli_settings(data_dir)
    registry = cli_registry(settings)
    return settings.schemas_dir, load_partners(settings.schemas_dir, set(registry.contracts))


@partner_app.command("list")
def partner_list(data_dir: DataDirOption = None) -> None:
    """One line per partner: id, role, the datasets it may submit, where its key is read from."""
    _, partners = _partners(data_dir)
    if not partners.partners:
        say("no partners registered")
    for p in partners.partners:
        say(f"{p.id}  {p.role}  {','.join(p.datasets)}  key: ${p.secret.env}  ({p.organisation})")


@partner_app.command("add")
def partner_add(
    partner_id: Annotated[str, typer.Argument(help="Partner id (lowercase letters, digits, underscores).")],
    organisation: Annotated[str, typer.Option(help="The partner's organisation.")],
    role: Annotated[str, typer.Option(help="shipper, port_terminal, carrier or warehouse.")],
    dataset: Annotated[list[str], typer.Option(help="A dataset it may submit (repeat for more).")],
    env: Annotated[str | None, typer.Option(help="Variable its key is read from.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Register a partner in schemas/partners.yaml (no key: `scdx partner rotate-key` makes one)."""
    schemas_dir, partners = _partners(data_dir)
    known = set(cli_registry(cli_settings(data_dir)).contracts)
    if role not in ROLES:
        raise UsageError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if partners.find(partner_id) is not None:
        raise UsageError(f"partner {partner_id!r} is already registered")
    unknown = sorted(set(dataset) - known)
    if unknown:
        raise UsageError(f"unknown datasets: {', '.join(unknown)}")
    try:
        partner = Partner.model_validate(
            {
                "id": partner_id,
                "organisation": organisation,
                "role": role,
                "datasets": dataset,
                "secret": SecretRef(
                    env=env or default_env(partner_id), airflow_conn_id=f"scdx_partner_{partner_id}"
                ),
            }
        )
    except ValueError as exc:
        raise UsageError(f"partner {partner_id!r}: {exc}") from None
    path = save_partners(
        schemas_dir, PartnerRegistry(version=partners.version, partners=[*partners.partners, partner])
    )
    say(f"partner {partner_id} added to {path}; make its key with `scdx partner rotate-key {partner_id}`")


@partner_app.command("rotate-key")
def partner_rotate_key(
    partner_id: Annotated[str, typer.Argument(help="The partner whose key to replace.")],
    data_dir: DataDirOption = None,
) -> None:
    """Print a new signing key once: store it in the partner's variable (or Airflow connection) and
    hand it to the partner. The exchange writes it nowhere."""
    _, partners = _partners(data_dir)
    partner = partners.get(partner_id)
    key = secrets.token_urlsafe(32)
    say(f"new key for {partner.id}, shown once; set it as ${partner.secret.env}", err=True)
    typer.echo(key)


@partner_app.command("submit")
def partner_submit(
    partner_id: Annotated[str, typer.Argument(help="The submitting partner.")],
    dataset: Annotated[str, typer.Argument(help="The dataset the file is for.")],
    file: Annotated[Path, typer.Argument(help="The CSV or Parquet file (told from its bytes).")],
    data_dir: DataDirOption = None,
) -> None:
    """Sign FILE with the partner's key (from its variable) and put it in the data dir's inbox."""
    from pipelines.orchestration.inbox import inbox_dir, submit

    settings = cli_settings(data_dir, writes=True)
    partners = load_partners(settings.schemas_dir)
    if not file.is_file():
        raise UsageError(f"no file {file}")
    envelope = submit(inbox_dir(settings), partner_id, dataset, file, partners.get(partner_id).key())
    say(f"submitted {file.name} as {envelope.name.removesuffix('.envelope.json')}")


@partner_app.command("ingest")
def partner_ingest(data_dir: DataDirOption = None) -> None:
    """Verify every submission in the inbox; ingest the valid ones, set the others aside with why."""
    from pipelines.orchestration.inbox import ingest_inbox

    settings = cli_settings(data_dir, writes=True)
    registry = cli_registry(settings)
    outcomes = ingest_inbox(settings, registry, load_partners(settings.schemas_dir, set(registry.contracts)))
    for o in outcomes:
        say(f"{o.submission_id}  {o.partner_id or '-'}  {o.dataset or '-'}  {o.status}  {o.reason}".rstrip())
    if any(o.status not in ("published", "unchanged", "no_data") for o in outcomes):
        raise typer.Exit(1)


@partner_app.command("extract")
def partner_extract(
    partner_id: Annotated[str | None, typer.Argument(help="The partner whose extract to write.")] = None,
    all_partners: Annotated[
        bool, typer.Option("--all", help="Write every registered partner's extract.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Write a partner's own DuckDB file: its rows of the restricted tier and the public FLOW
    aggregates (``partners/<id>/scdx_<id>.duckdb``, owner-only)."""
    from pipelines.orchestration.extracts import write_partner_extract, write_partner_extracts

    if (partner_id is None) == (not all_partners):
        raise UsageError("name one partner, or --all")
    settings = cli_settings(data_dir, writes=True)
    partners = load_partners(settings.schemas_dir)
    if all_partners:
        paths = write_partner_extracts(settings, partners)
    else:
        paths = [write_partner_extract(settings, str(partner_id), partners)]
    for path in paths:
        say(f"wrote {path}")


@partner_app.command("publish-aggregates")
def partner_publish_aggregates(data_dir: DataDirOption = None) -> None:
    """Publish the disclosure-controlled public aggregates of the restricted partner tables (a new
    public release only when they changed); print the cells published and suppressed by reason."""
    from pipelines.stages.publish_aggregates import publish_flow_aggregates
    from pipelines.store.layout import Layout

    settings = cli_settings(data_dir, writes=True)
    published = publish_flow_aggregates(
        Layout(settings.data_dir), cli_registry(settings), settings.keep_versions
    )
    if not published.cells:
        say("no partner data in the restricted tier: nothing to aggregate")
        return
    say(f"public release {published.release}" if published.release else "aggregates unchanged: no release")
    for table, counts in published.cells.items():
        say(f"{table}: " + ", ".join(f"{reason} {count:,}" for reason, count in counts.items()))
