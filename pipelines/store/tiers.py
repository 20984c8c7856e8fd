"""The stores of a data directory: which tier a dataset publishes to, its release store and the
operational catalog, and read-only connections to a tier's current release (what analysts get)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from typing import Any

import duckdb

from pipelines.common.sql import quote_identifier
from pipelines.contracts import Contract
from pipelines.store import ReleaseStore, StoreError
from pipelines.store.catalog import Catalog, open_catalog
from pipelines.store.kinds import open_release_store, store_kind
from pipelines.store.layout import Layout
from pipelines.store.materialize import Materialized

_RELATIONS = """
SELECT schema_name, view_name, comment FROM duckdb_views() WHERE NOT internal
UNION ALL
SELECT schema_name, table_name, comment FROM duckdb_tables()
"""


def release_tables(con: duckdb.DuckDBPyConnection, schemas: Sequence[str]) -> dict[str, str]:
    """The tables of the release ``con`` reads in ``schemas`` ("schema.name" -> its comment):
    views over Parquet as a release is published, DuckDB tables once it is materialized."""
    wanted = set(schemas)
    return {
        f"{schema}.{name}": str(comment or "")
        for schema, name, comment in sorted(con.execute(_RELATIONS).fetchall())
        if schema in wanted
    }


def tier_of(contract: Contract) -> str:
    """The access tier a dataset publishes to: its classification."""
    return contract.classification


def catalog_of(layout: Layout) -> Catalog:
    """The operational catalog of a data directory (SCDX_CATALOG_URL, else its SQLite file)."""
    return open_catalog(layout.root)


def open_store(layout: Layout, tier: str = "public", keep_versions: int = 10) -> ReleaseStore:
    """The release store of a tier, of the kind ``SCDX_STORE_KIND`` names (local by default)."""
    return open_release_store(layout.root, tier, keep_versions)


def materialize_current(layout: Layout, tier: str = "public", keep_versions: int = 10) -> Materialized | None:
    """Write the tier's current release once more as DuckDB tables and point its path there
    (pipelines.store.materialize). None when nothing is published, or when the tier's store is
    Iceberg: there analysts read the tables through an engine, not one DuckDB file."""
    from pipelines.store.local import LocalStore

    store = open_store(layout, tier, keep_versions)
    if not isinstance(store, LocalStore):
        return None
    for _ in range(3):  # a release published while the copy was written: copy that one instead
        done = store.materialize()
        if done is not None or store.current() is None:
            return done
    return None


def is_published(layout: Layout, tier: str = "public") -> bool:
    """Whether the tier has a current release."""
    if store_kind() == "local":
        return layout.store(tier).link.exists()
    return open_store(layout, tier).current() is not None


@contextmanager
def open_current(
    layout: Layout, tier: str = "public", release: int | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the tier's current release (what an analyst gets), or to the kept
    release number ``release``."""
    if store_kind() == "local" and release is None:
        # The release file the tier's path points at: no catalog to open for a read.
        link = layout.store(tier).link
        if not link.exists():
            raise StoreError(f"nothing published yet in the {tier} tier ({link})")
        con = duckdb.connect(str(link), read_only=True)
    else:
        con = open_store(layout, tier).connect(release)
    try:
        yield con
    finally:
        con.close()


def open_public(
    layout: Layout, release: int | None = None
) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """A read-only connection to the current public release, or to release ``release`` (a context manager)."""
    return open_current(layout, "public", release)


def last_published(layout: Layout, contract: Contract, field_name: str) -> date | None:
    """The greatest value of ``field_name`` in the dataset's current curated table, or None."""
    if not is_published(layout, tier_of(contract)):
        return None
    with open_current(layout, tier_of(contract)) as con:
        if f"curated.{contract.dataset}" not in release_tables(con, ["curated"]):
            return None
        row = con.execute(
            f"SELECT max({quote_identifier(field_name)}) FROM curated.{quote_identifier(contract.dataset)}"
        ).fetchone()
    value: Any = row[0] if row else None
    return value if isinstance(value, date) else None
