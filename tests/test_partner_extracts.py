"""Per-partner extracts: a partner's own rows of the restricted tier and the public FLOW
aggregates, as its own owner-only DuckDB file that holds no byte of another partner's rows."""

from __future__ import annotations

import stat
import struct
from collections.abc import Iterator
from contextlib import ExitStack, closing

import duckdb
import pytest
from typer.testing import CliRunner

from devtools.local_s3 import S3Endpoint
from pipelines.cli import app
from pipelines.common.errors import UsageError
from pipelines.common.settings import Settings
from pipelines.contracts import ContractError, PartnerRegistry, load_partners, load_registry
from pipelines.orchestration.extracts import extract_path, write_partner_extract
from pipelines.orchestration.inbox import inbox_dir, ingest_inbox, submit
from pipelines.replay.flow_generate import SHIPPERS, TERMINALS, write_submissions
from pipelines.store import Column, Draft, TableSchema
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_current, open_store

from .conftest import RECORDINGS, SCHEMAS, postgres_database

THROUGHPUT, FORECASTS = "flow_port_throughput", "flow_shipper_forecasts"
# Three terminals of one port (so the port's week is a publishable aggregate), a terminal of
# another port whose code BCT the third Los Angeles terminal shares, and two shippers.
SUBMITTERS = {
    "lax_pier_a_terminal": THROUGHPUT,
    "lax_harbor_gateway": THROUGHPUT,
    "lax_bay_container": THROUGHPUT,
    "hou_barbours_ops": THROUGHPUT,
    "shipper_alpha_retail": FORECASTS,
    "shipper_gamma_energy": FORECASTS,
}
PIER_A, ALPHA = "lax_pier_a_terminal", "shipper_alpha_retail"
WEEKLY = TableSchema(
    (
        Column("level", "VARCHAR", "Aggregation level of the cell."),
        Column("port_code", "VARCHAR", "UN/LOCODE of the port."),
        Column("week", "VARCHAR", "ISO week."),
        Column("loaded_teu_in", "DOUBLE", "Loaded TEUs discharged, all contributing partners."),
        Column("suppressed", "BOOLEAN", "Whether the cell is withheld."),
        Column("contributors", "VARCHAR", "Band of contributing partners."),
    ),
    "Weekly container throughput by port (disclosure-controlled).",
)


def _key(partner: str) -> str:
    return f"{partner}-key-5e1f"


@pytest.fixture(scope="module", params=["local", "iceberg"])
def exchange(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, PartnerRegistry]]:
    """A data dir where six partners submitted the generator's data through the inbox, and a
    public release holding a FLOW aggregate (and a table that is not FLOW's); the releases in the
    local store, or in Iceberg (on the local S3 API, its catalog a fresh PostgreSQL database)."""
    root = tmp_path_factory.mktemp("exchange")
    settings = Settings(data_dir=root / "data", schemas_dir=SCHEMAS, recordings_dir=RECORDINGS)
    settings.data_dir.mkdir()
    write_submissions(root / "generated")
    registry = load_registry(SCHEMAS)
    with pytest.MonkeyPatch.context() as env, ExitStack() as stack:
        if request.param == "iceberg":
            s3: S3Endpoint = request.getfixturevalue("s3_endpoint")
            for name, value in s3.environment().items():
                env.setenv(name, value)
            env.setenv("SCDX_STORE_KIND", "iceberg")
            env.setenv("SCDX_DATA_URL", f"s3://{s3.create_bucket()}/scdx")
            env.setenv("SCDX_CATALOG_URL", next(stack.enter_context(closing(postgres_database()))))
        for partner in TERMINALS | SHIPPERS:
            env.setenv(f"SCDX_PARTNER_{partner.upper()}_KEY", _key(partner))
        partners = load_partners(SCHEMAS, set(registry.contracts))
        for partner, dataset in SUBMITTERS.items():
            path = root / "generated" / dataset / f"{partner}.csv"
            submit(inbox_dir(settings), partner, dataset, path, _key(partner).encode())
        outcomes = ingest_inbox(settings, registry, partners)
        assert [o.status for o in outcomes] == ["published"] * len(SUBMITTERS)
        _publish_public_aggregate(settings)
        yield settings, partners


def _publish_public_aggregate(settings: Settings) -> None:
    """Beside the FLOW aggregates the inbox pass published, a public table that is not FLOW's (an
    extract must leave it out)."""

    def change(draft: Draft) -> None:
        other = draft.scratch() / "other.parquet"
        draft.connection().execute(f"COPY (SELECT 'USLAX' AS port_code) TO '{other}' (FORMAT parquet)")
        draft.replace_table(
            "curated.port_list",
            [other],
            TableSchema((Column("port_code", "VARCHAR", "A port."),), "Ports."),
            None,
        )

    assert open_store(Layout(settings.data_dir), "public").publish(change, "data") is not None


def _public(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    with open_current(Layout(settings.data_dir), "public") as public:
        return _rows(public, sql)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> list[tuple[object, ...]]:
    return con.execute(sql, list(params)).fetchall()


def _extract(settings: Settings, partners: PartnerRegistry, partner: str) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(write_partner_extract(settings, partner, partners)), read_only=True)


def test_a_partners_extract_holds_exactly_its_own_rows_and_the_public_flow_aggregates(
    exchange: tuple[Settings, PartnerRegistry],
) -> None:
    settings, partners = exchange
    with open_current(Layout(settings.data_dir), "restricted") as restricted:
        own = _rows(
            restricted, "SELECT * FROM curated.flow_port_throughput WHERE partner_id = ? ORDER BY ALL", PIER_A
        )
    with open_current(Layout(settings.data_dir), "public") as public:
        weekly = _rows(public, "SELECT * FROM curated.flow_port_weekly ORDER BY ALL")
    with _extract(settings, partners, PIER_A) as con:
        tables = _rows(con, "SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL")
        assert tables == [
            ("curated", "flow_forecast_weekly"),
            ("curated", THROUGHPUT),
            ("curated", "flow_port_weekly"),
            ("meta", "extract"),
        ]
        assert len(own) == 26
        assert _rows(con, f"SELECT * FROM curated.{THROUGHPUT} ORDER BY ALL") == own
        assert _rows(con, "SELECT * FROM curated.flow_port_weekly ORDER BY ALL") == weekly
        assert _rows(con, "SELECT partner_id FROM meta.extract") == [(PIER_A,)]
        comments = dict(_rows(con, "SELECT table_name, comment FROM duckdb_tables()"))
        public_comment = _public(
            settings, "SELECT comment FROM duckdb_views() WHERE view_name = 'flow_port_weekly'"
        )
        assert [(comments["flow_port_weekly"],)] == public_comment
        assert f"Only the rows of partner {PIER_A}" in str(comments[THROUGHPUT])
        uncommented = _rows(
            con,
            "SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal AND coalesce(comment, '') = ''",
        )
        assert uncommented == []


def test_a_shippers_extract_holds_its_forecasts_and_no_terminals_rows(
    exchange: tuple[Settings, PartnerRegistry],
) -> None:
    settings, partners = exchange
    with open_current(Layout(settings.data_dir), "restricted") as restricted:
        own = _rows(restricted, f"SELECT * FROM curated.{FORECASTS} WHERE partner_id = ? ORDER BY ALL", ALPHA)
    with _extract(settings, partners, ALPHA) as con:
        assert _rows(con, f"SELECT * FROM curated.{FORECASTS} ORDER BY ALL") == own
        assert len(own) == 25 * 8 * 2 * 2  # issued weeks x horizons x ports x commodities
        assert THROUGHPUT not in {t for (t,) in _rows(con, "SELECT table_name FROM duckdb_tables()")}


def _distinctive(con: duckdb.DuckDBPyConnection, table: str, partner: str) -> tuple[set[str], set[float]]:
    """Another partner's terminal codes and its TEU and dwell values of at least 100 (doubles)."""
    columns = [
        c
        for (c,) in _rows(
            con,
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND data_type = 'DOUBLE'",
            table,
        )
    ]
    values = {
        float(v)
        for c in columns
        for (v,) in _rows(
            con, f"SELECT {c} FROM curated.{table} WHERE partner_id = ? AND {c} >= 100", partner
        )
    }
    codes = set()
    if table == THROUGHPUT:
        codes = {
            str(c)
            for (c,) in _rows(
                con, f"SELECT DISTINCT terminal_code FROM curated.{table} WHERE partner_id = ?", partner
            )
        }
    return codes, values


def _decoded(con: duckdb.DuckDBPyConnection) -> tuple[set[str], set[float]]:
    """Every text and double value the extract holds, decoded by DuckDB."""
    texts: set[str] = set()
    doubles: set[float] = set()
    for schema, table, column, kind in _rows(
        con, "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() WHERE NOT internal"
    ):
        values = {
            v for (v,) in _rows(con, f'SELECT DISTINCT "{column}" FROM {schema}.{table}') if v is not None
        }
        if kind == "VARCHAR":
            texts |= {str(v) for v in values}
        elif kind == "DOUBLE":
            doubles |= {float(v) for v in values}
    return texts, doubles


@pytest.mark.parametrize(("partner", "table"), [(PIER_A, THROUGHPUT), (ALPHA, FORECASTS)])
def test_no_byte_of_another_partners_rows_is_in_the_extract(
    exchange: tuple[Settings, PartnerRegistry], partner: str, table: str
) -> None:
    settings, partners = exchange
    path = write_partner_extract(settings, partner, partners)
    raw = path.read_bytes()
    with duckdb.connect(str(path), read_only=True) as con:
        texts, doubles = _decoded(con)
    own_codes, own_values = set(), set()
    with open_current(Layout(settings.data_dir), "restricted") as restricted:
        own_codes, own_values = _distinctive(restricted, table, partner)
        others = {o: _distinctive(restricted, SUBMITTERS[o], o) for o in SUBMITTERS if o != partner}
    # The search can find what is there: the file is stored uncompressed, so each of the
    # partner's own values is in its bytes as DuckDB writes a DOUBLE (little-endian IEEE 754).
    assert own_values and all(struct.pack("<d", v) in raw for v in own_values)
    assert all(code.encode() in raw for code in own_codes)
    for other, (codes, values) in others.items():
        assert other not in texts and other.encode() not in raw, other
        # A code another partner shares with this one (or the public tables) is not its secret.
        for code in codes - own_codes - texts:
            assert code.encode() not in raw, (other, code)
        secret = values - own_values - doubles
        assert len(secret) >= 10, other  # enough of its values to search for
        assert not [v for v in secret if struct.pack("<d", v) in raw], other
        assert not values & (doubles - own_values), other


def test_the_extract_is_owner_only_and_replaced_whole(exchange: tuple[Settings, PartnerRegistry]) -> None:
    settings, partners = exchange
    path = write_partner_extract(settings, PIER_A, partners)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    assert path == settings.data_dir / "partners" / PIER_A / f"scdx_{PIER_A}.duckdb"
    reader = duckdb.connect(str(path), read_only=True)
    try:
        (before,) = reader.execute("SELECT made_at FROM meta.extract").fetchone() or (None,)
        # Written aside and renamed over: the open reader keeps the whole file it opened.
        inode = path.stat().st_ino
        assert write_partner_extract(settings, PIER_A, partners) == path
        assert path.stat().st_ino != inode
        assert reader.execute("SELECT made_at FROM meta.extract").fetchone() == (before,)
        assert reader.execute(f"SELECT count(*) FROM curated.{THROUGHPUT}").fetchone() == (26,)
    finally:
        reader.close()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_unknown_partner_is_refused_with_a_clear_message(
    exchange: tuple[Settings, PartnerRegistry],
) -> None:
    settings, partners = exchange
    with pytest.raises(ContractError, match="unknown partner 'sav_phantom'"):
        write_partner_extract(settings, "sav_phantom", partners)
    assert not extract_path(settings, "sav_phantom").parent.exists()
    result = CliRunner().invoke(
        app, ["partner", "extract", "sav_phantom", "--data-dir", str(settings.data_dir)]
    )
    # The CLI's main() prints the one-line message of an ScdxError and exits with its code.
    assert isinstance(result.exception, ContractError) and result.exception.exit_code == 2
    assert "unknown partner 'sav_phantom'" in str(result.exception)


def test_the_cli_writes_one_partners_extract_or_every_partners(
    exchange: tuple[Settings, PartnerRegistry],
) -> None:
    settings, _ = exchange
    runner = CliRunner()
    one = runner.invoke(
        app, ["partner", "extract", "lax_harbor_gateway", "--data-dir", str(settings.data_dir)]
    )
    assert one.exit_code == 0, one.output
    assert f"wrote {extract_path(settings, 'lax_harbor_gateway')}" in one.output
    every = runner.invoke(app, ["partner", "extract", "--all", "--data-dir", str(settings.data_dir)])
    assert every.exit_code == 0, every.output
    for partner in TERMINALS | SHIPPERS:
        assert extract_path(settings, partner).is_file(), partner
    with duckdb.connect(str(extract_path(settings, "sav_river_terminal")), read_only=True) as con:
        # A partner that submitted nothing has its table, empty, and the public aggregates.
        assert con.execute(f"SELECT count(*) FROM curated.{THROUGHPUT}").fetchone() == (0,)
        published = _public(settings, "SELECT count(*) FROM curated.flow_port_weekly")
        assert con.execute("SELECT count(*) FROM curated.flow_port_weekly").fetchall() == published
    neither = runner.invoke(app, ["partner", "extract", "--data-dir", str(settings.data_dir)])
    assert isinstance(neither.exception, UsageError) and "name one partner, or --all" in str(
        neither.exception
    )
