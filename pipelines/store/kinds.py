"""Which release store a deployment uses: ``SCDX_STORE_KIND`` = ``local`` (the default: Parquet
files and a DuckDB file per release under the data directory) or ``iceberg`` (Iceberg tables in a
pyiceberg SQL catalog on the PostgreSQL of ``SCDX_CATALOG_URL``, data under ``SCDX_DATA_URL`` /
``SCDX_WAREHOUSE_URL`` on an object store; docs/scaling.md)."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.store import ReleaseStore, StoreError
from pipelines.store.catalog import open_catalog
from pipelines.store.layout import Layout

STORE_KINDS = ("local", "iceberg")


def store_kind() -> str:
    """The store kind the environment names (``SCDX_STORE_KIND``), ``local`` when unset."""
    kind = os.environ.get("SCDX_STORE_KIND", "local") or "local"
    if kind not in STORE_KINDS:
        raise StoreError(f"SCDX_STORE_KIND={kind!r} is not a store kind; use one of {', '.join(STORE_KINDS)}")
    return kind


def open_release_store(data_dir: Path, tier: str = "public", keep: int = 10) -> ReleaseStore:
    """The release store of a tier, of the kind the environment names."""
    if store_kind() == "iceberg":
        from pipelines.store.iceberg import IcebergStore

        return IcebergStore.from_environment(data_dir, tier, keep)
    from pipelines.store.local import LocalStore

    return LocalStore(data_dir, Layout(data_dir).store(tier), open_catalog(data_dir), keep)
