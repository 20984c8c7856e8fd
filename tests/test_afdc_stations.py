"""NREL AFDC charging stations: the station locator's nested JSON becomes one row per station with
its connector types as a list, older responses' absent attributes are null and recorded as drift,
the API key never reaches disk or errors, and the dataset refreshes, ingests files and runs under
Airflow. On the recorded payload (recordings/PROVENANCE.md)."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import requests

from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.orchestration.guards import start_run
from pipelines.orchestration.refresh import ingest_file, refresh_dataset
from pipelines.replay.server import Fault, ReplayServer
from pipelines.sources import RawPage
from pipelines.sources.http import FetchError
from pipelines.sources.nrel_afdc import parse_page
from pipelines.stages.normalize import DriftRejected, NormalizeError, NormalizeStats, build_page
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

from .conftest import AS_OF, RECORDINGS, TEST_API_KEY, catalog_runs
from .test_airflow import DAGS, _last_json, _python, airflow_env, run_dag_test  # noqa: F401 - fixture

RECORDED = RECORDINGS / "nrel_afdc" / "afdc_nearest_elec_lpg_80203_2018-05-18.json"
# The same search answered on 2018-03-28, before the API had access_code (recordings/PROVENANCE.md).
OLDER = RECORDINGS / "nrel_afdc" / "older_editions" / "afdc_nearest_elec_lpg_80203_2018-03-28.json"
ENDPOINT = "/api/alt-fuel-stations/v1/nearest.json"
SEARCH = {"location": "80203", "radius": "6.0", "fuel_type": "ELEC"}


@pytest.fixture(scope="module")
def afdc(registry: Registry) -> Contract:
    return registry.get("afdc_charging_stations")


@pytest.fixture
def nrel_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SCDX_NREL_API_KEY", TEST_API_KEY)
    return TEST_API_KEY


def _normalize(path: Path, afdc: Contract, registry: Registry) -> tuple[pa.Table, NormalizeStats]:
    """The source's parse step, then the common build: what normalize does with one landed page."""
    page = RawPage(dataset=afdc.dataset, path=path, manifest={"status": 200, "bytes": path.stat().st_size})
    rows = parse_page(page, afdc, registry)
    assert rows is not None
    stats = NormalizeStats()
    return build_page(rows, afdc, registry, page, stats), stats


def _variant(tmp_path: Path, edit: Any, recorded: Path = RECORDED) -> Path:
    """A recorded response with ``edit(stations)`` applied, in the API's own format."""
    document = json.loads(recorded.read_bytes())
    edit(document["fuel_stations"])
    path = tmp_path / "00001-offset-000000000.json"
    path.write_text(json.dumps(document, separators=(",", ":")))
    return path


def _station(table: pa.Table, station_id: str) -> dict[str, Any]:
    (found,) = [r for r in table.to_pylist() if r["station_id"] == station_id]
    return found


def _with_page_size(contract: Contract, size: int) -> Contract:
    paging = contract.source.paging.model_copy(update={"page_size": size})
    return contract.model_copy(update={"source": contract.source.model_copy(update={"paging": paging})})


def _curated(layout: Layout, sql: str) -> list[tuple[Any, ...]]:
    with open_public(layout) as con:
        return con.execute(sql).fetchall()


def _drift(stats: NormalizeStats) -> set[tuple[str, str, str]]:
    return {(e.field, e.kind, e.action) for e in stats.drift.values()}


# --- normalize, on the recorded response ----------------------------------------------------------


def test_afdc_response_becomes_one_row_per_station_with_its_connector_types_as_a_list(
    afdc: Contract, registry: Registry
) -> None:
    table, _ = _normalize(RECORDED, afdc, registry)
    assert table.num_rows == 10
    assert table.schema.field("ev_connector_types").type == pa.list_(pa.string())
    # Station 66897 "UDR", 800 Acoma St, Denver: two Level 2 J1772 ports on the ChargePoint Network.
    assert _station(table, "66897") == {
        "station_id": "66897",
        "station_name": "UDR",
        "fuel_type_code": "ELEC",
        "status_code": "E",
        "access_code": "public",
        "ev_connector_types": ["J1772"],
        "ev_level1_evse_num": None,
        "ev_level2_evse_num": 2,
        "ev_dc_fast_num": None,
        "ev_network": "ChargePoint Network",
        "facility_type": None,
        "street_address": "800 Acoma St",
        "city": "Denver",
        "state": "CO",
        "zip": "80204",
        "latitude": 39.7300224,
        "longitude": -104.9883424,
        "open_date": None,
        "date_last_confirmed": date(2018, 5, 18),
        "updated_at": datetime(2018, 5, 18, 8, 51, 8, tzinfo=UTC),
    }
    garage = _station(table, "62185")  # City of Denver - Waterboard Garage: private, not networked
    assert (garage["access_code"], garage["ev_network"], garage["open_date"]) == (
        "private",
        None,
        date(2012, 5, 1),
    )


def test_afdc_attribute_absent_from_an_older_response_is_null_and_recorded_as_drift(
    afdc: Contract, registry: Registry
) -> None:
    table, stats = _normalize(RECORDED, afdc, registry)
    assert table.column("facility_type").null_count == 10
    # The 24 attributes the contract leaves out (other fuels, phone, distance ...) are no drift.
    assert _drift(stats) == {("facility_type", "missing_field", "warned")}


def test_afdc_station_lacking_an_attribute_gets_null_and_several_connectors_stay_one_list(
    afdc: Contract, registry: Registry, tmp_path: Path
) -> None:
    def edit(stations: list[dict[str, Any]]) -> None:
        stations[0]["ev_connector_types"] = ["J1772", "CHADEMO", "J1772COMBO"]
        del stations[1]["ev_network"]
        stations[2]["ev_pricing"] = "Free"  # an attribute the contract does not know

    table, stats = _normalize(_variant(tmp_path, edit), afdc, registry)
    assert _station(table, "66897")["ev_connector_types"] == ["J1772", "CHADEMO", "J1772COMBO"]
    assert _station(table, "85932")["ev_network"] is None
    assert _station(table, "75910")["ev_network"] == "ChargePoint Network"
    assert _drift(stats) == {
        ("facility_type", "missing_field", "warned"),
        ("ev_pricing", "new_field", "warned"),
    }


def test_afdc_connector_types_null_on_every_station_is_a_null_list_column_not_an_error(
    afdc: Contract, registry: Registry, tmp_path: Path
) -> None:
    def edit(stations: list[dict[str, Any]]) -> None:
        for station in stations:
            station["ev_connector_types"] = None

    table, _ = _normalize(_variant(tmp_path, edit), afdc, registry)
    column = table.column("ev_connector_types")
    assert column.type == pa.list_(pa.string()) and column.null_count == 10


def test_afdc_required_attribute_missing_from_every_station_is_rejected_naming_it(
    afdc: Contract, registry: Registry, tmp_path: Path
) -> None:
    def edit(stations: list[dict[str, Any]]) -> None:
        for station in stations:
            del station["status_code"]

    with pytest.raises(DriftRejected, match=r"field 'status_code': missing_field: the source sent no column"):
        _normalize(_variant(tmp_path, edit), afdc, registry)


# --- the replay -------------------------------------------------------------------------------------


def test_afdc_replay_filters_and_pages_the_recorded_search_like_the_api(replay: ReplayServer) -> None:
    def get(**params: str) -> requests.Response:
        return requests.get(replay.url + ENDPOINT, params={"api_key": "k", **params}, timeout=5)

    page = get(**SEARCH, offset="4", limit="4").json()
    assert (page["total_results"], page["offset"]) == (10, 4)
    recorded = json.loads(RECORDED.read_bytes())["fuel_stations"]
    assert page["fuel_stations"] == recorded[4:8]
    nearby = get(**{**SEARCH, "radius": "0.45"}).json()
    assert [s["id"] for s in nearby["fuel_stations"]] == [66897, 85932, 50065]  # 0.314 to 0.449 miles
    assert get(**{**SEARCH, "fuel_type": "LPG"}).json()["total_results"] == 0
    assert get(**SEARCH, limit="201").status_code == 422
    assert get(**{**SEARCH, "location": "10001"}).status_code == 404
    # Offline, a recording has nothing to protect: a request without a key is answered too.
    assert requests.get(replay.url + ENDPOINT, params=SEARCH, timeout=5).json()["total_results"] == 10


# --- refresh over the replay ------------------------------------------------------------------------


def test_afdc_refresh_pages_with_offset_and_limit_until_total_results(
    afdc: Contract,
    registry: Registry,
    settings: Settings,
    layout: Layout,
    replay: ReplayServer,
    nrel_key: str,
) -> None:
    run = refresh_dataset(_with_page_size(afdc, 4), registry, settings, replay.url, as_of=AS_OF)
    queries = [dict(r.query) for r in replay.requests]
    assert [(q["offset"], q["limit"]) for q in queries] == [("0", "4"), ("4", "4"), ("8", "4")]
    assert all(q["fuel_type"] == "ELEC" and q["location"] == "80203" for q in queries)
    assert run.status == "published" and run.raw_files == 3 and run.rows_published == 10


def test_afdc_refresh_publishes_the_list_column_with_comments_drift_and_a_run_record(
    afdc: Contract,
    registry: Registry,
    settings: Settings,
    layout: Layout,
    replay: ReplayServer,
    nrel_key: str,
) -> None:
    run = refresh_dataset(afdc, registry, settings, replay.url, as_of=AS_OF)
    assert run.status == "published" and run.rows_published == 10
    assert _curated(
        layout,
        "SELECT ev_connector_types, ev_level2_evse_num, ev_network FROM curated.afdc_charging_stations "
        "WHERE station_id = '66897'",
    ) == [(["J1772"], 2, "ChargePoint Network")]
    assert _curated(
        layout,
        "SELECT count(*) FROM curated.afdc_charging_stations WHERE list_contains(ev_connector_types, 'J1772')",
    ) == [(10,)]
    columns = dict(
        _curated(
            layout,
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'afdc_charging_stations'",
        )
    )
    assert (
        columns["ev_connector_types"] == "VARCHAR[]" and columns["updated_at"] == "TIMESTAMP WITH TIME ZONE"
    )
    comments = dict(
        _curated(
            layout,
            "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'afdc_charging_stations'",
        )
    )
    assert set(comments) == set(afdc.field_names) and all(comments.values())
    assert "Connector types" in comments["ev_connector_types"]
    assert _curated(layout, "SELECT status, rows_published FROM meta.runs") == [("published", 10)]
    assert _curated(layout, "SELECT field, kind, action FROM meta.schema_drift") == [
        ("facility_type", "missing_field", "warned")
    ]


def test_afdc_second_refresh_of_unchanged_upstream_publishes_identical_rows(
    afdc: Contract,
    registry: Registry,
    settings: Settings,
    layout: Layout,
    replay: ReplayServer,
    nrel_key: str,
) -> None:
    everything = "SELECT * FROM curated.afdc_charging_stations ORDER BY station_id"
    first = refresh_dataset(afdc, registry, settings, replay.url, as_of=AS_OF)
    published = _curated(layout, everything)
    second = refresh_dataset(afdc, registry, settings, replay.url, as_of=AS_OF)
    assert second.raw_sha256 == first.raw_sha256
    assert _curated(layout, everything) == published and len(published) == 10


def test_afdc_api_key_is_in_no_file_under_the_data_dir_nor_in_errors_or_logs(
    afdc: Contract,
    registry: Registry,
    settings: Settings,
    layout: Layout,
    replay: ReplayServer,
    nrel_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    refresh_dataset(afdc, registry, settings, replay.url, as_of=AS_OF)
    assert all(("api_key", nrel_key) in r.query for r in replay.requests)
    # The agency fails for good, with an error page that echoes the request URL and its key.
    echo = f"<html>Internal error serving {ENDPOINT}?api_key={nrel_key}&location=80203</html>"
    replay.faults.add(Fault(status=500, path=ENDPOINT, times=10, body=echo))
    run = start_run(afdc)
    with pytest.raises(FetchError) as caught:
        refresh_dataset(afdc, registry, settings, replay.url, as_of=AS_OF, run=run)
    assert "api_key=REDACTED" in str(caught.value) and nrel_key not in str(caught.value)
    assert run.status == "failed" and run.error is not None and nrel_key not in run.error
    files = [p for p in layout.root.rglob("*") if p.is_file()]
    assert any(p.parent.name == "_failed_attempts" for p in files)  # the echoing bodies were kept
    manifests = [json.loads(p.read_text()) for p in files if p.name.endswith(".manifest.json")]
    assert manifests and all(["api_key", "REDACTED"] in m["params"] for m in manifests)
    assert [p for p in files if nrel_key.encode() in p.read_bytes()] == []
    assert nrel_key not in caplog.text


def test_afdc_live_refresh_without_a_key_fails_before_any_request_naming_variable_and_connection(
    afdc: Contract,
    registry: Registry,
    settings: Settings,
    replay: ReplayServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SCDX_NREL_API_KEY", raising=False)
    live = settings.with_overrides(live=True)
    with pytest.raises(PermissionError, match="set SCDX_NREL_API_KEY or the Airflow connection 'nrel_api'"):
        refresh_dataset(afdc, registry, live, replay.url, as_of=AS_OF)
    assert replay.requests == []


# --- a file in hand -----------------------------------------------------------------------------------


def test_afdc_ingest_file_publishes_the_downloaded_json_and_records_its_name_and_checksum(
    afdc: Contract, registry: Registry, settings: Settings, layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file in hand needs no key.
    monkeypatch.delenv("SCDX_NREL_API_KEY", raising=False)
    run = ingest_file(afdc, registry, settings, RECORDED)
    assert run.status == "published" and run.rows_published == 10
    # The saved search holds 10 of its 92 stations: a partial list, merged, never the whole one.
    assert run.coverage == "partial" and "10 of the 92 records" in (run.coverage_note or "")
    (manifest_path,) = layout.raw_dir(afdc.dataset, run.run_id).glob("*.manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["source"] == "file" and manifest["file_name"] == RECORDED.name
    assert manifest["sha256"] == hashlib.sha256(RECORDED.read_bytes()).hexdigest()
    assert _curated(
        layout,
        "SELECT station_name, open_date FROM curated.afdc_charging_stations WHERE station_id = '50065'",
    ) == [("City of Denver - Cultural Center Complex Garage", date(2012, 12, 1))]


# --- an older API edition: access_code from groups_with_access_code ----------------------------------


def test_afdc_older_edition_access_code_derived_from_groups_with_access_code(
    afdc: Contract, registry: Registry, settings: Settings, layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCDX_NREL_API_KEY", raising=False)
    assert not any("access_code" in s for s in json.loads(OLDER.read_bytes())["fuel_stations"])
    run = ingest_file(afdc, registry, settings, OLDER)
    assert run.status == "published" and run.rows_published == 10
    access = dict(_curated(layout, "SELECT station_id, access_code FROM curated.afdc_charging_stations"))
    # 62185 City of Denver - Waterboard Garage: "Private - Government only"; the nine others "Public".
    assert access == {sid: "public" for sid in access} | {"62185": "private"} and len(access) == 10
    drift = _curated(layout, "SELECT field, kind, action, detail FROM meta.schema_drift ORDER BY field")
    assert [d[:3] for d in drift] == [
        ("access_code", "missing_field", "derived"),
        ("facility_type", "missing_field", "warned"),
    ]
    detail = drift[0][3]
    assert "10 of 10 station(s)" in detail and "groups_with_access_code" in detail
    assert "Private - Government only" in detail and OLDER.name in detail


def test_afdc_older_access_wordings_of_every_form_mean_public_or_private(
    afdc: Contract, registry: Registry, tmp_path: Path
) -> None:
    # Wordings the station locator used before access_code, as seen in public API responses and
    # AFDC exports: NREL's 2013 API documentation example ("Private access only"), a 2013 response
    # ("Public - card key at all times"), status-wrapped values of the AFDC station export.
    wordings = {
        "66897": ("Private access only", "private"),
        "85932": ("Public - card key at all times", "public"),
        "50065": ("Public - Credit card at all times", "public"),
        "75910": ("TEMPORARILY UNAVAILABLE (Private - Government only)", "private"),
        "75913": ("PLANNED - not yet accessible (Public - Call ahead)", "public"),
    }

    def edit(stations: list[dict[str, Any]]) -> None:
        for station in stations:
            if str(station["id"]) in wordings:
                station["groups_with_access_code"] = wordings[str(station["id"])][0]

    table, stats = _normalize(_variant(tmp_path, edit, OLDER), afdc, registry)
    for station_id, (_, access) in wordings.items():
        assert _station(table, station_id)["access_code"] == access, station_id
    assert ("access_code", "missing_field", "derived") in _drift(stats)


def test_afdc_older_access_value_saying_neither_public_nor_private_fails_naming_the_row_and_field(
    afdc: Contract,
    registry: Registry,
    settings: Settings,
    layout: Layout,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SCDX_NREL_API_KEY", raising=False)
    assert ingest_file(afdc, registry, settings, OLDER).status == "published"
    before = _curated(layout, "SELECT * FROM curated.afdc_charging_stations ORDER BY station_id")

    def edit(stations: list[dict[str, Any]]) -> None:
        # A planned station of the older locator, before it said who may use it.
        stations[2]["groups_with_access_code"] = "PLANNED - not yet accessible"

    bad = _variant(tmp_path, edit, OLDER)
    run = start_run(afdc)
    with pytest.raises(NormalizeError) as caught:
        ingest_file(afdc, registry, settings, bad, run=run)
    message = str(caught.value)
    assert message.startswith("afdc_charging_stations: ") and bad.name in message
    assert "row 3, field 'access_code'" in message
    assert (
        "station 50065" in message
        and "'PLANNED - not yet accessible' says neither public nor private" in message
    )
    assert run.status == "failed"
    # The run is recorded as failed; what was published stays as it was.
    assert _curated(layout, "SELECT * FROM curated.afdc_charging_stations ORDER BY station_id") == before
    assert [r["status"] for r in catalog_runs(layout) if r["run_id"] == run.run_id] == ["failed"]


# --- Airflow ----------------------------------------------------------------------------------------------


@pytest.mark.airflow
def test_afdc_generated_dag_runs_under_dag_test_with_the_key_from_the_airflow_connection(
    airflow_env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with ReplayServer(RECORDINGS) as replay:
        env = {
            **airflow_env,
            "SCDX_DATA_DIR": str(data_dir),
            "SCDX_REPLAY_URL": replay.url,
            # The key only in the Airflow connection nrel_api, not in SCDX_NREL_API_KEY.
            "AIRFLOW_CONN_NREL_API": json.dumps({"conn_type": "http", "password": TEST_API_KEY}),
        }
        env.pop("SCDX_NREL_API_KEY", None)
        result = run_dag_test("ingest_afdc_charging_stations", date(2026, 11, 23), env)
        requests_seen = list(replay.requests)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = _last_json(result.stdout)
    assert outcome["state"] == "success", outcome
    assert len(requests_seen) == 1 and ("api_key", TEST_API_KEY) in requests_seen[0].query
    assert TEST_API_KEY not in result.stdout + result.stderr
    import duckdb

    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        assert con.execute("SELECT status, rows_published FROM meta.runs").fetchall() == [("published", 10)]
        assert con.execute(
            "SELECT ev_connector_types FROM curated.afdc_charging_stations WHERE station_id = '66897'"
        ).fetchall() == [(["J1772"],)]
    leaking = [p for p in data_dir.rglob("*") if p.is_file() and TEST_API_KEY.encode() in p.read_bytes()]
    assert leaking == []
