"""The Iceberg release store: curated tables and marts as Apache Iceberg tables in a pyiceberg SQL
catalog on PostgreSQL, their data on an object store, for deployments beyond one machine.

A release is a set of table snapshots, committed to Iceberg first and then recorded as one row in
the operational catalog (``scdx_releases``, with each table's Iceberg identifier, snapshot id and
that snapshot's data files in ``scdx_release_tables``): the release row is the commit point. A
reader pins a release by its number (one catalog query gives the snapshots and their files) and
scans only those files, so it never sees half of a release, whatever a publisher does meanwhile.

The steps of a publish, each durable before the next: the new snapshots (invisible: no release
names them); the catalog transaction (release, tables, new files, runs); moving each table's main
branch to the release's snapshot, so Spark or Trino reading the tables through the same catalog
see the current release (the "swap"). A publisher killed before the commit leaves snapshots no
release names; the next publish builds on the release's snapshots, not on the branch, and its
retention step expires those snapshots and removes their files. One publisher at a time per tier:
a PostgreSQL advisory lock, released by the server when a killed publisher's session ends.

A rollback is a release row naming an older release's snapshots: no data is copied. Retention
expires every snapshot no kept release names and deletes the data and manifest files no remaining
snapshot references. Damage: each data file's size and ETag (the object store's checksum) is
recorded when written and compared before a release is built on another; ``verify`` re-reads
every file of the kept releases against the sha256 recorded when it was written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.common import faults
from pipelines.store import Change, Damage, DamagedRelease, Release, StoreError
from pipelines.store.catalog import Catalog, dumps, open_catalog
from pipelines.store.changes import describe_changes
from pipelines.store.iceberg_draft import IcebergDraft, IcebergSpace
from pipelines.store.iceberg_io import (
    DataFileReader,
    ObjectStore,
    arrow_filesystem,
    open_iceberg_catalog,
    publish_lock,
    register_files,
    try_publish_lock,
)
from pipelines.store.iceberg_retention import expire_unreferenced
from pipelines.store.iceberg_tables import IcebergTable
from pipelines.store.recorded import CatalogReleases
from pipelines.store.release_file import comment_views, create_meta, meta_rows

log = logging.getLogger("scdx.store")

DEFAULT_NAMESPACE = "scdx"


def warehouse_url() -> str:
    """Where Iceberg keeps table data: ``SCDX_WAREHOUSE_URL``, else ``$SCDX_DATA_URL/warehouse``."""
    explicit = os.environ.get("SCDX_WAREHOUSE_URL")
    if explicit:
        return explicit.rstrip("/")
    data_url = os.environ.get("SCDX_DATA_URL", "")
    if not data_url.startswith("s3://"):
        raise StoreError(
            "the Iceberg store needs an object store: set SCDX_DATA_URL=s3://bucket/prefix "
            "(or SCDX_WAREHOUSE_URL) and the AWS_* endpoint and credentials"
        )
    return f"{data_url.rstrip('/')}/warehouse"


class IcebergStore(CatalogReleases):
    """Releases of one tier as Iceberg snapshots pinned by catalog rows (see the module's docstring)."""

    def __init__(self, root: Path, tier: str, catalog: Catalog, warehouse: str, keep: int = 10) -> None:
        self.root = root
        self.tier = tier
        self.catalog = catalog
        self.keep = keep
        self.warehouse = warehouse
        self.space = IcebergSpace(
            catalog=open_iceberg_catalog(catalog.url, warehouse),
            objects=ObjectStore(),
            reader=DataFileReader(arrow_filesystem()),
            namespace=os.environ.get("SCDX_ICEBERG_NAMESPACE", DEFAULT_NAMESPACE),
            tier=tier,
            work_dir=root / "work",
        )

    @classmethod
    def from_environment(cls, root: Path, tier: str = "public", keep: int = 10) -> IcebergStore:
        """The store the settings name: SCDX_CATALOG_URL (PostgreSQL), SCDX_DATA_URL / SCDX_WAREHOUSE_URL."""
        url = os.environ.get("SCDX_CATALOG_URL", "")
        if not url.startswith("postgresql"):
            raise StoreError(
                "the Iceberg store needs SCDX_CATALOG_URL=postgresql://user@host/database "
                "(its tables and the release history live there)"
            )
        return cls(root, tier, open_catalog(root, url), warehouse_url(), keep)

    # --- reading --------------------------------------------------------------------------------

    def _tables_of(self, number: int) -> dict[str, IcebergTable]:
        return self.tables_of(number)

    def tables_of(self, number: int) -> dict[str, IcebergTable]:
        """The tables release ``number`` pins, as the catalog records them."""
        return {
            r["table_name"]: IcebergTable.from_row(r) for r in self.catalog.release_tables(self.tier, number)
        }

    def connect(self, number: int | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection (in memory) whose views read release ``number``'s snapshots, with
        the ``meta.*`` tables of that release (as the local store's release file holds them)."""
        con, row, tables = self._pinned(number)
        meta, _ = meta_rows(self.catalog, self.tier, {name: t.runs for name, t in tables.items()}, row)
        create_meta(con, meta)
        return con

    def connect_tables(self, number: int | None = None) -> duckdb.DuckDBPyConnection:
        """As :meth:`connect` without ``meta.*`` (about half the cost of an open): for readers
        that only read tables, such as the conformance suite's loop of 10,000 opens."""
        return self._pinned(number)[0]

    def _pinned(
        self, number: int | None
    ) -> tuple[duckdb.DuckDBPyConnection, Mapping[str, Any], dict[str, IcebergTable]]:
        row = (
            self.catalog.latest_release(self.tier)
            if number is None
            else self.catalog.release(self.tier, number)
        )
        if row is None or not row["kept"]:
            raise StoreError(
                f"nothing published yet in the {self.tier} tier"
                if number is None
                else f"release {number} of the {self.tier} tier is no longer kept"
            )
        tables = self.tables_of(int(row["number"]))
        con = duckdb.connect()
        for schema in ("curated", "marts", "meta"):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for table in tables.values():
            register_files(con, table.name, table.files, table.schema, self.space.reader)
        comment_views(con, {name: t.schema for name, t in tables.items()})
        return con, row, tables

    # --- publishing -----------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with publish_lock(self.catalog.engine, self.tier, self.space.namespace):
            yield

    def _check_files(self, number: int, tables: Mapping[str, IcebergTable]) -> None:
        """Refuse to build on a release whose data files are missing or changed (size, ETag): one
        listing per table directory, not a request per file."""
        for table in tables.values():
            # A table's data files sit under <table location>/data/ (in a directory per partition).
            directories = {
                f.path.split("/data/", 1)[0] + "/data/"
                if "/data/" in f.path
                else f.path.rsplit("/", 1)[0] + "/"
                for f in table.files
            }
            found = {
                uri: info for d in sorted(directories) for uri, info in self.space.objects.infos(d).items()
            }
            for recorded in table.files:
                info = found.get(recorded.path)
                problem = (
                    "is missing"
                    if info is None
                    else None
                    if (info.bytes, info.etag) == (recorded.bytes, recorded.etag)
                    else "changed after it was written (size or ETag differs)"
                )
                if problem:
                    raise DamagedRelease(
                        f"{self.tier} tier, release {number}: {recorded.path} {problem}; nothing published. "
                        "Check with `scdx publish verify`; restore with "
                        "`scdx publish rollback <an undamaged release>`"
                    )

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
            current = self.catalog.latest_release(self.tier)
            source = base if base is not None else (current["number"] if current else None)
            tables = self.tables_of(source) if source is not None else {}
            if source is not None:
                self._check_files(source, tables)
            previous = (
                tables
                if current is None or source == current["number"]
                else self.tables_of(current["number"])
            )
            before = {name: t.rows for name, t in previous.items()}
            draft = IcebergDraft(self.space, self.catalog.next_release_number(self.tier), dict(tables), stack)
            change(draft)
            if restored is not None and current is not None:
                draft.changed_since(self.tables_of(current["number"]))
            if not draft.changed and restored is None:
                return None  # only changes make releases (identical rows wrote no snapshot)
            faults.crash_point("publish:before_commit")
            release = self._commit(draft, kind, run_ids, [*runs, *draft.runs], current, restored)
        log.info(
            "%s", describe_changes(self.tier, release.number, release.changed, before, release.table_rows)
        )
        return release

    def _commit(
        self,
        draft: IcebergDraft,
        kind: str,
        run_ids: Sequence[str],
        runs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
        current: Mapping[str, Any] | None,
        restored: int | None,
    ) -> Release:
        """The catalog transaction recording the release (the commit point), then the swap of each
        table's main branch, then retention."""
        release_row: dict[str, Any] = {
            "tier": self.tier,
            "number": draft.number,
            "created_at": datetime.now(UTC),
            "kind": kind,
            "run_ids": dumps(list(run_ids)),
            "changed": dumps(draft.changed),
            "table_rows": dumps({name: t.rows for name, t in sorted(draft.stored_tables.items())}),
            "previous": current["number"] if current else None,
            "restored": restored,
            "file": None,
            "kept": True,
        }
        held = {name: t.runs for name, t in draft.stored_tables.items()}
        release_row["contract_versions"] = dumps(
            meta_rows(self.catalog, self.tier, held, release_row, runs)[1]
        )
        faults.crash_point("publish:before_catalog")
        self.catalog.commit_release(
            release_row,
            [t.row() for _, t in sorted(draft.stored_tables.items())],
            runs=runs,
            files=[{"tier": self.tier, **f} for f in draft.new_files],
        )
        faults.crash_point("publish:before_swap")
        self._swap(draft.stored_tables.values())
        faults.crash_point("publish:after_swap")
        self._prune(self.keep)
        return self._release(self.catalog.release(self.tier, draft.number) or release_row)

    def heal(self) -> None:
        """Move each table's main branch to the latest release, unless a publish holds the tier (it
        moves them as it commits): a publisher killed between its commit and its swap leaves
        engines reading the branches (Spark, Trino) one release behind until this runs."""
        with try_publish_lock(self.catalog.engine, self.tier, self.space.namespace) as locked:
            current = self.catalog.latest_release(self.tier)
            if locked and current is not None:
                self._swap(self.tables_of(current["number"]).values())

    def _swap(self, tables: Iterable[IcebergTable]) -> None:
        """Each table's main branch at the release's snapshot (what engines reading the catalog see)."""
        from pyiceberg.exceptions import NoSuchTableError

        for table in tables:
            if table.snapshot_id is None:
                continue
            try:
                iceberg = self.space.catalog.load_table(table.identifier)
                if iceberg.metadata.current_snapshot_id != table.snapshot_id:
                    with iceberg.manage_snapshots() as snapshots:
                        snapshots.set_current_snapshot(table.snapshot_id)
            except (NoSuchTableError, OSError, ValueError) as exc:
                # Readers pin releases through the catalog and are unaffected; engines reading the
                # branch see the previous release until the next publish moves it.
                log.warning("%s: main branch of %s not moved: %s", table.name, table.identifier, exc)

    # --- rollback, verify, prune ----------------------------------------------------------------

    def _restore(self, number: int) -> Release | None:
        return self.publish(lambda draft: None, "rollback", base=number, restored=number)

    def verify(self) -> list[Damage]:
        """Every data file of every kept release re-read against the sha256 recorded when written."""
        damage: list[Damage] = []
        for row in self.catalog.releases(self.tier):
            if not row["kept"]:
                continue
            files = [f for t in self.tables_of(row["number"]).values() for f in t.files]
            recorded = self.catalog.files(self.tier, [f.path for f in files])
            for data_file in files:
                record = recorded.get(data_file.path)
                digest = self.space.objects.sha256(data_file.path)
                if record is None:
                    damage.append(Damage(row["number"], data_file.path, "not recorded in the catalog"))
                elif digest is None:
                    damage.append(Damage(row["number"], data_file.path, "missing"))
                elif digest != record["sha256"]:
                    damage.append(
                        Damage(
                            row["number"],
                            data_file.path,
                            "checksum differs from the one recorded when it was written",
                        )
                    )
        return damage

    def prune(self, keep: int) -> list[int]:
        """Keep the newest ``keep`` releases; expire every snapshot none of them pins and remove the
        files no remaining snapshot references (holding the tier's publish lock)."""
        with self._locked():
            return self._prune(keep)

    def _prune(self, keep: int) -> list[int]:
        releases = self.catalog.releases(self.tier)
        numbers = [r["number"] for r in releases]
        kept = set(numbers[-keep:]) if keep > 0 else set(numbers[-1:])
        dropped = [r["number"] for r in releases if r["kept"] and r["number"] not in kept]
        if dropped:
            self.catalog.set_kept(self.tier, sorted(kept))
        pinned: dict[str, set[int]] = {}
        for number in sorted(kept):
            for table in self.tables_of(number).values():
                snapshots = pinned.setdefault(table.identifier, set())
                if table.snapshot_id is not None:
                    snapshots.add(table.snapshot_id)
        removed = expire_unreferenced(self.space, pinned)
        self.catalog.mark_removed(self.tier, removed)
        return dropped
