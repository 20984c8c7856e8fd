"""FAF5 regional flows: the FAF5.7.1 zip, constructed to the documented layout (see
recordings/PROVENANCE.md), through the FAF5 source, the replay server, a refresh, ``scdx
ingest-file`` and the Airflow DAG."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import requests

from pipelines.common.settings import HttpPolicy, Settings
from pipelines.contracts import Contract, Registry
from pipelines.orchestration.refresh import ingest_file, refresh_dataset
from pipelines.replay import faf5_generate
from pipelines.replay.server import Fault, ReplayServer
from pipelines.sources import RawPage
from pipelines.sources.faf5 import parse_batches
from pipelines.stages.normalize import DriftRejected, NormalizeError, NormalizeStats, build_page
from pipelines.stages.quarantine import QuarantinedError
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

from .conftest import RECORDINGS, SCHEMAS
from .test_airflow import DAGS, _last_json, _python, airflow_env, run_dag_test  # noqa: F401 - fixture reused

DATASET = "faf5_regional_flows"
FAF_PATH = "/faf5/data/download_files/FAF5.7.1.zip"
RECORDS = 300
YEARS = [2017, 2018, 2019, 2020, 2021, 2022, 2023, 2024, 2030, 2035, 2040, 2045, 2050]
SHORT_TONS_K = 907.18474  # thousand short tons -> metric tons
TON_MILES_M = 1459972.3182105601  # million short-ton-miles -> tonne-km
SCDX = str(Path(sys.executable).parent / "scdx")


@pytest.fixture(scope="module")
def faf_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory of this module's own: generated files never go near recordings/."""
    return tmp_path_factory.mktemp("faf5-cache")


@pytest.fixture(scope="module")
def faf_zip(faf_cache: Path) -> Path:
    return faf5_generate.cached_faf5_zip(RECORDS, directory=faf_cache)


@pytest.fixture
def faf_env(monkeypatch: pytest.MonkeyPatch, faf_cache: Path) -> None:
    """The replay server (in this process) serves the RECORDS-record file from this module's cache."""
    monkeypatch.setenv("SCDX_CACHE_DIR", str(faf_cache))
    monkeypatch.setenv(faf5_generate.ROWS_ENV, str(RECORDS))


@pytest.fixture(scope="module")
def faf(registry: Registry) -> Contract:
    return registry.get(DATASET)


@pytest.fixture
def spooling_settings(data_dir: Path, fast_http: HttpPolicy) -> Settings:
    """Settings whose HTTP client writes any body over 4 KiB to disk as it arrives (the bulk path)."""
    http = HttpPolicy(**{**fast_http.__dict__, "spool_bytes": 4096})
    return Settings(data_dir=data_dir, schemas_dir=SCHEMAS, recordings_dir=RECORDINGS, http=http)


def _csv(zip_path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the zip's CSV member, read with the csv module (independently of the source)."""
    with zipfile.ZipFile(zip_path) as archive, archive.open("FAF5.7.1.csv") as member:
        header, *rows = list(csv.reader(io.TextIOWrapper(member, encoding="utf-8", newline="")))
    return header, rows


def _write_csv(path: Path, header: list[str], rows: list[list[str]], zipped: bool = True) -> Path:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([header, *rows])
    if zipped:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("FAF5.7.1.csv", text.getvalue())
    else:
        path.write_text(text.getvalue())
    return path


def _without(header: list[str], rows: list[list[str]], drop: set[str]) -> tuple[list[str], list[list[str]]]:
    keep = [i for i, name in enumerate(header) if name not in drop]
    return [header[i] for i in keep], [[row[i] for i in keep] for row in rows]


def _normalize(path: Path, faf: Contract, registry: Registry) -> pa.Table:
    """The source's streaming parse, then the common build: what normalize does to the file."""
    page = RawPage(
        dataset=DATASET,
        path=path,
        manifest={"status": 200, "bytes": path.stat().st_size, "content_type": "application/zip"},
    )
    stats = NormalizeStats()
    tables = [build_page(rows, faf, registry, page, stats) for rows in parse_batches(page, faf, registry)]
    return pa.concat_tables(tables)


def _record(table: pa.Table, flow_id: str) -> list[dict[str, object]]:
    rows = [r for r in table.to_pylist() if r["flow_id"] == flow_id]
    return sorted(rows, key=lambda r: int(str(r["year"])))


def test_faf_code_lists_have_the_documented_sizes_and_every_zone_lies_in_a_known_state(
    registry: Registry,
) -> None:
    lists = registry.codelists
    zones = lists.rows("faf_zones")
    assert len(zones) == 132  # the 2017 CFS areas FAF5 uses as zones
    states = {r["state_fips"]: r["usps"] for r in lists.rows("states")}
    assert all(z["faf_zone"][:2] == z["state_fips"] and states[z["state_fips"]] == z["usps"] for z in zones)
    assert len({z["state_fips"] for z in zones}) == 51  # 50 states and DC
    assert {z["faf_zone"]: z["short_name"] for z in zones if z["faf_zone"] in ("019", "489")} == {
        "019": "Rest of AL",
        "489": "Rest of TX",
    }
    assert lists.values("faf_foreign_regions", "faf_region") == [str(c) for c in range(801, 809)]
    assert lists.values("faf_modes", "mode") == [str(c) for c in range(1, 9)]
    assert lists.values("faf_trade_types", "trade_type") == ["1", "2", "3"]
    assert lists.values("faf_distance_bands", "distance_band") == [str(c) for c in range(1, 9)]


def test_constructed_zip_has_the_documented_faf5_layout_with_codes_written_as_numbers(faf_zip: Path) -> None:
    with zipfile.ZipFile(faf_zip) as archive:
        assert archive.namelist() == ["FAF5.7.1.csv"]
    header, rows = _csv(faf_zip)
    dims = ["fr_orig", "dms_orig", "dms_dest", "fr_dest", "fr_inmode", "dms_mode", "fr_outmode"]
    assert header[:10] == [*dims, "sctg2", "trade_type", "dist_band"]
    assert header[10:23] == [f"tons_{y}" for y in YEARS]
    assert header[23:36] == [f"value_{y}" for y in YEARS]
    assert header[36:43] == [f"current_value_{y}" for y in range(2018, 2025)]
    assert header[43:] == [f"tmiles_{y}" for y in YEARS]
    assert len(header) == 56  # the FAF5.7 regional database's 56 variables
    assert len(rows) == RECORDS and {len(r) for r in rows} == {56}
    # Zone 011 and SCTG 05 written as 11 and 5, foreign codes empty: as the agency's CSV has them.
    assert rows[0][:11] == ["", "11", "129", "", "", "7", "", "24", "1", "5", "0.0702"]
    assert rows[7][:10] == ["801", "11", "242", "", "1", "7", "", "5", "2", "6"]
    assert rows[9][:10] == ["", "11", "369", "801", "", "6", "1", "28", "3", "5"]


def test_generated_bytes_are_reproducible_and_a_smaller_file_is_the_start_of_a_larger(
    faf_zip: Path, tmp_path: Path
) -> None:
    again = faf5_generate.write_faf5_zip(tmp_path / "again.zip", RECORDS)
    assert again.read_bytes() == faf_zip.read_bytes()
    smaller = faf5_generate.write_faf5_zip(tmp_path / "small.zip", 40)
    assert _csv(smaller)[1] == _csv(faf_zip)[1][:40]


def test_a_wide_record_becomes_one_row_per_year_with_its_values_converted_exactly(
    faf_zip: Path, faf: Contract, registry: Registry
) -> None:
    header, rows = _csv(faf_zip)
    first = dict(zip(header, rows[0], strict=True))
    table = _normalize(faf_zip, faf, registry)
    assert table.num_rows == RECORDS * len(YEARS)
    record = _record(table, "-.011.129.-.-.7.-.24.1.5")
    assert [r["year"] for r in record] == YEARS
    assert [r["is_forecast"] for r in record] == [False] * 8 + [True] * 5
    codes = {k: record[0][k] for k in ("origin_zone", "destination_zone", "domestic_mode", "sctg2")}
    assert codes == {"origin_zone": "011", "destination_zone": "129", "domestic_mode": "7", "sctg2": "24"}
    assert (record[0]["trade_type"], record[0]["distance_band"]) == ("1", "5")
    assert (
        {r["foreign_origin_region"] for r in record} == {None} == {r["foreign_outbound_mode"] for r in record}
    )
    # 2017, the base year: 0.0702 thousand short tons; its current value is its (2017-dollar) value.
    assert record[0]["weight_t"] == 0.0702 * SHORT_TONS_K
    assert record[0]["value_constant_usd"] == 0.295 * 1_000_000 == record[0]["value_current_usd"]
    for row in record:
        year = row["year"]
        assert row["weight_t"] == float(first[f"tons_{year}"]) * SHORT_TONS_K
        assert row["value_constant_usd"] == float(first[f"value_{year}"]) * 1_000_000
        assert row["freight_tonne_km"] == float(first[f"tmiles_{year}"]) * TON_MILES_M
    assert record[1]["value_current_usd"] == float(first["current_value_2018"]) * 1_000_000 == 254_100.0
    # A forecast year has no current-dollar value.
    assert [r["value_current_usd"] for r in record[8:]] == [None] * 5


def test_imports_and_exports_keep_foreign_region_and_mode_and_codes_get_their_zeros_back(
    faf_zip: Path, faf: Contract, registry: Registry
) -> None:
    table = _normalize(faf_zip, faf, registry)
    (imported,) = [r for r in _record(table, "801.011.242.-.1.7.-.05.2.6") if r["year"] == 2024]
    assert (imported["foreign_origin_region"], imported["foreign_inbound_mode"]) == ("801", "1")
    assert (imported["foreign_destination_region"], imported["foreign_outbound_mode"]) == (None, None)
    assert imported["sctg2"] == "05" and imported["origin_zone"] == "011"
    (exported,) = [r for r in _record(table, "-.011.369.801.-.6.1.28.3.5") if r["year"] == 2024]
    assert (exported["foreign_destination_region"], exported["foreign_outbound_mode"]) == ("801", "1")
    assert exported["foreign_origin_region"] is None and exported["destination_zone"] == "369"


def test_which_years_are_forecasts_is_read_from_the_header_not_assumed(
    faf_zip: Path, faf: Contract, registry: Registry, tmp_path: Path
) -> None:
    header, rows = _csv(faf_zip)
    # A release whose latest year is itself projected publishes no current dollars for it.
    variant = _write_csv(tmp_path / "no2024.zip", *_without(header, rows[:5], {"current_value_2024"}))
    flags = {(r["year"], r["is_forecast"]) for r in _normalize(variant, faf, registry).to_pylist()}
    assert {y for y, forecast in flags if forecast} == {2024, 2030, 2035, 2040, 2045, 2050}
    # The FAF5.0 layout: the 2017 base year and forecasts only, no current dollars at all.
    annual = {f"{m}_{y}" for m in ("tons", "value", "current_value", "tmiles") for y in range(2018, 2025)}
    faf50 = _write_csv(tmp_path / "faf50.csv", *_without(header, rows[:5], annual), zipped=False)
    table = _normalize(faf50, faf, registry)
    assert sorted({(r["year"], r["is_forecast"]) for r in table.to_pylist()}) == [
        (2017, False),
        (2030, True),
        (2035, True),
        (2040, True),
        (2045, True),
        (2050, True),
    ]


def test_a_header_missing_one_year_of_a_measure_is_an_error_naming_the_column(
    faf_zip: Path, faf: Contract, registry: Registry, tmp_path: Path
) -> None:
    header, rows = _csv(faf_zip)
    broken = _write_csv(tmp_path / "FAF5.7.1.zip", *_without(header, rows[:3], {"tmiles_2035"}))
    with pytest.raises(
        NormalizeError, match=r"faf5_regional_flows: .*FAF5\.7\.1\.zip.*no column tmiles_2035"
    ):
        _normalize(broken, faf, registry)


def test_a_value_that_is_not_a_number_is_rejected_naming_dataset_file_row_and_field(
    faf_zip: Path, faf: Contract, registry: Registry, tmp_path: Path
) -> None:
    header, rows = _csv(faf_zip)
    rows = [list(r) for r in rows[:10]]
    rows[4][header.index("tons_2019")] = "NA"
    broken = _write_csv(tmp_path / "FAF5.7.1.zip", header, rows)
    with pytest.raises(DriftRejected) as caught:
        _normalize(broken, faf, registry)
    message = str(caught.value)
    assert "faf5_regional_flows" in message and "FAF5.7.1.zip" in message
    assert "row 6" in message  # the header is row 1, the fifth record row 6
    assert "'weight_t'" in message and "'NA'" in message and caught.value.event.kind == "type_change"


def test_a_record_with_a_value_missing_is_an_error_naming_the_file(
    faf_zip: Path, faf: Contract, registry: Registry, tmp_path: Path
) -> None:
    header, rows = _csv(faf_zip)
    rows = [list(r) for r in rows[:10]]
    rows[6] = rows[6][:-1]  # a line cut short: 55 values under 56 names
    broken = _write_csv(tmp_path / "FAF5.7.1.zip", header, rows)
    with pytest.raises(
        NormalizeError, match=r"faf5_regional_flows: .*FAF5\.7\.1\.zip.*Expected 56 columns, got 55"
    ):
        _normalize(broken, faf, registry)


def test_a_zip_without_exactly_one_csv_or_an_error_page_is_rejected(
    faf_zip: Path, faf: Contract, registry: Registry, tmp_path: Path
) -> None:
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("FAF5.7.1.csv", "fr_orig\n")
        archive.writestr("FAF5_metadata.csv", "x\n")
    with pytest.raises(NormalizeError, match="expected one CSV member in the zip archive, found 2"):
        _normalize(two, faf, registry)
    page = tmp_path / "error.zip"
    page.write_bytes(b"<html><body>Service Unavailable</body></html>")
    with pytest.raises(NormalizeError, match="got an HTML or JSON document"):
        _normalize(page, faf, registry)


def test_replay_serves_the_zip_streamed_at_the_download_path_sized_by_the_setting(
    replay: ReplayServer, faf_env: None, faf_zip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = requests.get(replay.url + FAF_PATH, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/zip"
    assert int(response.headers["Content-Length"]) == faf_zip.stat().st_size
    assert response.content == faf_zip.read_bytes()
    assert requests.get(replay.url + "/faf5/data/download_files/FAF5.6.zip", timeout=5).status_code == 404
    monkeypatch.setenv(faf5_generate.ROWS_ENV, "120")
    smaller = requests.get(replay.url + FAF_PATH, timeout=30).content
    with zipfile.ZipFile(io.BytesIO(smaller)) as archive:
        assert len(archive.read("FAF5.7.1.csv").splitlines()) == 121


def test_refresh_downloads_to_disk_and_publishes_the_release_in_long_form(
    registry: Registry,
    faf: Contract,
    spooling_settings: Settings,
    layout: Layout,
    replay: ReplayServer,
    faf_env: None,
    faf_zip: Path,
) -> None:
    run = refresh_dataset(faf, registry, spooling_settings, replay.url)
    assert run.status == "published" and run.validation == "passed"
    assert (run.rows_landed, run.rows_published) == (RECORDS, RECORDS * len(YEARS))
    assert [r.path for r in replay.requests] == [FAF_PATH]
    (manifest_path,) = layout.raw_dir(DATASET, run.run_id).glob("*.manifest.json")
    manifest = json.loads(manifest_path.read_text())
    landed = layout.raw_dir(DATASET, run.run_id) / manifest["file"]
    assert landed.read_bytes() == faf_zip.read_bytes()
    assert manifest["sha256"] == hashlib.sha256(faf_zip.read_bytes()).hexdigest()
    assert manifest["url"].endswith(FAF_PATH) and manifest["content_type"] == "application/zip"
    # The body went to a temporary file (over the 4 KiB spool threshold), moved into place.
    assert not list(layout.work_dir.glob("download-*"))
    header, rows = _csv(faf_zip)
    tons_2017 = sum(float(r[header.index("tons_2017")]) for r in rows)
    with open_public(layout) as con:
        by_trade = con.execute(
            "SELECT trade_type, count(DISTINCT flow_id) FROM curated.faf5_regional_flows GROUP BY 1 ORDER BY 1"
        ).fetchall()
        weight_2017, forecasts, with_current = con.execute(
            "SELECT sum(weight_t) FILTER (WHERE year = 2017), count(*) FILTER (WHERE is_forecast), "
            "count(value_current_usd) FROM curated.faf5_regional_flows"
        ).fetchone() or (0, 0, 0)
        conversions = con.execute(
            "SELECT field, from_unit, rows FROM meta.unit_conversions ORDER BY field"
        ).fetchall()
    # Seven domestic records in ten, two imports, one export (the constructed file's mix).
    assert by_trade == [("1", 210), ("2", 60), ("3", 30)]
    assert weight_2017 == pytest.approx(tons_2017 * SHORT_TONS_K, rel=1e-12)
    assert (forecasts, with_current) == (RECORDS * 5, RECORDS * 8)
    # One conversion record per field and file, however many blocks and years went through.
    assert conversions == [
        ("freight_tonne_km", "million_ton_miles", 3900),
        ("value_constant_usd", "million_USD", 3900),
        ("value_current_usd", "million_USD", 2400),
        ("weight_t", "thousand_short_tons", 3900),
    ]


def test_a_download_cut_short_is_retried_and_leaves_no_partial_file(
    registry: Registry,
    faf: Contract,
    spooling_settings: Settings,
    layout: Layout,
    replay: ReplayServer,
    faf_env: None,
    faf_zip: Path,
) -> None:
    replay.faults.add(Fault(mode="truncate", path=FAF_PATH))
    run = refresh_dataset(faf, registry, spooling_settings, replay.url)
    assert run.status == "published" and [r.status for r in replay.requests] == [-1, 200]
    assert run.raw_sha256 == [hashlib.sha256(faf_zip.read_bytes()).hexdigest()]
    assert not list(layout.work_dir.glob("download-*"))


def test_a_second_refresh_of_unchanged_bytes_publishes_identical_rows(
    registry: Registry, faf: Contract, settings: Settings, layout: Layout, replay: ReplayServer, faf_env: None
) -> None:
    query = "SELECT * FROM curated.faf5_regional_flows ORDER BY flow_id, year"
    first = refresh_dataset(faf, registry, settings, replay.url)
    with open_public(layout) as con:
        before = con.execute(query).fetchall()
    unchanged = refresh_dataset(faf, registry, settings, replay.url)
    second = refresh_dataset(faf, registry, settings, replay.url, force=True)
    with open_public(layout) as con:
        after = con.execute(query).fetchall()
    # Same bytes: nothing is normalized or published; forced, the same rows are normalized again,
    # and since they are exactly the published ones, no release is made either.
    assert (unchanged.status, unchanged.rows_staged, unchanged.publish_version) == ("unchanged", 0, None)
    assert (second.status, second.rows_staged, second.publish_version) == ("unchanged", len(before), 1)
    assert first.publish_version == 1
    assert first.raw_sha256 == unchanged.raw_sha256 == second.raw_sha256
    assert len(before) == RECORDS * len(YEARS) and after == before


def test_scdx_ingest_file_publishes_the_zip_and_the_manifest_names_it_with_its_sha256(
    faf_zip: Path, data_dir: Path, tmp_path: Path
) -> None:
    downloaded = tmp_path / "downloads" / "FAF5.7.1.zip"
    downloaded.parent.mkdir()
    shutil.copy(faf_zip, downloaded)
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        [SCDX, "ingest-file", DATASET, str(downloaded), "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "published" in result.stdout and "3,900" in result.stdout
    (manifest_path,) = (data_dir / "raw" / DATASET).glob("*/*.manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["source"] == "file" and manifest["file_name"] == "FAF5.7.1.zip"
    assert manifest["sha256"] == hashlib.sha256(downloaded.read_bytes()).hexdigest()
    assert manifest["bytes"] == downloaded.stat().st_size and downloaded.exists()
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM curated.faf5_regional_flows").fetchone() == (3900,)
        assert con.execute("SELECT sha256 FROM meta.run_files WHERE kind = 'raw'").fetchall() == [
            (manifest["sha256"],)
        ]


def test_a_domestic_record_with_a_foreign_region_is_quarantined_by_the_trade_type_check(
    faf_zip: Path, registry: Registry, faf: Contract, settings: Settings, tmp_path: Path
) -> None:
    header, rows = _csv(faf_zip)
    rows = [list(r) for r in rows]
    assert rows[1][header.index("trade_type")] == "1"
    rows[1][header.index("fr_orig")] = "807"
    broken = _write_csv(tmp_path / "FAF5.7.1.zip", header, rows)
    with pytest.raises(QuarantinedError) as caught:
        ingest_file(faf, registry, settings, broken)
    report = json.loads((caught.value.quarantine_path / "validation.json").read_text())
    failed = [c for c in report["checks"] if not c["success"]]
    assert [c["description"].split(":")[0] for c in failed] == ["Foreign codes follow the trade type"]
    assert failed[0]["observed_value"] == len(YEARS)  # the record's 13 year rows


def test_bench_script_measures_peak_rss_of_each_size_smoke(tmp_path: Path) -> None:
    out = tmp_path / "faf5.json"
    result = subprocess.run(
        [
            sys.executable,
            str(SCHEMAS.parent / "scripts" / "bench_faf5.py"),
            "--rows",
            "100",
            "--rows",
            "200",
            "--workdir",
            str(tmp_path / "work"),
            "--out",
            str(out),
        ],
        env={**os.environ, "SCDX_CACHE_DIR": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert [s["records"] for s in figures["sizes"]] == [100, 200]
    assert [s["rows_published"] for s in figures["sizes"]] == [1300, 2600]
    assert all(s["refresh"]["peak_rss_mb"] > 50 for s in figures["sizes"])
    assert figures["rows_ratio"] == 2.0 and figures["peak_ratio"] > 0
    assert "peak RSS ratio" in result.stdout


@pytest.fixture
def faf_replay(faf_env: None) -> Iterator[ReplayServer]:
    with ReplayServer(RECORDINGS) as server:
        yield server


@pytest.mark.airflow
def test_dag_test_runs_the_faf5_ingest_end_to_end(
    airflow_env: dict[str, str],  # noqa: F811 - the fixture imported above
    faf_replay: ReplayServer,
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = {**airflow_env, "SCDX_DATA_DIR": str(data_dir), "SCDX_REPLAY_URL": faf_replay.url}
    result = run_dag_test("ingest_faf5_regional_flows", date(2026, 4, 2), env)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = _last_json(result.stdout)
    assert outcome["state"] == "success", outcome
    assert [r.path for r in faf_replay.requests] == [FAF_PATH]
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM curated.faf5_regional_flows").fetchone() == (3900,)
        assert con.execute("SELECT status, rows_landed, rows_published FROM meta.runs").fetchall() == [
            ("published", RECORDS, 3900)
        ]
