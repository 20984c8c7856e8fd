"""What the store conformance suite does to a release store, in this process or in a child process.

A release of the suite holds two tables that must always agree: ``curated.t`` (``rows`` rows, each
tagged with the release's tag) and ``marts.m`` (one row: that tag and that count), as a curated
table and the mart built from it must. A reader that ever sees them disagree has seen half a
release. Run as a script, it publishes or reads in a child process (so the suite can kill it):

    python -m tests.store_helpers publish <data dir> <tag> <rows>
    python -m tests.store_helpers publish-many <data dir> <first tag> <count>
    python -m tests.store_helpers read-loop <data dir> <opens> <report.json> <ready file>

The store comes from ``SCDX_STORE_KIND`` (``local``) with ``SCDX_CATALOG_URL`` as the catalog.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import duckdb

from pipelines.store import Column, Draft, Release, ReleaseStore, TableSchema
from pipelines.store.catalog import open_catalog
from pipelines.store.layout import Layout
from pipelines.store.local import LocalStore

T_SCHEMA = TableSchema(
    (Column("tag", "BIGINT", "Release tag of the row."), Column("n", "BIGINT", "Row number.")),
    "Conformance table.",
)
M_SCHEMA = TableSchema(
    (Column("tag", "BIGINT", "Release tag."), Column("rows", "BIGINT", "Rows of curated.t.")), "Its mart."
)


def make_store(data_dir: Path, keep: int = 10, tier: str = "public") -> ReleaseStore:
    """The store under test, as the environment names it."""
    kind = os.environ.get("SCDX_STORE_KIND", "local")
    if kind != "local":
        raise ValueError(f"unknown store kind {kind!r}")
    layout = Layout(data_dir)
    return LocalStore(data_dir, layout.store(tier), open_catalog(data_dir), keep)


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
    link = Layout(data_dir).store("public").link
    seen: set[int] = set()
    mixed: list[str] = []
    errors: list[str] = []
    done = 0
    ready.touch()
    while done < opens:
        done += 1
        try:
            with duckdb.connect(str(link), read_only=True) as con:
                found = whole(con)
        except duckdb.Error as exc:
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
    elif command == "read-loop":
        read_loop(data_dir, int(argv[2]), Path(argv[3]), Path(argv[4]))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
