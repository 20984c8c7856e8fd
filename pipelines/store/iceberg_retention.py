"""Retention for the Iceberg store: expire the snapshots no kept release pins, drop the Iceberg
tables no kept release names, and delete the data and manifest files nothing still references
(pyiceberg expires snapshots in table metadata but leaves their files on the object store)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pipelines.store.iceberg_draft import IcebergSpace, snapshot_files

if TYPE_CHECKING:
    from pyiceberg.table import Table

log = logging.getLogger("scdx.store")


def _live_files(table: Table, snapshot_ids: set[int]) -> set[str]:
    """Every file the given snapshots read: manifest lists, manifests, data files."""
    live: set[str] = set()
    for snapshot_id in snapshot_ids:
        snapshot = table.snapshot_by_id(snapshot_id)
        if snapshot is None:
            continue
        live.add(snapshot.manifest_list)
        live.update(m.manifest_path for m in snapshot.manifests(table.io))
        live.update(path for path, _, _ in snapshot_files(table, snapshot_id))
    return live


def _tables_of_tier(space: IcebergSpace) -> list[str]:
    prefix = f"{space.namespace}_{space.tier}_"
    names: list[str] = []
    for namespace in space.catalog.list_namespaces():
        if ".".join(namespace).startswith(prefix):
            names.extend(".".join(identifier) for identifier in space.catalog.list_tables(namespace))
    return names


def expire_unreferenced(space: IcebergSpace, pinned: Mapping[str, set[int]]) -> list[str]:
    """Keep only the snapshots in ``pinned`` (Iceberg identifier -> snapshot ids kept releases pin)
    and the files they read; returns the data files removed."""
    from pyiceberg.exceptions import NoSuchTableError

    removed: list[str] = []
    for identifier in _tables_of_tier(space):
        try:
            table = space.catalog.load_table(identifier)
        except (NoSuchTableError, OSError, ValueError) as exc:
            log.warning("retention: %s cannot be loaded, left as it is: %s", identifier, exc)
            continue
        location = table.location().rstrip("/")
        keep = pinned.get(identifier, set())
        if keep:
            if table.metadata.current_snapshot_id not in keep:
                # Main is on a snapshot no kept release pins (a killed publisher's): back to the
                # newest pinned one, so the other can be expired.
                newest = max(keep, key=lambda s: table.snapshot_by_id(s).sequence_number or 0)  # type: ignore[union-attr]
                with table.manage_snapshots() as snapshots:
                    snapshots.set_current_snapshot(newest)
            expired = [s.snapshot_id for s in table.snapshots() if s.snapshot_id not in keep]
            if expired:
                table.maintenance.expire_snapshots().by_ids(expired).commit()
                table = space.catalog.load_table(identifier)
            live = _live_files(table, keep)
        else:
            # No kept release names this table (every release that had it is gone): drop it.
            space.catalog.drop_table(identifier)
            live = set()
        stored = [
            uri
            for uri in space.objects.list(f"{location}/")
            if (uri.endswith(".avro") or "/data/" in uri or not keep) and uri not in live
        ]
        space.objects.delete(stored)
        removed.extend(uri for uri in stored if uri.endswith(".parquet"))
    return removed
