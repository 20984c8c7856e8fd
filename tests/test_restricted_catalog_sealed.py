"""The operational catalog names no partner: the restricted tier's partition keys are sealed in it.

Partners' generated submissions go the real way (signed, submitted to the inbox, ingested into the
restricted tier, public aggregates published); the catalog, SQLite file or PostgreSQL database,
is then read as an outsider would read it, and as the store reads it (keys opened in memory)."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.cli.flow_demo import submit_and_ingest
from pipelines.common.settings import Settings
from pipelines.contracts import Registry, load_partners
from pipelines.store.catalog import default_url
from pipelines.store.catalog_tables import release_tables
from pipelines.store.layout import Layout
from pipelines.store.sealing import CatalogKeyError
from pipelines.store.tiers import catalog_of, open_current, open_store

from .conftest import RECORDINGS, SCHEMAS, postgres_database

THROUGHPUT = "curated.flow_port_throughput"


@pytest.fixture(scope="module")
def partner_ids(registry: Registry) -> list[str]:
    ids = [p.id for p in load_partners(SCHEMAS, set(registry.contracts)).partners]
    assert len(ids) >= 5
    return ids


def _exchange(data_dir: Path) -> Settings:
    """A data directory after every partner's generated submission was signed, submitted and ingested."""
    data_dir.mkdir(parents=True)
    settings = Settings(data_dir=data_dir, schemas_dir=SCHEMAS, recordings_dir=RECORDINGS)
    outcomes = submit_and_ingest(settings)
    assert {o.status for o in outcomes} == {"published"}, [(o.submission_id, o.status) for o in outcomes]
    return settings


@pytest.fixture
def sqlite_exchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("SCDX_CATALOG_URL", raising=False)
    return _exchange(tmp_path / "data")


def _catalog_text(url: str) -> list[tuple[str, str, str]]:
    """Every text value of every table in the catalog database: (table, column, value)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        with engine.connect() as db:
            return [
                (table.name, column, value)
                for table in tables.sorted_tables
                for row in db.execute(sa.select(table)).mappings()
                for column, value in row.items()
                if isinstance(value, str)
            ]
    finally:
        engine.dispose()


def _assert_names_no_partner(url: str, partner_ids: list[str]) -> None:
    values = _catalog_text(url)
    assert {table for table, _, _ in values} >= {"scdx_release_tables", "scdx_runs", "scdx_files"}
    named = [(t, c, p) for t, c, v in values for p in partner_ids if p in v]
    assert named == []


def _assert_store_reads_partner_keys(settings: Settings, partner_ids: list[str]) -> None:
    """In memory the restricted tier's table still holds one partition per partner and week."""
    table = open_store(Layout(settings.data_dir), "restricted").tables()[THROUGHPUT]
    keys = " ".join(key for keys in table.runs.values() for key in keys)
    assert sum(p in keys for p in partner_ids) >= 5, keys[:300]


def test_the_sqlite_catalog_file_holds_no_partner_id_once_partner_submissions_are_ingested(
    sqlite_exchange: Settings, partner_ids: list[str]
) -> None:
    data_dir = sqlite_exchange.data_dir
    catalog_bytes = b"".join(p.read_bytes() for p in sorted(data_dir.glob("catalog.sqlite*")))
    assert [p for p in partner_ids if p.encode() in catalog_bytes] == []
    _assert_names_no_partner(default_url(data_dir), partner_ids)
    _assert_store_reads_partner_keys(sqlite_exchange, partner_ids)


def test_the_catalog_key_is_an_owner_only_file_in_the_restricted_tiers_owner_only_directory(
    sqlite_exchange: Settings,
) -> None:
    key = Layout(sqlite_exchange.data_dir).catalog_key
    assert key.parent == Layout(sqlite_exchange.data_dir).restricted_db.parent
    assert stat.S_IMODE(key.stat().st_mode) == 0o400
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    Fernet(key.read_bytes())  # a well-formed Fernet key


def test_the_public_tiers_release_tables_stay_plain_json(sqlite_exchange: Settings) -> None:
    rows = catalog_of(Layout(sqlite_exchange.data_dir)).rows_of(release_tables)
    public = [r for r in rows if r["tier"] == "public"]
    restricted = [r for r in rows if r["tier"] == "restricted"]
    assert public and all(r["state"].startswith("{") and r["runs"].startswith("{") for r in public)
    assert restricted and all(r["state"].startswith("sealed:") for r in restricted)


@pytest.fixture
def postgres_exchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, str]]:
    databases = postgres_database()
    url = next(databases)
    monkeypatch.setenv("SCDX_CATALOG_URL", url)
    yield _exchange(tmp_path / "data"), url
    next(databases, None)


def test_a_postgresql_catalog_holds_no_partner_id_once_partner_submissions_are_ingested(
    postgres_exchange: tuple[Settings, str], partner_ids: list[str]
) -> None:
    settings, url = postgres_exchange
    assert not (settings.data_dir / "catalog.sqlite").exists()
    _assert_names_no_partner(url, partner_ids)
    _assert_store_reads_partner_keys(settings, partner_ids)


def _throughput(settings: Settings, number: int | None = None) -> list[tuple[object, ...]]:
    store = open_store(Layout(settings.data_dir), "restricted")
    con = store.connect(number)
    try:
        return con.execute(f"SELECT * FROM {THROUGHPUT} ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_a_restricted_rollback_from_the_sealed_catalog_restores_the_exact_rows(
    sqlite_exchange: Settings,
) -> None:
    layout = Layout(sqlite_exchange.data_dir)
    releases = open_store(layout, "restricted").releases()
    last_throughput = max(r.number for r in releases if THROUGHPUT in r.changed)
    target = last_throughput - 1  # the release before the last partner throughput was published
    before = _throughput(sqlite_exchange, target)
    assert before and before != _throughput(sqlite_exchange)
    # From the catalog alone: the current release's file is gone.
    layout.store("restricted").version_path(releases[-1].number).unlink()

    result = CliRunner().invoke(
        app, ["publish", "rollback", str(target), "--restricted", "--data-dir", str(layout.root)]
    )

    assert result.exit_code == 0, result.output
    assert f"restores the tables and marts of release {target}" in result.output
    with open_current(layout, "restricted") as con:
        assert con.execute(f"SELECT * FROM {THROUGHPUT} ORDER BY ALL").fetchall() == before
    store = open_store(layout, "restricted")
    assert store.tables()[THROUGHPUT].runs == store.tables(target)[THROUGHPUT].runs


def test_a_missing_catalog_key_fails_naming_the_key_file_and_is_never_replaced(
    sqlite_exchange: Settings,
) -> None:
    layout = Layout(sqlite_exchange.data_dir)
    key = layout.catalog_key
    key.rename(key.with_name("catalog.key.lost"))

    with pytest.raises(CatalogKeyError, match=re.escape(f"catalog key {key} is missing")):
        open_store(layout, "restricted").tables()
    rolled = CliRunner().invoke(app, ["publish", "rollback", "--restricted", "--data-dir", str(layout.root)])
    assert isinstance(rolled.exception, CatalogKeyError) and str(key) in str(rolled.exception)
    assert not key.exists()  # a publish never makes a new key over rows sealed with the old one
    # The public tier needs no key.
    assert THROUGHPUT not in open_store(layout, "public").tables()


def test_a_wrong_catalog_key_fails_naming_the_key_file(sqlite_exchange: Settings) -> None:
    key = Layout(sqlite_exchange.data_dir).catalog_key
    os.chmod(key, 0o600)
    key.write_bytes(Fernet.generate_key())

    with pytest.raises(
        CatalogKeyError, match=re.escape(f"catalog key {key} does not open release")
    ) as raised:
        open_store(Layout(sqlite_exchange.data_dir), "restricted").tables()
    assert key.read_text() not in str(raised.value)
