"""A release's materialized copy: the same release with its rows stored as DuckDB tables.

A local release file holds views over immutable Parquet files, so a publish costs the batch and a
rollback copies no table data; but DuckDB scans Parquet 2-5x slower than its own storage
(docs/performance.md). Materializing writes the current release once more, each view a DuckDB
table of the same name, columns and comments (``meta.*`` as it is), and points the tier's path at
it. (A view over each table would keep the release's shape, but binding it costs a small query
a quarter to a half of its time; readers ask ``tiers.release_tables`` for views and tables alike.) It costs the size of the database, so it
runs once after a night's publishes
(``scdx publish materialize``, the end of ``scdx demo``, the marts DAG), never inside a publish,
and holds the publish lock only to swap. Readers see the same release either way; the next
publish points the path at its own release file and its prune removes the copy.

The catalog records each copy (``scdx_release_copies``: file, checksum, size); ``scdx publish
verify`` checks it, and a copy that is missing or changed size is passed over (the path goes back
to the release file) until the next materialize writes it again.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.common.settings import duckdb_config
from pipelines.common.sql import quote_literal, quote_name
from pipelines.store import StoreError
from pipelines.store.catalog import Catalog
from pipelines.store.catalog_tables import release_copies
from pipelines.store.layout import VersionStore, fsync_path
from pipelines.store.locks import LockTimeout, file_lock
from pipelines.store.segments import file_sha256

COPY_SUFFIX = ".tables.duckdb"
REBUILD = "`scdx publish materialize` writes it again"

_RELATIONS = """
SELECT schema_name, view_name, comment FROM duckdb_views() WHERE database_name = 'release' AND NOT internal
UNION ALL
SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE database_name = 'release'
ORDER BY 1, 2
"""
_COLUMN_COMMENTS = """
SELECT schema_name, table_name, column_name, comment FROM duckdb_columns()
WHERE database_name = 'release' AND comment IS NOT NULL ORDER BY ALL
"""


@dataclass(frozen=True)
class Materialized:
    """What ``LocalStore.materialize`` did: which release, where its copy is, how long it took."""

    tier: str
    release: int
    path: Path
    seconds: float
    made: bool  # False: the release's copy was there already


def copy_path(paths: VersionStore, number: int) -> Path:
    """Where release ``number``'s materialized copy lives: beside its release file."""
    return paths.version_path(number).with_suffix(COPY_SUFFIX)


def write_tables_copy(source: Path, target: Path) -> None:
    """Release file ``source`` again in the new database ``target``: each of its views (a curated
    table, reference list or mart) and tables (``meta.*``) a DuckDB table of the same name and
    columns, with the comment of every table and column. So the copy is what a release was before
    releases shared files: what reads a release sees the same names, rows and comments."""
    with duckdb.connect(str(target), config=duckdb_config()) as con:
        con.execute(f"ATTACH {quote_literal(str(source))} AS release (READ_ONLY)")
        relations = con.execute(_RELATIONS).fetchall()
        comments = con.execute(_COLUMN_COMMENTS).fetchall()
        con.execute("BEGIN TRANSACTION")
        for schema in sorted({schema for schema, _, _ in relations}):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_name(schema)}")
        for schema, name, comment in relations:
            qualified = f"{quote_name(schema)}.{quote_name(name)}"
            con.execute(f"CREATE TABLE {qualified} AS SELECT * FROM release.{qualified}")
            if comment:
                con.execute(f"COMMENT ON TABLE {qualified} IS {quote_literal(comment)}")
        for schema, name, column, comment in comments:
            con.execute(
                f"COMMENT ON COLUMN {quote_name(schema)}.{quote_name(name)}.{quote_name(column)} "
                f"IS {quote_literal(comment)}"
            )
        con.execute("COMMIT")
        con.execute("DETACH release")
        con.execute("CHECKPOINT")


@contextmanager
def copy_workspace(paths: VersionStore, private: bool) -> Iterator[Path]:
    """A temporary path to write a copy at, while holding the tier's materialize lock (one
    materialize at a time: a second one fails at once). What a killed materialize left is removed
    first; whatever the block leaves there is removed after it."""
    lock = paths.versions_dir / ".materialize.lock"
    work = paths.versions_dir / ".materializing"
    try:
        with file_lock(lock, 0, f"materializing the {paths.tier} tier"):
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(mode=0o700 if private else 0o755)
            try:
                yield work / f"{uuid.uuid4().hex}.duckdb"
            finally:
                shutil.rmtree(work, ignore_errors=True)
    except LockTimeout:
        raise StoreError(f"{paths.tier} tier: another process is materializing it ({lock})") from None


def seal_copy(path: Path, private: bool) -> None:
    """Make a written copy read-only and durable before it is moved into place."""
    os.chmod(path, 0o400 if private else 0o444)
    fsync_path(path)


# --- the catalog's record of copies ---------------------------------------------------------------


def record_copy(catalog: Catalog, tier: str, number: int, root: Path, path: Path) -> None:
    """Record release ``number``'s copy at ``path`` (its checksum and size), replacing any record."""
    row = {
        "tier": tier,
        "number": number,
        "file": str(path.relative_to(root)),
        "sha256": file_sha256(path),
        "bytes": path.stat().st_size,
        "created_at": datetime.now(UTC),
    }
    with catalog.begin() as db:
        db.execute(
            release_copies.delete().where(release_copies.c.tier == tier, release_copies.c.number == number)
        )
        db.execute(release_copies.insert().values(**row))


def recorded_copies(catalog: Catalog, tier: str) -> dict[int, dict[str, Any]]:
    """The tier's recorded copies, by release number."""
    return {row["number"]: row for row in catalog.rows_of(release_copies, release_copies.c.tier == tier)}


def forget_copies(catalog: Catalog, tier: str, numbers: list[int]) -> None:
    """Remove the records of the copies of releases ``numbers``."""
    if numbers:
        with catalog.begin() as db:
            db.execute(
                release_copies.delete().where(
                    release_copies.c.tier == tier, release_copies.c.number.in_(numbers)
                )
            )


def intact_copy(root: Path, record: dict[str, Any] | None) -> Path | None:
    """The recorded copy's path when it is there with the size it was written with, else None."""
    if record is None:
        return None
    path = root / record["file"]
    try:
        return path if path.stat().st_size == record["bytes"] else None
    except FileNotFoundError:
        return None
