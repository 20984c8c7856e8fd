"""The public partner aggregates (issue 23): generated submissions, signed and ingested into the
restricted tier, leave it only as the disclosure-controlled cells of ``curated.flow_port_weekly``
and ``curated.flow_forecast_weekly`` in the public release; the attacker of tests/test_disclosure.py
then tries the published port and forecast cells.
"""

from __future__ import annotations

import io
import logging
import os
import random
import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.cli.flow_demo import partner_keys, public_cell_counts, submit_and_ingest
from pipelines.common.settings import Settings
from pipelines.contracts import Registry, load_partners
from pipelines.disclosure import (
    COMPLEMENTARY,
    DOMINANT_PARTNER,
    TOO_FEW_PARTNERS,
    DisclosureRule,
    build_cells,
    primary_suppression,
    protect,
)
from pipelines.orchestration.inbox import Outcome, inbox_dir, ingest_inbox, submit
from pipelines.stages.flow_aggregates import (
    FORECAST_COMMODITY_WEEK,
    FORECAST_LEVELS,
    THROUGHPUT_LEVELS,
    disclosure_rule,
    forecast_weekly,
    port_weekly,
    protect_measures,
)
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_current, open_public

from .conftest import RECORDINGS, SCHEMAS
from .test_disclosure import PORTS as PORTS_CHAIN
from .test_disclosure import assert_no_attacker_pins_anything_down, bounds, contributions, scenario

PORTS, FORECASTS = "curated.flow_port_weekly", "curated.flow_forecast_weekly"
# The levels of tests/test_disclosure.py's port chain, by name.
LEVEL_DIMENSIONS = {level.name: level.dimensions for h in PORTS_CHAIN for level in (h.child, h.parent)}
MEASURES = (
    "loaded_teu_in",
    "loaded_teu_out",
    "empty_teu_in",
    "empty_teu_out",
    "vessel_arrivals",
    "dwell_days",
)


def key_of(partner_id: str) -> str:
    """A distinctive key per partner, to look for on disk and in the logs."""
    return f"flowKEY-{partner_id}-5e1c9a7d3b"


@dataclass(frozen=True)
class Exchange:
    """A data directory after the demo's partner leg, and what was logged meanwhile."""

    settings: Settings
    registry: Registry
    outcomes: list[Outcome]
    logs: str
    keys: dict[str, str]

    @property
    def layout(self) -> Layout:
        return Layout(self.settings.data_dir)


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[Exchange]:
    """Every partner's generated submission, signed with its key, ingested, aggregates published."""
    data_dir = tmp_path_factory.mktemp("flow") / "data"
    data_dir.mkdir()
    settings = Settings(data_dir=data_dir, schemas_dir=SCHEMAS, recordings_dir=RECORDINGS)
    partners = load_partners(SCHEMAS, set(registry.contracts))
    keys = {p.secret.env: key_of(p.id) for p in partners.partners}
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, key in keys.items():
                patch.setenv(name, key)
            outcomes = submit_and_ingest(settings)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    yield Exchange(settings, registry, outcomes, buffer.getvalue(), keys)


def rows(exchange: Exchange, sql: str) -> list[tuple[object, ...]]:
    with open_public(exchange.layout) as con:
        return con.execute(sql).fetchall()


def restricted(exchange: Exchange, sql: str) -> pa.Table:
    with open_current(exchange.layout, "restricted") as con:
        return con.sql(sql).to_arrow_table()


def test_the_aggregates_publish_from_the_ingested_submissions_and_add_up_to_the_partners_rows(
    exchange: Exchange,
) -> None:
    assert len(exchange.outcomes) == 17 and {o.status for o in exchange.outcomes} == {"published"}
    truth = restricted(
        exchange, "SELECT week, sum(loaded_teu_in) AS teu FROM curated.flow_port_throughput GROUP BY week"
    )
    published = dict(
        rows(exchange, f"SELECT week, loaded_teu_in FROM {PORTS} WHERE level = 'week' AND NOT suppressed")
    )
    assert len(published) == 26
    assert published == dict(
        zip(truth.column("week").to_pylist(), truth.column("teu").to_pylist(), strict=True)
    )
    # Los Angeles: three comparable terminals, so its port weeks publish (but for cover, below).
    lax = rows(
        exchange,
        f"SELECT count(*) FILTER (NOT suppressed) FROM {PORTS} WHERE level = 'port_week' AND port_code = 'USLAX'",
    )
    assert lax[0][0] >= 20
    assert public_cell_counts(exchange.settings)[FORECASTS]["published"] > 0
    # The mean dwell of a week is weighted by the loaded TEUs in.
    weighted = restricted(
        exchange,
        "SELECT week, sum(dwell_days * loaded_teu_in) / sum(loaded_teu_in) AS dwell "
        "FROM curated.flow_port_throughput GROUP BY week",
    )
    dwell = dict(rows(exchange, f"SELECT week, dwell_days FROM {PORTS} WHERE level = 'week'"))
    for week, expected in zip(
        weighted.column("week").to_pylist(), weighted.column("dwell").to_pylist(), strict=True
    ):
        assert dwell[week] == pytest.approx(expected, abs=0.0005), week


def test_a_charleston_port_week_with_two_partners_is_suppressed(exchange: Exchange) -> None:
    charleston = rows(
        exchange,
        f"SELECT DISTINCT suppression_reason, loaded_teu_in, dwell_days, contributors FROM {PORTS} "
        "WHERE level = 'port_week' AND port_code = 'USCHS'",
    )
    assert charleston == [(TOO_FEW_PARTNERS, None, None, None)]


def test_houstons_three_terminals_publish_its_port_weeks_closure_included(exchange: Exchange) -> None:
    houston = dict(
        rows(
            exchange,
            f"SELECT week, loaded_teu_in FROM {PORTS} WHERE level = 'port_week' AND port_code = 'USHOU' "
            "AND NOT suppressed AND contributors = '3-4'",
        )
    )
    assert len(houston) == 26 and houston["2024-W14"] < 0.2 * houston["2024-W13"]


def test_savannahs_dominant_terminal_gets_its_port_weeks_suppressed_as_dominant_partner(
    exchange: Exchange,
) -> None:
    savannah = rows(
        exchange,
        f"SELECT DISTINCT suppression_reason, loaded_teu_in FROM {PORTS} WHERE level = 'port_week' AND port_code = 'USSAV'",
    )
    assert savannah == [(DOMINANT_PARTNER, None)]


def test_unchanged_partner_data_makes_no_release_and_the_cli_counts_the_cells(exchange: Exchange) -> None:
    before = exchange.layout.public_db.resolve()
    result = CliRunner().invoke(
        app, ["partner", "publish-aggregates", "--data-dir", str(exchange.settings.data_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "aggregates unchanged: no release" in result.output
    counts = public_cell_counts(exchange.settings)[PORTS]
    shown = ", ".join(f"{reason} {count:,}" for reason, count in counts.items())
    assert f"{PORTS}: {shown}" in result.output
    assert exchange.layout.public_db.resolve() == before


def test_every_public_aggregate_column_and_table_is_commented(exchange: Exchange) -> None:
    for table in (PORTS, FORECASTS):
        name = table.removeprefix("curated.")
        columns = rows(
            exchange, f"SELECT column_name, comment FROM duckdb_columns() WHERE table_name = '{name}'"
        )
        assert len(columns) >= 10 and all(comment for _, comment in columns), columns
        assert rows(exchange, f"SELECT comment FROM duckdb_views() WHERE view_name = '{name}'")[0][0]


def suppressed_terminal_values(exchange: Exchange) -> set[float]:
    """Every measure of every restricted row in a terminal-week cell the public does not see."""
    hidden = rows(
        exchange, f"SELECT terminal_code, week FROM {PORTS} WHERE level = 'terminal_week' AND suppressed"
    )
    table = restricted(exchange, "SELECT * FROM curated.flow_port_throughput")
    measures = ("loaded_teu_in", "loaded_teu_out", "empty_teu_in", "empty_teu_out")
    return {
        float(row[m])
        for row in table.to_pylist()
        if (row["terminal_code"], row["week"]) in set(hidden)
        for m in measures
        if row[m] >= 1000  # small numbers occur anywhere (row counts, sizes); these are distinctive
    }


def public_files(layout: Layout) -> list[Path]:
    files = [layout.public_db.resolve()]
    for folder in (layout.root / "tables" / "public", layout.public_versions_dir):
        files += [p for p in folder.rglob("*") if p.is_file()]
    return files


def test_nothing_restricted_reaches_the_public_files_the_catalog_or_the_logs(exchange: Exchange) -> None:
    partner_ids = [p.id for p in load_partners(SCHEMAS).partners]
    secrets = [*partner_ids, *exchange.keys.values()]
    # A hidden terminal's TEUs may equal some published cell's by chance (thousands of whole
    # numbers); those say nothing about the terminal, the rest must appear nowhere.
    published = {v for row in rows(exchange, f"SELECT COLUMNS('teu|arrivals') FROM {PORTS}") for v in row}
    published |= {v for (v,) in rows(exchange, f"SELECT teu_expected FROM {FORECASTS}")}
    hidden = rows(
        exchange,
        f"SELECT count(*) FROM {PORTS} WHERE suppressed AND coalesce({', '.join(MEASURES)}) IS NOT NULL",
    )
    assert hidden == [(0,)]
    values = suppressed_terminal_values(exchange) - published
    assert len(values) > 500 and len(public_files(exchange.layout)) > 2
    for path in public_files(exchange.layout):
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, (secret, path)
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            text = repr(table.to_pylist()) + repr(table.schema.metadata)
            assert not any(secret in text for secret in secrets), path
            cells = {
                v for column in table.columns if pa.types.is_floating(column.type) for v in column.to_pylist()
            }
            assert not cells & values, path
        assert not any(struct.pack("<d", value) in data for value in values), path
    for secret in secrets:
        assert secret not in exchange.logs, secret
    assert not any(key in exchange.logs for key in exchange.keys.values())
    # The catalog keeps the restricted tier's own history (its partitions name partners; the file
    # is owner-only); what it records of the public tier names no partner, and no key is in it.
    catalog = exchange.settings.data_dir / "catalog.sqlite"
    with sqlite3.connect(catalog) as con:
        public = repr(con.execute("SELECT * FROM scdx_release_tables WHERE tier = 'public'").fetchall())
        public += repr(con.execute("SELECT * FROM scdx_releases WHERE tier = 'public'").fetchall())
    assert "flow_port_weekly" in public and "flow_forecast_weekly" in public
    assert not any(secret in public for secret in secrets)
    assert not any(key.encode() in catalog.read_bytes() for key in exchange.keys.values())


def test_the_demo_keys_live_only_in_the_processes_environment_while_it_runs(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    partners = load_partners(SCHEMAS, set(registry.contracts))
    for partner in partners.partners:
        monkeypatch.delenv(partner.secret.env, raising=False)
    # A key an operator set is kept: the demo only fills in the missing ones.
    monkeypatch.setenv(partners.partners[0].secret.env, key_of("operator"))
    with partner_keys(partners):
        keys = [p.key() for p in partners.partners[1:]]
        assert partners.partners[0].key() == key_of("operator").encode()
        assert len(set(keys)) == len(partners.partners) - 1 >= 10 and all(len(key) >= 40 for key in keys)
    assert [p.secret.env for p in partners.partners if p.secret.env in os.environ] == [
        partners.partners[0].secret.env
    ]


# The adversary on what was published ----------------------------------------------------------

# Weeks share no cell (every level groups by week), so the attacker on a few weeks is exact: the
# Houston closure (14, 15), the Los Angeles surge (21) and an ordinary week (5).
ATTACKED_WEEKS = ("2024-W05", "2024-W14", "2024-W15", "2024-W21")


def attacked(table: pa.Table, measure: str, dimensions: tuple[str, ...]) -> pa.Table:
    """Rows of the attacked weeks as the attacker's helpers read them: dimensions, partner, value."""
    chosen = table.filter(pa.compute.is_in(table.column("week"), pa.array(ATTACKED_WEEKS)))
    return chosen.select([*dimensions, "partner_id"]).append_column(
        "value", pa.compute.cast(chosen.column(measure), pa.float64())
    )


def public_cells(
    exchange: Exchange, table: str, measure: str, dimensions: tuple[str, ...], where: str = "TRUE"
) -> pa.Table:
    weeks = ", ".join(f"'{week}'" for week in ATTACKED_WEEKS)
    with open_public(exchange.layout) as con:
        return con.sql(
            f"SELECT level, {', '.join(dimensions)}, {measure}::DOUBLE AS value, suppression_reason "
            f"FROM {table} WHERE week IN ({weeks}) AND {where} ORDER BY ALL"
        ).to_arrow_table()


@pytest.mark.parametrize("measure", ["loaded_teu_in", "empty_teu_out", "vessel_arrivals"])
def test_no_partner_can_pin_down_a_suppressed_port_cell_or_another_partners_value(
    exchange: Exchange, measure: str
) -> None:
    rule = disclosure_rule(exchange.registry.get("flow_port_throughput"))
    dimensions = THROUGHPUT_LEVELS[0].child.dimensions
    throughput = restricted(exchange, "SELECT * FROM curated.flow_port_throughput")
    regions = {"USLAX": "West", "USSAV": "East", "USCHS": "East", "USHOU": "Gulf"}
    throughput = throughput.append_column(
        "region", pa.array([regions[p] for p in throughput.column("port_code").to_pylist()])
    )
    public = public_cells(exchange, PORTS, measure, dimensions)
    found = assert_no_attacker_pins_anything_down(
        attacked(throughput, measure, dimensions), public, THROUGHPUT_LEVELS, rule
    )
    assert any(bound.what.startswith("suppressed port_week") for bound in found)


def test_no_shipper_can_pin_down_a_suppressed_forecast_cell_or_another_shippers_value(
    exchange: Exchange,
) -> None:
    # Every level of one horizon: commodity groups at a port, ports, national commodity groups and
    # the week, the two margins of the port x commodity table the attacker combines.
    rule = disclosure_rule(exchange.registry.get("flow_shipper_forecasts"))
    dimensions = FORECAST_COMMODITY_WEEK.dimensions
    forecasts = restricted(exchange, "SELECT * FROM curated.flow_shipper_forecasts WHERE horizon_weeks = 2")
    public = public_cells(exchange, FORECASTS, "teu_expected", dimensions, "horizon_weeks = 2")
    assert COMPLEMENTARY in public.column("suppression_reason").to_pylist()
    levels = set(public.column("level").to_pylist())
    assert levels == {"commodity_week", "port_week", "commodity_national_week", "week"}
    found = assert_no_attacker_pins_anything_down(
        attacked(forecasts, "teu_expected", dimensions), public, FORECAST_LEVELS, rule
    )
    assert any(bound.what.startswith("suppressed commodity_week") for bound in found)
    assert any(bound.what.startswith("suppressed commodity_national_week") for bound in found)


# LAX week 1: terminal T1 has two partners, T2, T3 and T4 three each (tests/test_disclosure.py's port).
ONE_SENSITIVE_TERMINAL = {
    "lax_pier_a_terminal": {"T1": 4000, "T2": 3000, "T3": 5000, "T4": 6000},
    "lax_harbor_gateway": {"T1": 3500, "T2": 3000, "T3": 4500, "T4": 5500},
    "lax_bay_container": {"T2": 3000, "T3": 4000, "T4": 5000},
}


def test_a_port_with_exactly_one_suppressed_terminal_gets_a_complementary_suppression(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings, registry: Registry
) -> None:
    header = "port_code,terminal_code,week,loaded_teu_in,loaded_teu_out,empty_teu_in,empty_teu_out,vessel_arrivals,dwell_days"
    for partner, terminals in ONE_SENSITIVE_TERMINAL.items():
        monkeypatch.setenv(f"SCDX_PARTNER_{partner.upper()}_KEY", key_of(partner))
        lines = [
            f"USLAX,{t},2024-W01,{teu},{teu // 2},{teu // 20},{teu // 3},{teu // 1000},3.5"
            for t, teu in terminals.items()
        ]
        path = tmp_path / f"{partner}.csv"
        path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
        submit(inbox_dir(settings), partner, "flow_port_throughput", path, key_of(partner).encode())
    partners = load_partners(SCHEMAS, set(registry.contracts))
    assert {o.status for o in ingest_inbox(settings, registry, partners)} == {"published"}
    with open_public(Layout(settings.data_dir)) as con:
        terminals = dict(
            con.execute(
                f"SELECT terminal_code, suppression_reason FROM {PORTS} WHERE level = 'terminal_week'"
            ).fetchall()
        )
        port = con.execute(f"SELECT loaded_teu_in FROM {PORTS} WHERE level = 'port_week'").fetchone()
    assert terminals == {"T1": TOO_FEW_PARTNERS, "T2": COMPLEMENTARY, "T3": None, "T4": None}
    assert port == (46500.0,)


# One week of one horizon's forecasts (a seeded random scenario the attacker broke).
TWO_MARGINS = [
    ("USLAX", "87", "P3", 30.0),
    ("USLAX", "94", "P5", 31.0),
    ("USLAX", "94", "P2", 2.0),
    ("USLAX", "85", "P5", 19.0),
    ("USSAV", "87", "P0", 29.0),
    ("USSAV", "94", "P0", 20.0),
    ("USSAV", "40", "P3", 81.0),
    ("USSAV", "40", "P4", 29.0),
    ("USHOU", "87", "P3", 12.0),
    ("USHOU", "94", "P4", 73.0),
    ("USHOU", "94", "P1", 6.0),
]


def test_national_commodity_totals_published_beside_port_totals_are_audited_as_one_table() -> None:
    port, code, partner, value = (list(column) for column in zip(*TWO_MARGINS, strict=True))
    forecasts = pa.table(
        {
            "horizon_weeks": pa.array([1] * len(port), pa.int32()),
            "port_code": port,
            "commodity_system": ["HS2"] * len(port),
            "commodity_code": code,
            "week": ["2024-W10"] * len(port),
            "partner_id": partner,
            "teu_expected": value,
        }
    )
    contributions = forecasts.rename_columns({"teu_expected": "value"})
    ports, national = FORECAST_LEVELS[1], FORECAST_LEVELS[2]
    # Port totals and national commodity totals published by separate calls: P0 (who ships 87 and
    # 94 through Savannah) reads off the suppressed national total of chapter 40, as neither call
    # sees the other margin.
    both = pa.concat_tables(
        [
            protect(contributions, (ports,)),
            protect(contributions, (national,)).filter(pc.field("level") == "commodity_national_week"),
        ],
        promote_options="default",
    )
    pinned = [b for b in bounds(contributions, both, FORECAST_LEVELS, "P0") if b.high - b.low <= 1e-6]
    assert [(b.what, b.true) for b in pinned] == [
        ("suppressed commodity_national_week (1, 'HS2', '40', '2024-W10')", 110.0)
    ]
    # Published as one table, the audit sees both margins and nothing is pinned down.
    public = forecast_weekly(forecasts, DisclosureRule()).rename_columns({"teu_expected": "value"})
    assert "commodity_national_week" in public.column("level").to_pylist()
    assert_no_attacker_pins_anything_down(contributions, public, FORECAST_LEVELS, DisclosureRule())


@pytest.mark.parametrize("seed", range(4))
def test_suppressing_a_cell_when_any_measure_is_keeps_every_measures_sensitive_cells_covered(
    seed: int,
) -> None:
    # Two measures whose partners' values (and so dominant partners) differ cell by cell; each
    # measure is attacked on the union pattern, a cell counting as sensitive when it is for that
    # measure (a cell hidden for the other measure's sake passed this one's rule).
    rng = random.Random(seed)
    rows = scenario(rng, crowded=seed % 2 == 0)
    second = [float(rng.randint(1, 100) * (15 if rng.random() < 0.15 else 1)) for _ in rows]
    table = contributions(rows).rename_columns({"value": "first"}).append_column("second", pa.array(second))
    dimensions = ("port_code", "terminal", "week")
    public = protect_measures(table, PORTS_CHAIN, dimensions, ("first", "second"), DisclosureRule())
    assert len(set(public.column("suppression_reason").to_pylist())) >= 3
    for measure in ("first", "second"):
        one = table.select([*dimensions, "partner_id"]).append_column("value", table.column(measure))
        sensitive = primary_suppression(build_cells(one, PORTS_CHAIN), DisclosureRule())
        reasons = [
            sensitive.get(
                (row["level"], tuple(row[d] for d in LEVEL_DIMENSIONS[row["level"]])), COMPLEMENTARY
            )
            if row["suppressed"]
            else None
            for row in public.to_pylist()
        ]
        attacked = public.select(["level", *dimensions]).append_column("value", public.column(measure))
        attacked = attacked.append_column("suppression_reason", pa.array(reasons, pa.string()))
        assert_no_attacker_pins_anything_down(one, attacked, PORTS_CHAIN, DisclosureRule())


def test_a_partner_without_dwell_hides_the_mean_dwell_of_its_cells_but_none_of_their_teus(
    registry: Registry,
) -> None:
    # Three terminals of three partners each at Los Angeles; partner c measured no dwell at T3.
    shares = {
        "T1": {"a": 300, "b": 250, "c": 200},
        "T2": {"a": 280, "b": 260, "c": 240},
        "T3": {"a": 320, "b": 300, "c": 270},
    }
    rows = [(t, p, teu) for t, by in shares.items() for p, teu in by.items()]
    terminal, partner, teu = (list(column) for column in zip(*rows, strict=True))
    throughput = pa.table(
        {
            "partner_id": partner,
            "port_code": ["USLAX"] * len(rows),
            "terminal_code": terminal,
            "week": ["2024-W10"] * len(rows),
            **{m: pa.array(teu, pa.float64()) for m in MEASURES[:4]},
            "vessel_arrivals": [3] * len(rows),
            "dwell_days": [None if (t, p) == ("T3", "c") else 4.0 for t, p, _ in rows],
        }
    )
    public = port_weekly(throughput, registry, DisclosureRule())
    cells = {(r["level"], r["terminal_code"]): r for r in public.to_pylist()}
    # The numerator's own pattern still hides a sibling (T1) for T3's sake: safe, if more than needed.
    assert [k for k, r in cells.items() if r["suppressed"]] == [("terminal_week", "T1")]
    assert cells[("terminal_week", "T2")]["dwell_days"] == 4.0
    assert cells[("terminal_week", "T3")]["dwell_days"] is None
    assert cells[("terminal_week", "T3")]["loaded_teu_in"] == 890.0
    assert (
        cells[("port_week", None)]["dwell_days"] is None
        and cells[("port_week", None)]["loaded_teu_in"] == 2420.0
    )
