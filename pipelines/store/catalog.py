"""The operational catalog: runs, releases and the files of each release, outside the published data.

A SQLite file under the data directory by default (nothing to start), or PostgreSQL when
``SCDX_CATALOG_URL`` names one (several machines share it). SQLAlchemy Core speaks to both; the
schema is created on first use. What it holds:

- ``scdx_runs``: every run, recorded when it starts (``running``, with its process and host) and
  updated to its terminal status; its drift, unit conversions and files in their own tables;
- ``scdx_contracts``: every contract version (and file checksum) a run was made under;
- ``scdx_releases``: every release of a tier (number, time, kind, runs, what changed, row counts);
- ``scdx_release_tables``: the tables of each release and how the store finds their data;
- ``scdx_files``: every data file a store wrote (checksum, size, modification time), so damage is
  found before a release is built on it and unreferenced files can be removed;
- ``scdx_release_copies``: the current release's materialized copy (DuckDB tables), if made.

Lists and documents are JSON text, so SQLite and PostgreSQL hold them alike.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipelines.common.errors import ScdxError
from pipelines.store.catalog_tables import (
    contracts,
    data_files,
    drift,
    metadata,
    release_tables,
    releases,
    run_files,
    runs,
    unit_conversions,
)
from pipelines.store.layout import Layout
from pipelines.store.locks import file_lock
from pipelines.store.sealing import TierKey, has_sealed_rows, open_row, seal_row


def _write_run(db: Connection, values: Mapping[str, Any], details: Mapping[str, Any]) -> None:
    row = {
        **values,
        "pid": values.get("pid") or os.getpid(),
        "host": values.get("host") or socket.gethostname(),
    }
    updated = db.execute(runs.update().where(runs.c.run_id == row["run_id"]).values(**row)).rowcount
    if not updated:
        db.execute(runs.insert().values(**row))
    for table, key in ((drift, "drift"), (unit_conversions, "unit_conversions"), (run_files, "files")):
        if key not in details:
            continue
        db.execute(table.delete().where(table.c.run_id == row["run_id"]))
        rows = [{"run_id": row["run_id"], "dataset": row["dataset"], **item} for item in details[key]]
        if rows:
            db.execute(table.insert(), rows)


class CatalogError(ScdxError):
    """The operational catalog cannot be reached or read; the message names it (never a password)."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def dumps(value: Any) -> str:
    """JSON text of a catalog document (dates as ISO strings)."""
    return json.dumps(value, default=_jsonable, sort_keys=True)


def loads(text: str | None, default: Any = None) -> Any:
    """A catalog document back from its JSON text."""
    return default if text is None else json.loads(text)


def default_url(data_dir: Path) -> str:
    """The SQLite catalog of a data directory: ``<data dir>/catalog.sqlite``."""
    return f"sqlite:///{(data_dir / 'catalog.sqlite').resolve()}"


def shown_url(url: str) -> str:
    """The catalog URL as messages show it: no password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unreadable catalog URL>"


_engines: dict[str, Engine] = {}


def _engine(url: str) -> Engine:
    engine = _engines.get(url)
    if engine is None:
        if url.startswith("sqlite"):
            path = sa.engine.make_url(url).database
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": 60}, poolclass=sa.pool.NullPool)

            @sa.event.listens_for(engine, "connect")
            def _sqlite_pragmas(connection: Any, _record: Any) -> None:
                # WAL: readers never wait for the writer; a run and a publish write from different
                # processes, each waiting its turn up to the timeout.
                cursor = connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.close()

        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
        try:
            _create_tables(engine, url)
        except sa.exc.SQLAlchemyError as exc:
            raise CatalogError(
                f"catalog {shown_url(url)} cannot be opened: {exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}"
            ) from None
        if url.startswith("sqlite:///"):
            database = sa.engine.make_url(url).database
            if database and os.path.exists(database):
                os.chmod(database, 0o600)  # restricted runs are in it too
        _engines[url] = engine
    return engine


# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises creating the tables.
_CREATE_LOCK_KEY = 0x5CD0CA7A


def _create_tables(engine: Engine, url: str) -> None:
    """Create the catalog's tables that do not exist yet, one process at a time: two workers
    starting on an empty data root would otherwise both find a table missing and the second
    would fail creating it ("table ... already exists")."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if not path:  # in memory: nobody else can see it
            metadata.create_all(engine)
            return
        with file_lock(Path(f"{path}.create.lock"), timeout_s=120, holder="creating the catalog's tables"):
            metadata.create_all(engine)
        return
    with engine.begin() as connection:
        # Held until this transaction ends; a second process waits, then finds the tables made.
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_CREATE_LOCK_KEY)))
        metadata.create_all(connection)


class Catalog:
    """The operational catalog at ``url`` (SQLite or PostgreSQL). ``keys``: the tiers whose release
    tables' partition keys are sealed (pipelines.store.sealing), each with its key file."""

    def __init__(self, url: str, keys: Mapping[str, TierKey] | None = None) -> None:
        self.url = url
        self.engine = _engine(url)
        self.keys = dict(keys or {})

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except sa.exc.OperationalError as exc:
            raise CatalogError(f"catalog {shown_url(self.url)}: {exc.orig}") from None

    # --- runs -----------------------------------------------------------------------------------

    def record_run(
        self, values: Mapping[str, Any], details: Mapping[str, Sequence[Mapping[str, Any]]]
    ) -> None:
        """Insert or update a run and replace its drift, unit conversions and files (one transaction).

        ``details``: ``drift``, ``unit_conversions`` and ``files`` lists (each replaced when given).
        """
        with self.begin() as db:
            _write_run(db, values, details)

    def run(self, run_id: str) -> dict[str, Any] | None:
        with self.begin() as db:
            found = db.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
        return dict(found) if found else None

    def runs(
        self, dataset: str | None = None, status: str | None = None, tier: str | None = None
    ) -> list[dict[str, Any]]:
        """Runs, newest first, optionally of one dataset, status or tier."""
        query = sa.select(runs).order_by(runs.c.started_at.desc())
        if dataset is not None:
            query = query.where(runs.c.dataset == dataset)
        if status is not None:
            query = query.where(runs.c.status == status)
        if tier is not None:
            query = query.where(runs.c.tier == tier)
        with self.begin() as db:
            return [dict(r) for r in db.execute(query).mappings()]

    def abandon_dead_runs(self, alive: Any) -> list[str]:
        """Runs still ``running`` on this host whose process is gone become ``abandoned``."""
        host = socket.gethostname()
        with self.begin() as db:
            candidates = db.execute(
                sa.select(runs.c.run_id, runs.c.pid).where(runs.c.status == "running", runs.c.host == host)
            ).all()
            dead = [run_id for run_id, pid in candidates if pid is not None and not alive(pid)]
            for run_id in dead:
                db.execute(
                    runs.update()
                    .where(runs.c.run_id == run_id, runs.c.status == "running")
                    .values(
                        status="abandoned",
                        finished_at=datetime.now(UTC),
                        error="the process running it ended without recording an outcome (killed)",
                    )
                )
        return dead

    def record_files(self, run_id: str, dataset: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """A run's raw responses and staged files (replacing what an earlier attempt recorded)."""
        with self.begin() as db:
            db.execute(run_files.delete().where(run_files.c.run_id == run_id))
            if rows:
                db.execute(run_files.insert(), [{"run_id": run_id, "dataset": dataset, **r} for r in rows])

    def record_contract(self, values: Mapping[str, Any]) -> None:
        with self.begin() as db:
            key = (
                (contracts.c.dataset == values["dataset"])
                & (contracts.c.version == values["version"])
                & (contracts.c.sha256 == values["sha256"])
            )
            if db.execute(sa.select(contracts.c.dataset).where(key)).first() is None:
                db.execute(contracts.insert().values(**values))

    def contract_sha256(self, dataset: str, version: str) -> str | None:
        """The checksum of the latest recorded file of a contract version."""
        with self.begin() as db:
            found = db.execute(
                sa.select(contracts.c.sha256)
                .where(contracts.c.dataset == dataset, contracts.c.version == version)
                .order_by(contracts.c.recorded_at.desc())
                .limit(1)
            ).first()
        return None if found is None else str(found[0])

    # --- releases -------------------------------------------------------------------------------

    def releases(self, tier: str) -> list[dict[str, Any]]:
        """Every release of the tier, oldest first."""
        with self.begin() as db:
            return [
                dict(r)
                for r in db.execute(
                    sa.select(releases).where(releases.c.tier == tier).order_by(releases.c.number)
                ).mappings()
            ]

    def release(self, tier: str, number: int) -> dict[str, Any] | None:
        with self.begin() as db:
            found = (
                db.execute(sa.select(releases).where(releases.c.tier == tier, releases.c.number == number))
                .mappings()
                .first()
            )
        return dict(found) if found else None

    def latest_release(self, tier: str) -> dict[str, Any] | None:
        with self.begin() as db:
            found = (
                db.execute(
                    sa.select(releases)
                    .where(releases.c.tier == tier)
                    .order_by(releases.c.number.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return dict(found) if found else None

    def release_tables(self, tier: str, number: int) -> list[dict[str, Any]]:
        """The tables of a release, their sealed values opened (the one place they are read)."""
        key = self.keys.get(tier)
        with self.begin() as db:
            return [
                open_row(key, dict(r))
                for r in db.execute(
                    sa.select(release_tables)
                    .where(release_tables.c.tier == tier, release_tables.c.number == number)
                    .order_by(release_tables.c.table_name)
                ).mappings()
            ]

    def next_release_number(self, tier: str) -> int:
        with self.begin() as db:
            (top,) = db.execute(
                sa.select(sa.func.max(releases.c.number)).where(releases.c.tier == tier)
            ).one()
        return int(top or 0) + 1

    def commit_release(
        self,
        release: Mapping[str, Any],
        tables: Sequence[Mapping[str, Any]],
        runs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]] = (),
        files: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Record a release, its tables, the data files it added and the runs that made it, in one
        transaction: the release's commit point. A number taken meanwhile is an error. The tables'
        partition keys are sealed here when the tier has a key (the one place they are written)."""
        tier = release["tier"]
        key = self.keys.get(tier)
        try:
            with self.begin() as db:
                if key is not None:
                    key.create(rows_sealed=has_sealed_rows(db, tier))
                db.execute(releases.insert().values(**release))
                if tables:
                    db.execute(
                        release_tables.insert(),
                        [seal_row(key, {"tier": tier, "number": release["number"], **t}) for t in tables],
                    )
                if files:
                    db.execute(data_files.insert(), [{"removed": False, **f} for f in files])
                for values, details in runs:
                    _write_run(db, values, details)
        except sa.exc.IntegrityError:
            raise CatalogError(
                f"release {release['number']} of the {release['tier']} tier was recorded by another publisher"
            ) from None

    def set_kept(self, tier: str, kept: Sequence[int]) -> None:
        with self.begin() as db:
            db.execute(
                releases.update()
                .where(releases.c.tier == tier)
                .values(kept=releases.c.number.in_(list(kept)))
            )

    # --- files ----------------------------------------------------------------------------------

    def add_files(self, tier: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        with self.begin() as db:
            db.execute(data_files.insert(), [{"tier": tier, "removed": False, **r} for r in rows])

    def files(self, tier: str, paths: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """The recorded files of a tier (of ``paths`` only, when given), by path."""
        query = sa.select(data_files).where(data_files.c.tier == tier, data_files.c.removed.is_(False))
        with self.begin() as db:
            found = {r["path"]: dict(r) for r in db.execute(query).mappings()}
        return found if paths is None else {p: found[p] for p in paths if p in found}

    def mark_removed(self, tier: str, paths: Sequence[str]) -> None:
        if not paths:
            return
        with self.begin() as db:
            db.execute(
                data_files.update()
                .where(data_files.c.tier == tier, data_files.c.path.in_(list(paths)))
                .values(removed=True)
            )

    # --- what analysts see as meta.* ------------------------------------------------------------

    def rows_of(self, table: sa.Table, where: Any = None) -> list[dict[str, Any]]:
        query = sa.select(table)
        if where is not None:
            query = query.where(where)
        with self.begin() as db:
            return [dict(r) for r in db.execute(query).mappings()]


def open_catalog(data_dir: Path, url: str | None = None) -> Catalog:
    """The catalog of a data directory: ``url`` (``SCDX_CATALOG_URL``) or the SQLite file in it;
    the restricted tier's partition keys sealed with the key in that tier's directory."""
    keys = {"restricted": TierKey("restricted", Layout(data_dir).catalog_key)}
    return Catalog(url or os.environ.get("SCDX_CATALOG_URL") or default_url(data_dir), keys)
