"""A table of an Iceberg release as the operational catalog records it: which Iceberg table, which
snapshot of it, and the data files of that snapshot with their sizes and ETags (so a reader pins
a release with one catalog query, and damage is found without reading table data)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.store import TableInfo, TableSchema
from pipelines.store.catalog import loads


@dataclass(frozen=True)
class DataFile:
    """A data file of a snapshot: its URI, size and the object store's ETag when it was written."""

    path: str
    bytes: int
    etag: str


@dataclass(frozen=True)
class IcebergTable:
    """A table of a release: an Iceberg table pinned at one snapshot."""

    name: str  # schema-qualified: curated.census_trade_imports
    kind: str
    schema: TableSchema
    identifier: str  # the Iceberg table: namespace.table
    snapshot_id: int | None  # None: the table is empty
    rows: int
    files: tuple[DataFile, ...] = ()
    partition_by: tuple[str, ...] = ()
    # partition key (JSON, or "*") -> "rows:sum of row hashes": unchanged rows make no change
    digests: Mapping[str, str] = field(default_factory=dict)
    runs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source_sha256: str | None = None

    def info(self) -> TableInfo:
        return TableInfo(self.name, self.kind, self.rows, self.schema, self.runs, self.source_sha256)

    def state(self) -> dict[str, Any]:
        """What the catalog's ``state`` column holds for this table."""
        return {
            "identifier": self.identifier,
            "snapshot_id": self.snapshot_id,
            "files": [[f.path, f.bytes, f.etag] for f in self.files],
            "partition_by": list(self.partition_by),
            "digests": dict(self.digests),
            "source_sha256": self.source_sha256,
        }

    def row(self) -> dict[str, Any]:
        """The table as a ``scdx_release_tables`` row (without tier and number)."""
        from pipelines.store.catalog import dumps

        return {
            "table_name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "state": dumps(self.state()),
            "schema": dumps(self.schema.to_json()),
            "runs": dumps({run: list(keys) for run, keys in self.runs.items()}),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> IcebergTable:
        state = loads(row["state"], {})
        return cls(
            name=row["table_name"],
            kind=row["kind"],
            schema=TableSchema.from_json(loads(row["schema"], {})),
            identifier=state["identifier"],
            snapshot_id=state["snapshot_id"],
            rows=int(row["rows"]),
            files=tuple(DataFile(p, int(b), str(e)) for p, b, e in state["files"]),
            partition_by=tuple(state.get("partition_by", [])),
            digests=state.get("digests", {}),
            runs={run: tuple(keys) for run, keys in loads(row["runs"], {}).items()},
            source_sha256=state.get("source_sha256"),
        )


def runs_after(
    existing: Mapping[str, Sequence[str]],
    replaced: set[str] | None,
    run_id: str | None,
    keys: Sequence[str],
    also_from: Mapping[str, Sequence[str]] | None,
) -> dict[str, tuple[str, ...]]:
    """Which runs' rows a table holds after ``run_id`` replaced ``replaced`` partitions (None: all)
    with rows of ``keys``; ``also_from``: earlier runs whose rows the new files carry on."""
    runs: dict[str, tuple[str, ...]] = {}
    if replaced is not None:
        for run, held in existing.items():
            left = tuple(k for k in held if k not in replaced and k != "*")
            if left:
                runs[run] = left
    mine = set(keys)
    for run, carried in (also_from or {}).items():
        kept = [k for k in carried if k in mine or k == "*"]
        if kept:
            runs[run] = tuple(sorted(mine) if "*" in kept else sorted(kept))
    if run_id:
        runs[run_id] = tuple(sorted(mine))
    return runs
