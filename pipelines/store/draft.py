"""The next release of a local store while a change is applied to it: tables are replaced by
adopting files as new segments (hard links, never rewritten), unchanged rows make no change, and
a table whose segments pile up is compacted."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from pipelines.common.sql import literal_list, quote_literal, quote_name
from pipelines.store import StoreError, TableSchema
from pipelines.store.draft_base import DraftTables
from pipelines.store.layout import fsync_path
from pipelines.store.segments import (
    Segment,
    StoredTable,
    drop_relation,
    file_sha256,
    same_rows,
    split_name,
    view_sql,
)

# A table with more segments than this is rewritten as one file in the release that exceeds it:
# queries then read few files, and the files of excluded partitions are dropped once unreferenced.
COMPACT_AFTER = 12


@dataclass(frozen=True)
class StoreDirs:
    """Where a local store of one tier keeps its files."""

    root: Path  # the data directory: table files are recorded relative to it
    tables_dir: Path
    work_dir: Path
    tier: str
    private: bool  # the restricted tier: owner-only directories and files


class LocalDraft(DraftTables[StoredTable]):
    """The next release of a local store while a change is applied to it."""

    def __init__(
        self, dirs: StoreDirs, number: int, tables: dict[str, StoredTable], stack: ExitStack
    ) -> None:
        super().__init__(dirs.tier, number, tables, stack, dirs.work_dir)
        self.store = dirs

    def _view(self, table: StoredTable) -> None:
        if self._con is None:
            return
        drop_relation(self._con, table.name)
        schema, name = split_name(table.name)
        self._con.execute(
            f"CREATE VIEW {quote_name(schema)}.{quote_name(name)} AS {view_sql(table, self.store.root)}"
        )

    def _adopt(self, name: str, source: Path, run_id: str | None, partition_by: Sequence[str]) -> Segment:
        """Make ``source`` a file of the store (hard link when it can, else a copy), read-only."""
        directory = self.store.tables_dir / name
        directory.mkdir(parents=True, exist_ok=True)
        if self.store.private:
            os.chmod(directory, 0o700)
        target = directory / f"{self.number:06d}-{uuid.uuid4().hex[:12]}.parquet"
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        os.chmod(target, 0o400 if self.store.private else 0o444)
        fsync_path(target)
        con = self.connection()
        file_literal = literal_list([str(target)])
        # One pass over the file: rows and a digest of each partition (a sum of row hashes, so the
        # rows' order does not matter and a repeated row still counts).
        # Grouped by the key columns themselves; only the groups are turned into JSON keys.
        keys = ", ".join(quote_name(k) for k in partition_by)
        key = (
            "to_json(struct_pack("
            + ", ".join(f"{quote_name(k)} := {quote_name(k)}" for k in partition_by)
            + "))::VARCHAR"
            if partition_by
            else "'*'"
        )
        grouped = (
            f"SELECT {keys}, count(*) AS n, sum(hash(t)) AS d FROM read_parquet({file_literal}) AS t GROUP BY ALL"
            if partition_by
            else f"SELECT count(*) AS n, sum(hash(t)) AS d FROM read_parquet({file_literal}) AS t"
        )
        found = con.execute(f"SELECT {key}, n, d::VARCHAR FROM ({grouped}) WHERE n > 0").fetchall()
        counts = {str(k): int(n) for k, n, _ in found}
        digests = {str(k): str(d) for k, _, d in found}
        rows = sum(counts.values())
        partitions: dict[str, int] | None = counts if partition_by else None
        stat = target.stat()
        relative = str(target.relative_to(self.store.root))
        self._new_files.append(
            {
                "path": relative,
                "table_name": name,
                "sha256": file_sha256(target),
                "bytes": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "rows": int(rows),
                "run_id": run_id,
                "created_at": datetime.now(UTC),
            }
        )
        origins = {run_id: sorted(partitions) if partitions is not None else ["*"]} if run_id else {}
        return Segment(relative, int(rows), partitions, origins, digests=digests or {"*": "0"})

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
        segments = [self._carrying(self._adopt(name, f, run_id, partition_by), also_from) for f in files]
        replaced = {k for s in segments for k in (s.partitions or {})}
        existing = self._tables.get(name)
        if existing is not None and same_rows(existing, segments, replaced):
            self._forget(segments)  # the partitions already hold exactly these rows: no change
            return
        kept: list[Segment] = []
        if existing is not None:
            if list(existing.partition_by) != list(partition_by):
                # Partitioned differently before (a contract change): the old segments' partition keys
                # cannot be compared with these, so the table is rewritten whole from the draft.
                raise StoreError(
                    f"{name}: partitioned by {existing.partition_by}, now by {list(partition_by)}; "
                    "publish the whole table once (a complete batch of every partition)"
                )
            for segment in existing.segments:
                live = set(segment.partitions or {}) - set(segment.excluded)
                overlap = replaced & live
                kept.append(
                    replace(segment, excluded=sorted(set(segment.excluded) | overlap)) if overlap else segment
                )
        table = StoredTable(
            name, kind, schema, list(partition_by), [s for s in kept if s.live_rows() > 0] + segments
        )
        self._put(table)

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
        segments = [self._carrying(self._adopt(name, f, run_id, ()), also_from) for f in files]
        existing = self._tables.get(name)
        if existing is not None and existing.schema == schema and same_rows(existing, segments, None):
            self._forget(segments)
            if existing.source_sha256 != source_sha256:
                self._tables[name] = replace(existing, source_sha256=source_sha256)
                self._changed.add(name)
            return
        self._put(StoredTable(name, kind, schema, [], segments, source_sha256))

    def _forget(self, segments: Sequence[Segment]) -> None:
        """Undo adopting files that turned out to change nothing."""
        paths = {s.file for s in segments}
        for path in paths:
            (self.store.root / path).unlink(missing_ok=True)
        self._new_files = [f for f in self._new_files if f["path"] not in paths]

    @staticmethod
    def _carrying(segment: Segment, also_from: Mapping[str, Sequence[str]] | None) -> Segment:
        """The segment with the earlier runs whose rows it carries on (a merge rewrites them)."""
        if not also_from:
            return segment
        mine = set(segment.partitions) if segment.partitions is not None else {"*"}
        for run_id, keys in also_from.items():
            carried = [k for k in keys if k in mine or k == "*"]
            if carried and run_id not in segment.origins:
                segment.origins[run_id] = sorted(mine) if "*" in carried else carried
        return segment

    def _put(self, table: StoredTable) -> None:
        if len(table.segments) > COMPACT_AFTER:
            table = self._compacted(table)
        self._tables[table.name] = table
        self._changed.add(table.name)
        self._view(table)

    def _compacted(self, table: StoredTable) -> StoredTable:
        """The table's live rows rewritten as one file (its segments' excluded rows dropped); the
        runs its rows came from stay recorded with the partitions each holds."""
        target = self.scratch() / f"compact-{uuid.uuid4().hex[:8]}.parquet"
        con = self.connection()
        con.execute(
            f"COPY ({view_sql(table, self.store.root)}) TO {quote_literal(str(target))} "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        segment = self._adopt(table.name, target, None, table.partition_by)
        segment.origins = {run_id: list(keys) for run_id, keys in table.runs().items()}
        return StoredTable(
            table.name, table.kind, table.schema, table.partition_by, [segment], table.source_sha256
        )

    def discard(self) -> None:
        """Remove the files this draft adopted (it does not become a release)."""
        for record in self._new_files:
            (self.store.root / record["path"]).unlink(missing_ok=True)
