"""BTS Border Crossing/Entry Data: every layout BTS has published normalizes to one table, the
Socrata replay pages and filters like SODA, and the dataset refreshes, ingests files and runs
under Airflow. On the recorded payloads (recordings/PROVENANCE.md)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import requests

from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.orchestration.guards import start_run
from pipelines.orchestration.refresh import ingest_file, refresh_dataset
from pipelines.replay.server import ReplayServer
from pipelines.sources import RawPage
from pipelines.sources.bts_socrata import month_of, parse_page
from pipelines.sources.window import Window
from pipelines.stages.normalize import NormalizeError, NormalizeStats, build_page
from pipelines.stages.quarantine import QuarantinedError
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

from .conftest import AS_OF, RECORDINGS, catalog_runs
from .test_airflow import DAGS, _last_json, _python, airflow_env, run_dag_test  # noqa: F401 - fixture

BTS = RECORDINGS / "bts_border_crossing"
EXPORT = BTS / "border_crossing_entry_data_socrata_export_head40.csv"
EXPORT_2019 = BTS / "older_exports" / "border_crossing_entry_data_export_2019_insight_test1.csv"
ENDPOINT = "/resource/keg4-3bc2.json"


@pytest.fixture(scope="module")
def bts(registry: Registry) -> Contract:
    return registry.get("bts_border_crossings")


def _normalize(path: Path, bts: Contract, registry: Registry) -> tuple[pa.Table, NormalizeStats]:
    """The source's parse step, then the common build: what normalize does with one landed file."""
    page = RawPage(dataset=bts.dataset, path=path, manifest={"status": 200, "bytes": path.stat().st_size})
    rows = parse_page(page, bts, registry)
    assert rows is not None
    stats = NormalizeStats()
    return build_page(rows, bts, registry, page, stats), stats


def _row(table: pa.Table, **where: Any) -> dict[str, Any]:
    (found,) = [r for r in table.to_pylist() if all(r[k] == v for k, v in where.items())]
    return found


def _with_page_size(contract: Contract, size: int) -> Contract:
    paging = contract.source.paging.model_copy(update={"page_size": size})
    return contract.model_copy(update={"source": contract.source.model_copy(update={"paging": paging})})


def _curated(layout: Layout, sql: str) -> list[tuple[Any, ...]]:
    with open_public(layout) as con:
        return con.execute(sql).fetchall()


# --- normalize, on the recorded exports ---------------------------------------------------------


def test_bts_current_export_keeps_leading_zeros_and_reads_the_month_with_real_values(
    bts: Contract, registry: Registry
) -> None:
    table, stats = _normalize(EXPORT, bts, registry)
    assert table.num_rows == 40 and table.schema.field("month").type == pa.date32()
    # Madawaska, Maine, port 0109, January 2024: 130 empty truck containers (row 23 of the export).
    assert _row(table, port_code="0109", measure="Truck Containers Empty") == {
        "port_name": "Madawaska",
        "state": "Maine",
        "state_usps": "ME",
        "port_code": "0109",
        "border": "US-Canada Border",
        "month": date(2024, 1, 1),
        "measure": "Truck Containers Empty",
        "value": 130,
        "latitude": 47.36,
        "longitude": -68.329,
    }
    assert _row(table, port_code="2401", measure="Personal Vehicle Passengers")["value"] == 521_714
    assert set(table.column("month").to_pylist()) == {date(2023, 12, 1), date(2024, 1, 1)}
    # The WKT Point repeats Latitude/Longitude: the contract ignores it, so no drift is recorded.
    assert stats.drift == {}


def test_bts_2019_export_layout_gets_padded_codes_current_measure_names_and_coordinates_from_wkt(
    bts: Contract, registry: Registry
) -> None:
    table, stats = _normalize(EXPORT_2019, bts, registry)
    assert table.num_rows == 7
    # "Derby Line,Vermont,209,...,03/01/2019 12:00:00 AM,Truck Containers Full,6483,POINT (-72.09944 45.005)"
    assert _row(table, port_name="Derby Line") == {
        "port_name": "Derby Line",
        "state": "Vermont",
        "state_usps": "VT",
        "port_code": "0209",
        "border": "US-Canada Border",
        "month": date(2019, 3, 1),
        "measure": "Truck Containers Loaded",
        "value": 6483,
        "latitude": 45.005,
        "longitude": -72.09944,
    }
    eagle_pass = _row(table, port_name="Eagle Pass")
    assert (eagle_pass["month"], eagle_pass["measure"], eagle_pass["value"]) == (
        date(2019, 1, 1),
        "Pedestrians",
        56_810,
    )
    assert stats.drift == {}


def test_bts_month_is_read_from_every_date_layout_bts_has_used() -> None:
    assert month_of("Jan 2024") == "2024-01-01"
    assert month_of("03/01/2019 12:00:00 AM") == "2019-03-01"
    assert month_of("2024-01-01T00:00:00.000") == "2024-01-01"
    assert month_of("2024-01-15") == "2024-01-01"
    assert month_of("January") is None


def test_bts_date_in_no_known_layout_is_an_error_naming_dataset_file_row_and_field(
    bts: Contract, registry: Registry, tmp_path: Path
) -> None:
    lines = EXPORT.read_text().splitlines()
    lines[5] = lines[5].replace("Jan 2024", "2024/01")
    bad = tmp_path / "export.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(NormalizeError) as caught:
        _normalize(bad, bts, registry)
    message = str(caught.value)
    assert message.startswith(f"bts_border_crossings: {bad}, row 6, field 'date': date '2024/01'")


def test_bts_api_json_page_normalizes_to_the_same_rows_as_the_csv_export(
    bts: Contract, registry: Registry, replay: ReplayServer, tmp_path: Path
) -> None:
    response = requests.get(replay.url + ENDPOINT, params={"$order": ":id", "$limit": "100"}, timeout=5)
    assert response.headers["Content-Type"].startswith("application/json")
    first = response.json()[0]
    assert first["date"] == "2023-12-01T00:00:00.000" and first["point"]["type"] == "Point"
    page = tmp_path / "00001-offset-000000000.json"
    page.write_bytes(response.content)
    from_api, stats = _normalize(page, bts, registry)
    from_export, _ = _normalize(EXPORT, bts, registry)
    assert from_api.to_pylist() == from_export.to_pylist()
    assert stats.drift == {}


# --- the Socrata replay ---------------------------------------------------------------------------


def test_socrata_replay_filters_orders_and_pages_like_soda(replay: ReplayServer) -> None:
    def get(**params: str) -> requests.Response:
        return requests.get(replay.url + ENDPOINT, params=params, timeout=5)

    december = get(**{"$where": "date >= '2023-12-01T00:00:00' AND date < '2024-01-01T00:00:00'"}).json()
    assert [(r["port_name"], r["measure"], r["value"]) for r in december] == [
        ("Roma", "Buses", "46"),
        ("Del Rio", "Trucks", "6552"),
    ]
    between = get(**{"$where": "date between '2024-01-01' and '2024-01-01'", "$limit": "5000"}).json()
    assert len(between) == 38
    top = get(**{"$order": "value DESC", "$limit": "2"}).json()
    assert [(r["port_name"], r["value"]) for r in top] == [("Ysleta", "521714"), ("Calexico East", "435768")]
    by_id = [r["port_code"] for r in get(**{"$order": ":id", "$limit": "40"}).json()]
    assert [r["port_code"] for r in get(**{"$order": ":id", "$offset": "10", "$limit": "3"}).json()] == by_id[
        10:13
    ]
    assert get(**{"port_code": "0109"}).json()[0]["port_name"] == "Madawaska"
    unsupported = get(**{"$where": "value > 5 OR value < 2"})
    assert unsupported.status_code == 400 and unsupported.json()["error"] is True
    assert "AND" in unsupported.json()["message"]
    assert get(**{"$where": "speed > 5"}).json()["message"] == "No such column: speed"
    assert get(**{"$limit": "50001"}).status_code == 400


# --- refresh over the replay ----------------------------------------------------------------------


def test_bts_requests_ask_for_the_window_with_where_and_page_with_limit_offset_in_a_total_order(
    bts: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    run = refresh_dataset(
        _with_page_size(bts, 15),
        registry,
        settings,
        replay.url,
        window=Window(date(2023, 11, 1), date(2024, 1, 1)),
    )
    queries = [dict(r.query) for r in replay.requests]
    assert [(q["$offset"], q["$limit"]) for q in queries] == [("0", "15"), ("15", "15"), ("30", "15")]
    assert {q["$where"] for q in queries} == {
        "date >= '2023-11-01T00:00:00' AND date < '2024-02-01T00:00:00'"
    }
    assert {q["$order"] for q in queries} == {":id"}
    # Three pages of 15, 15 and 10 rows: all 40, none twice (the key check passed).
    assert run.status == "published" and run.raw_files == 3 and run.rows_published == 40


def test_bts_refresh_publishes_the_recorded_rows_with_column_comments_and_a_run_record(
    bts: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    run = refresh_dataset(bts, registry, settings, replay.url, as_of=AS_OF)
    assert run.status == "published" and run.rows_published == 40
    assert (run.window_start, run.window_end) == (date(1996, 1, 1), date(2026, 11, 1))
    assert _curated(
        layout,
        "SELECT value, state_usps, latitude FROM curated.bts_border_crossings "
        "WHERE port_code = '0109' AND month = DATE '2024-01-01' AND measure = 'Truck Containers Empty'",
    ) == [(130, "ME", 47.36)]
    comments = dict(
        _curated(
            layout,
            "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'bts_border_crossings'",
        )
    )
    assert set(comments) == set(bts.field_names) and all(comments.values())
    assert "unit count" in comments["value"] and "leading zeros" in comments["port_code"]
    assert _curated(layout, "SELECT dataset, status, rows_landed, rows_published FROM meta.runs") == [
        ("bts_border_crossings", "published", 40, 40)
    ]


def test_bts_second_refresh_with_unchanged_upstream_starts_at_the_lookback_and_publishes_identical_rows(
    bts: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    everything = "SELECT * FROM curated.bts_border_crossings ORDER BY ALL"
    first = refresh_dataset(bts, registry, settings, replay.url, as_of=AS_OF)
    published = _curated(layout, everything)
    second = refresh_dataset(bts, registry, settings, replay.url, as_of=AS_OF)
    # The cursor is the latest month published (2024-01), minus the 3-month lookback.
    assert second.window_start == date(2023, 10, 1)
    assert dict(replay.requests[-1].query)["$where"].startswith("date >= '2023-10-01T00:00:00'")
    assert second.raw_sha256 == first.raw_sha256
    assert _curated(layout, everything) == published and len(published) == 40
    # The same rows again: no release for a publish that changes nothing.
    assert [r["status"] for r in catalog_runs(layout)] == ["published", "unchanged"]


def test_bts_window_with_no_released_month_is_an_empty_soda_page_and_ends_as_no_data(
    bts: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    run = refresh_dataset(
        bts, registry, settings, replay.url, window=Window(date(2024, 2, 1), date(2024, 4, 1))
    )
    assert run.status == "no_data" and run.raw_files == 1 and run.rows_published == 0
    body = layout.raw_dir(bts.dataset, run.run_id) / "00001-offset-000000000.json"
    assert body.read_bytes() == b"[]\n"


def test_bts_unknown_measure_is_new_code_drift_that_the_contract_rejects(
    bts: Contract, registry: Registry, settings: Settings, layout: Layout, tmp_path: Path
) -> None:
    changed = tmp_path / "Border_Crossing_Entry_Data.csv"
    changed.write_text(EXPORT.read_text().replace(",Trains,", ",Hovercraft,"))
    run = start_run(bts)
    with pytest.raises(QuarantinedError) as caught:
        ingest_file(bts, registry, settings, changed, run=run)
    assert "ExpectColumnValuesToBeInSet(measure)" in str(caught.value) and "Hovercraft" in str(caught.value)
    assert [(d["field"], d["kind"], d["action"]) for d in run.drift] == [("measure", "new_code", "rejected")]
    assert [(r["status"], r["rows_published"], r["rows_quarantined"]) for r in catalog_runs(layout)] == [
        ("quarantined", 0, 40)
    ]


# --- a file in hand ---------------------------------------------------------------------------------


def test_bts_ingest_file_publishes_the_csv_export_and_records_its_name_and_checksum(
    bts: Contract, registry: Registry, settings: Settings, layout: Layout
) -> None:
    run = ingest_file(bts, registry, settings, EXPORT)
    assert run.status == "published" and run.rows_published == 40
    (manifest_path,) = layout.raw_dir(bts.dataset, run.run_id).glob("*.manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["source"] == "file" and manifest["file_name"] == EXPORT.name
    assert manifest["sha256"] == hashlib.sha256(EXPORT.read_bytes()).hexdigest()
    older = ingest_file(bts, registry, settings, EXPORT_2019)
    assert older.status == "published" and older.rows_published == 7
    assert _curated(
        layout,
        "SELECT value FROM curated.bts_border_crossings "
        "WHERE port_code = '0209' AND month = DATE '2019-03-01' AND measure = 'Truck Containers Loaded'",
    ) == [(6483,)]
    # Each file replaced only its own months: 40 + 7 rows.
    assert _curated(layout, "SELECT count(*) FROM curated.bts_border_crossings") == [(47,)]


def test_scdx_ingest_file_command_publishes_an_older_export_downloaded_by_hand(data_dir: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "scdx"), "ingest-file", "bts_border_crossings", str(EXPORT_2019)],
        env={**os.environ, "SCDX_DATA_DIR": str(data_dir), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bts_border_crossings" in result.stdout and "published" in result.stdout
    (manifest_path,) = data_dir.glob("raw/bts_border_crossings/*/00001-*.manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["file_name"] == EXPORT_2019.name
    assert manifest["sha256"] == hashlib.sha256(EXPORT_2019.read_bytes()).hexdigest()
    assert _curated(Layout(data_dir), "SELECT count(*), min(month) FROM curated.bts_border_crossings") == [
        (7, date(2019, 1, 1))
    ]


# --- Airflow ------------------------------------------------------------------------------------------


@pytest.mark.airflow
def test_bts_generated_dag_runs_under_dag_test_and_publishes_the_recorded_rows(
    airflow_env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with ReplayServer(RECORDINGS) as replay:
        env = {**airflow_env, "SCDX_DATA_DIR": str(data_dir), "SCDX_REPLAY_URL": replay.url}
        result = run_dag_test("ingest_bts_border_crossings", date(2024, 4, 15), env)
        requests_seen = [dict(r.query) for r in replay.requests]
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = _last_json(result.stdout)
    assert outcome["state"] == "success", outcome
    # First load of an empty table: from the contract's start to the run's month.
    assert [q["$where"] for q in requests_seen] == [
        "date >= '1996-01-01T00:00:00' AND date < '2024-05-01T00:00:00'"
    ]
    import duckdb

    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        assert con.execute("SELECT status, rows_published FROM meta.runs").fetchall() == [("published", 40)]
        assert con.execute(
            "SELECT value FROM curated.bts_border_crossings WHERE port_code = '2401' "
            "AND measure = 'Personal Vehicle Passengers'"
        ).fetchall() == [(521_714,)]
