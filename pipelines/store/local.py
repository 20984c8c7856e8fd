"""The local release store: table data as immutable Parquet files, each release a small DuckDB file.

Under a data directory (the public tier shown; the restricted tier lives under ``restricted/``
with owner-only directories and files):

    tables/public/<table>/<release>-<id>.parquet   immutable table data (0444), never rewritten
    versions/public/scdx-vNNNNNN.duckdb             release N: views over its tables' files, the
                                                    reference lists and meta.* (0444)
    scdx.duckdb -> versions/public/scdx-vNNNNNN.duckdb   what analysts open, read-only
    catalog.sqlite                                  the operational catalog (or SCDX_CATALOG_URL)

A table is an ordered list of *segments*: a Parquet file and the partitions of it that later
segments replaced. Publishing a batch adds its files as a new segment (a complete batch's staged
files are adopted as they are, by hard link: no rewrite) and marks the partitions it replaces as
excluded in older segments; a rollback writes a release file over another release's segments. So
a publish costs the batch, not the database, and a rollback copies no table data. A table whose
segments pile up is compacted into one file within a release when it has more than
``COMPACT_AFTER`` segments.

A release becomes current in this order, each step durable before the next: its new data files
(unreferenced until the catalog says otherwise), its release file (written aside, flushed,
renamed), the catalog transaction (the commit point: release, tables, files and the runs that made
it), the symlink swap. A crash before the commit leaves files no release references (removed by
the next publish); a crash after it leaves a symlink one release behind, which the next publish or
rollback points forward (``reconcile``). Readers only ever open complete release files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.common.faults import crash_point
from pipelines.common.settings import duckdb_config
from pipelines.common.sql import literal_list, quote_literal, quote_name
from pipelines.store import (
    Change,
    Damage,
    DamagedRelease,
    Release,
    StoreError,
    TableInfo,
    TableSchema,
)
from pipelines.store.catalog import Catalog, dumps, loads
from pipelines.store.layout import VersionStore, fsync_path
from pipelines.store.locks import LockTimeout, file_lock
from pipelines.store.release_file import write_release_file

log = logging.getLogger("scdx.store")

LOCK_TIMEOUT_S = 3600.0
# A table with more segments than this is rewritten as one file in the release that exceeds it:
# queries then read few files, and the files of excluded partitions are dropped once unreferenced.
COMPACT_AFTER = 12


@dataclass
class Segment:
    """One immutable file of a table, which runs its rows came from, and which of its partitions
    later segments replaced."""

    file: str  # relative to the data directory
    rows: int
    partitions: dict[str, int] | None  # partition key (JSON) -> rows; None when the table has none
    origins: dict[str, list[str]]  # run id -> the partitions of this file its rows came from ("*": all)
    excluded: list[str] = field(default_factory=list)
    # partition key ("*" for the whole file) -> a digest of its rows, independent of their order:
    # a batch whose partitions hold exactly the rows published already changes nothing.
    digests: dict[str, str] = field(default_factory=dict)

    def live_rows(self) -> int:
        if not self.excluded or self.partitions is None:
            return self.rows
        return self.rows - sum(self.partitions.get(k, 0) for k in self.excluded)

    def live_origins(self) -> dict[str, list[str]]:
        """Run id -> the partitions of this file still part of the table that its rows came from."""
        excluded = set(self.excluded)
        live: dict[str, list[str]] = {}
        for run_id, keys in self.origins.items():
            kept = [
                k for k in keys if (k == "*" and self.live_rows() > 0) or (k != "*" and k not in excluded)
            ]
            if kept:
                live[run_id] = kept
        return live

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "partitions": self.partitions,
            "origins": self.origins,
            "excluded": self.excluded,
            "digests": self.digests,
        }


@dataclass
class _Table:
    name: str
    kind: str
    schema: TableSchema
    partition_by: list[str]
    segments: list[Segment]
    source_sha256: str | None = None

    @property
    def rows(self) -> int:
        return sum(s.live_rows() for s in self.segments)

    def runs(self) -> dict[str, tuple[str, ...]]:
        """Run id -> the partitions of the table whose rows that run published."""
        held: dict[str, dict[str, None]] = {}
        for segment in self.segments:
            for run_id, keys in segment.live_origins().items():
                held.setdefault(run_id, {}).update(dict.fromkeys(keys))
        return {run: tuple(keys) for run, keys in sorted(held.items())}

    def info(self) -> TableInfo:
        return TableInfo(self.name, self.kind, self.rows, self.schema, self.runs(), self.source_sha256)

    def state(self) -> dict[str, Any]:
        return {
            "segments": [s.to_json() for s in self.segments],
            "partition_by": self.partition_by,
            "source_sha256": self.source_sha256,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> _Table:
        state = loads(row["state"])
        return cls(
            name=row["table_name"],
            kind=row["kind"],
            schema=TableSchema.from_json(loads(row["schema"])),
            partition_by=list(state.get("partition_by") or []),
            segments=[Segment(**s) for s in state["segments"]],
            source_sha256=state.get("source_sha256"),
        )


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _split(name: str) -> tuple[str, str]:
    schema, _, table = name.partition(".")
    if not table:
        raise StoreError(f"table name {name!r} must be schema-qualified (curated.x, marts.y)")
    return schema, table


def drop_relation(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop whatever ``name`` is in a draft's connection: the view of a table, or a table a change
    built there (a mart, a reference list) before handing its file over."""
    schema, table = _split(name)
    kinds = con.execute(
        "SELECT 'VIEW' FROM duckdb_views() WHERE schema_name = ? AND view_name = ? "
        "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
        [schema, table, schema, table],
    ).fetchall()
    for (kind,) in kinds:
        con.execute(f"DROP {kind} {quote_name(schema)}.{quote_name(table)}")


def view_sql(table: _Table, root: Path) -> str:
    """The SELECT a release's view of ``table`` runs: its segments' files, minus excluded partitions."""
    columns = ", ".join(quote_name(c.name) for c in table.schema.columns)
    types = {c.name: c.type for c in table.schema.columns}
    parts: list[str] = []
    plain: list[str] = []  # consecutive segments without exclusions read as one list

    def flush() -> None:
        if plain:
            parts.append(f"SELECT {columns} FROM read_parquet({literal_list(plain)}, union_by_name = true)")
            plain.clear()

    for segment in table.segments:
        path = str(root / segment.file)
        if not segment.excluded:
            plain.append(path)
            continue
        flush()
        keys = ", ".join(quote_name(k) for k in table.partition_by)
        values = []
        for key in segment.excluded:
            document = loads(key)
            values.append(
                "("
                + ", ".join(
                    f"CAST({quote_literal(str(document[k]))} AS {types[k]})" for k in table.partition_by
                )
                + ")"
            )
        parts.append(
            f"SELECT {columns} FROM read_parquet({literal_list([path])}, union_by_name = true) "
            f"WHERE NOT coalesce(({keys}) IN ({', '.join(values)}), false)"
        )
    flush()
    if not parts:  # a table with no rows: its columns, typed
        typed = ", ".join(f"CAST(NULL AS {c.type}) AS {quote_name(c.name)}" for c in table.schema.columns)
        return f"SELECT {typed} WHERE false"
    return "\nUNION ALL\n".join(parts)


class LocalDraft:
    """The next release of a local store while a change is applied to it."""

    def __init__(self, store: LocalStore, number: int, tables: dict[str, _Table], stack: ExitStack) -> None:
        self.store = store
        self.tier = store.tier
        self.number = number
        self._tables = tables
        self._changed: set[str] = set()
        self._new_files: list[dict[str, Any]] = []
        self._stack = stack
        self._con: duckdb.DuckDBPyConnection | None = None
        self._scratch: Path | None = None
        self.runs: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []

    def record_run(self, values: Mapping[str, Any], details: Mapping[str, Any]) -> None:
        """Record this run with the release, in the catalog transaction that commits it."""
        self.runs.append((values, details))

    # --- reading --------------------------------------------------------------------------------

    def tables(self) -> dict[str, TableInfo]:
        return {name: t.info() for name, t in sorted(self._tables.items())}

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = self._stack.enter_context(duckdb.connect(config=duckdb_config()))
            for schema in ("curated", "marts", "meta"):
                self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_name(schema)}")
            for table in self._tables.values():
                self._view(table)
        return self._con

    def _view(self, table: _Table) -> None:
        if self._con is None:
            return
        drop_relation(self._con, table.name)
        schema, name = _split(table.name)
        self._con.execute(
            f"CREATE VIEW {quote_name(schema)}.{quote_name(name)} AS {view_sql(table, self.store.root)}"
        )

    def scratch(self) -> Path:
        if self._scratch is None:
            self.store.work_dir.mkdir(parents=True, exist_ok=True)
            self._scratch = Path(tempfile.mkdtemp(prefix=f"draft-{self.tier}-", dir=self.store.work_dir))
            self._stack.callback(shutil.rmtree, self._scratch, True)
        return self._scratch

    # --- changing -------------------------------------------------------------------------------

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
                "sha256": _sha256(target),
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
        if existing is not None and _same_rows(existing, segments, replaced):
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
        table = _Table(
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
        if existing is not None and existing.schema == schema and _same_rows(existing, segments, None):
            self._forget(segments)
            if existing.source_sha256 != source_sha256:
                self._tables[name] = replace(existing, source_sha256=source_sha256)
                self._changed.add(name)
            return
        self._put(_Table(name, kind, schema, [], segments, source_sha256))

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

    def drop_table(self, name: str) -> None:
        if self._tables.pop(name, None) is not None:
            self._changed.add(name)
            if self._con is not None:
                drop_relation(self._con, name)

    def _put(self, table: _Table) -> None:
        if len(table.segments) > COMPACT_AFTER:
            table = self._compacted(table)
        self._tables[table.name] = table
        self._changed.add(table.name)
        self._view(table)

    def _compacted(self, table: _Table) -> _Table:
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
        return _Table(
            table.name, table.kind, table.schema, table.partition_by, [segment], table.source_sha256
        )

    @property
    def changed(self) -> list[str]:
        return sorted(self._changed)


def _same_rows(table: _Table, segments: Sequence[Segment], partitions: set[str] | None) -> bool:
    """Whether ``segments`` hold exactly the rows ``table`` holds now, in ``partitions`` (None: the
    whole table), compared by each partition's row count and digest."""

    def combined(digests: list[tuple[int, str]]) -> tuple[int, int]:
        return sum(n for n, _ in digests), sum(int(d) for _, d in digests) % (1 << 64)

    new: dict[str, list[tuple[int, str]]] = {}
    for segment in segments:
        for key, digest in segment.digests.items():
            rows = segment.rows if segment.partitions is None else segment.partitions.get(key, 0)
            new.setdefault(key, []).append((rows, digest))
    old: dict[str, list[tuple[int, str]]] = {}
    for segment in table.segments:
        excluded = set(segment.excluded)
        for key, digest in segment.digests.items():
            if key in excluded or (partitions is not None and key not in partitions):
                continue
            rows = segment.rows if segment.partitions is None else segment.partitions.get(key, 0)
            old.setdefault(key, []).append((rows, digest))
    if partitions is None and set(old) != set(new):
        return False
    return all(key in old and combined(old[key]) == combined(new[key]) for key in new)


class LocalStore:
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

    # --- reading --------------------------------------------------------------------------------

    def _release(self, row: Mapping[str, Any]) -> Release:
        return Release(
            tier=self.tier,
            number=int(row["number"]),
            created_at=row["created_at"],
            kind=row["kind"],
            run_ids=tuple(loads(row["run_ids"], [])),
            changed=tuple(loads(row["changed"], [])),
            table_rows=loads(row["table_rows"], {}),
            previous=row["previous"],
            restored=row["restored"],
            kept=bool(row["kept"]),
        )

    def current(self) -> Release | None:
        row = self.catalog.latest_release(self.tier)
        return None if row is None else self._release(row)

    def releases(self) -> list[Release]:
        return [self._release(r) for r in self.catalog.releases(self.tier)]

    def _tables_of(self, number: int) -> dict[str, _Table]:
        return {r["table_name"]: _Table.from_row(r) for r in self.catalog.release_tables(self.tier, number)}

    def tables(self, number: int | None = None) -> dict[str, TableInfo]:
        if number is None:
            current = self.current()
            if current is None:
                return {}
            number = current.number
        return {name: t.info() for name, t in self._tables_of(number).items()}

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

    def _check_files(self, number: int, tables: Mapping[str, _Table], release_file: bool = True) -> None:
        """Refuse to build on a release whose files changed since they were written (size, time)."""
        paths = [s.file for t in tables.values() for s in t.segments]
        recorded = self.catalog.files(self.tier, paths)
        for path in paths:
            record = recorded.get(path)
            problem = _stat_problem(self.root / path, record)
            if problem:
                raise DamagedRelease(
                    f"{self.tier} tier, release {number}: {path} {problem}; nothing published. "
                    f"Check with `scdx publish verify`; restore with `scdx publish rollback <an undamaged release>`"
                )
        if release_file:
            row = self.catalog.release(self.tier, number)
            if row and row["file"]:
                path = self.root / row["file"]
                if not path.exists():
                    raise DamagedRelease(
                        f"{self.tier} tier, release {number}: its file {row['file']} is missing; nothing published. "
                        f"Restore it with `scdx publish rollback {number}`"
                    )
                if path.stat().st_size != row["bytes"]:
                    raise DamagedRelease(
                        f"{self.tier} tier, release {number}: its file {row['file']} changed size since it was written; "
                        f"nothing published. Restore it with `scdx publish rollback {number}`"
                    )

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
        target = self.root / latest["file"]
        if target.exists() and (
            not self.paths.link.is_symlink() or Path(os.readlink(self.paths.link)).name != target.name
        ):
            log.warning(
                "%s tier: pointing %s at release %s (a publish stopped before its swap)",
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
            draft = LocalDraft(self, number, tables, stack)
            change(draft)
            if restored is not None and current is not None:
                now = self._tables_of(current["number"])
                draft._changed = {
                    n
                    for n in set(now) | set(tables)
                    if n not in now or n not in tables or now[n].state() != tables[n].state()
                }
            if not draft.changed and restored is None:
                self._discard(draft)
                return None
            crash_point("publish:before_commit")
            return self._commit(draft, kind, run_ids, [*runs, *draft.runs], current, restored)

    def _discard(self, draft: LocalDraft) -> None:
        for record in draft._new_files:
            (self.root / record["path"]).unlink(missing_ok=True)

    def _commit(
        self,
        draft: LocalDraft,
        kind: str,
        run_ids: Sequence[str],
        runs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
        current: Mapping[str, Any] | None,
        restored: int | None,
    ) -> Release:
        number = draft.number
        tables = draft._tables
        created_at = datetime.now(UTC)
        table_rows = {name: t.rows for name, t in sorted(tables.items())}
        release_row: dict[str, Any] = {
            "tier": self.tier,
            "number": number,
            "created_at": created_at,
            "kind": kind,
            "run_ids": dumps(list(run_ids)),
            "changed": dumps(draft.changed),
            "table_rows": dumps(table_rows),
            "contract_versions": dumps({}),
            "previous": current["number"] if current else None,
            "restored": restored,
            "kept": True,
        }
        final = self.release_path(number)
        temporary = final.with_name(final.name + f".tmp{uuid.uuid4().hex[:8]}")
        try:
            release_row["contract_versions"] = dumps(
                write_release_file(
                    temporary,
                    self,
                    {name: (t, view_sql(t, self.root)) for name, t in tables.items()},
                    release_row,
                    runs,
                )
            )
            os.chmod(temporary, 0o400 if self.private else 0o444)
            fsync_path(temporary)
            os.rename(temporary, final)
            fsync_path(final.parent)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            self._discard(draft)
            raise StoreError(
                f"{self.tier} tier: cannot write release {number} ({final}): {exc.strerror or exc}"
            ) from None
        except BaseException:
            temporary.unlink(missing_ok=True)
            self._discard(draft)
            raise
        release_row.update(
            file=str(final.relative_to(self.root)), sha256=_sha256(final), bytes=final.stat().st_size
        )
        try:
            crash_point("publish:before_catalog")
            self.catalog.commit_release(
                release_row,
                [
                    {
                        "table_name": name,
                        "kind": t.kind,
                        "rows": t.rows,
                        "state": dumps(t.state()),
                        "schema": dumps(t.schema.to_json()),
                        "runs": dumps(t.runs()),
                    }
                    for name, t in sorted(tables.items())
                ],
                runs=runs,
                files=[{"tier": self.tier, **f} for f in draft._new_files],
            )
        except BaseException:
            final.unlink(missing_ok=True)
            self._discard(draft)
            raise
        crash_point("publish:before_swap")
        self._swap(final)
        crash_point("publish:after_swap")
        self.prune(self.keep)
        log.info(
            "%s tier: release %d (%s: %s)", self.tier, number, kind, ", ".join(draft.changed) or "no change"
        )
        return self._release(self.catalog.release(self.tier, number) or release_row)

    # --- rollback, verify, prune ----------------------------------------------------------------

    def rollback(self, to: int | None = None) -> Release:
        releases = self.catalog.releases(self.tier)
        if not releases:
            raise StoreError(f"nothing published in the {self.tier} tier; nothing to roll back")
        current = releases[-1]
        if to is None:
            data = [
                r["number"] for r in releases if r["number"] < current["number"] and r["kind"] != "compaction"
            ]
            if not data:
                raise StoreError(f"no release before {current['number']} in the {self.tier} tier")
            to = data[-1]
        target = next((r for r in releases if r["number"] == to), None)
        if target is None:
            raise StoreError(
                f"release {to} of the {self.tier} tier does not exist (latest: {current['number']})"
            )
        if not target["kept"]:
            kept = ", ".join(str(r["number"]) for r in releases if r["kept"]) or "none"
            raise StoreError(f"release {to} of the {self.tier} tier is no longer kept (kept: {kept})")
        release = self.publish(lambda draft: None, "rollback", base=to, restored=to)
        assert release is not None  # a rollback always makes a release
        return release

    def verify(self) -> list[Damage]:
        damage: list[Damage] = []
        recorded = self.catalog.files(self.tier)
        for row in self.catalog.releases(self.tier):
            if not row["kept"]:
                continue
            number = row["number"]
            if row["file"]:
                path = self.root / row["file"]
                if not path.exists():
                    damage.append(Damage(number, row["file"], "missing"))
                elif _sha256(path) != row["sha256"]:
                    damage.append(
                        Damage(
                            number, row["file"], "checksum differs from the one recorded when it was written"
                        )
                    )
            for table in self._tables_of(number).values():
                for segment in table.segments:
                    record = recorded.get(segment.file)
                    path = self.root / segment.file
                    if record is None:
                        damage.append(Damage(number, segment.file, "not recorded in the catalog"))
                    elif not path.exists():
                        damage.append(Damage(number, segment.file, "missing"))
                    elif _sha256(path) != record["sha256"]:
                        damage.append(
                            Damage(
                                number,
                                segment.file,
                                "checksum differs from the one recorded when it was written",
                            )
                        )
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


def _stat_problem(path: Path, record: Mapping[str, Any] | None) -> str | None:
    if record is None:
        return "is not recorded in the catalog"
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "is missing"
    if stat.st_size != record["bytes"]:
        return f"is {stat.st_size} bytes, {record['bytes']} when it was written"
    if stat.st_mtime_ns != record["mtime_ns"]:
        return "was modified after it was written"
    return None
