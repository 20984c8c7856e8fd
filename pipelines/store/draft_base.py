"""What a draft release does the same way in both stores: the tables it holds, which it changed,
the runs recorded with it, its DuckDB connection with a view per table, and a scratch directory
for the files a change writes. Each store's draft says how a table becomes a view (``_view``) and
how files become a table (``replace_partitions``, ``replace_table``)."""

from __future__ import annotations

import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import duckdb

from pipelines.common.settings import duckdb_config
from pipelines.common.sql import quote_name
from pipelines.store import TableInfo
from pipelines.store.segments import drop_relation


class _Table(Protocol):
    @property
    def name(self) -> str: ...

    def info(self) -> TableInfo: ...

    def state(self) -> dict[str, Any]: ...


TableT = TypeVar("TableT", bound=_Table)


class DraftTables(ABC, Generic[TableT]):
    """The bookkeeping of a draft release over tables of type ``TableT``."""

    def __init__(
        self, tier: str, number: int, tables: dict[str, TableT], stack: ExitStack, work_dir: Path
    ) -> None:
        self.tier = tier
        self.number = number
        self._tables = tables
        self._changed: set[str] = set()
        self._new_files: list[dict[str, Any]] = []
        self._stack = stack
        self._work_dir = work_dir
        self._con: duckdb.DuckDBPyConnection | None = None
        self._scratch: Path | None = None
        self.runs: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []

    def record_run(self, values: Mapping[str, Any], details: Mapping[str, Any]) -> None:
        """Record this run with the release, in the catalog transaction that commits it."""
        self.runs.append((values, details))

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

    @abstractmethod
    def _view(self, table: TableT) -> None:
        """``table`` as a view of the draft's connection (once the connection exists)."""
        ...

    def scratch(self) -> Path:
        if self._scratch is None:
            self._work_dir.mkdir(parents=True, exist_ok=True)
            self._scratch = Path(tempfile.mkdtemp(prefix=f"draft-{self.tier}-", dir=self._work_dir))
            self._stack.callback(shutil.rmtree, self._scratch, True)
        return self._scratch

    def drop_table(self, name: str) -> None:
        if self._tables.pop(name, None) is not None:
            self._changed.add(name)
            if self._con is not None:
                drop_relation(self._con, name)

    @property
    def changed(self) -> list[str]:
        """The tables this draft changes, by name."""
        return sorted(self._changed)

    @property
    def stored_tables(self) -> dict[str, TableT]:
        """The draft's tables as the store keeps them."""
        return self._tables

    @property
    def new_files(self) -> list[dict[str, Any]]:
        """The files this draft wrote or adopted, as the catalog records them."""
        return self._new_files

    def changed_since(self, current: Mapping[str, TableT]) -> None:
        """Count as changed every table that differs from ``current``: a rollback's draft starts
        from an older release, and what it changes is what differs from the current one."""
        names = set(current) | set(self._tables)
        self._changed = {
            n
            for n in names
            if n not in current or n not in self._tables or current[n].state() != self._tables[n].state()
        }
