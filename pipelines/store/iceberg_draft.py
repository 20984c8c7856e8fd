"""The next release of an Iceberg store while a change is applied to it.

Each replaced table is written as a new snapshot of its Iceberg table (a whole-table overwrite,
or a dynamic overwrite of the partitions the batch holds: whole files of other partitions are
kept by reference), based on the snapshot the release pins, never on whatever the table's main
branch holds (a killed publisher may have left it ahead). Nothing is visible to readers until the
release row is committed (pipelines.store.iceberg). Rows identical to the published ones make no
snapshot.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.common.sql import literal_list, quote_name
from pipelines.store import StoreError, TableSchema
from pipelines.store.draft_base import DraftTables
from pipelines.store.iceberg_io import DataFileReader, ObjectStore, register_files
from pipelines.store.iceberg_tables import DataFile, IcebergTable, runs_after
from pipelines.store.segments import drop_relation

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Table

log = logging.getLogger("scdx.store")

# Old metadata files go as new ones are written; snapshots (and so releases) are unaffected.
TABLE_PROPERTIES = {
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "10",
}


@dataclass(frozen=True)
class IcebergSpace:
    """Where an Iceberg store of one tier keeps its tables, and how it reaches them."""

    catalog: SqlCatalog
    objects: ObjectStore
    reader: DataFileReader  # DuckDB scans data files through it
    namespace: str  # prefix of the Iceberg namespaces: <namespace>_<tier>_<schema>
    tier: str
    work_dir: Path

    def identifier(self, name: str) -> str:
        schema, table = name.split(".", 1)
        return f"{self.namespace}_{self.tier}_{schema}.{table}"


def snapshot_files(table: Table, snapshot_id: int) -> list[tuple[str, int, int]]:
    """(URI, bytes, rows) of every data file of a snapshot, from its manifests."""
    return [
        (task.file.file_path, int(task.file.file_size_in_bytes), int(task.file.record_count))
        for task in table.scan(snapshot_id=snapshot_id).plan_files()
    ]


class IcebergDraft(DraftTables[IcebergTable]):
    """The next release of an Iceberg store while a change is applied to it."""

    def __init__(
        self, space: IcebergSpace, number: int, tables: dict[str, IcebergTable], stack: ExitStack
    ) -> None:
        super().__init__(space.tier, number, tables, stack, space.work_dir)
        self.space = space

    def _view(self, table: IcebergTable) -> None:
        if self._con is not None:
            drop_relation(self._con, table.name)  # a table a change built here (a mart, a reference list)
            register_files(self._con, table.name, table.files, table.schema, self.space.reader)

    # --- changing -------------------------------------------------------------------------------

    def _digests(self, files: Sequence[Path], partition_by: Sequence[str]) -> dict[str, str]:
        """The "rows:sum of row hashes" of each partition of ``files`` (order-free; a repeated row counts)."""
        con = self.connection()
        source = f"read_parquet({literal_list([str(f) for f in files])})"
        if not partition_by:
            ((n, d),) = con.execute(
                f"SELECT count(*), coalesce(sum(hash(t)), 0)::VARCHAR FROM {source} AS t"
            ).fetchall()
            return {"*": f"{n}:{d}"}
        keys = ", ".join(quote_name(k) for k in partition_by)
        key = (
            "to_json(struct_pack("
            + ", ".join(f"{quote_name(k)} := {quote_name(k)}" for k in partition_by)
            + "))"
        )
        grouped = f"SELECT {keys}, count(*) AS n, sum(hash(t)) AS d FROM {source} AS t GROUP BY ALL"
        found = con.execute(f"SELECT {key}::VARCHAR, n, d::VARCHAR FROM ({grouped})").fetchall()
        return {str(k): f"{n}:{d}" for k, n, d in found}

    @staticmethod
    def _arrow(files: Sequence[Path]) -> pa.Table:
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pa.concat_tables([pq.read_table(f) for f in files])

    def _create(self, identifier: str, partition_by: Sequence[str], arrow: pa.Table) -> Table:
        """A new Iceberg table of ``arrow``'s schema, partitioned by identity on ``partition_by``."""
        namespace = identifier.rsplit(".", 1)[0]
        self.space.catalog.create_namespace_if_not_exists(namespace)
        table = self.space.catalog.create_table(identifier, schema=arrow.schema, properties=TABLE_PROPERTIES)
        if partition_by:
            with table.update_spec() as spec:
                for column in partition_by:
                    spec.add_identity(column)
            table = self.space.catalog.load_table(identifier)
        return table

    def _write(
        self,
        name: str,
        files: Sequence[Path],
        schema: TableSchema,
        existing: IcebergTable | None,
        partition_by: Sequence[str],
    ) -> tuple[str, int | None, tuple[DataFile, ...], int]:
        """Write ``files`` as a new snapshot: the whole table, or (``partition_by`` and a pinned
        snapshot) the partitions they hold. Returns (identifier, snapshot, data files, rows)."""
        arrow = self._arrow(files)
        same_shape = existing is not None and (
            [(c.name, c.type) for c in existing.schema.columns] == [(c.name, c.type) for c in schema.columns]
            and tuple(partition_by) == existing.partition_by
        )
        catalog = self.space.catalog
        if same_shape and existing is not None and catalog.table_exists(existing.identifier):
            table = catalog.load_table(existing.identifier)
        else:
            # A new table, or a new shape: a new Iceberg table (older releases keep the old one).
            identifier = self.space.identifier(name)
            if catalog.table_exists(identifier):
                identifier = f"{identifier}__{uuid.uuid4().hex[:8]}"
            table = self._create(identifier, partition_by, arrow)
            existing = None
        base = existing.snapshot_id if existing is not None else None
        if base is not None and table.metadata.current_snapshot_id != base:
            # Main is not at the release's snapshot (a rollback, or a publisher killed before its
            # catalog commit): the new snapshot is built on the release's.
            with table.manage_snapshots() as snapshots:
                snapshots.set_current_snapshot(base)
        if base is not None and partition_by:
            table.dynamic_partition_overwrite(arrow)
        else:
            table.overwrite(arrow)
        snapshot = table.current_snapshot()
        if snapshot is None:
            raise StoreError(f"{name}: Iceberg wrote no snapshot of {table.name()}")
        return self._files_of(name, table, snapshot.snapshot_id, existing)

    def _files_of(
        self, name: str, table: Table, snapshot_id: int, existing: IcebergTable | None
    ) -> tuple[str, int, tuple[DataFile, ...], int]:
        """The snapshot's data files; those it added are checksummed and recorded for the catalog."""
        known = {f.path: f for f in existing.files} if existing is not None else {}
        files: list[DataFile] = []
        rows = 0
        for path, _size, count in snapshot_files(table, snapshot_id):
            rows += count
            if path in known:
                files.append(known[path])
                continue
            info = self.space.objects.info(path)
            if info is None:
                raise StoreError(f"{name}: Iceberg data file {path} is missing right after it was written")
            files.append(DataFile(path, info.bytes, info.etag))
            self._new_files.append(
                {
                    "path": path,
                    "table_name": name,
                    "sha256": self.space.objects.sha256(path) or "",
                    "bytes": info.bytes,
                    "mtime_ns": 0,
                    "rows": count,
                    "run_id": None,
                    "created_at": datetime.now(UTC),
                }
            )
        return ".".join(table.name()), snapshot_id, tuple(files), rows

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
        digests = self._digests(files, partition_by)
        existing = self._tables.get(name)
        if existing is not None and all(existing.digests.get(k) == d for k, d in digests.items()):
            return  # the partitions already hold exactly these rows: no change
        if existing is not None and existing.rows and tuple(partition_by) != existing.partition_by:
            raise StoreError(
                f"{name}: partitioned by {list(existing.partition_by)}, now by {list(partition_by)}; "
                "publish the whole table once (a complete batch of every partition)"
            )
        identifier, snapshot_id, data_files, rows = self._write(name, files, schema, existing, partition_by)
        kept = existing is not None and existing.identifier == identifier
        before = existing.digests if kept and existing is not None else {}
        runs = runs_after(
            existing.runs if kept and existing else {}, set(digests), run_id, sorted(digests), also_from
        )
        self._put(
            IcebergTable(
                name,
                kind,
                schema,
                identifier,
                snapshot_id,
                rows,
                data_files,
                tuple(partition_by),
                {**before, **digests},
                runs,
            )
        )

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
        digests = self._digests(files, ())
        existing = self._tables.get(name)
        if existing is not None and existing.schema == schema and existing.digests == digests:
            if existing.source_sha256 != source_sha256:
                self._tables[name] = replace(existing, source_sha256=source_sha256)
                self._changed.add(name)
            return
        identifier, snapshot_id, data_files, rows = self._write(name, files, schema, existing, ())
        runs = runs_after({}, None, run_id, ["*"], also_from)
        self._put(
            IcebergTable(
                name,
                kind,
                schema,
                identifier,
                snapshot_id,
                rows,
                data_files,
                (),
                digests,
                runs,
                source_sha256,
            )
        )

    def _put(self, table: IcebergTable) -> None:
        self._tables[table.name] = table
        self._changed.add(table.name)
        self._view(table)
