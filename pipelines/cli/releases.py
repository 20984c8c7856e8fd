"""``scdx publish list | rollback | verify | materialize``: the releases of a tier."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

import typer

from pipelines.cli.app import OPERATE, DataDirOption, RestrictedOption, app, cli_settings, say, tier_name
from pipelines.common.errors import ScdxError, UsageError
from pipelines.common.settings import Settings

publish_app = typer.Typer(
    no_args_is_help=True, help="Releases: list, roll back, verify, materialize for analysts."
)
app.add_typer(publish_app, name="publish", rich_help_panel=OPERATE)


@publish_app.command("list")
def publish_list(data_dir: DataDirOption = None, restricted: RestrictedOption = False) -> None:
    """One line per release, newest first: number, time, what changed, runs, whether still kept."""
    from pipelines.store.history import list_publishes
    from pipelines.store.layout import Layout

    settings = cli_settings(data_dir)
    try:
        releases = list_publishes(Layout(settings.data_dir), tier_name(restricted))
    except ScdxError as exc:
        raise UsageError(str(exc)) from None
    if not releases:
        say(f"nothing published yet in the {tier_name(restricted)} tier")
        return
    current = releases[0].number
    for r in releases:
        kind = r.kind + (f" of {r.restored}" if r.restored else "")
        changed = ", ".join(t for t in r.changed if not t.startswith("curated.ref_")) or "-"
        runs = ", ".join(r.run_ids) or "-"
        state = "current" if r.number == current else ("kept" if r.kept else "not kept")
        say(
            f"{r.number:>5}  {r.created_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}  {kind:<13} {state:<8}  "
            f"changed: {changed}  runs: {runs}"
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
    from pipelines.store.history import rollback
    from pipelines.store.layout import Layout

    settings = cli_settings(data_dir, writes=True)
    new, restored = rollback(
        Layout(settings.data_dir), version, tier_name(restricted), settings.keep_versions
    )
    say(f"release {new} is current; it restores the tables and marts of release {restored}")


@publish_app.command("verify")
def publish_verify(data_dir: DataDirOption = None, restricted: RestrictedOption = False) -> None:
    """Check every kept release's files against the checksums recorded when they were written."""
    from pipelines.store.layout import Layout
    from pipelines.store.tiers import open_store

    settings = cli_settings(data_dir)
    store = open_store(Layout(settings.data_dir), tier_name(restricted), settings.keep_versions)
    damage = store.verify()
    kept = [r.number for r in store.releases() if r.kept]
    for item in damage:
        fix = f"; {item.fix}" if item.fix else ""
        say(f"release {item.release}: {item.path}: {item.problem}{fix}", err=True, style="red")
    if any(not d.fix for d in damage):
        good = sorted(set(kept) - {d.release for d in damage if not d.fix})
        hint = f"`scdx publish rollback {good[-1]}`" if good else "no undamaged release is kept"
        say(f"{len(damage)} damaged file(s); restore an undamaged release with {hint}", err=True)
    if damage:
        raise typer.Exit(1)
    say(f"{len(kept)} kept release(s) of the {tier_name(restricted)} tier verified")


@publish_app.command("materialize")
def publish_materialize(data_dir: DataDirOption = None, restricted: RestrictedOption = False) -> None:
    """Write the current release once more with its rows as DuckDB tables, and point the path
    analysts open at it: their queries then run at DuckDB's own speed, not Parquet's. Costs the
    size of the database, so run it once after a night's publishes (the demo and the marts DAG
    do); the next publish goes back to views over Parquet until it runs again."""
    settings = cli_settings(data_dir, writes=True)
    try:
        materialize_and_say(settings, tier_name(restricted))
    except ScdxError as exc:
        raise UsageError(str(exc)) from None


def materialize_and_say(settings: Settings, tier: str = "public") -> None:
    """Materialize the tier's current release and say what was done (also the demo's last step)."""
    from pipelines.store.layout import Layout
    from pipelines.store.tiers import materialize_current

    done = materialize_current(Layout(settings.data_dir), tier, settings.keep_versions)
    if done is None:
        say(f"nothing to materialize in the {tier} tier (nothing published, or not a local store)")
    elif not done.made:
        say(f"release {done.release} of the {tier} tier is materialized already ({done.path})")
    else:
        say(
            f"release {done.release} of the {tier} tier materialized as DuckDB tables in "
            f"{done.seconds:.1f} s ({done.path.stat().st_size / 2**20:.1f} MiB)"
        )
