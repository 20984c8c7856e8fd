"""The stores of a data directory: which tier a dataset publishes to, its release store and the
operational catalog, and read-only connections to a tier's current release (what analysts get)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from typing import Any

import duckdb

from pipelines.common.sql import quote_identifier
from pipelines.contracts import Contract
from pipelines.store import StoreError
from pipelines.store.catalog import Catalog, open_catalog
from pipelines.store.layout import Layout
from pipelines.store.local import LocalStore


def tier_of(contract: Contract) -> str:
    """The access tier a dataset publishes to: its classification."""
    return contract.classification


def catalog_of(layout: Layout) -> Catalog:
    """The operational catalog of a data directory (SCDX_CATALOG_URL, else its SQLite file)."""
    return open_catalog(layout.root)


def open_store(layout: Layout, tier: str = "public", keep_versions: int = 10) -> LocalStore:
    """The release store of a tier under the data directory."""
    return LocalStore(layout.root, layout.store(tier), catalog_of(layout), keep_versions)


@contextmanager
def open_current(layout: Layout, tier: str = "public") -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the tier's current release (what an analyst gets)."""
    link = layout.store(tier).link
    if not link.exists():
        raise StoreError(f"nothing published yet in the {tier} tier ({link})")
    con = duckdb.connect(str(link), read_only=True)
    try:
        yield con
    finally:
        con.close()


def open_public(layout: Layout) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """A read-only connection to the current public release (a context manager)."""
    return open_current(layout, "public")


def last_published(layout: Layout, contract: Contract, field_name: str) -> date | None:
    """The greatest value of ``field_name`` in the dataset's current curated table, or None."""
    link = layout.store(tier_of(contract)).link
    if not link.exists():
        return None
    with open_current(layout, tier_of(contract)) as con:
        exists = con.execute(
            "SELECT 1 FROM duckdb_views() WHERE schema_name = 'curated' AND view_name = ?", [contract.dataset]
        ).fetchone()
        if not exists:
            return None
        row = con.execute(
            f"SELECT max({quote_identifier(field_name)}) FROM curated.{quote_identifier(contract.dataset)}"
        ).fetchone()
    value: Any = row[0] if row else None
    return value if isinstance(value, date) else None
