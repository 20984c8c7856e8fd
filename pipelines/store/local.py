"""The local release store: table data as immutable Parquet files, each release a small DuckDB file.

Under a data directory (the public tier shown; the restricted tier lives under ``restricted/``
with owner-only directories and files):

    tables/public/<table>/<release>-<id>.parquet   immutable table data (0444), never rewritten
    versions/public/scdx-vNNNNNN.duckdb             release N: views over its tables' files, the
                                                    reference lists and meta.* (0444)
    versions/public/scdx-vNNNNNN.tables.duckdb      the current release as DuckDB tables, once
                                                    materialized (pipelines.store.materialize)
    scdx.duckdb -> versions/public/scdx-vNNNNNN[.tables].duckdb   what analysts open, read-only
    catalog.sqlite                                  the operational catalog (or SCDX_CATALOG_URL)

A table is an ordered list of *segments*: a Parquet file and the partitions of it that later
segments replaced. Publishing a batch adds its files as a new segment (a complete batch's staged
files are adopted as they are, by hard link: no rewrite) and marks the partitions it replaces as
excluded in older segments; a rollback writes a release file over another release's segments. So
a publish costs the batch, not the database, and a rollback copies no table data. A table whose
segments pile up is compacted into one file within a release when it has more than
``COMPACT_AFTER`` segments (pipelines.store.draft).

A release becomes current in this order, each step durable before the next: its new data files
(unreferenced until the catalog says otherwise), its release file (written aside, flushed,
renamed), the catalog transaction (the commit point: release, tables, files and the runs that made
it), the symlink swap. A crash before the commit leaves files no release references (removed by
the next publish); a crash after it leaves a symlink one release behind, which the next publish or
rollback points forward (``reconcile``). Readers only ever open complete release files.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.common.faults import crash_point
from pipelines.store import (
    Change,
    Damage,
    Release,
    StoreError,
)
from pipelines.store.catalog import Catalog, dumps
from pipelines.store.changes import describe_changes
from pipelines.store.damage import check_release_files, checksum_problem, damaged_files
from pipelines.store.draft import LocalDraft, StoreDirs
from pipelines.store.layout import VersionStore, fsync_path
from pipelines.store.locks import LockTimeout, file_lock
from pipelines.store.materialize import (
    COPY_SUFFIX,
    REBUILD,
    Materialized,
    copy_path,
    copy_workspace,
    forget_copies,
    intact_copy,
    record_copy,
    recorded_copies,
    seal_copy,
    write_tables_copy,
)
from pipelines.store.recorded import CatalogReleases
from pipelines.store.release_file import write_release_file
from pipelines.store.segments import StoredTable, file_sha256, view_sql

log = logging.getLogger("scdx.store")

LOCK_TIMEOUT_S = 3600.0


class LocalStore(CatalogReleases):
    """Releases of one tier under a data directory (see the module's docstring)."""

    def __init__(self, root: Path, paths: VersionStore, catalog: Catalog, keep: int = 10) -> None:
        self.root = root
        self.paths = paths
        self.tier = paths.tier
        self.private = paths.private
        self.catalog = catalog
        self.keep = keep
        base = root / "restricted" if self.private else root
        self.tables_dir = base / "tables" / self.tier
        self.work_dir = root / "work"
        self.dirs = StoreDirs(root, self.tables_dir, self.work_dir, self.tier, self.private)

    # --- reading --------------------------------------------------------------------------------

    def _tables_of(self, number: int) -> dict[str, StoredTable]:
        return {
            r["table_name"]: StoredTable.from_row(r) for r in self.catalog.release_tables(self.tier, number)
        }

    def release_path(self, number: int) -> Path:
        return self.paths.version_path(number)

    def connect(self, number: int | None = None) -> duckdb.DuckDBPyConnection:
        path = self.paths.link if number is None else self.release_path(number)
        if not path.exists():
            raise StoreError(
                f"nothing published yet in the {self.tier} tier ({path})"
                if number is None
                else f"release {number} of the {self.tier} tier is no longer kept ({path})"
            )
        return duckdb.connect(str(path), read_only=True)

    # --- publishing -----------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        mode = 0o700 if self.private else 0o755
        for directory in (self.paths.link.parent, self.paths.versions_dir, self.tables_dir):
            directory.mkdir(parents=True, exist_ok=True)
            if self.private:
                os.chmod(directory, mode)
        try:
            with file_lock(self.paths.lock, LOCK_TIMEOUT_S, f"publishing to the {self.tier} tier"):
                yield
        except LockTimeout as exc:
            raise StoreError(
                f"another publish holds {self.paths.lock} for more than {LOCK_TIMEOUT_S:.0f} s"
            ) from exc

    def _check_files(self, number: int, tables: Mapping[str, StoredTable], release_file: bool = True) -> None:
        """Refuse to build on a release whose files changed since they were written (size, time)."""
        check_release_files(self.catalog, self.tier, self.root, number, tables, release_file)

    def heal(self) -> None:
        """``reconcile`` now, unless a publish holds the tier (it reconciles as it starts): a run
        that publishes nothing still leaves the path at the latest release after a killed publish."""
        if not self.paths.lock.parent.exists():
            return
        try:
            with file_lock(self.paths.lock, 0, f"healing the {self.tier} tier"):
                self.reconcile()
        except LockTimeout:
            return

    def reconcile(self) -> None:
        """Point the tier's path at the catalog's latest release, and remove what a crash left."""
        latest = self.catalog.latest_release(self.tier)
        for leftover in self.paths.versions_dir.glob("*.tmp*"):
            leftover.unlink(missing_ok=True)
        for leftover in self.paths.link.parent.glob(f".{self.paths.link.name}.*.link"):
            leftover.unlink(missing_ok=True)
        if latest is None or not latest["file"]:
            return
        # The release's materialized copy when it has an intact one, else its release file.
        copy = intact_copy(self.root, recorded_copies(self.catalog, self.tier).get(latest["number"]))
        target = copy or self.root / latest["file"]
        if target.exists() and (
            not self.paths.link.is_symlink() or Path(os.readlink(self.paths.link)).name != target.name
        ):
            log.warning(
                "%s tier: pointing %s at release %s (a publish or materialize stopped before its swap)",
                self.tier,
                self.paths.link,
                latest["number"],
            )
            self._swap(target)

    def _swap(self, target: Path) -> None:
        temporary = self.paths.link.parent / f".{self.paths.link.name}.{uuid.uuid4().hex}.link"
        os.symlink(os.path.relpath(target, self.paths.link.parent), temporary)
        os.replace(temporary, self.paths.link)
        fsync_path(self.paths.link.parent)

    def publish(
        self,
        change: Change,
        kind: str,
        run_ids: Sequence[str] = (),
        runs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]] = (),
        base: int | None = None,
        restored: int | None = None,
    ) -> Release | None:
        with self._locked(), ExitStack() as stack:
            self.reconcile()
            current = self.catalog.latest_release(self.tier)
            source = base if base is not None else (current["number"] if current else None)
            tables = self._tables_of(source) if source is not None else {}
            if source is not None:
                self._check_files(source, tables, release_file=base is None)
            number = self.catalog.next_release_number(self.tier)
            # The rows of the release this one follows, to say what it changed (the draft edits ``tables``).
            previous = (
                tables
                if current is None or source == current["number"]
                else self._tables_of(current["number"])
            )
            before = {name: t.rows for name, t in previous.items()}
            draft = LocalDraft(self.dirs, number, tables, stack)
            change(draft)
            if restored is not None and current is not None:
                draft.changed_since(self._tables_of(current["number"]))
            if not draft.changed and restored is None:
                draft.discard()
                return None
            crash_point("publish:before_commit")
            release = self._commit(draft, kind, run_ids, [*runs, *draft.runs], current, restored)
        log.info(
            "%s", describe_changes(self.tier, release.number, release.changed, before, release.table_rows)
        )
        return release

    def _commit(
        self,
        draft: LocalDraft,
        kind: str,
        run_ids: Sequence[str],
        runs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
        current: Mapping[str, Any] | None,
        restored: int | None,
    ) -> Release:
        """Make the draft the current release: its release file, the catalog transaction (the
        commit point), the swap; then prune what is no longer kept."""
        release_row: dict[str, Any] = {
            "tier": self.tier,
            "number": draft.number,
            "created_at": datetime.now(UTC),
            "kind": kind,
            "run_ids": dumps(list(run_ids)),
            "changed": dumps(draft.changed),
            "table_rows": dumps({name: t.rows for name, t in sorted(draft.stored_tables.items())}),
            "contract_versions": dumps({}),
            "previous": current["number"] if current else None,
            "restored": restored,
            "kept": True,
        }
        final = self._write_release_file(draft, release_row, runs)
        release_row.update(
            file=str(final.relative_to(self.root)), sha256=file_sha256(final), bytes=final.stat().st_size
        )
        try:
            crash_point("publish:before_catalog")
            self.catalog.commit_release(
                release_row,
                [self._table_row(name, t) for name, t in sorted(draft.stored_tables.items())],
                runs=runs,
                files=[{"tier": self.tier, **f} for f in draft.new_files],
            )
        except BaseException:
            final.unlink(missing_ok=True)
            draft.discard()
            raise
        crash_point("publish:before_swap")
        self._swap(final)
        crash_point("publish:after_swap")
        self.prune(self.keep)
        return self._release(self.catalog.release(self.tier, draft.number) or release_row)

    @staticmethod
    def _table_row(name: str, table: StoredTable) -> dict[str, Any]:
        return {
            "table_name": name,
            "kind": table.kind,
            "rows": table.rows,
            "state": dumps(table.state()),
            "schema": dumps(table.schema.to_json()),
            "runs": dumps(table.runs()),
        }

    def _write_release_file(
        self,
        draft: LocalDraft,
        release_row: dict[str, Any],
        runs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
    ) -> Path:
        """The release's DuckDB file, written aside, read-only, flushed and renamed into place
        (``release_row`` gains the contract versions it holds); on failure the draft's files go."""
        final = self.release_path(draft.number)
        temporary = final.with_name(final.name + f".tmp{uuid.uuid4().hex[:8]}")
        views = {name: (t, view_sql(t, self.root)) for name, t in draft.stored_tables.items()}
        try:
            release_row["contract_versions"] = dumps(
                write_release_file(temporary, self.catalog, self.tier, views, release_row, runs)
            )
            os.chmod(temporary, 0o400 if self.private else 0o444)
            fsync_path(temporary)
            os.rename(temporary, final)
            fsync_path(final.parent)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            draft.discard()
            raise StoreError(
                f"{self.tier} tier: cannot write release {draft.number} ({final}): {exc.strerror or exc}"
            ) from None
        except BaseException:
            temporary.unlink(missing_ok=True)
            draft.discard()
            raise
        return final

    # --- rollback, verify, prune ----------------------------------------------------------------

    def _restore(self, number: int) -> Release | None:
        return self.publish(lambda draft: None, "rollback", base=number, restored=number)

    def verify(self) -> list[Damage]:
        """Every kept release's file and table files checked against their recorded checksums."""
        kept = [r["number"] for r in self.catalog.releases(self.tier) if r["kept"]]
        damage = damaged_files(self.catalog, self.tier, self.root, {n: self._tables_of(n) for n in kept})
        for number, record in sorted(recorded_copies(self.catalog, self.tier).items()):
            if problem := checksum_problem(self.root / record["file"], record["sha256"]):
                damage.append(Damage(number, record["file"], problem, fix=REBUILD))
        return damage

    def prune(self, keep: int) -> list[int]:
        releases = self.catalog.releases(self.tier)
        numbers = [r["number"] for r in releases]
        kept = set(numbers[-keep:]) if keep > 0 else set(numbers[-1:])
        dropped = [r["number"] for r in releases if r["kept"] and r["number"] not in kept]
        if dropped:
            self.catalog.set_kept(self.tier, sorted(kept))
        referenced = {s.file for n in kept for t in self._tables_of(n).values() for s in t.segments}
        for row in releases:
            if row["number"] not in kept and row["file"]:
                (self.root / row["file"]).unlink(missing_ok=True)
        self._prune_copies(numbers[-1] if numbers else None)
        recorded = self.catalog.files(self.tier)
        unreferenced = [path for path in recorded if path not in referenced]
        for path in unreferenced:
            (self.root / path).unlink(missing_ok=True)
        self.catalog.mark_removed(self.tier, unreferenced)
        # Files no release ever recorded: a publish that crashed before its catalog commit.
        if self.tables_dir.exists():
            known = set(recorded)
            for orphan in self.tables_dir.rglob("*.parquet"):
                if str(orphan.relative_to(self.root)) not in known:
                    orphan.unlink(missing_ok=True)
        return dropped

    def _prune_copies(self, latest: int | None) -> None:
        """Remove the materialized copies of every release but the latest, recorded or not (a
        materialize killed between moving its copy into place and recording it)."""
        copies = recorded_copies(self.catalog, self.tier)
        stale = [number for number in copies if number != latest]
        for number in stale:
            (self.root / copies[number]["file"]).unlink(missing_ok=True)
        forget_copies(self.catalog, self.tier, stale)
        wanted = {self.root / copies[latest]["file"]} if latest in copies else set()
        for path in self.paths.versions_dir.glob(f"*{COPY_SUFFIX}"):
            if path not in wanted:
                path.unlink(missing_ok=True)

    # --- the materialized copy (pipelines.store.materialize) ------------------------------------

    def materialize(self, number: int | None = None) -> Materialized | None:
        """Write release ``number`` (default: the current one) once more as DuckDB tables and point
        the tier's path at the copy, if that release is still current once it is written. None
        when nothing is published, or when a newer release became current meanwhile."""
        release = (
            self.catalog.latest_release(self.tier)
            if number is None
            else self.catalog.release(self.tier, number)
        )
        if release is None or not release["file"]:
            return None
        number = int(release["number"])
        final = copy_path(self.paths, number)
        started = time.monotonic()
        with copy_workspace(self.paths, self.private) as temporary:
            record = recorded_copies(self.catalog, self.tier).get(number)
            if (
                record
                and intact_copy(self.root, record) == final
                and not checksum_problem(final, record["sha256"])
            ):
                self.heal()  # a materialize killed before its swap left the path at the release file
                return Materialized(self.tier, number, final, 0.0, made=False)
            # Never copy damage forward: the same check a publish makes before building on a release.
            self._check_files(number, self._tables_of(number))
            write_tables_copy(self.root / release["file"], temporary)
            seal_copy(temporary, self.private)
            crash_point("materialize:before_move")
            with self._locked():
                latest = self.catalog.latest_release(self.tier)
                if latest is None or latest["number"] != number:
                    log.info(
                        "%s tier: release %s is no longer current; its copy is dropped", self.tier, number
                    )
                    return None
                os.replace(temporary, final)
                fsync_path(final.parent)
                crash_point("materialize:before_record")
                record_copy(self.catalog, self.tier, number, self.root, final)
                crash_point("materialize:before_swap")
                self._swap(final)
        log.info("%s tier: release %s materialized as DuckDB tables (%s)", self.tier, number, final)
        return Materialized(self.tier, number, final, time.monotonic() - started, made=True)
