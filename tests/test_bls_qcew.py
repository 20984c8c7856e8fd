"""BLS QCEW industry slices: per-quarter paging, the open-data CSV quirks (suppressed cells, area
codes, split periods) and the whole refresh, on the recorded slices (recordings/bls_qcew/, built to
BLS's documented layout by scripts/build_qcew_recordings.py; see recordings/PROVENANCE.md)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import requests

from devtools import PROJECT_ROOT
from pipelines.common.settings import HttpPolicy, Settings
from pipelines.contracts import Contract, Registry
from pipelines.orchestration.refresh import refresh_dataset
from pipelines.replay.server import ReplayServer
from pipelines.sources import RawPage
from pipelines.sources.bls_qcew import area_type, industry_file, parse_page
from pipelines.sources.http import FetchedPage, FetchError, PageRequest, fetch, open_session
from pipelines.sources.paging import PageContext, per_quarter, static_params
from pipelines.sources.window import Window
from pipelines.stages.normalize import NormalizeError, NormalizeStats, build_page
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

from .conftest import RECORDINGS, catalog_runs
from .test_airflow import _last_json, airflow_env, run_dag_test  # noqa: F401 - fixture

SLICES = RECORDINGS / "bls_qcew"
STORAGE_BATTERIES_2021Q1 = SLICES / "2021" / "1" / "industry" / "335911.csv"
SEMICONDUCTORS_2021Q1 = SLICES / "2021" / "1" / "industry" / "334413.csv"
ROWS_PER_SLICE = 14  # the nation, 5 states, 5 counties, 1 unknown county, 2 metropolitan areas
RECORDED_SLICES = 20  # 2021 Q1-Q4 x 5 industries
AS_OF = date(2022, 3, 15)  # 2021-Q4 released, 2022-Q1 not yet


@pytest.fixture
def qcew(registry: Registry) -> Contract:
    return registry.get("bls_qcew_industry")


def _raw(path: Path, status: int = 200) -> RawPage:
    manifest = {"status": status, "bytes": path.stat().st_size, "content_type": "text/csv"}
    return RawPage(dataset="bls_qcew_industry", path=path, manifest=manifest)


def _normalized(path: Path, qcew: Contract, registry: Registry) -> pa.Table:
    """The source's parse step, then the common build: what normalize does to one slice."""
    raw = _raw(path)
    rows = parse_page(raw, qcew, registry)
    assert rows is not None
    return build_page(rows, qcew, registry, raw, NormalizeStats())


def _row(table: pa.Table, area_fips: str) -> dict[str, object]:
    (row,) = [r for r in table.to_pylist() if r["area_fips"] == area_fips]
    return row


def _copy(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    """A private copy of a recorded slice with one text changed (once)."""
    text = source.read_bytes().decode()
    assert text.count(old) == 1, old
    target = tmp_path / source.name
    target.write_bytes(text.replace(old, new).encode())
    return target


def _no_fetch(request: PageRequest) -> FetchedPage:
    raise AssertionError("building requests must not fetch")


def test_window_quarters_are_the_calendar_quarters_it_touches() -> None:
    assert Window(date(2021, 2, 1), date(2021, 7, 1)).quarters() == [
        date(2021, 1, 1),
        date(2021, 4, 1),
        date(2021, 7, 1),
    ]
    assert Window(date(2021, 12, 1), date(2022, 1, 1)).quarters() == [date(2021, 10, 1), date(2022, 1, 1)]


def test_qcew_asks_one_slice_per_quarter_and_industry_with_the_quarter_in_the_path(
    qcew: Contract, registry: Registry
) -> None:
    ctx = PageContext(
        qcew, registry, Window(date(2021, 5, 1), date(2021, 7, 1)), "https://data.bls.gov", None, _no_fetch
    )
    # The industries go into the path, not the query.
    assert static_params(qcew, registry) == []
    slices = [{"industry": industry_file(code)} for code in ("3361", "31-33")]
    built = list(per_quarter(ctx, (), slices, expect=("text/csv",), absent=(404,)))
    assert [r.url for r in built] == [
        "https://data.bls.gov/cew/data/api/2021/2/industry/3361.csv",
        "https://data.bls.gov/cew/data/api/2021/2/industry/31_33.csv",
        "https://data.bls.gov/cew/data/api/2021/3/industry/3361.csv",
        "https://data.bls.gov/cew/data/api/2021/3/industry/31_33.csv",
    ]
    assert [r.partition for r in built][:2] == ["2021-Q2-3361", "2021-Q2-31_33"]
    assert all(r.params == () and r.absent == (404,) for r in built)


def test_a_status_the_request_calls_absent_is_a_page_and_any_other_4xx_an_error(replay: ReplayServer) -> None:
    policy = HttpPolicy(max_attempts=1)
    url = replay.url + "/cew/data/api/2031/1/industry/335911.csv"
    with open_session() as session:
        page = fetch(
            session,
            PageRequest("bls_qcew_industry", url, (), "2031-Q1", expect=("text/csv",), absent=(404,)),
            policy,
        )
        assert page.status == 404
        with pytest.raises(FetchError, match="HTTP 404"):
            fetch(session, PageRequest("bls_qcew_industry", url, (), "2031-Q1", expect=("text/csv",)), policy)


def test_qcew_slice_normalizes_oakland_county_storage_batteries_to_contract_types(
    qcew: Contract, registry: Registry
) -> None:
    table = _normalized(STORAGE_BATTERIES_2021Q1, qcew, registry)
    assert table.num_rows == ROWS_PER_SLICE
    assert table.schema.field("period").type == pa.date32()
    assert table.schema.field("month1_employment").type == pa.int64()
    assert table.schema.field("lq_month1_employment").type == pa.float64()
    # "26125","5","335911","78","0","2021","1","",9,692,681,682,13602036,... in the slice.
    oakland = _row(table, "26125")
    assert oakland == {
        "period": date(2021, 1, 1),
        "quarter": "2021-Q1",
        "area_fips": "26125",
        "area_type": "county",
        "state_fips": "26",
        "county_fips": "26125",
        "own_code": "5",
        "industry_code": "335911",
        "agglvl_code": "78",
        "size_code": "0",
        "suppressed": False,
        "establishments": 9,
        "month1_employment": 692,
        "month2_employment": 681,
        "month3_employment": 682,
        "total_wages_usd": 13_602_036,
        "taxable_wages_usd": 4_624_692,
        "contributions_usd": 110_993,
        "avg_weekly_wage_usd": 1527,
        "lq_suppressed": False,
        "lq_establishments": 0.60,
        "lq_month1_employment": 0.66,
        "lq_month2_employment": 0.66,
        "lq_month3_employment": 0.66,
        "lq_total_wages": 0.72,
        "lq_taxable_wages": 0.65,
        "lq_contributions": 0.68,
        "lq_avg_weekly_wage": 1.08,
        "oty_suppressed": False,
        "oty_establishments_chg": 0,
        "oty_establishments_pct": 0.0,
        "oty_month1_employment_chg": -6,
        "oty_month1_employment_pct": -0.9,
        "oty_month2_employment_chg": -5,
        "oty_month2_employment_pct": -0.7,
        "oty_month3_employment_chg": -11,
        "oty_month3_employment_pct": -1.6,
        "oty_total_wages_chg_usd": 423_359,
        "oty_total_wages_pct": 3.2,
        "oty_taxable_wages_chg_usd": 143_942,
        "oty_taxable_wages_pct": 3.2,
        "oty_contributions_chg_usd": 3455,
        "oty_contributions_pct": 3.2,
        "oty_avg_weekly_wage_chg_usd": 63,
        "oty_avg_weekly_wage_pct": 4.3,
    }


def test_qcew_suppressed_county_is_null_with_a_flag_never_zero(qcew: Contract, registry: Registry) -> None:
    published = STORAGE_BATTERIES_2021Q1.read_text()
    # As BLS publishes an undisclosed cell: code N and zeros, establishments still counted.
    assert (
        '"13157","5","335911","78","0","2021","1","N",6,0,0,0,0,0,0,0,"N",0.49,0,0,0,0,0,0,0,"N",1,20.0,0,'
        in published
    )
    jackson = _row(_normalized(STORAGE_BATTERIES_2021Q1, qcew, registry), "13157")
    assert (
        jackson["suppressed"] is True
        and jackson["lq_suppressed"] is True
        and jackson["oty_suppressed"] is True
    )
    hidden = [
        "month1_employment",
        "month2_employment",
        "month3_employment",
        "total_wages_usd",
        "taxable_wages_usd",
        "contributions_usd",
        "avg_weekly_wage_usd",
        "lq_month1_employment",
        "lq_total_wages",
        "lq_avg_weekly_wage",
        "oty_month3_employment_chg",
        "oty_month3_employment_pct",
        "oty_total_wages_chg_usd",
        "oty_avg_weekly_wage_pct",
    ]
    assert {name: jackson[name] for name in hidden} == dict.fromkeys(hidden)
    assert (jackson["establishments"], jackson["lq_establishments"]) == (6, 0.49)
    assert (jackson["oty_establishments_chg"], jackson["oty_establishments_pct"]) == (1, 20.0)


def test_qcew_over_the_year_suppression_alone_leaves_the_quarter_disclosed(
    qcew: Contract, registry: Registry
) -> None:
    lorain = _row(_normalized(STORAGE_BATTERIES_2021Q1, qcew, registry), "39093")
    assert (lorain["suppressed"], lorain["oty_suppressed"]) == (False, True)
    assert (lorain["month1_employment"], lorain["avg_weekly_wage_usd"], lorain["lq_month1_employment"]) == (
        474,
        1358,
        0.57,
    )
    assert (lorain["oty_month1_employment_chg"], lorain["oty_total_wages_pct"]) == (None, None)


def test_qcew_area_codes_are_typed_by_their_shape(qcew: Contract, registry: Registry) -> None:
    table = _normalized(STORAGE_BATTERIES_2021Q1, qcew, registry)
    kinds = {
        r["area_fips"]: (r["area_type"], r["state_fips"], r["county_fips"], r["agglvl_code"])
        for r in table.to_pylist()
    }
    assert kinds["US000"] == ("national", None, None, "18")
    assert kinds["13000"] == ("state", "13", None, "58")
    assert kinds["26999"] == ("county_unknown", "26", None, "78")
    assert kinds["C1982"] == ("msa", None, None, "48")
    assert [area_type(code) for code in ("CS176", "USMSA", "USNMS", "72000", "9999X")] == [
        "csa",
        "national_subgroup",
        "national_subgroup",
        "state",
        None,
    ]


def test_qcew_combined_statistical_area_row_is_flagged_csa(
    qcew: Contract, registry: Registry, tmp_path: Path
) -> None:
    # CSAs carry totals only (agglvl 30); a slice that holds one types it like any other area.
    path = _copy(tmp_path, STORAGE_BATTERIES_2021Q1, '"C1206","5","335911","48"', '"CS122","5","335911","30"')
    atlanta_csa = _row(_normalized(path, qcew, registry), "CS122")
    assert (atlanta_csa["area_type"], atlanta_csa["state_fips"], atlanta_csa["month1_employment"]) == (
        "csa",
        None,
        620,
    )


def test_qcew_area_code_of_unknown_shape_is_an_error_naming_file_row_and_field(
    qcew: Contract, registry: Registry, tmp_path: Path
) -> None:
    path = _copy(tmp_path, STORAGE_BATTERIES_2021Q1, '"26999"', '"M2699"')
    with pytest.raises(
        NormalizeError, match=r"bls_qcew_industry: .*335911\.csv, row 7, field 'area_fips': area code 'M2699'"
    ):
        _normalized(path, qcew, registry)


def test_qcew_area_code_that_lost_its_leading_zero_gets_it_back(
    qcew: Contract, registry: Registry, tmp_path: Path
) -> None:
    # Saved through a spreadsheet: Maricopa County AZ "04013" became 4013.
    path = _copy(tmp_path, SEMICONDUCTORS_2021Q1, '"04013","5"', '4013,"5"')
    maricopa = _row(_normalized(path, qcew, registry), "04013")
    assert (maricopa["area_type"], maricopa["state_fips"], maricopa["month1_employment"]) == (
        "county",
        "04",
        8491,
    )


def test_qcew_annual_average_rows_are_refused_naming_the_field(
    qcew: Contract, registry: Registry, tmp_path: Path
) -> None:
    path = _copy(
        tmp_path,
        STORAGE_BATTERIES_2021Q1,
        '"13000","5","335911","58","0","2021","1"',
        '"13000","5","335911","58","0","2021","A"',
    )
    with pytest.raises(
        NormalizeError,
        match=r"row 3, field 'qtr': year '2021' and qtr 'A' are not a calendar quarter \(A is an annual average\)",
    ):
        _normalized(path, qcew, registry)


def test_qcew_refresh_fetches_each_released_quarter_and_publishes_with_comments(
    qcew: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    run = refresh_dataset(qcew, registry, settings, replay.url, as_of=AS_OF)
    assert run.status == "published"
    assert (run.window_start, run.window_end) == (date(2021, 1, 1), date(2022, 3, 1))
    # 2021-Q1 .. 2022-Q1 for five industries; 2022-Q1 is not released (404, landed as no data).
    assert run.raw_files == 25 and sorted({r.status for r in replay.requests}) == [200, 404]
    assert [r.path for r in replay.requests][:2] == [
        "/cew/data/api/2021/1/industry/335911.csv",
        "/cew/data/api/2021/1/industry/335912.csv",
    ]
    assert run.rows_landed == run.rows_published == RECORDED_SLICES * ROWS_PER_SLICE
    with open_public(layout) as con:
        assert con.execute(
            "SELECT count(*), count(DISTINCT quarter), min(period), max(period), count(*) FILTER (suppressed) "
            "FROM curated.bls_qcew_industry"
        ).fetchone() == (280, 4, date(2021, 1, 1), date(2021, 10, 1), 7 * 4)  # 7 undisclosed cells a quarter
        comments = dict(
            con.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'bls_qcew_industry'"
            ).fetchall()
        )
        assert set(comments) == set(qcew.field_names) and all(comments.values())
        assert "BLS writes zeros" in comments["suppressed"]
        assert "source month3_emplvl" in comments["month3_employment"]
        assert con.execute(
            "SELECT status, rows_landed, rows_published FROM meta.runs WHERE dataset = 'bls_qcew_industry'"
        ).fetchall() == [("published", 280, 280)]
        # Semiconductor devices, Travis County TX (Austin), 2021-Q3, as in the slice.
        travis = con.execute(
            "SELECT month3_employment, avg_weekly_wage_usd FROM curated.bls_qcew_industry "
            "WHERE area_fips = '48453' AND industry_code = '334413' AND quarter = '2021-Q3'"
        ).fetchone()
    line = next(
        line
        for line in (SLICES / "2021" / "3" / "industry" / "334413.csv").read_text().splitlines()
        if line.startswith('"48453"')
    ).split(",")
    assert travis == (int(line[11]), int(line[15]))


def test_qcew_second_refresh_starts_two_quarters_back_and_publishes_identical_rows(
    qcew: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    query = "SELECT * FROM curated.bls_qcew_industry ORDER BY ALL"
    refresh_dataset(qcew, registry, settings, replay.url, as_of=AS_OF)
    with open_public(layout) as con:
        first = con.execute(query).fetchall()
    replay.requests.clear()
    second = refresh_dataset(qcew, registry, settings, replay.url, as_of=AS_OF)
    # The cursor (2021-10) minus the 6-month lookback: 2021-Q2 .. 2022-Q1.
    assert (second.window_start, second.window_end) == (date(2021, 4, 1), date(2022, 3, 1))
    # The same rows again: normalized and checked, and no release (nothing changes).
    assert len(replay.requests) == 20 and second.status == "unchanged" and second.rows_staged == 210
    with open_public(layout) as con:
        assert con.execute(query).fetchall() == first
        assert con.execute(
            "SELECT count(*) FROM (SELECT period, area_fips, own_code, industry_code, agglvl_code, size_code "
            "FROM curated.bls_qcew_industry GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone() == (0,)
    assert len(first) == 280


def test_qcew_window_of_unreleased_quarters_ends_as_no_data_and_publishes_nothing(
    qcew: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    run = refresh_dataset(
        qcew, registry, settings, replay.url, window=Window(date(2022, 1, 1), date(2022, 6, 1))
    )
    assert run.status == "no_data" and run.raw_files == 10 and run.rows_published == 0
    assert {r.status for r in replay.requests} == {404}
    # Nothing published at all: no release was made for a run without data.
    assert not layout.public_db.exists()
    assert [r["status"] for r in catalog_runs(layout)] == ["no_data"]


def test_qcew_ingest_file_of_a_hand_downloaded_slice_records_its_name_and_sha256(
    data_dir: Path, layout: Layout
) -> None:
    """``scdx ingest-file`` as a user runs it, on a slice saved from the open-data site."""
    slice_ = SLICES / "2021" / "3" / "industry" / "3361.csv"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "scdx"), "ingest-file", "bls_qcew_industry", str(slice_)],
        env={**os.environ, "SCDX_DATA_DIR": str(data_dir), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "published" in result.stdout
    (manifest_path,) = data_dir.glob("raw/bls_qcew_industry/*/00001-3361.manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["source"] == "file" and manifest["file_name"] == "3361.csv"
    assert manifest["sha256"] == hashlib.sha256(slice_.read_bytes()).hexdigest()
    with open_public(layout) as con:
        assert con.execute(
            "SELECT count(*), min(quarter), count(*) FILTER (suppressed) FROM curated.bls_qcew_industry"
        ).fetchone() == (ROWS_PER_SLICE, "2021-Q3", 1)
        assert con.execute("SELECT status, rows_published FROM meta.runs").fetchall() == [
            ("published", ROWS_PER_SLICE)
        ]


def test_qcew_replay_serves_recorded_slices_byte_for_byte_and_404_for_the_rest(replay: ReplayServer) -> None:
    recorded = requests.get(replay.url + "/cew/data/api/2021/1/industry/335911.csv", timeout=5)
    assert recorded.status_code == 200 and recorded.headers["Content-Type"] == "text/csv"
    assert recorded.content == STORAGE_BATTERIES_2021Q1.read_bytes() and b"\r\n" in recorded.content
    assert requests.get(replay.url + "/cew/data/api/2022/1/industry/335911.csv", timeout=5).status_code == 404


def test_dag_test_runs_the_qcew_ingest_end_to_end(
    airflow_env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    """The generated DAG ingest_bls_qcew_industry under dag.test(), against the replay server.

    The recorded quarters end with 2021-Q4 and the DAGs start in 2024; replaying, freshness is
    judged on the day the recordings stand for (2022-06-08), when the data were fresh."""
    data_dir = tmp_path / "data"
    with ReplayServer(RECORDINGS) as replay:
        env = {**airflow_env, "SCDX_DATA_DIR": str(data_dir), "SCDX_REPLAY_URL": replay.url}
        result = run_dag_test("ingest_bls_qcew_industry", date(2024, 1, 20), env)
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
    age = (date(2022, 6, 8) - date(2021, 10, 1)).days
    assert (
        f"bls_qcew_industry: fresh, latest data 2021-10-01 is {age} days old on 2022-06-08, the day the "
        "recordings stand for (replaying on 2024-01-20) (SLA 370 days)" in result.stdout + result.stderr
    )
    # An empty table loads from the contract's start: 2021-Q1 .. 2024-Q1, five industries each.
    assert len(requests_seen) == 13 * 5
    assert sum(r.status == 200 for r in requests_seen) == RECORDED_SLICES
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM curated.bls_qcew_industry").fetchone() == (280,)
        assert con.execute("SELECT status, rows_published FROM meta.runs").fetchall() == [("published", 280)]


def test_qcew_recordings_are_rebuilt_identically_by_the_committed_script(tmp_path: Path) -> None:
    import shutil

    before = {
        p.relative_to(SLICES): hashlib.sha256(p.read_bytes()).hexdigest() for p in SLICES.rglob("*.csv")
    }
    script = tmp_path / "scripts" / "build_qcew_recordings.py"
    script.parent.mkdir()
    shutil.copy(PROJECT_ROOT / "scripts" / "build_qcew_recordings.py", script)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rebuilt_dir = tmp_path / "recordings" / "bls_qcew"
    rebuilt = {
        p.relative_to(rebuilt_dir): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in rebuilt_dir.rglob("*.csv")
    }
    assert rebuilt == before and len(before) == RECORDED_SLICES
