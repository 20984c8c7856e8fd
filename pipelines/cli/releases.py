"""``scdx publish list | rollback | verify``: the releases of a tier."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

import typer

# A run that found no data in its window (months not yet released) is not a failure.
from pipelines.cli.app import (
    DataDirOption,
    RestrictedOption,
    app,
    cli_settings,
    console,
    err_console,
    tier_name,
)
from pipelines.common.errors import ScdxError

publish_app = typer.Typer(no_args_is_help=True, help="Releases: list, roll back, verify.")
app.add_typer(publish_app, name="publish")


@publish_app.command("list")
def publish_list(data_dir: DataDirOption = None, restricted: RestrictedOption = False) -> None:
    """One line per release, newest first: number, time, what changed, runs, whether still kept."""
    from pipelines.store.history import list_publishes
    from pipelines.store.layout import Layout

    settings = cli_settings(data_dir, live=False, replay_url=None)
    try:
        releases = list_publishes(Layout(settings.data_dir), tier_name(restricted))
    except ScdxError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if not releases:
        console.print(f"nothing published yet in the {tier_name(restricted)} tier", highlight=False)
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
    from pipelines.store.history import rollback
    from pipelines.store.layout import Layout

    settings = cli_settings(data_dir, live=False, replay_url=None)
    try:
        new, restored = rollback(
            Layout(settings.data_dir), version, tier_name(restricted), settings.keep_versions
        )
    except ScdxError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"release {new} is current; it restores the tables and marts of release {restored}")


@publish_app.command("verify")
def publish_verify(data_dir: DataDirOption = None, restricted: RestrictedOption = False) -> None:
    """Check every kept release's files against the checksums recorded when they were written."""
    from pipelines.store.layout import Layout
    from pipelines.store.tiers import open_store

    settings = cli_settings(data_dir, live=False, replay_url=None)
    store = open_store(Layout(settings.data_dir), tier_name(restricted), settings.keep_versions)
    damage = store.verify()
    kept = [r.number for r in store.releases() if r.kept]
    for item in damage:
        err_console.print(f"[red]release {item.release}: {item.path}: {item.problem}[/red]", highlight=False)
    if damage:
        good = sorted(set(kept) - {d.release for d in damage})
        hint = f"`scdx publish rollback {good[-1]}`" if good else "no undamaged release is kept"
        err_console.print(f"{len(damage)} damaged file(s); restore an undamaged release with {hint}")
        raise typer.Exit(1)
    console.print(
        f"{len(kept)} kept release(s) of the {tier_name(restricted)} tier verified", highlight=False
    )
