"""Untrusted input never damages what is published (issue 19): data never becomes SQL, a partial
batch never deletes rows it does not cover, a check that cannot run fails the run.

Every case runs the real path (a file in hand through ``ingest_file``, or a response through the
replay server) on real recordings altered in a private copy.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.orchestration.guards import start_run
from pipelines.orchestration.refresh import ingest_file, refresh_dataset
from pipelines.replay.server import Fault, ReplayServer
from pipelines.sources.window import Window, parse_month
from pipelines.store.layout import Layout
from pipelines.store.runs import RunRecord
from pipelines.store.tiers import open_public

from .conftest import CENSUS_MONTHS


def _hostile_copy_statement(outside: Path) -> str:
    """A header cell that, pasted into SQL as an identifier, ends its quotes and writes a file."""
    return (
        f"CTY_NAME\" FROM (SELECT '1' AS c0, 2 AS c1); COPY (SELECT 'injected' AS v) TO "
        f"'{outside / 'pwned.csv'}'; SELECT c0 AS \"x"
    )


def _files_under(directory: Path) -> set[Path]:
    return {p for p in directory.rglob("*") if p.is_file()} if directory.exists() else set()


def _ingest(contract: Contract, registry: Registry, settings: Settings, path: Path) -> RunRecord:
    """``scdx ingest-file``'s path; the run record however it ended (a refused run raises once recorded)."""
    run = start_run(contract)
    with contextlib.suppress(ValueError, RuntimeError):  # a refused run raises once it is recorded
        ingest_file(contract, registry, settings, path, run=run)
    return run


def _refresh(
    contract: Contract, registry: Registry, settings: Settings, url: str, first: str, last: str
) -> RunRecord:
    """A refresh of the months first..last from ``url``; the run record however it ended."""
    run = start_run(contract)
    with contextlib.suppress(ValueError, RuntimeError):
        refresh_dataset(
            contract, registry, settings, url, window=Window(parse_month(first), parse_month(last)), run=run
        )
    return run


def _census_month_rows(month: str = "2024-01") -> list[list[str]]:
    rows: list[list[str]] = json.loads((CENSUS_MONTHS / f"{month}.json").read_bytes())
    return rows


def test_census_header_cell_written_as_sql_never_runs_in_a_csv_file_in_hand(
    census: Contract, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    import csv

    outside = tmp_path / "outside"
    outside.mkdir()
    rows = _census_month_rows()
    header = rows[0]
    header[header.index("CTY_NAME")] = _hostile_copy_statement(outside)
    path = tmp_path / "hand-download.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    run = _ingest(census, registry, settings, path)
    assert _files_under(outside) == set()
    # The renamed column is a new field (its name kept verbatim as drift) and CTY_NAME is missing:
    # the contract rejects that, naming the field.
    assert run.status == "quarantined", run.error
    assert "missing_field" in (run.error or "") and "country_name" in (run.error or "")
    assert any(event["kind"] == "new_field" and "COPY (SELECT" in event["detail"] for event in run.drift)


def test_census_header_cell_written_as_sql_never_runs_in_an_api_response(
    census: Contract, registry: Registry, settings: Settings, replay: ReplayServer, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    rows = _census_month_rows()
    rows[0][rows[0].index("CTY_NAME")] = _hostile_copy_statement(outside)
    # The agency's answer for the month, its header altered: served in place of the recorded body.
    replay.faults.add(Fault(path=census.source.path, mode="wrong_shape", body=json.dumps(rows)))
    run = _refresh(census, registry, settings, replay.url, "2024-01", "2024-01")
    assert _files_under(outside) == set()
    assert run.status == "quarantined", run.error
    assert "missing_field" in (run.error or "") and "country_name" in (run.error or "")


def test_census_hostile_values_are_stored_verbatim_never_run(
    census: Contract, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    rows = _census_month_rows()
    name_at = rows[0].index("CTY_NAME")
    hostile = [
        "O'Brien\"; DROP TABLE curated.census_trade_imports; --",
        f"x'); COPY (SELECT 1) TO '{outside / 'pwned.csv'}'; --",
        f"ATTACH '{outside / 'pwned.duckdb'}' AS pwned",
        "read_text('/etc/passwd')",
        "../../../../etc/passwd",
        "N" * 10_000,
    ]
    for offset, value in enumerate(hostile, start=1):
        rows[offset][name_at] = value
    path = tmp_path / "2024-01.json"
    path.write_text(json.dumps(rows))
    run = _ingest(census, registry, settings, path)
    assert run.status == "published", run.error
    assert _files_under(outside) == set()
    with open_public(Layout(settings.data_dir)) as con:
        stored = {
            name
            for (name,) in con.execute(
                "SELECT DISTINCT country_name FROM curated.census_trade_imports"
            ).fetchall()
        }
    assert set(hostile) <= stored


def test_a_warning_check_that_cannot_run_fails_the_run_naming_the_check_and_publishes_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    import shutil
    from dataclasses import replace

    from devtools import PROJECT_ROOT
    from pipelines.contracts import load_registry

    schemas = tmp_path / "schemas"
    shutil.copytree(PROJECT_ROOT / "schemas", schemas)
    contract_file = schemas / "census_trade_imports.yaml"
    text = contract_file.read_text()
    broken = (
        "    - expectation: unexpected_rows\n"
        "      severity: warning\n"
        "      description: A check whose SQL names a column the batch does not have.\n"
        "      query: SELECT no_such_column FROM {batch}\n"
    )
    contract_file.write_text(text.replace("  expectations:\n", "  expectations:\n" + broken, 1))
    registry = load_registry(schemas)
    census = registry.get("census_trade_imports")
    settings = replace(settings, schemas_dir=schemas)
    run = _ingest(census, registry, settings, CENSUS_MONTHS / "2024-01.json")
    assert run.status == "failed", (run.status, run.validation, run.warnings)
    assert "A check whose SQL names a column" in (run.error or "")
    assert "no_such_column" in (run.error or "")  # DuckDB's own message
    assert not Layout(settings.data_dir).public_db.exists() or _published_rows(settings) == 0


def _published_rows(settings: Settings) -> int:
    with open_public(Layout(settings.data_dir)) as con:
        exists = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'census_trade_imports'"
        ).fetchone()
        if not exists or not exists[0]:
            return 0
        (rows,) = con.execute("SELECT count(*) FROM curated.census_trade_imports").fetchone() or (0,)
    return int(rows)


CHINA = "5700"
RECORDED_ROWS = (
    1924  # 27 months: 481 China rows of the USA Trade Online export, each with 3 constructed group rows
)


def _china_only(rows: list[list[str]]) -> list[list[str]]:
    at = rows[0].index("CTY_CODE")
    return [rows[0], *(r for r in rows[1:] if r[at] == CHINA)]


def _table_checksum(settings: Settings) -> tuple[int, int]:
    """(rows, an order-free hash of every row) of the curated Census imports table."""
    with open_public(Layout(settings.data_dir)) as con:
        row = con.execute(
            "SELECT count(*), bit_xor(hash(t)) FROM curated.census_trade_imports AS t"
        ).fetchone() or (0, 0)
    return int(row[0]), int(row[1])


def _table_rows(settings: Settings, where: str = "") -> int:
    with open_public(Layout(settings.data_dir)) as con:
        (rows,) = con.execute(f"SELECT count(*) FROM curated.census_trade_imports {where}").fetchone() or (0,)
    return int(rows)


def test_a_file_of_one_partner_merges_its_rows_and_keeps_every_other_partner_group_and_total(
    census: Contract, registry: Registry, settings: Settings, replay: ReplayServer, tmp_path: Path
) -> None:
    import csv

    assert _refresh(census, registry, settings, replay.url, "2024-01", "2026-03").status == "published"
    assert _table_rows(settings) == RECORDED_ROWS
    # China's rows for all 27 months, with a revised value, as one CSV in the API's variable names.
    path = tmp_path / "china-2024-2026.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        for number, month in enumerate(sorted(CENSUS_MONTHS.glob("*.json"))):
            rows = _china_only(json.loads(month.read_bytes()))
            value_at = rows[0].index("GEN_VAL_MO")
            for row in rows[1:]:
                row[value_at] = str(int(row[value_at]) + 1)
            writer.writerows(rows if number == 0 else rows[1:])
    run = _ingest(census, registry, settings, path)
    assert run.status == "published", run.error
    assert run.coverage == "partial" and run.rows_published == 481
    assert (run.table_rows_before, run.table_rows_after) == (RECORDED_ROWS, RECORDED_ROWS)
    assert _table_rows(settings) == RECORDED_ROWS
    assert _table_rows(settings, "WHERE partner_kind <> 'country'") == RECORDED_ROWS - 481
    with open_public(Layout(settings.data_dir)) as con:
        runs = con.execute(
            "SELECT DISTINCT run_id FROM meta.partition_runs WHERE table_name = 'curated.census_trade_imports'"
        ).fetchall()
    assert len(runs) == 2  # the API run and the merged file both hold rows of every month


def test_a_complete_batch_that_would_remove_most_of_a_table_is_blocked_with_its_numbers_unless_allowed(
    census: Contract, registry: Registry, settings: Settings, recordings_copy: Path
) -> None:
    with ReplayServer(recordings_copy) as replay:
        assert _refresh(census, registry, settings, replay.url, "2024-01", "2026-03").status == "published"
    published = _table_checksum(settings)
    # The agency now sends only China's rows for every month: a complete batch that shrinks the table.
    for month in (recordings_copy / "census_intltrade" / "imports_hs").glob("*.json"):
        rows = _china_only(json.loads(month.read_bytes()))
        month.write_text("[" + ",\n".join(json.dumps(r) for r in rows) + "]")
    with ReplayServer(recordings_copy) as replay:
        blocked = _refresh(census, registry, settings, replay.url, "2024-01", "2026-03")
        assert blocked.status == "blocked", blocked.error
        assert "from 1,924 to 481 rows" in (blocked.error or "") and "--allow-shrink" in (blocked.error or "")
        assert _table_checksum(settings) == published
        run = start_run(census)
        refresh_dataset(
            census,
            registry,
            settings,
            replay.url,
            window=Window(parse_month("2024-01"), parse_month("2026-03")),
            run=run,
            allow_shrink=True,
        )
    assert run.status == "published" and _table_rows(settings) == 481


def test_a_partial_file_the_contract_refuses_names_the_partition_and_the_rows_it_lacks(
    settings: Settings, replay: ReplayServer, tmp_path: Path
) -> None:
    import shutil
    from dataclasses import replace

    from devtools import PROJECT_ROOT
    from pipelines.contracts import load_registry

    schemas = tmp_path / "schemas"
    shutil.copytree(PROJECT_ROOT / "schemas", schemas)
    contract_file = schemas / "census_trade_imports.yaml"
    contract_file.write_text(contract_file.read_text().replace("  partial: merge\n", "  partial: refuse\n"))
    registry = load_registry(schemas)
    census = registry.get("census_trade_imports")
    settings = replace(settings, schemas_dir=schemas)
    assert _refresh(census, registry, settings, replay.url, "2024-01", "2024-03").status == "published"
    published = _table_rows(settings)
    months = [_census_month_rows(m) for m in ("2024-01", "2024-02", "2024-03")]
    china = [row for rows in months for row in _china_only(rows)[1:]]
    path = tmp_path / "china-2024-q1.json"
    path.write_text(json.dumps([months[0][0], *china]))
    run = _ingest(census, registry, settings, path)
    assert run.status == "blocked", run.error
    lacking = published - len(china)
    assert f"lacks {lacking} published row(s)" in (run.error or ""), run.error
    assert '{"period":"2024-01-01","hs_level":"HS4"}: ' in (run.error or "")
    assert "publish.partial is refuse" in (run.error or "")
    assert _table_rows(settings) == published


AFDC_RECORDING = (
    Path(__file__).parents[1] / "recordings" / "nrel_afdc" / "afdc_nearest_elec_lpg_80203_2018-05-18.json"
)
EIA_RECORDING = (
    Path(__file__).parents[1]
    / "recordings"
    / "eia_v2"
    / "eia_v2_electricity_facility-fuel_CO_2022_monthly_offset0.json"
)


def test_afdc_response_short_of_its_total_results_is_published_as_partial_never_as_the_whole_list(
    registry: Registry, settings: Settings, replay: ReplayServer
) -> None:
    afdc = registry.get("afdc_charging_stations")
    assert _refresh(afdc, registry, settings, replay.url, "2026-01", "2026-01").status == "published"
    whole = _curated(settings, "afdc_charging_stations")
    assert len(whole) == 10
    # The first page answers with the agency's own saved response: 10 stations of the 92 its
    # total_results declares. Paging goes on (the replay's next page ends the search), and the
    # batch stays short of 92: the contract says publish.short_batch: partial, so it is merged by
    # station id, with a warning, and never taken for the whole list.
    replay.faults.add(Fault(path=afdc.source.path, mode="wrong_shape", body=AFDC_RECORDING.read_text()))
    run = _refresh(afdc, registry, settings, replay.url, "2026-01", "2026-01")
    # Merged by station id, the ten stations are the published ten: nothing changes, no release.
    assert run.status == "unchanged", run.error
    assert run.coverage == "partial" and run.coverage_note == "10 of the 92 records the agency declares"
    assert any("partial batch: 10 of the 92" in warning for warning in run.warnings)
    assert _curated(settings, "afdc_charging_stations") == whole


def test_a_saved_response_short_of_its_declared_count_is_refused_with_the_counts(
    registry: Registry, settings: Settings
) -> None:
    eia = registry.get("eia_electricity")  # publish.short_batch: refuse (the default)
    run = _ingest(eia, registry, settings, EIA_RECORDING)
    assert run.status == "failed"
    assert "the responses hold 5,000 of the 10,426 records the agency declares" in (run.error or "")
    assert not Layout(settings.data_dir).public_db.exists() or "eia_electricity" not in _curated_tables(
        settings
    )


def _curated_tables(settings: Settings) -> list[str]:
    with open_public(Layout(settings.data_dir)) as con:
        return [
            t
            for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'curated'"
            ).fetchall()
        ]


BTS_EXPORT = (
    Path(__file__).parents[1]
    / "recordings"
    / "bts_border_crossing"
    / "border_crossing_entry_data_socrata_export_head40.csv"
)


def _curated(settings: Settings, table: str) -> list[tuple[object, ...]]:
    with open_public(Layout(settings.data_dir)) as con:
        return con.execute(f"SELECT * FROM curated.{table} ORDER BY ALL").fetchall()


@pytest.mark.parametrize(
    ("name", "content", "found"),
    [
        ("empty.csv", b"", "found an empty file (0 bytes)"),
        ("export.csv.gz", None, "found binary data (gzip)"),
        ("random.bin", bytes(range(256)) * 64, "found binary data (not text"),
        (
            "page.html",
            b"<!DOCTYPE html><html><body>Service unavailable</body></html>",
            "found an HTML or XML document",
        ),
    ],
)
def test_a_file_that_is_not_the_datasets_format_is_refused_before_anything_lands(
    registry: Registry, settings: Settings, tmp_path: Path, name: str, content: bytes | None, found: str
) -> None:
    import gzip

    bts = registry.get("bts_border_crossings")
    path = tmp_path / name
    path.write_bytes(gzip.compress(BTS_EXPORT.read_bytes()) if content is None else content)
    run = _ingest(bts, registry, settings, path)
    assert run.status == "failed"
    assert f"bts_border_crossings: {path}: expected CSV or JSON, {found}" in (run.error or ""), run.error
    assert not (settings.data_dir / "raw" / "bts_border_crossings").exists() or not any(
        (settings.data_dir / "raw" / "bts_border_crossings").rglob("*.manifest.json")
    )


def test_a_directory_and_json_for_a_csv_only_dataset_are_refused_naming_what_was_found(
    registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    usgs = registry.get("usgs_mineral_production")
    directory = _ingest(usgs, registry, settings, tmp_path)
    assert "expected CSV, found a directory" in (directory.error or ""), directory.error
    json_file = _ingest(usgs, registry, settings, EIA_RECORDING)
    assert "expected CSV, found JSON text (UTF-8)" in (json_file.error or ""), json_file.error


def test_utf16_latin1_bom_and_crlf_exports_read_as_the_utf8_original_and_a_truncated_one_is_refused(
    registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    from dataclasses import replace

    bts = registry.get("bts_border_crossings")
    original = BTS_EXPORT.read_text(encoding="utf-8")
    accented = original.replace("Roma,Texas", "Peñitas,Texas", 1)
    variants = {
        "utf16.csv": accented.encode("utf-16"),
        "utf16be-no-bom.csv": accented.encode("utf-16-be"),
        "latin1.csv": accented.encode("latin-1"),
        "bom-crlf.csv": b"\xef\xbb\xbf" + accented.replace("\n", "\r\n").encode("utf-8"),
    }
    expected = None
    for number, (name, content) in enumerate({"utf8.csv": accented.encode(), **variants}.items()):
        path = tmp_path / name
        path.write_bytes(content)
        own = replace(settings, data_dir=tmp_path / f"data-{number}")
        run = _ingest(bts, registry, own, path)
        assert run.status == "published", (name, run.error)
        rows = _curated(own, "bts_border_crossings")
        assert any("Peñitas" in str(row) for row in rows), name
        expected = expected or rows
        assert rows == expected, name
    cut = original.encode()[: len(original.encode()) // 2]
    truncated = tmp_path / "truncated.csv"
    truncated.write_bytes(cut[: cut.rindex(b",")])
    run = _ingest(bts, registry, settings, truncated)
    assert run.status == "failed" and "truncated.csv" in (run.error or "") and "row" in (run.error or ""), (
        run.error
    )


def test_a_usgs_file_cut_mid_record_is_refused_naming_the_row_never_published_short(
    registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    production = registry.get("usgs_mineral_production")
    recorded = (
        Path(__file__).parents[1] / "recordings" / "usgs_mcs" / "mcs2024-nicke_world.csv"
    ).read_bytes()
    # Cut inside its last row of figures (after the country and the type), the padding rows lost:
    # every row before is whole, enough to pass every row-count check.
    lines = recorded.split(b"\r\n")
    last = max(i for i, line in enumerate(lines) if line.strip(b","))
    cut = tmp_path / "mcs2024-nicke_world.csv"
    cut.write_bytes(b"\r\n".join(lines[:last]) + b"\r\n" + b",".join(lines[last].split(b",")[:3]))
    run = _ingest(production, registry, settings, cut)
    assert run.status == "failed", (run.status, run.error)
    assert "mcs2024-nicke_world.csv: the file ends mid-record" in (run.error or ""), run.error
    assert not Layout(settings.data_dir).public_db.exists()


def _broken_inside_a_row(recorded: bytes) -> bytes:
    at = recorded.index(b'",', len(recorded) // 2)
    return recorded[:at] + b'",,' + recorded[at + 2 :]  # an empty array element: malformed JSON


def _cut_at_a_row_end(recorded: bytes) -> bytes:
    return recorded[: recorded.index(b"\n", len(recorded) // 2) + 1]


def _cut_inside_a_row(recorded: bytes) -> bytes:
    return recorded[: recorded.index(b'",', len(recorded) // 2) + 2]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        # DuckDB's JSON reader fails inside the page; the source says so (not the staging step,
        # with DuckDB's message about a scratch file).
        (
            _broken_inside_a_row,
            "row 2: not readable as the API's format: Invalid Input Error: Malformed JSON",
        ),
        # Cut short: whole rows or not, the array is never closed (a cut at a row's end would
        # otherwise read as a smaller month).
        (_cut_at_a_row_end, ": not readable as the API's format: the array of rows is never closed"),
        (_cut_inside_a_row, ": not readable as the API's format: the array of rows is never closed"),
    ],
    ids=["broken-inside-a-row", "cut-at-a-row-end", "cut-inside-a-row"],
)
def test_a_census_page_cut_short_or_broken_is_refused_as_not_the_apis_format_by_the_source(
    census: Contract,
    registry: Registry,
    settings: Settings,
    tmp_path: Path,
    damage: Callable[[bytes], bytes],
    message: str,
) -> None:
    page = tmp_path / "2024-01.json"
    page.write_bytes(damage((CENSUS_MONTHS / "2024-01.json").read_bytes()))
    run = _ingest(census, registry, settings, page)
    assert run.status == "failed", (run.status, run.error)
    assert ("2024-01.json" + (", " if message.startswith("row") else "") + message) in (run.error or ""), (
        run.error
    )
