"""USGS U.S. salient statistics and net import reliance (usgs_mineral_salient): the salient tables'
and Figure 2's quirks on the recorded MCS 2024 files, the refusal of the cobalt "salient" file that
holds world production, the whole refresh, ingest-file, and both USGS DAGs under dag.test()."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.orchestration.refresh import ingest_file, refresh_dataset
from pipelines.replay.server import ReplayServer
from pipelines.stages.normalize import DriftRejected, NormalizeStats
from pipelines.stages.quarantine import QuarantinedError
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

from .conftest import AS_OF, RECORDINGS, catalog_runs
from .test_airflow import DAGS, _last_json, _python, airflow_env  # noqa: F401 (airflow_env is a fixture)
from .test_usgs_production import USGS_FILES, download, landed, normalized, published

SALIENT_FILES = [
    "mcs2024-lithi_salient.csv",
    "mcs2024-graph_salient.csv",
    "mcs2024-nicke_salient.csv",
    "mcs2024-manga_salient.csv",
    "mcs2024-raree_salient.csv",
    "MCS2024_Fig2_Net_Import_Reliance.csv",
]
FIGURE_2 = "MCS2024_Fig2_Net_Import_Reliance.csv"
COBALT_SALIENT = "mcs2024-cobal_salient.csv"


@pytest.fixture(scope="module")
def salient(registry: Registry) -> Contract:
    return registry.get("usgs_mineral_salient")


def rows_of(
    name: str, contract: Contract, registry: Registry, tmp_path: Path, stats: NormalizeStats | None = None
) -> list[dict[str, Any]]:
    page = landed((USGS_FILES / name).read_bytes(), name, tmp_path)
    rows: list[dict[str, Any]] = normalized(page, contract, registry, stats).to_pylist()
    return rows


def pick(rows: list[dict[str, Any]], **wanted: object) -> dict[str, Any]:
    (row,) = [r for r in rows if all(r[k] == v for k, v in wanted.items())]
    return row


# --- normalize on the real files -----------------------------------------------------------------


def test_usgs_lithium_salient_table_becomes_long_form_with_the_published_values(
    salient: Contract, registry: Registry, replay: ReplayServer, tmp_path: Path
) -> None:
    name = "mcs2024-lithi_salient.csv"
    rows = normalized(
        landed(download(replay, salient, name).content, name, tmp_path), salient, registry
    ).to_pylist()
    assert len(rows) == 5 * 7  # 2019-2023 x production, imports, exports, consumption, price, employment, NIR
    production = pick(rows, year=2023, measure="production")
    assert (production["quantity_t"], production["withheld"], production["published_value"]) == (
        None,
        True,
        "W",
    )
    imports = pick(rows, year=2023, measure="imports")
    assert (imports["quantity_t"], imports["unit"], imports["form"], imports["source_column"]) == (
        3400.0,
        "t",
        "all",
        "Imports_t",
    )
    assert pick(rows, year=2022, measure="price")["price_usd"] == 68_100.0
    assert pick(rows, year=2022, measure="price")["unit"] == "USD/t"
    assert pick(rows, year=2023, measure="employment")["employees"] == 70
    assert pick(rows, year=2023, measure="apparent_consumption")["withheld"] is True
    reliance = pick(rows, year=2020, measure="net_import_reliance")
    assert (
        reliance["net_import_reliance_pct"],
        reliance["value_qualifier"],
        reliance["published_value"],
        reliance["unit"],
    ) == (50.0, "more_than", ">50", "percent")
    assert {(r["edition"], r["source_table"], r["commodity"], r["mineral"]) for r in rows} == {
        ("MCS2024", "salient", "Lithium", "Lithium")
    }


def test_usgs_net_import_reliance_keeps_the_published_text_the_bound_and_its_qualifier(
    salient: Contract, registry: Registry, tmp_path: Path
) -> None:
    rows = rows_of(FIGURE_2, salient, registry, tmp_path)
    assert len(rows) == 63 and {r["year"] for r in rows} == {2023}
    lithium = pick(rows, commodity="LITHIUM")
    assert (
        lithium["net_import_reliance_pct"],
        lithium["value_qualifier"],
        lithium["published_value"],
        lithium["mineral"],
        lithium["major_import_sources"],
        lithium["import_sources_period"],
    ) == (25.0, "more_than", ">25", "Lithium", "Argentina, Chile, China, Russia", "2019-2022")
    silicon = pick(rows, commodity="SILICON, metal and ferrosilicon")
    assert (silicon["net_import_reliance_pct"], silicon["value_qualifier"], silicon["mineral"]) == (
        50.0,
        "less_than",
        None,
    )
    cobalt = pick(rows, commodity="COBALT")
    assert (cobalt["net_import_reliance_pct"], cobalt["value_qualifier"]) == (67.0, None)
    rare_earths = pick(rows, commodity="RARE EARTHS, compounds and metals")
    assert (rare_earths["mineral"], rare_earths["published_value"]) == ("Rare earths", ">95")
    assert pick(rows, commodity="GRAPHITE (NATURAL)")["mineral"] == "Graphite"
    assert pick(rows, commodity="CEMENT")["mineral"] is None  # not a critical mineral
    assert pick(rows, commodity="ARSENIC, all forms")["note"] == (
        "Descending order of import share. Imports from Hong Kong are included with China"
    )
    assert {r["source_table"] for r in rows} == {"net_import_reliance"}
    # "E" (net exporter) in the rare-earths salient table: no number, the qualifier says why.
    rare = rows_of("mcs2024-raree_salient.csv", salient, registry, tmp_path / "raree")
    concentrate = pick(rare, year=2023, measure="net_import_reliance", form="Concentrate")
    assert (
        concentrate["net_import_reliance_pct"],
        concentrate["value_qualifier"],
        concentrate["published_value"],
        concentrate["unit"],
    ) == (None, "net_exporter", "E", "percent")
    # USGS labels these columns "_t"; they are percentages.
    compounds = pick(rare, year=2023, measure="net_import_reliance", form="Compounds-Metals")
    assert (compounds["net_import_reliance_pct"], compounds["source_column"]) == (
        95.0,
        "NIR_Compounds-Metals_t",
    )


def test_usgs_manganese_salient_kilotons_are_converted_and_NA_is_null(
    salient: Contract, registry: Registry, tmp_path: Path
) -> None:
    stats = NormalizeStats()
    rows = rows_of("mcs2024-manga_salient.csv", salient, registry, tmp_path, stats)
    ore = pick(rows, year=2023, measure="imports", form="Ore")  # Imports_Ore_kt: 500
    assert (ore["quantity_t"], ore["unit"], ore["published_value"]) == (500_000.0, "t", "500")
    assert pick(rows, year=2019, measure="apparent_consumption", form="all")["quantity_t"] == 748_000.0
    assert pick(rows, year=2022, measure="reported_consumption", form="ferro")["quantity_t"] == 339_000.0
    shipments = pick(rows, year=2023, measure="shipments", form="Ore")
    assert (shipments["quantity_t"], shipments["published_value"], shipments["withheld"]) == (
        None,
        "NA",
        False,
    )
    price = pick(rows, year=2019, measure="price")  # Price_CN_CIF_dt is a price: not a mass, not converted
    assert (price["price_usd"], price["unit"], price["form"]) == (5.63, "USD/t", "CN_CIF")
    (conversion,) = stats.conversions
    assert (conversion.field, conversion.from_unit, conversion.factor, conversion.rows) == (
        "quantity_t",
        "kt",
        1000.0,
        78,  # 16 kt columns x 5 years, less the two NA cells of 2023
    )


def test_usgs_nickel_repeated_price_column_is_per_ton_then_per_pound(
    salient: Contract, registry: Registry, tmp_path: Path
) -> None:
    rows = rows_of("mcs2024-nicke_salient.csv", salient, registry, tmp_path)
    prices = sorted(
        (r["unit"], r["price_usd"]) for r in rows if r["year"] == 2022 and r["measure"] == "price"
    )
    assert prices == [("USD/lb", 11.71), ("USD/t", 25_815.0)]
    # "Less than ½ unit" of ore imported in 2022: an upper bound of half a ton.
    ores = pick(rows, year=2022, measure="imports", form="Ores")
    assert (ores["quantity_t"], ores["value_qualifier"], ores["published_value"]) == (
        0.5,
        "less_than",
        "Less than ½ unit",
    )
    assert pick(rows, year=2023, measure="production", form="Mine")["quantity_t"] == 17_000.0
    assert pick(rows, year=2023, measure="production", form="Refinery")["withheld"] is True


def test_usgs_rare_earths_thousands_separator_and_per_kilogram_prices(
    salient: Contract, registry: Registry, tmp_path: Path
) -> None:
    rows = rows_of("mcs2024-raree_salient.csv", salient, registry, tmp_path)
    consumption = pick(rows, year=2022, measure="apparent_consumption")  # "10,200"
    assert (consumption["quantity_t"], consumption["form"]) == (10_200.0, "Compounds-Metals")
    neodymium = pick(rows, year=2022, measure="price", form="Nd2O3")
    assert (neodymium["price_usd"], neodymium["unit"]) == (134.0, "USD/kg")
    assert pick(rows, year=2023, measure="employment")["employees"] == 450


def test_usgs_unknown_salient_column_is_left_to_the_drift_policy_and_the_rest_loads(
    salient: Contract, registry: Registry, tmp_path: Path
) -> None:
    body = (USGS_FILES / "mcs2024-graph_salient.csv").read_bytes()
    lines = body.split(b"\r\n")
    widened = [lines[0] + b",Recycling_t", *(line + b",12" for line in lines[1:6]), *lines[6:]]
    stats = NormalizeStats()
    page = landed(b"\r\n".join(widened), "mcs2024-graph_salient.csv", tmp_path)
    rows = normalized(page, salient, registry, stats).to_pylist()
    assert len(rows) == 5 * 8
    (event,) = stats.drift.values()
    assert (event.field, event.kind, event.action) == ("Recycling_t", "new_field", "warned")


# --- the cobalt "salient" file -------------------------------------------------------------------


def test_usgs_cobalt_salient_file_holding_world_production_is_rejected_naming_file_and_mismatch(
    salient: Contract, registry: Registry, tmp_path: Path
) -> None:
    page = landed((USGS_FILES / COBALT_SALIENT).read_bytes(), COBALT_SALIENT, tmp_path)
    with pytest.raises(DriftRejected) as caught:
        normalized(page, salient, registry)
    message = str(caught.value)
    assert message.startswith("usgs_mineral_salient: ")
    assert (
        "mcs2024-cobal_salient.csv holds world mine production and reserves by country "
        "(columns Source, Country, Type, Prod_t_est_2021, Prod_t_est_2022" in message
    )
    assert "not U.S. salient statistics (DataSource, Commodity, Year" in message
    assert caught.value.event.kind == "missing_field"


def test_usgs_cobalt_salient_file_brought_in_by_hand_is_quarantined_and_nothing_published_is_lost(
    salient: Contract,
    registry: Registry,
    settings: Settings,
    layout: Layout,
    replay: ReplayServer,
    tmp_path: Path,
) -> None:
    refresh_dataset(salient, registry, settings, replay.url, as_of=AS_OF)
    before = published(layout, salient.dataset)
    in_hand = tmp_path / COBALT_SALIENT
    shutil.copyfile(USGS_FILES / COBALT_SALIENT, in_hand)
    with pytest.raises(QuarantinedError) as caught:
        ingest_file(salient, registry, settings, in_hand)
    assert "mcs2024-cobal_salient.csv holds world mine production" in str(caught.value)
    assert published(layout, salient.dataset) == before and len(before) == 408
    runs = [(r["status"], r["rows_published"], r["error"]) for r in catalog_runs(layout)]
    with open_public(layout) as con:
        cobalt_rows = con.execute(
            "SELECT count(*) FROM curated.usgs_mineral_salient WHERE source_table = 'salient' AND mineral = 'Cobalt'"
        ).fetchone()
    assert [r[0] for r in runs] == ["published", "quarantined"]
    assert "Prod_t_est_2021" in runs[1][2] and cobalt_rows == (0,)
    report = json.loads((Path(caught.value.quarantine_path) / "drift.json").read_text())
    assert report["drift"][-1]["kind"] == "missing_field" and "mcs2024-cobal_salient.csv" in report["reason"]


# --- the refresh ---------------------------------------------------------------------------------


def test_usgs_salient_refresh_publishes_every_listed_file_with_comments_and_a_run_record(
    salient: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    run = refresh_dataset(salient, registry, settings, replay.url, as_of=AS_OF)
    assert run.status == "published" and run.raw_files == 6 and run.warnings == []
    assert [dict(r.query)["name"] for r in replay.requests] == SALIENT_FILES
    assert run.rows_landed == 5 * 5 + 63
    # Figure columns per table: lithium 7, graphite 8, nickel 18, manganese 18, rare earths 18; Figure 2 one.
    assert run.rows_published == 5 * (7 + 8 + 18 + 18 + 18) + 63
    with open_public(layout) as con:
        reliance = con.execute(
            "SELECT source_table, published_value, net_import_reliance_pct, value_qualifier "
            "FROM curated.usgs_mineral_salient WHERE mineral = 'Lithium' AND year = 2023 "
            "AND measure = 'net_import_reliance' ORDER BY source_table"
        ).fetchall()
        assert reliance == [
            ("net_import_reliance", ">25", 25.0, "more_than"),
            ("salient", ">25", 25.0, "more_than"),
        ]
        comments = dict(
            con.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'usgs_mineral_salient'"
            ).fetchall()
        )
        assert set(comments) == set(salient.field_names) and all(comments.values())
        assert (
            "lower bound" in comments["net_import_reliance_pct"]
            and "unit percent" in comments["net_import_reliance_pct"]
        )
        assert con.execute("SELECT status, rows_landed, rows_published FROM meta.runs").fetchall() == [
            ("published", 88, 408)
        ]


def test_usgs_salient_second_refresh_of_unchanged_files_publishes_identical_rows(
    salient: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    first = refresh_dataset(salient, registry, settings, replay.url, as_of=AS_OF)
    before = published(layout, salient.dataset)
    second = refresh_dataset(salient, registry, settings, replay.url, as_of=AS_OF, force=True)
    # Forced, the same rows are normalized again; being the published ones, they make no release.
    assert second.raw_sha256 == first.raw_sha256 and second.status == "unchanged"
    assert published(layout, salient.dataset) == before and len(before) == 408


def test_usgs_salient_ingest_file_publishes_a_hand_downloaded_table_and_records_name_and_sha256(
    salient: Contract, registry: Registry, settings: Settings, layout: Layout, tmp_path: Path
) -> None:
    in_hand = tmp_path / "mcs2024-lithi_salient.csv"
    shutil.copyfile(USGS_FILES / "mcs2024-lithi_salient.csv", in_hand)
    run = ingest_file(salient, registry, settings, in_hand)
    assert run.status == "published" and run.rows_published == 35
    (manifest_path,) = layout.raw_dir(salient.dataset, run.run_id).glob("*.manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["file_name"] == "mcs2024-lithi_salient.csv" and manifest["source"] == "file"
    assert manifest["sha256"] == hashlib.sha256(in_hand.read_bytes()).hexdigest() == run.raw_sha256[0]
    with open_public(layout) as con:
        assert con.execute(
            "SELECT quantity_t FROM curated.usgs_mineral_salient WHERE commodity = 'Lithium' "
            "AND year = 2023 AND measure = 'imports'"
        ).fetchone() == (3400.0,)


# --- Airflow ------------------------------------------------------------------------------------


@pytest.mark.airflow
def test_dag_test_refreshes_both_usgs_datasets_end_to_end(
    airflow_env: dict[str, str],  # noqa: F811 (the fixture imported from test_airflow)
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with ReplayServer(RECORDINGS) as replay:
        env = {**airflow_env, "SCDX_DATA_DIR": str(data_dir), "SCDX_REPLAY_URL": replay.url}
        result = _python(
            f"""
            import json, pendulum
            from airflow.dag_processing.dagbag import DagBag
            bag = DagBag(dag_folder={str(DAGS)!r})
            outcome = {{}}
            for dataset in ("usgs_mineral_production", "usgs_mineral_salient"):
                run = bag.get_dag("ingest_" + dataset).test(logical_date=pendulum.now("UTC"))
                outcome[dataset] = {{
                    "state": str(run.state),
                    "tasks": {{ti.task_id: str(ti.state) for ti in run.get_task_instances()}},
                }}
            print(json.dumps(outcome))
            """,
            env,
        )
        requested = [dict(r.query)["name"] for r in replay.requests]
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = _last_json(result.stdout)
    for dataset in ("usgs_mineral_production", "usgs_mineral_salient"):
        assert outcome[dataset] == {
            "state": "success",
            "tasks": dict.fromkeys(
                ["extract_and_land", "normalize_and_stage", "validate", "publish", "check_freshness"],
                "success",
            ),
        }, dataset
    assert len(requested) == 12 and requested[6:] == SALIENT_FILES
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        assert con.execute(
            "SELECT dataset, status, rows_published FROM meta.runs ORDER BY dataset"
        ).fetchall() == [
            ("usgs_mineral_production", "published", 270),
            ("usgs_mineral_salient", "published", 408),
        ]
        assert con.execute(
            "SELECT value_t FROM curated.usgs_mineral_production WHERE mineral = 'Lithium' "
            "AND country_iso = 'CL' AND measure = 'reserves'"
        ).fetchone() == (9_300_000.0,)
