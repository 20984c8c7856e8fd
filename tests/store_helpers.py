"""What the store conformance suite does to a release store, in this process or in a child process.

A release of the suite holds two tables that must always agree: ``curated.t`` (``rows`` rows, each
tagged with the release's tag) and ``marts.m`` (one row: that tag and that count), as a curated
table and the mart built from it must. A reader that ever sees them disagree has seen half a
release. Run as a script, it publishes or reads in a child process (so the suite can kill it):

    python -m tests.store_helpers publish <data dir> <tag> <rows>
    python -m tests.store_helpers publish-many <data dir> <first tag> <count>
    python -m tests.store_helpers read-loop <data dir> <opens> <report.json> <ready file>
    python -m tests.store_helpers materialize <data dir>

The store comes from ``SCDX_STORE_KIND`` (``local`` or ``iceberg``) with ``SCDX_CATALOG_URL`` as the
catalog (and ``SCDX_DATA_URL`` as the object store of ``iceberg``). What the suite inspects or
damages behind a store's back (its files, a release's own files) is asked of the kind here, so the
suite's tests are the same for every kind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb

from pipelines.common.faults import FAULT_ENV
from pipelines.store import Column, Draft, Release, ReleaseStore, StoreError, TableSchema
from pipelines.store.iceberg import IcebergStore
from pipelines.store.iceberg_io import ObjectStore
from pipelines.store.kinds import open_release_store, store_kind
from pipelines.store.layout import Layout
from pipelines.store.local import LocalStore
from pipelines.store.materialize import COPY_SUFFIX

T_SCHEMA = TableSchema(
    (Column("tag", "BIGINT", "Release tag of the row."), Column("n", "BIGINT", "Row number.")),
    "Conformance table.",
)
M_SCHEMA = TableSchema(
    (Column("tag", "BIGINT", "Release tag."), Column("rows", "BIGINT", "Rows of curated.t.")), "Its mart."
)


PROJECT = Path(__file__).resolve().parents[1]


def helper_process(*args: str, fault: str | None = None, **env: str) -> subprocess.Popen[str]:
    """This module run as a script in a child process (a publisher, a reader, a materialize), with
    this process's environment plus ``env``; it kills itself at crash point ``fault`` when given."""
    environment = {**os.environ, **env}
    environment.pop(FAULT_ENV, None)
    if fault:
        environment[FAULT_ENV] = fault
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store_helpers", *args],
        cwd=PROJECT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def make_store(data_dir: Path, keep: int = 10, tier: str = "public") -> ReleaseStore:
    """The store under test, as the environment names it."""
    return open_release_store(data_dir, tier, keep)


def opener(data_dir: Path) -> Callable[[], duckdb.DuckDBPyConnection]:
    """How an analyst opens the current public release, once per call: the local store's path
    (read-only), or an Iceberg store's release pinned through the catalog (its tables: meta.*
    comes from the same pinned catalog row, and would double the cost of the 10,000 opens)."""
    if store_kind() == "iceberg":
        from pipelines.store.iceberg import IcebergStore

        return IcebergStore.from_environment(data_dir).connect_tables
    link = Layout(data_dir).store("public").link
    return lambda: duckdb.connect(str(link), read_only=True)


def current_release(data_dir: Path) -> tuple[int, int] | str:
    """(tag, rows) of the current public release as a new reader sees it."""
    with opener(data_dir)() as con:
        return whole(con)


def stored_files(data_dir: Path, store: ReleaseStore) -> set[str]:
    """Every table data file the store holds, referenced or not."""
    if isinstance(store, IcebergStore):
        return {uri for uri in store.space.objects.list(f"{store.warehouse}/") if uri.endswith(".parquet")}
    return {str(p.relative_to(data_dir)) for p in (data_dir / "tables").rglob("*.parquet")}


def referenced_files(store: ReleaseStore) -> set[str]:
    """The table data files the kept releases read."""
    return {f for r in store.releases() if r.kept for f in _files_of(store, r.number, None)}


def _files_of(store: ReleaseStore, number: int, table: str | None) -> list[str]:
    if isinstance(store, IcebergStore):
        found = store.tables_of(number)
        return [f.path for name, t in found.items() if table in (None, name) for f in t.files]
    assert isinstance(store, LocalStore)
    return [
        s.file for name, t in store._tables_of(number).items() if table in (None, name) for s in t.segments
    ]


def files_written_by(store: ReleaseStore, number: int, table: str | None = None) -> list[str]:
    """The data files release ``number`` wrote (of ``table``, when given): read by no earlier release."""
    earlier = {
        f for r in store.releases() if r.kept and r.number < number for f in _files_of(store, r.number, None)
    }
    return [f for f in _files_of(store, number, table) if f not in earlier]


def own_files(data_dir: Path, store: ReleaseStore, number: int) -> list[str]:
    """What release ``number`` alone holds: the local store's release file; an Iceberg release's new
    data files (a rollback release has none: it only names older snapshots)."""
    if isinstance(store, LocalStore):
        return [str(store.release_path(number))]
    return files_written_by(store, number)


def damage_file(data_dir: Path, store: ReleaseStore, path: str, overwrite: int | None = None) -> None:
    """Flip one byte in the middle of a file (size unchanged), or overwrite its first ``overwrite``
    bytes with random ones."""
    if isinstance(store, IcebergStore):
        objects: ObjectStore = store.space.objects
        bucket, key = objects.split(path)
        data = bytearray(objects.client.get_object(Bucket=bucket, Key=key)["Body"].read())
    else:
        local = data_dir / path if not os.path.isabs(path) else Path(path)
        os.chmod(local, 0o644)
        data = bytearray(local.read_bytes())
    if overwrite is None:
        data[len(data) // 2] ^= 0xFF
    else:
        count = min(overwrite, len(data))
        data[:count] = os.urandom(count)
    if isinstance(store, IcebergStore):
        objects.client.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    else:
        local.write_bytes(bytes(data))


def remove(data_dir: Path, store: ReleaseStore, path: str) -> None:
    """Delete a file of the store."""
    if isinstance(store, IcebergStore):
        store.space.objects.delete([path])
    else:
        (data_dir / path if not os.path.isabs(path) else Path(path)).unlink()


def stored_releases(data_dir: Path, store: ReleaseStore) -> list[int]:
    """The releases whose data the store still holds: local release files; Iceberg releases whose
    every pinned snapshot the Iceberg tables still have."""
    if isinstance(store, IcebergStore):
        held = []
        for release in store.releases():
            tables = store.tables_of(release.number).values()
            if all(
                t.snapshot_id is None
                or store.space.catalog.load_table(t.identifier).snapshot_by_id(t.snapshot_id) is not None
                for t in tables
            ):
                held.append(release.number)
        return held
    return sorted(
        int(p.name[len("scdx-v") : -len(".duckdb")])
        for p in (data_dir / "versions" / "public").glob("*.duckdb")
        if not p.name.endswith(COPY_SUFFIX)  # a materialized copy holds the same release again
    )


def tagged_change(tag: int, rows: int) -> object:
    """A change making ``curated.t`` hold ``rows`` rows tagged ``tag`` and ``marts.m`` say so."""

    def change(draft: Draft) -> None:
        con = draft.connection()
        table = draft.scratch() / f"t-{tag}.parquet"
        con.execute(
            f"COPY (SELECT {int(tag)}::BIGINT AS tag, range::BIGINT AS n FROM range({int(rows)})) "
            f"TO '{table}' (FORMAT parquet)"
        )
        draft.replace_table("curated.t", [table], T_SCHEMA, f"run-{tag}")
        mart = draft.scratch() / f"m-{tag}.parquet"
        con.execute(
            f"COPY (SELECT {int(tag)}::BIGINT AS tag, count(*)::BIGINT AS rows FROM curated.t) TO '{mart}' (FORMAT parquet)"
        )
        draft.replace_table("marts.m", [mart], M_SCHEMA, None, kind="mart")

    return change


def publish_tag(store: ReleaseStore, tag: int, rows: int) -> Release | None:
    return store.publish(tagged_change(tag, rows), "data", run_ids=[f"run-{tag}"])  # type: ignore[arg-type]


def whole(con: duckdb.DuckDBPyConnection) -> tuple[int, int] | str:
    """(tag, rows) of the release ``con`` reads, or what is wrong with it."""
    tags = con.execute("SELECT min(tag), max(tag), count(*) FROM curated.t").fetchone()
    mart = con.execute("SELECT tag, rows FROM marts.m").fetchall()
    if tags is None or len(mart) != 1:
        return f"marts.m has {len(mart)} rows"
    low, high, count = tags
    if low != high or (low, count) != tuple(mart[0]):
        return f"curated.t tags {low}..{high} x{count} against marts.m {mart[0]}"
    return int(low), int(count)


def read_loop(data_dir: Path, opens: int, report: Path, ready: Path) -> None:
    """Open the tier's path ``opens`` times, each time checking that it is one whole release."""
    open_release = opener(data_dir)
    seen: set[int] = set()
    mixed: list[str] = []
    errors: list[str] = []
    done = 0
    ready.touch()
    while done < opens:
        done += 1
        try:
            with open_release() as con:
                found = whole(con)
        except (duckdb.Error, OSError, ValueError, StoreError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        if isinstance(found, str):
            mixed.append(found)
        else:
            seen.add(found[0])
    report.write_text(
        json.dumps({"opens": done, "tags": sorted(seen), "mixed": mixed, "errors": errors[:20]})
    )


def main(argv: list[str]) -> None:
    command, data_dir = argv[0], Path(argv[1])
    if command == "publish":
        publish_tag(make_store(data_dir), int(argv[2]), int(argv[3]))
    elif command == "publish-many":
        first, count = int(argv[2]), int(argv[3])
        store = make_store(data_dir, keep=int(os.environ.get("SCDX_KEEP_VERSIONS", "5")))
        for tag in range(first, first + count):
            publish_tag(store, tag, 1000 + tag)
    elif command == "materialize":
        store = make_store(data_dir, keep=int(os.environ.get("SCDX_KEEP_VERSIONS", "5")))
        assert isinstance(store, LocalStore)
        store.materialize()
    elif command == "read-loop":
        read_loop(data_dir, int(argv[2]), Path(argv[3]), Path(argv[4]))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
