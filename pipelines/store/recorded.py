"""What both release stores read from the operational catalog in the same way: a tier's releases,
the tables of one, and rolling back to one (a new release over a kept release's tables). A store
says how it keeps a table (``_tables_of``) and how it restores a release (``_restore``); the rest
is here once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Protocol

from pipelines.store import Release, StoreError, TableInfo
from pipelines.store.catalog import Catalog, loads


class _StoredTable(Protocol):
    def info(self) -> TableInfo: ...


class CatalogReleases(ABC):
    """The catalog-side half of a ``ReleaseStore``; subclasses keep ``tier`` and ``catalog``."""

    tier: str
    catalog: Catalog

    @abstractmethod
    def _tables_of(self, number: int) -> Mapping[str, _StoredTable]:
        """The tables release ``number`` holds, as the store keeps them."""
        ...

    @abstractmethod
    def _restore(self, number: int) -> Release | None:
        """Publish a release whose tables are release ``number``'s (the store's publish, given a
        base and what it restores)."""
        ...

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

    def tables(self, number: int | None = None) -> dict[str, TableInfo]:
        if number is None:
            current = self.current()
            if current is None:
                return {}
            number = current.number
        return {name: t.info() for name, t in self._tables_of(number).items()}

    def rollback(self, to: int | None = None) -> Release:
        """A new release whose tables are release ``to``'s (default: the data release before the
        current one); refused, naming the kept ones, when ``to`` is no longer kept."""
        releases = self.catalog.releases(self.tier)
        if not releases:
            raise StoreError(f"nothing published in the {self.tier} tier; nothing to roll back")
        latest = releases[-1]["number"]
        if to is None:
            earlier = [r["number"] for r in releases if r["number"] < latest and r["kind"] != "compaction"]
            if not earlier:
                raise StoreError(f"no release before {latest} in the {self.tier} tier")
            to = earlier[-1]
        target = next((r for r in releases if r["number"] == to), None)
        if target is None:
            raise StoreError(f"release {to} of the {self.tier} tier does not exist (latest: {latest})")
        if not target["kept"]:
            kept = ", ".join(str(r["number"]) for r in releases if r["kept"]) or "none"
            raise StoreError(f"release {to} of the {self.tier} tier is no longer kept (kept: {kept})")
        release = self._restore(to)
        if release is None:  # a rollback always makes a release; say so rather than return None
            raise StoreError(f"rollback to release {to} of the {self.tier} tier made no release")
        return release
