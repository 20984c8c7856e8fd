"""A table of the local release store as segments: immutable Parquet files, the partitions of
each that later segments replaced, the runs its rows came from and a digest of each partition;
the SQL a release's view of it runs. See pipelines.store.local for how releases use them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.common.sql import literal_list, quote_literal, quote_name
from pipelines.store import StoreError, TableInfo, TableSchema
from pipelines.store.catalog import loads


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
class StoredTable:
    """A table of a release as the store keeps it: its schema and its ordered segments."""

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
    def from_row(cls, row: Mapping[str, Any]) -> StoredTable:
        state = loads(row["state"])
        return cls(
            name=row["table_name"],
            kind=row["kind"],
            schema=TableSchema.from_json(loads(row["schema"])),
            partition_by=list(state.get("partition_by") or []),
            segments=[Segment(**s) for s in state["segments"]],
            source_sha256=state.get("source_sha256"),
        )


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def split_name(name: str) -> tuple[str, str]:
    schema, _, table = name.partition(".")
    if not table:
        raise StoreError(f"table name {name!r} must be schema-qualified (curated.x, marts.y)")
    return schema, table


def drop_relation(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop whatever ``name`` is in a draft's connection: the view of a table, or a table a change
    built there (a mart, a reference list) before handing its file over."""
    schema, table = split_name(name)
    kinds = con.execute(
        "SELECT 'VIEW' FROM duckdb_views() WHERE schema_name = ? AND view_name = ? "
        "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
        [schema, table, schema, table],
    ).fetchall()
    for (kind,) in kinds:
        con.execute(f"DROP {kind} {quote_name(schema)}.{quote_name(table)}")


def view_sql(table: StoredTable, root: Path) -> str:
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


def same_rows(table: StoredTable, segments: Sequence[Segment], partitions: set[str] | None) -> bool:
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
