"""Releases: what analysts read, published as whole, consistent snapshots, behind one interface.

A *release* is the set of tables of an access tier (curated tables, reference code lists, the
risk marts built from them) at one moment, numbered 1, 2, 3 ... . A change (a dataset's batch, a
marts rebuild, a rollback) is applied to a :class:`Draft` of the current release and becomes the
next release all at once, or not at all: readers see one release or the next, never a mixture,
whatever crashes or signals in between. The history of releases and runs lives in the
operational catalog (pipelines.store.catalog), not in the published data.

``ReleaseStore`` is the interface every storage implementation provides: the local one
(pipelines.store.local) keeps table data as immutable Parquet files and each release as a small
DuckDB file of views; the Iceberg one (pipelines.store.iceberg) keeps tables as Apache Iceberg
tables on an object store, each release a row pinning their snapshots (docs/scaling.md).
``pipelines.store.kinds`` picks one from ``SCDX_STORE_KIND``. The conformance suite (tests/test_store_conformance.py) is what any
implementation must pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipelines.common.errors import ScdxError

if TYPE_CHECKING:
    import duckdb

    from pipelines.store.catalog import Catalog


class StoreError(ScdxError):
    """A release could not be made or read; what is published stays as it was."""


class DamagedRelease(StoreError):
    """A file of a release differs from what the catalog recorded when it was written."""


@dataclass(frozen=True)
class Column:
    """A column of a published table: name, DuckDB type, comment."""

    name: str
    type: str
    comment: str = ""


@dataclass(frozen=True)
class TableSchema:
    """How a published table looks to analysts: its columns and its comment."""

    columns: tuple[Column, ...]
    comment: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"comment": self.comment, "columns": [[c.name, c.type, c.comment] for c in self.columns]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TableSchema:
        return cls(tuple(Column(*c) for c in data["columns"]), data.get("comment", ""))


@dataclass(frozen=True)
class TableInfo:
    """A table of a release (or draft) as the interface reports it."""

    name: str  # schema-qualified: curated.census_trade_imports, marts.import_concentration
    kind: str  # curated, reference, mart
    rows: int
    schema: TableSchema
    # Which runs' rows the table holds, and which partitions of it each holds ("*": all of it).
    runs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source_sha256: str | None = None  # what a reference or mart table was built from, to skip rebuilding it


@dataclass(frozen=True)
class Release:
    """One release of a tier, as the catalog records it."""

    tier: str
    number: int
    created_at: datetime
    kind: str  # data, marts, rollback, compaction
    run_ids: tuple[str, ...]
    changed: tuple[str, ...]
    table_rows: Mapping[str, int]
    previous: int | None
    restored: int | None
    kept: bool


@dataclass(frozen=True)
class Damage:
    """A file that differs from its record: which release, which file, what is wrong."""

    release: int
    path: str
    problem: str
    fix: str = ""  # what repairs it, when not a rollback (a materialized copy is written again)


class Draft(Protocol):
    """The next release, while a change is applied to it (inside ``ReleaseStore.publish``)."""

    tier: str
    number: int  # the number the release will have

    def tables(self) -> dict[str, TableInfo]:
        """Every table of the draft, by name."""
        ...

    def connection(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection where every draft table is a view under its name (kept current)."""
        ...

    def scratch(self) -> Path:
        """A directory for files the change writes before handing them to the draft."""
        ...

    def replace_partitions(
        self,
        name: str,
        files: Sequence[Path],
        schema: TableSchema,
        partition_by: Sequence[str],
        run_id: str | None,
        kind: str = "curated",
        also_from: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """The rows of ``files`` become the table's rows of every partition they hold; every other
        partition keeps its rows. The files are adopted as they are (never modified afterwards).
        ``also_from``: earlier runs (and their partitions) whose rows the files carry on (a merge)."""
        ...

    def replace_table(
        self,
        name: str,
        files: Sequence[Path],
        schema: TableSchema,
        run_id: str | None,
        kind: str = "curated",
        source_sha256: str | None = None,
        also_from: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """The rows of ``files`` become the whole table."""
        ...

    def drop_table(self, name: str) -> None: ...

    def record_run(self, values: Mapping[str, Any], details: Mapping[str, Any]) -> None:
        """Record a run (catalog values and details) in the transaction that commits the release."""
        ...


Change = Callable[[Draft], None]


class ReleaseStore(Protocol):
    """Releases of one access tier: publish a change, read a release, list, roll back, verify, prune."""

    tier: str
    catalog: Catalog  # the operational catalog the releases and runs are recorded in

    def publish(
        self,
        change: Change,
        kind: str,
        run_ids: Sequence[str] = (),
        runs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]] = (),
    ) -> Release | None:
        """Apply ``change`` to a draft of the current release and make it the next release, atomically.

        ``runs``: run records (values, details) recorded in the same catalog transaction. None when
        the change changed nothing (only changes make releases).
        """
        ...

    def current(self) -> Release | None: ...

    def releases(self) -> list[Release]: ...

    def tables(self, number: int | None = None) -> dict[str, TableInfo]:
        """The tables of a release (default: the current one)."""
        ...

    def connect(self, number: int | None = None) -> duckdb.DuckDBPyConnection:
        """A read-only connection to a release (default: the current one), as analysts get it."""
        ...

    def rollback(self, to: int | None = None) -> Release:
        """A new release whose tables are release ``to``'s (default: the one before the current)."""
        ...

    def verify(self) -> list[Damage]:
        """Every kept release's files checked against their recorded checksums."""
        ...

    def prune(self, keep: int) -> list[int]:
        """Keep the newest ``keep`` releases; returns the numbers no longer kept."""
        ...

    def heal(self) -> None:
        """Finish what a publisher killed after its commit left undone (what readers are pointed
        at), unless a publish holds the tier now."""
        ...


__all__ = [
    "Change",
    "Column",
    "Damage",
    "DamagedRelease",
    "Draft",
    "Release",
    "ReleaseStore",
    "StoreError",
    "TableInfo",
    "TableSchema",
]
