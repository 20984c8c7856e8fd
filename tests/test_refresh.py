"""The whole refresh against the replay server: what lands, what publishes, what is refused."""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import mmap
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.orchestration.guards import start_run
from pipelines.orchestration.refresh import refresh_dataset
from pipelines.orchestration.steps import step_extract_land
from pipelines.replay.server import ReplayServer
from pipelines.sources.transport import TransportError, check_transport
from pipelines.sources.window import Window
from pipelines.stages.quarantine import QuarantinedError
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public, open_store

from .conftest import AS_OF, CENSUS_MONTHS, TEST_API_KEY, catalog_runs

ALL_ROWS = 1924  # 481 China rows of the USA Trade Online export, each with 3 constructed group rows


def _table(layout: Layout) -> list[tuple[object, ...]]:
    with open_public(layout) as con:
        return con.execute("SELECT * FROM curated.census_trade_imports ORDER BY ALL").fetchall()


def _runs(layout: Layout) -> list[tuple[object, ...]]:
    columns = (
        "run_id",
        "status",
        "rows_landed",
        "rows_published",
        "rows_quarantined",
        "validation",
        "error",
        "quarantine_path",
    )
    return [tuple(r[c] for c in columns) for r in catalog_runs(layout)]


def test_refresh_publishes_every_recorded_month_with_comments_and_a_run_record(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    run = refresh_dataset(census, registry, settings, replay.url, as_of=AS_OF)
    assert run.status == "published"
    assert (run.window_start, run.window_end) == (date(2024, 1, 1), date(2026, 11, 1))
    assert run.raw_files == 35  # one request per month, 2024-01..2026-11; 2026-04 on is 204
    assert run.rows_landed == run.rows_staged == run.rows_published == ALL_ROWS
    with open_public(layout) as con:
        assert con.execute(
            "SELECT count(*), min(period), max(period) FROM curated.census_trade_imports"
        ).fetchone() == (
            ALL_ROWS,
            date(2024, 1, 1),
            date(2026, 3, 1),
        )
        comments = dict(
            con.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'census_trade_imports'"
            ).fetchall()
        )
        assert set(comments) == set(census.field_names)
        assert all(comments.values())
        assert (
            "General imports, customs value" in comments["general_value_usd"]
            and "unit USD" in comments["general_value_usd"]
        )
        (table_comment,) = con.execute(
            "SELECT comment FROM duckdb_views() WHERE view_name = 'census_trade_imports'"
        ).fetchone() or ("",)
        assert "U.S. Census Bureau" in table_comment and f"v{census.version}" in table_comment
        recorded = con.execute(
            "SELECT status, contract_version, rows_landed, rows_published, len(raw_sha256), publish_version FROM meta.runs"
        ).fetchall()
        assert recorded == [("published", census.version, ALL_ROWS, ALL_ROWS, 35, 1)]
        assert con.execute("SELECT dataset, version FROM meta.contracts").fetchall() == [
            ("census_trade_imports", census.version)
        ]


def test_landed_bytes_are_exactly_what_the_server_sent_with_a_manifest_per_response(
    census: Contract,
    registry: Registry,
    settings: Settings,
    layout: Layout,
    replay: ReplayServer,
    api_key: str,
) -> None:
    run = refresh_dataset(
        census, registry, settings, replay.url, window=Window(date(2024, 1, 1), date(2024, 2, 1))
    )
    raw = layout.raw_dir(census.dataset, run.run_id)
    january = raw / "00001-2024-01.json"
    manifest = json.loads((raw / "00001-2024-01.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(january.read_bytes()).hexdigest()
    assert manifest["bytes"] == january.stat().st_size
    assert manifest["status"] == 200 and manifest["content_type"].startswith("application/json")
    assert manifest["url"].startswith(replay.url + "/data/timeseries/intltrade/imports/hs?get=I_COMMODITY,")
    assert "key=REDACTED" in manifest["url"] and ["key", "REDACTED"] in manifest["params"]
    assert {"fetched_at", "attempts", "partition", "run_id"} <= set(manifest)
    # What the server answered for that exact request, byte for byte.
    (request,) = [r for r in replay.requests if ("time", "2024-01") in r.query]
    assert ("key", api_key) in request.query
    assert json.loads(january.read_bytes())[0][-1] == "time"
    assert (raw / "_landed.json").exists()


def _pages_in_page_cache(path: Path) -> int:
    """How many of the file's pages the kernel holds in its page cache (mincore over a mapping)."""
    libc = ctypes.CDLL(None, use_errno=True)
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    resident = (ctypes.c_ubyte * pages)()
    # A private mapping touches no page; mincore reports the file's cached pages behind it.
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY) as mapped:
        start = ctypes.c_char.from_buffer(mapped)
        failed = libc.mincore(ctypes.c_void_p(ctypes.addressof(start)), ctypes.c_size_t(size), resident)
        del start
    if failed:
        raise OSError(ctypes.get_errno(), f"mincore {path}")
    return sum(flags & 1 for flags in resident)


def test_landed_response_bodies_leave_the_page_cache_once_flushed_and_their_manifests_stay(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    # Normalize reads each body back from disk; keeping them cached grows the page cache, which
    # costs landing CPU on a virtual machine (docs/performance.md, sixth session).
    run = start_run(census)
    landed = step_extract_land(
        run, census, registry, settings, replay.url, window=Window(date(2025, 10, 1), date(2026, 3, 1))
    )
    bodies = [page.body_path for page in landed.pages if page.body_path.stat().st_size]
    assert len(bodies) == 6
    assert [_pages_in_page_cache(body) for body in bodies] == [0] * len(bodies)
    manifests = [body.with_name(body.name.rsplit(".", 1)[0] + ".manifest.json") for body in bodies]
    # The control: files written and flushed without being released are still cached.
    assert all(_pages_in_page_cache(manifest) > 0 for manifest in manifests)
    # Released from the cache, not lost: every byte is on disk as the manifest records it.
    for body, manifest in zip(bodies, manifests, strict=True):
        assert hashlib.sha256(body.read_bytes()).hexdigest() == json.loads(manifest.read_text())["sha256"]


def test_same_raw_input_published_twice_gives_the_same_rows_without_duplicates(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    window = Window(date(2025, 10, 1), date(2026, 3, 1))
    refresh_dataset(census, registry, settings, replay.url, window=window)
    first = _table(layout)
    # --force: normalize and publish the same bytes again instead of stopping at "unchanged".
    again = refresh_dataset(census, registry, settings, replay.url, window=window, force=True)
    assert _table(layout) == first
    # Publishing rows identical to the published ones changes nothing: no release is made.
    assert again.status == "unchanged" and again.rows_staged == len(first) and again.rows_published == 0
    assert [r.number for r in open_store(layout).releases()] == [1]
    with open_public(layout) as con:
        duplicates = con.execute(
            "SELECT count(*) FROM (SELECT period, hs_code, country_code FROM curated.census_trade_imports "
            "GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()
    assert duplicates == (0,)
    assert [r[1] for r in _runs(layout)] == ["published", "unchanged"]


def test_refresh_whose_upstream_bytes_did_not_change_ends_unchanged_and_publishes_nothing(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    window = Window(date(2025, 10, 1), date(2026, 3, 1))
    first = refresh_dataset(census, registry, settings, replay.url, window=window)
    table = _table(layout)
    releases = open_store(layout).releases()
    second = refresh_dataset(census, registry, settings, replay.url, window=window)
    assert second.status == "unchanged" and second.rows_published == 0 and second.publish_version is None
    assert second.raw_sha256 == first.raw_sha256
    assert _table(layout) == table
    assert open_store(layout).releases() == releases  # no release for a run that changes nothing
    assert [r[1] for r in _runs(layout) if r[0] == second.run_id] == ["unchanged"]
    assert not (layout.staged_dir(census.dataset, second.run_id)).exists()


def test_responses_identical_to_the_last_published_run_are_landed_as_hard_links_not_copies(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    window = Window(date(2025, 10, 1), date(2026, 3, 1))
    first = refresh_dataset(census, registry, settings, replay.url, window=window)
    second = refresh_dataset(census, registry, settings, replay.url, window=window)
    assert second.status == "unchanged"
    old = {
        p.name: p
        for p in layout.raw_dir(census.dataset, first.run_id).glob("*.json")
        if "manifest" not in p.name and not p.name.startswith("_")
    }
    new = sorted(
        p
        for p in layout.raw_dir(census.dataset, second.run_id).glob("*.json")
        if "manifest" not in p.name and not p.name.startswith("_")
    )
    assert new and len(new) == len(old)
    for body in new:
        twin = old[body.name]
        # One copy on disk, both runs' files name it; the manifest says whose bytes they are.
        assert body.stat().st_ino == twin.stat().st_ino and body.read_bytes() == twin.read_bytes()
        manifest = json.loads(body.with_name(body.name.replace(".json", ".manifest.json")).read_text())
        assert manifest["same_bytes_as"] == f"{first.run_id}/{twin.name}"
        assert manifest["sha256"] == hashlib.sha256(body.read_bytes()).hexdigest()


def test_an_earlier_raw_file_altered_on_disk_is_never_shared_with_a_new_run(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    window = Window(date(2025, 10, 1), date(2026, 3, 1))
    first = refresh_dataset(census, registry, settings, replay.url, window=window)
    earlier = layout.raw_dir(census.dataset, first.run_id)
    altered = sorted(
        p for p in earlier.glob("*.json") if "manifest" not in p.name and not p.name.startswith("_")
    )[0]
    original = altered.read_bytes()
    # Same length, one byte different: a size check alone would not notice.
    altered.chmod(0o644)
    altered.write_bytes(original[:-2] + (b"}" if original[-2:-1] != b"}" else b"]") + original[-1:])
    second = refresh_dataset(census, registry, settings, replay.url, window=window)
    # The agency sent what it sent before, so nothing is published again ...
    assert second.status == "unchanged" and second.raw_sha256 == first.raw_sha256
    # ... but the new run holds the bytes it received, in a file of its own.
    twin = layout.raw_dir(census.dataset, second.run_id) / altered.name
    assert twin.read_bytes() == original
    assert twin.stat().st_ino != altered.stat().st_ino
    manifest = json.loads(twin.with_name(twin.name.replace(".json", ".manifest.json")).read_text())
    assert "same_bytes_as" not in manifest
    assert manifest["sha256"] == hashlib.sha256(original).hexdigest()


def test_changed_upstream_bytes_or_a_different_window_publish_again(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, recordings_copy: Path
) -> None:
    window = Window(date(2025, 10, 1), date(2026, 3, 1))
    with ReplayServer(recordings_copy) as server:
        refresh_dataset(census, registry, settings, server.url, window=window)
        narrower = refresh_dataset(
            census, registry, settings, server.url, window=Window(date(2025, 11, 1), date(2026, 3, 1))
        )
        # Another window is not "the same upstream": it is normalized and validated again; its rows
        # are the published ones, so publishing changes nothing and makes no release.
        assert narrower.status == "unchanged" and narrower.rows_staged > 0
    # A revised month upstream: one value differs, so the run normalizes and publishes.
    month = recordings_copy / "census_intltrade" / "imports_hs" / "2026-01.json"
    rows = json.loads(month.read_bytes())
    rows[1][4] = str(int(rows[1][4]) + 1)
    month.write_text(json.dumps(rows))
    with ReplayServer(recordings_copy) as server:
        revised = refresh_dataset(
            census, registry, settings, server.url, window=Window(date(2025, 11, 1), date(2026, 3, 1))
        )
    assert revised.status == "published" and revised.rows_published > 0


def test_second_run_starts_at_the_cursor_minus_the_two_month_lookback(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    refresh_dataset(census, registry, settings, replay.url, as_of=AS_OF)
    before = _table(layout)
    second = refresh_dataset(census, registry, settings, replay.url, as_of=AS_OF)
    assert (second.window_start, second.window_end) == (date(2026, 1, 1), date(2026, 11, 1))
    # January to March 2026 re-fetched (208 rows), identical to the published ones: no release.
    assert second.rows_staged == 208 and second.status == "unchanged"
    assert _table(layout) == before


def _poison(recordings: Path, month: str, edit: str) -> None:
    """Alter one recorded month the way a bad upstream release would."""
    path = recordings / "census_intltrade" / "imports_hs" / f"{month}.json"
    rows = json.loads(path.read_bytes())
    china_batteries = next(i for i, r in enumerate(rows) if r[0] == "5700" and r[2] == "8507")
    if edit == "negative_value":
        rows[china_batteries][4] = "-5"
    elif edit == "country_above_total":
        # The recordings carry no all-countries total: add the API's "-" row, below China's value.
        rows[china_batteries][4] = str(10**13)
        total = [
            "-",
            "TOTAL FOR ALL COUNTRIES",
            *rows[china_batteries][2:4],
            "10",
            "10",
            *rows[china_batteries][6:],
        ]
        rows.append(total)
    path.write_text("[" + ",\n".join(json.dumps(r, separators=(",", ":")) for r in rows) + "]")


def test_blocking_failure_quarantines_the_batch_and_the_previous_publish_stays(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, recordings_copy: Path
) -> None:
    window = Window(date(2026, 1, 1), date(2026, 3, 1))
    with ReplayServer(recordings_copy) as good:
        refresh_dataset(census, registry, settings, good.url, window=window)
    published = _table(layout)
    _poison(recordings_copy, "2026-03", "negative_value")
    with ReplayServer(recordings_copy) as bad, pytest.raises(QuarantinedError) as caught:
        refresh_dataset(census, registry, settings, bad.url, window=window)
    message = str(caught.value)
    assert message.startswith("census_trade_imports: run ")
    assert "ExpectColumnValuesToBeBetween(general_value_usd)" in message and "[-5]" in message
    target = caught.value.quarantine_path
    assert target == layout.quarantine_dir(census.dataset, caught.value.report.run_id)
    assert str(target) in message
    assert sorted(p.name for p in target.iterdir()) == [
        "gx_result.json",
        "part-00000.parquet",
        "validation.json",
    ]
    assert not layout.staged_dir(census.dataset, caught.value.report.run_id).exists()
    assert _table(layout) == published
    runs = _runs(layout)
    assert [r[1] for r in runs] == ["published", "quarantined"]
    assert runs[1][4] == 208 and runs[1][3] == 0 and runs[1][7] == str(target)
    report = json.loads((target / "validation.json").read_text())
    assert report["passed"] is False and report["outcome"] == "failed (1 blocking)"


def test_warning_level_failure_publishes_and_records_the_warning(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, recordings_copy: Path
) -> None:
    _poison(recordings_copy, "2026-02", "country_above_total")
    with ReplayServer(recordings_copy) as server:
        run = refresh_dataset(
            census, registry, settings, server.url, window=Window(date(2026, 1, 1), date(2026, 3, 1))
        )
    assert run.status == "published" and run.validation == "passed, 1 warning(s)"
    assert "UnexpectedRowsExpectation" in run.warnings[0]
    with open_public(layout) as con:
        (warnings,) = con.execute(
            "SELECT warnings FROM meta.runs WHERE run_id = ?", [run.run_id]
        ).fetchone() or ([],)
        value = con.execute(
            "SELECT general_value_usd FROM curated.census_trade_imports "
            "WHERE period = DATE '2026-02-01' AND hs_code = '8507' AND country_code = '5700'"
        ).fetchone()
    assert warnings == run.warnings and value == (10**13,)


def test_api_key_never_reaches_the_data_dir_or_the_logs(
    census: Contract,
    registry: Registry,
    settings: Settings,
    layout: Layout,
    recordings_copy: Path,
    api_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    window = Window(date(2026, 1, 1), date(2026, 3, 1))
    with ReplayServer(recordings_copy) as server:
        refresh_dataset(census, registry, settings, server.url, window=window)
        assert all(("key", api_key) in r.query for r in server.requests)
    _poison(recordings_copy, "2026-03", "negative_value")
    with ReplayServer(recordings_copy) as server, pytest.raises(QuarantinedError):
        refresh_dataset(census, registry, settings, server.url, window=window)
    files = [p for p in layout.root.rglob("*") if p.is_file()]
    assert len(files) > 50  # raw pages, manifests, Parquet, reports, Data Docs, database versions
    leaking = [p for p in files if TEST_API_KEY.encode() in p.read_bytes()]
    assert leaking == []
    assert TEST_API_KEY not in caplog.text


def test_data_docs_and_gx_results_are_written_under_the_data_dir(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    run = refresh_dataset(
        census, registry, settings, replay.url, window=Window(date(2026, 1, 1), date(2026, 3, 1))
    )
    index = layout.data_docs_dir / "index.html"
    assert index.exists() and "census_trade_imports" in index.read_text()
    gx_result = json.loads((layout.report_dir(census.dataset, run.run_id) / "gx_result.json").read_text())
    assert gx_result["success"] is True
    assert len(gx_result["results"]) >= 10


def test_plain_http_is_refused_except_to_loopback() -> None:
    assert check_transport("http://127.0.0.1:8765") == "http://127.0.0.1:8765"
    assert check_transport("https://api.census.gov") == "https://api.census.gov"
    with pytest.raises(TransportError):
        check_transport("http://api.census.gov")


def test_curated_database_opens_read_only_in_a_separate_connection_during_and_after_refresh(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    refresh_dataset(census, registry, settings, replay.url, window=Window(date(2026, 1, 1), date(2026, 3, 1)))
    reader = duckdb.connect(str(layout.public_db), read_only=True)
    try:
        before = reader.execute("SELECT count(*) FROM curated.census_trade_imports").fetchone()
        refresh_dataset(
            census, registry, settings, replay.url, window=Window(date(2025, 1, 1), date(2026, 3, 1))
        )
        # The open reader still sees its complete version; a new reader sees the new one.
        assert reader.execute("SELECT count(*) FROM curated.census_trade_imports").fetchone() == before
    finally:
        reader.close()
    recorded = sum(
        len(json.loads((CENSUS_MONTHS / f"{month}.json").read_bytes())) - 1
        for month in [f"2025-{m:02d}" for m in range(1, 13)] + ["2026-01", "2026-02", "2026-03"]
    )
    with open_public(layout) as con:
        assert con.execute("SELECT count(*) FROM curated.census_trade_imports").fetchone() == (recorded,)
    assert before is not None and before[0] < recorded


def test_a_window_with_no_released_months_ends_as_no_data_and_publishes_nothing(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    refresh_dataset(census, registry, settings, replay.url, window=Window(date(2026, 1, 1), date(2026, 3, 1)))
    before = _table(layout)
    run = refresh_dataset(
        census, registry, settings, replay.url, window=Window(date(2026, 5, 1), date(2026, 7, 1))
    )
    assert run.status == "no_data" and run.raw_files == 3 and run.rows_published == 0 and run.error is None
    assert _table(layout) == before
    assert [r[1] for r in _runs(layout)] == ["published", "no_data"]


def test_staged_parquet_dictionary_encodes_codes_and_names_but_not_dollar_values(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    import pyarrow.parquet as pq

    run = refresh_dataset(census, registry, settings, replay.url, as_of=AS_OF)
    (staged,) = layout.staged_dir(census.dataset, run.run_id).glob("*.parquet")
    row_group = pq.ParquetFile(staged).metadata.row_group(0)
    encodings = {
        row_group.column(i).path_in_schema: set(row_group.column(i).encodings)
        for i in range(row_group.num_columns)
    }
    assert "RLE_DICTIONARY" in encodings["country_code"] and "RLE_DICTIONARY" in encodings["hs_description"]
    assert "RLE_DICTIONARY" not in encodings["general_value_usd"]
    assert "RLE_DICTIONARY" not in encodings["consumption_value_usd"]
