"""EIA electricity (Open Data API v2, electricity/facility-fuel): how the source asks, pages and
normalizes, on the real recorded response (recordings/eia_v2/, see recordings/PROVENANCE.md)
served by the replay server with the API's paging rules."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.orchestration.guards import start_run
from pipelines.orchestration.refresh import ingest_file, refresh_dataset
from pipelines.orchestration.steps import ShortBatch
from pipelines.replay.eia import render
from pipelines.replay.server import Fault, ReplayServer
from pipelines.sources import RawPage
from pipelines.sources.credentials import resolve_api_key
from pipelines.sources.eia_v2 import page_count, page_params, parse_page
from pipelines.sources.http import FetchedPage, FetchError, PageRequest
from pipelines.sources.paging import PageContext
from pipelines.sources.window import Window
from pipelines.stages.normalize import NormalizeError, NormalizeStats, build_page
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

from .conftest import RECORDINGS, TEST_API_KEY, catalog_runs
from .test_airflow import _last_json, airflow_env, run_dag_test  # noqa: F401 - fixture

RECORDED = RECORDINGS / "eia_v2" / "eia_v2_electricity_facility-fuel_CO_2022_monthly_offset0.json"
ROUTE = "/v2/electricity/facility-fuel/data/"
YEAR_2022 = Window(date(2022, 1, 1), date(2022, 12, 1))
RECORDED_ROWS = 5000


@pytest.fixture
def eia(registry: Registry) -> Contract:
    return registry.get("eia_electricity")


@pytest.fixture
def eia_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SCDX_EIA_API_KEY", TEST_API_KEY)
    return TEST_API_KEY


def _context(eia: Contract, registry: Registry, window: Window, key: str | None) -> PageContext:
    def no_fetch(request: PageRequest) -> FetchedPage:
        raise AssertionError("building parameters must not fetch")

    return PageContext(eia, registry, window, "https://api.eia.gov", key, no_fetch)


def _fetched(body: bytes, offset: int = 0) -> FetchedPage:
    request = PageRequest(
        dataset="eia_electricity",
        url="https://api.eia.gov" + ROUTE,
        params=(("offset", str(offset)), ("length", "2000"), ("api_key", TEST_API_KEY)),
        partition=f"offset-{offset:09d}",
    )
    return FetchedPage(request, 200, "application/json", body, datetime.now(UTC), 1, 0.0)


def _raw(path: Path) -> RawPage:
    manifest = {"status": 200, "bytes": path.stat().st_size, "content_type": "application/json"}
    return RawPage(dataset="eia_electricity", path=path, manifest=manifest)


def _normalized(
    path: Path, eia: Contract, registry: Registry, stats: NormalizeStats | None = None
) -> pa.Table:
    """The source's parse step, then the common build: what normalize does to one page."""
    raw = _raw(path)
    rows = parse_page(raw, eia, registry)
    assert rows is not None
    return build_page(rows, eia, registry, raw, stats or NormalizeStats())


def _altered(tmp_path: Path, change: dict[str, object]) -> Path:
    """A private copy of the recorded response with some record fields changed on every row."""
    document = json.loads(RECORDED.read_bytes())
    for record in document["response"]["data"]:
        record.update(change)
    path = tmp_path / "altered.json"
    path.write_bytes(render(document))
    return path


def test_eia_request_names_route_columns_facets_and_window_from_the_contract(
    eia: Contract, registry: Registry
) -> None:
    params = page_params(_context(eia, registry, Window(date(2022, 7, 1), date(2022, 12, 1)), "k"))
    assert ("frequency", "monthly") in params
    assert [v for k, v in params if k == "data[]"] == ["generation", "gross-generation"]
    assert ("facets[state][]", "CO") in params
    assert ("sort[0][column]", "period") in params and ("sort[0][direction]", "desc") in params
    assert ("start", "2022-07") in params and ("end", "2022-12") in params
    # Offset, length and the key are added per page by the common code.
    request = _context(eia, registry, YEAR_2022, TEST_API_KEY).request(params, "offset-0")
    assert request.url == "https://api.eia.gov" + ROUTE
    assert ("api_key", TEST_API_KEY) in request.params
    assert "api_key=REDACTED" in request.redacted_url and TEST_API_KEY not in request.redacted_url


def test_eia_recorded_page_gives_comanche_generation_for_december_2022(
    eia: Contract, registry: Registry
) -> None:
    table = _normalized(RECORDED, eia, registry)
    assert table.num_rows == RECORDED_ROWS
    assert table.schema.field("period").type == pa.date32()
    assert table.schema.field("net_generation_mwh").type == pa.float64()
    comanche = [
        r
        for r in table.to_pylist()
        if r["plant_code"] == "470" and r["period"] == date(2022, 12, 1) and r["prime_mover"] in {"ST", "ALL"}
    ]
    # Comanche (CO), plant 470, December 2022, as in the recorded response.
    assert {
        "period": date(2022, 12, 1),
        "plant_code": "470",
        "plant_name": "Comanche (CO)",
        "state": "CO",
        "state_name": "Colorado",
        "fuel_code": "SUB",
        "fuel_type_description": "Coal",
        "prime_mover": "ST",
        "net_generation_mwh": 615064.21,
        "gross_generation_mwh": 663582.71,
    } in comanche
    total = next(r for r in comanche if r["fuel_code"] == "ALL" and r["prime_mover"] == "ALL")
    assert (total["net_generation_mwh"], total["gross_generation_mwh"]) == (630511.0, 680248.0)


def test_eia_strings_without_leading_zero_and_negative_generation_are_numbers(
    eia: Contract, registry: Registry
) -> None:
    rows = _normalized(RECORDED, eia, registry).to_pylist()
    # Flatiron (518) pumped storage pumped more than it generated in December 2022: "-628".
    flatiron = [
        r
        for r in rows
        if r["plant_code"] == "518" and r["period"] == date(2022, 12, 1) and r["prime_mover"] == "ALL"
    ]
    assert {
        (r["fuel_type_description"], r["net_generation_mwh"]) for r in flatiron if r["fuel_code"] == "WAT"
    } == {
        ("Hydroelectric Conventional", 2889.0),
        ("Hydroelectric Pumped Storage", -628.0),
    }
    assert min(r["net_generation_mwh"] for r in rows) < 0
    recorded = json.loads(RECORDED.read_bytes())["response"]["data"]
    assert any(r["generation"].startswith(".") for r in recorded)  # ".7" as EIA writes it
    assert 0.7 in {r["net_generation_mwh"] for r in rows}


def test_eia_hyphenated_columns_become_snake_case_and_units_columns_become_the_unit(
    eia: Contract, registry: Registry
) -> None:
    rows = parse_page(_raw(RECORDED), eia, registry)
    assert rows is not None
    assert list(rows.columns) == [
        "period",
        "plantCode",
        "plantName",
        "fuel2002",
        "fuelTypeDescription",
        "state",
        "stateDescription",
        "primeMover",
        "generation",
        "gross_generation",
    ]
    assert rows.units == {"generation": "MWh", "gross_generation": "MWh"}
    assert rows.columns["period"][0] == "2022-12-01" and rows.first_row == 1


def test_eia_thousand_megawatthours_are_converted_to_mwh_and_the_conversion_recorded(
    eia: Contract, registry: Registry, tmp_path: Path
) -> None:
    # Routes of the electricity data browser publish in thousand megawatthours; same page, that unit.
    stats = NormalizeStats()
    table = _normalized(
        _altered(tmp_path, {"generation-units": "thousand megawatthours"}), eia, registry, stats
    )
    total = next(
        r
        for r in table.to_pylist()
        if r["plant_code"] == "470" and r["period"] == date(2022, 12, 1) and r["fuel_code"] == "ALL"
    )
    assert total["net_generation_mwh"] == 630_511_000.0  # "630511" thousand MWh
    assert total["gross_generation_mwh"] == 680_248.0  # its units column still says megawatthours
    (conversion,) = stats.conversions
    assert (conversion.field, conversion.from_unit, conversion.to_unit, conversion.factor) == (
        "net_generation_mwh",
        "thousand_MWh",
        "MWh",
        1000.0,
    )


def test_eia_unknown_or_mixed_units_are_errors_naming_dataset_file_and_field(
    eia: Contract, registry: Registry, tmp_path: Path
) -> None:
    with pytest.raises(
        NormalizeError,
        match=r"eia_electricity: .*altered\.json, field 'generation-units': unit 'kilowatthours'",
    ):
        _normalized(_altered(tmp_path, {"generation-units": "kilowatthours"}), eia, registry)
    document = json.loads(RECORDED.read_bytes())
    document["response"]["data"][7]["gross-generation-units"] = "thousand megawatthours"
    mixed = tmp_path / "mixed.json"
    mixed.write_bytes(render(document))
    with pytest.raises(NormalizeError, match=r"field 'gross-generation-units': expected one unit per page"):
        _normalized(mixed, eia, registry)


def test_eia_total_is_a_string_and_an_incomplete_return_warning_means_page_further() -> None:
    body = RECORDED.read_bytes()
    document = json.loads(body)
    assert document["response"]["total"] == "10426"
    assert document["response"]["warnings"][0]["warning"] == "incomplete return"
    # The recorded page: 5000 rows of 10426, so the next offset is 5000.
    assert page_count(_fetched(body)) == (5000, 10426)
    # Without a total, the warning alone keeps paging going (one row beyond the page) ...
    del document["response"]["total"]
    assert page_count(_fetched(render(document), offset=4000)) == (5000, 9001)
    # ... and without the warning either, a page is the last when it is short.
    del document["response"]["warnings"]
    assert page_count(_fetched(render(document))) == (5000, None)


def test_eia_error_answer_is_an_error_naming_dataset_and_url_without_the_key() -> None:
    error = json.dumps({"error": "Invalid facet: plant", "code": 400}).encode()
    with pytest.raises(
        ValueError, match="not an EIA API v2 response: the API answered with an error"
    ) as caught:
        page_count(_fetched(error))
    assert "eia_electricity" in str(caught.value) and TEST_API_KEY not in str(caught.value)


def test_eia_refresh_pages_with_offset_and_length_until_the_total_and_publishes_with_comments(
    eia: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer, eia_key: str
) -> None:
    run = refresh_dataset(eia, registry, settings, replay.url, window=YEAR_2022)
    assert run.status == "published"
    assert run.raw_files == 3 and run.rows_landed == run.rows_published == RECORDED_ROWS
    assert [(dict(r.query)["offset"], dict(r.query)["length"]) for r in replay.requests] == [
        ("0", "2000"),
        ("2000", "2000"),
        ("4000", "2000"),
    ]
    assert all(("api_key", eia_key) in r.query for r in replay.requests)
    last = json.loads(sorted(layout.raw_dir(eia.dataset, run.run_id).glob("00003-*.json"))[0].read_bytes())
    assert last["response"]["total"] == "5000" and len(last["response"]["data"]) == 1000
    with open_public(layout) as con:
        assert con.execute(
            "SELECT count(*), min(period), max(period) FROM curated.eia_electricity"
        ).fetchone() == (RECORDED_ROWS, date(2022, 7, 1), date(2022, 12, 1))
        comments = dict(
            con.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'eia_electricity'"
            ).fetchall()
        )
        assert set(comments) == set(eia.field_names) and all(comments.values())
        assert (
            "unit MWh" in comments["net_generation_mwh"]
            and "source generation" in comments["net_generation_mwh"]
        )
        assert con.execute(
            "SELECT status, rows_landed, rows_published FROM meta.runs WHERE dataset = 'eia_electricity'"
        ).fetchall() == [("published", RECORDED_ROWS, RECORDED_ROWS)]
        assert con.execute(
            "SELECT net_generation_mwh FROM curated.eia_electricity WHERE plant_code = '6761' "
            "AND period = DATE '2022-12-01' AND fuel_code = 'ALL' AND prime_mover = 'ALL'"
        ).fetchone() == (188961.0,)  # Rawhide, the first record of the recorded response


def test_eia_real_response_served_whole_lands_byte_for_byte_pages_on_and_a_short_batch_is_refused(
    eia: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    # The first answer is the recorded response itself (5000 rows, total "10426", the warning).
    replay.faults.add(Fault(path=ROUTE, mode="wrong_shape", body=RECORDED.read_text()))
    run = start_run(eia)
    with pytest.raises(ShortBatch, match="5,000 of the 10,426 records the agency declares"):
        refresh_dataset(eia, registry, settings, replay.url, window=YEAR_2022, run=run)
    # Paging went on past the warning; the replay holds no more, so the batch stays short of the
    # agency's total and the contract (publish.short_batch: refuse) refuses it: nothing published.
    assert [dict(r.query)["offset"] for r in replay.requests] == ["0", "5000"]
    first = layout.raw_dir(eia.dataset, run.run_id) / "00001-offset-000000000.json"
    assert hashlib.sha256(first.read_bytes()).hexdigest() == hashlib.sha256(RECORDED.read_bytes()).hexdigest()
    assert run.status == "failed" and run.rows_published == 0


def test_eia_second_refresh_with_unchanged_upstream_publishes_identical_rows(
    eia: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    query = "SELECT * FROM curated.eia_electricity ORDER BY ALL"
    refresh_dataset(eia, registry, settings, replay.url, window=YEAR_2022)
    with open_public(layout) as con:
        first = con.execute(query).fetchall()
    second = refresh_dataset(eia, registry, settings, replay.url, window=YEAR_2022, force=True)
    with open_public(layout) as con:
        assert con.execute(query).fetchall() == first
    assert len({r["raw_sha256"] for r in catalog_runs(layout)}) == 1
    assert second.status == "unchanged" and len(first) == RECORDED_ROWS


def test_eia_api_key_never_reaches_the_data_dir_the_logs_or_an_error(
    eia: Contract,
    registry: Registry,
    settings: Settings,
    layout: Layout,
    replay: ReplayServer,
    eia_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    refresh_dataset(eia, registry, settings, replay.url, window=YEAR_2022)
    # A failing run: the API keeps answering 500, then 403 with a body that quotes the key back.
    replay.faults.add(Fault(status=500, path=ROUTE, times=3))
    replay.faults.add(Fault(status=403, path=ROUTE, body=f'{{"error": "api_key {eia_key} is not valid"}}'))
    run = start_run(eia)
    with pytest.raises(FetchError) as caught:
        refresh_dataset(eia, registry, settings, replay.url, window=YEAR_2022, run=run)
    assert "HTTP 403" in str(caught.value) and eia_key not in str(caught.value)
    assert run.status == "failed" and run.error and eia_key not in run.error
    assert all(("api_key", eia_key) in r.query for r in replay.requests)
    files = [p for p in layout.root.rglob("*") if p.is_file()]
    assert len(files) > 10  # raw pages, manifests, failed attempts, Parquet, reports, database versions
    assert [p for p in files if eia_key.encode() in p.read_bytes()] == []
    assert eia_key not in caplog.text


def test_eia_key_is_required_live_but_not_by_the_offline_replay(
    eia: Contract,
    registry: Registry,
    settings: Settings,
    replay: ReplayServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SCDX_EIA_API_KEY", raising=False)
    with pytest.raises(
        PermissionError, match=r"no API key: set SCDX_EIA_API_KEY or the Airflow connection 'eia_api'"
    ):
        resolve_api_key(eia.source.auth, live=True)
    run = refresh_dataset(eia, registry, settings, replay.url, window=YEAR_2022)
    assert run.status == "published" and all("api_key" not in dict(r.query) for r in replay.requests)


def test_eia_ingest_file_of_a_hand_downloaded_response_records_its_name_and_sha256(
    eia: Contract, registry: Registry, settings: Settings, layout: Layout, tmp_path: Path
) -> None:
    # The saved first page of a 10,426-record query is short of its total: refused, but landed.
    short = start_run(eia)
    with pytest.raises(ShortBatch):
        ingest_file(eia, registry, settings, RECORDED, run=short)
    (manifest_path,) = layout.raw_dir(eia.dataset, short.run_id).glob("*.manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["source"] == "file" and manifest["file_name"] == RECORDED.name
    assert manifest["sha256"] == hashlib.sha256(RECORDED.read_bytes()).hexdigest()
    # The same download saved as a whole answer (the query's records all in one response).
    document = json.loads(RECORDED.read_bytes())
    document["response"]["total"] = str(len(document["response"]["data"]))
    whole = tmp_path / "eia_co_2022_whole.json"
    whole.write_text(json.dumps(document))
    run = ingest_file(eia, registry, settings, whole)
    assert run.status == "published" and run.rows_published == RECORDED_ROWS
    with open_public(layout) as con:
        assert con.execute(
            "SELECT gross_generation_mwh FROM curated.eia_electricity WHERE plant_code = '470' "
            "AND period = DATE '2022-12-01' AND fuel_code = 'SUB' AND prime_mover = 'ST'"
        ).fetchone() == (663582.71,)


def test_eia_replay_writes_json_as_the_api_does_and_refuses_what_the_api_refuses(
    replay: ReplayServer,
) -> None:
    import requests

    # Fed the recorded document, the replay's writer gives back the recorded bytes (escaped slashes included).
    assert render(json.loads(RECORDED.read_bytes())) == RECORDED.read_bytes()
    base = replay.url + ROUTE
    unknown = requests.get(base, params={"frequency": "monthly", "data[]": "capacity"}, timeout=5)
    assert unknown.status_code == 400 and "capacity" in unknown.json()["error"]
    # Without a length the API caps JSON at 5000 rows and says so; the recorded rows are exactly 5000.
    capped = requests.get(base, params={"frequency": "monthly", "offset": "1"}, timeout=5).json()["response"]
    assert capped["total"] == "5000" and len(capped["data"]) == 4999 and "warnings" not in capped


def test_dag_test_runs_the_eia_ingest_end_to_end_without_leaking_the_key(
    airflow_env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    """The generated DAG ingest_eia_electricity under dag.test(), against the replay server.

    The recording ends with December 2022 and the DAGs start in 2024; replaying, freshness is
    judged on the day the recordings stand for (2023-03-01), when the data were fresh."""
    data_dir = tmp_path / "data"
    with ReplayServer(RECORDINGS) as replay:
        env = {
            **airflow_env,
            "SCDX_DATA_DIR": str(data_dir),
            "SCDX_REPLAY_URL": replay.url,
            "SCDX_EIA_API_KEY": TEST_API_KEY,
        }
        result = run_dag_test("ingest_eia_electricity", date(2024, 2, 20), env)
        requests_seen = list(replay.requests)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = _last_json(result.stdout)
    assert outcome["tasks"] == {
        "extract_and_land": "success",
        "normalize_and_stage": "success",
        "validate": "success",
        "publish": "success",
        "check_freshness": "success",
    }
    age = (date(2023, 3, 1) - date(2022, 12, 1)).days
    logs = result.stdout + result.stderr
    assert (
        f"eia_electricity: fresh, latest data 2022-12-01 is {age} days old on 2023-03-01, the day the "
        "recordings stand for (replaying on 2024-02-20) (SLA 120 days)" in logs
    )
    # An empty table loads from the contract's start (2022-01) to the run's month, in pages of 2000.
    assert [dict(r.query)["offset"] for r in requests_seen] == ["0", "2000", "4000"]
    assert all(("api_key", TEST_API_KEY) in r.query and ("end", "2024-02") in r.query for r in requests_seen)
    assert TEST_API_KEY not in logs
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM curated.eia_electricity").fetchone() == (RECORDED_ROWS,)
        assert con.execute("SELECT status, rows_published FROM meta.runs").fetchall() == [
            ("published", RECORDED_ROWS)
        ]
    leaking = [p for p in data_dir.rglob("*") if p.is_file() and TEST_API_KEY.encode() in p.read_bytes()]
    assert leaking == []
