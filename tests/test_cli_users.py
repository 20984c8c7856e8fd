"""What analysts and operators see (issue 22): `scdx` against a data dir the nightly refresh
published from the bundled recordings; every user error one line with the README's exit code;
output for machines the same at any terminal width."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines.cli import app
from pipelines.contracts.loading import contract_paths

from .conftest import SCHEMAS

SCDX = str(Path(sys.executable).parent / "scdx")
FAF = "SELECT * FROM curated.faf5_regional_flows"
FAF_COLUMNS = [
    "flow_id",
    "foreign_origin_region",
    "origin_zone",
    "destination_zone",
    "foreign_destination_region",
    "foreign_inbound_mode",
    "domestic_mode",
    "foreign_outbound_mode",
    "sctg2",
    "trade_type",
    "distance_band",
    "year",
    "is_forecast",
    "weight_t",
    "value_constant_usd",
    "value_current_usd",
    "freight_tonne_km",
]


def scdx(*args: str, data_dir: Path, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCDX_DATA_DIR": str(data_dir), "COLUMNS": str(columns)}
    return subprocess.run([SCDX, *args], env=env, capture_output=True, text=True, timeout=600)


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The result was refused with one line on stderr, no traceback and the given exit code."""
    assert result.returncode == code, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def published(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    """A data dir after the nightly refresh of every dataset from the recordings (and the marts):
    the session's one `scdx demo` (tests/conftest.py), which is that refresh plus the hand
    downloads. These tests only read it; the commands that would write are refused."""
    data_dir, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    return data_dir


# --- scdx query ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELEC * FROM curated.faf5_regional_flows", 'syntax error at or near "SELEC"'),
        ("SELECT * FROM curated.no_such_table", "Table with name no_such_table does not exist"),
        ("SELECT no_such_column FROM curated.faf5_regional_flows", 'column "no_such_column" not found'),
        ("DELETE FROM curated.faf5_regional_flows", "read-only; DELETE statements are refused"),
        ("", "no SQL statement given"),
    ],
)
def test_a_query_that_fails_ends_with_one_line_of_duckdbs_message_and_exit_code_2(
    published: Path, sql: str, message: str
) -> None:
    result = scdx("query", sql, data_dir=published)
    assert message in one_line_error(result) and result.stdout == ""


def test_a_query_before_anything_is_published_says_so_in_one_line(tmp_path: Path) -> None:
    result = scdx("query", "SELECT 1", data_dir=tmp_path / "data")
    assert "nothing published yet" in one_line_error(result)


def test_a_query_as_a_table_shows_50_rows_full_column_names_and_how_many_more(published: Path) -> None:
    result = scdx("query", FAF, data_dir=published, columns=80)
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "flow_id" in line)
    assert [cell.strip() for cell in header.strip("┃").split("┃")] == FAF_COLUMNS
    assert sum(1 for line in result.stdout.splitlines() if line.startswith("│")) == 50
    assert "50 of 26,000 rows" in result.stdout
    assert "Example analyst query" not in result.stdout


def test_numbers_in_a_table_are_right_aligned_with_thousands_separators(published: Path) -> None:
    result = scdx(
        "query",
        "SELECT 1234567 AS a_long_column_name, 2.5 AS ratio, 'x' AS label_of_the_row",
        data_dir=published,
    )
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("│")]
    number, ratio, label = row.split("│")[1:-1]
    assert number == f"{'1,234,567':>{len('a_long_column_name')}}".join("  ")  # right-aligned
    assert ratio.strip() == "2.5" and ratio.endswith("2.5 ") and label.startswith(" x ")


def test_csv_json_and_parquet_hold_every_row_as_duckdb_writes_them_and_limit_cuts(
    published: Path, tmp_path: Path
) -> None:
    csv = scdx("query", "--format", "csv", FAF, data_dir=published)
    assert csv.returncode == 0 and csv.stdout.splitlines()[0] == ",".join(FAF_COLUMNS)
    assert len(csv.stdout.splitlines()) == 26_001
    limited = scdx("query", "-f", "json", "--limit", "3", FAF, data_dir=published)
    assert [sorted(row) for row in json.loads(limited.stdout)] == [sorted(FAF_COLUMNS)] * 3
    out = tmp_path / "faf.parquet"
    assert scdx("query", FAF, "--out", str(out), data_dir=published).returncode == 0
    assert duckdb.sql(f"SELECT count(*) FROM '{out}'").fetchall() == [(26_000,)]
    refused = scdx("query", "--format", "table", FAF, "--out", str(tmp_path / "faf.txt"), data_dir=published)
    assert "--out writes csv, json or parquet" in one_line_error(refused)


def test_machine_output_is_the_same_at_40_and_300_columns(published: Path) -> None:
    commands = [
        ("query", "--format", "csv", "--limit", "20", FAF),
        ("query", "--format", "json", "SELECT * FROM marts.supply_chain_scorecard"),
        ("query", "SELEC 1"),
        ("datasets", "--json"),
        ("lineage", "--json", "marts.supply_chain_scorecard"),
        ("publish", "list"),
        ("runs",),
        ("freshness", "--as-of", "2026-11-23", "--warn-only"),
        ("contracts", "check"),
        ("refresh", "--start", "2026-05", "--end", "2026-01"),
    ]
    for command in commands:
        narrow, wide = (scdx(*command, data_dir=published, columns=width) for width in (40, 300))
        assert (narrow.returncode, narrow.stdout, narrow.stderr) == (
            wide.returncode,
            wide.stdout,
            wide.stderr,
        )


# --- every user error: one line, the README's exit code -----------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-13", "2026-12", "'2026-13' is not a month (YYYY-MM)"),
        ("2026-05", "2026-01", "starts 2026-05 after it ends 2026-01"),
    ],
)
def test_a_bad_month_or_range_is_refused_in_one_line(
    tmp_path: Path, start: str, end: str, message: str
) -> None:
    result = scdx("refresh", "--start", start, "--end", end, data_dir=tmp_path / "data")
    assert message in one_line_error(result)


@pytest.mark.parametrize(
    "command",
    [
        ("refresh",),
        ("marts",),
        ("docs",),
        ("publish", "rollback"),
        ("ingest-file", "census_trade_imports", __file__),
    ],
)
def test_commands_that_write_refuse_a_data_dir_that_cannot_be_one(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    result = scdx(*command, data_dir=a_file / "data")
    assert f"{a_file} is not a directory" in one_line_error(result)


@contextmanager
def _read_only(directory: Path) -> Iterator[None]:
    """The directory made read-only for whoever runs the tests: mode bits do not stop root, the
    immutable flag does (chattr, from e2fsprogs)."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    if shutil.which("chattr") is None:
        pytest.fail("chattr is needed to make a directory read-only for root: apt-get install -y e2fsprogs")
    subprocess.run(["chattr", "+i", str(directory)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


@pytest.mark.parametrize("command", [("marts",), ("docs",)])
def test_commands_that_write_refuse_a_read_only_data_dir(published: Path, command: tuple[str, ...]) -> None:
    with _read_only(published):
        result = scdx(*command, data_dir=published)
    assert "is not writable" in one_line_error(result)


@pytest.mark.parametrize(
    "command",
    [
        ("refresh", "no_such_dataset"),
        ("datasets", "no_such_dataset"),
        ("runs", "no_such_dataset"),
        ("ingest-file", "no_such_dataset", __file__),
    ],
)
def test_an_unknown_dataset_is_refused_in_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    assert "unknown dataset 'no_such_dataset'" in one_line_error(scdx(*command, data_dir=tmp_path / "data"))


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (("ingest-file", "census_trade_imports", "/no/such/file.json"), "no such file /no/such/file.json"),
        (("query", "--out", "/no/such/dir/x.csv", "SELECT 1"), "no directory /no/such/dir"),
        (("contracts", "check", "--schemas", "/no/such/schemas"), "no schemas directory /no/such/schemas"),
        (("airflow-pools", "--out", "/no/such/dir/pools.json"), "no directory /no/such/dir"),
        (("lineage", "curated.census_trade_imports"), "nothing published yet"),
    ],
)
def test_a_missing_file_or_directory_is_refused_in_one_line(
    tmp_path: Path, command: tuple[str, ...], message: str
) -> None:
    assert message in one_line_error(scdx(*command, data_dir=tmp_path / "data"))


# --- help ---------------------------------------------------------------------------------------


def test_version_and_h_are_there() -> None:
    assert re.fullmatch(r"scdx \d+\.\d+\.\d+\n", scdx("--version", data_dir=Path("data")).stdout)
    assert scdx("-h", data_dir=Path("data")).returncode == 0


def test_the_help_lists_every_command_in_panels_pipeline_first_without_raw_markdown() -> None:
    import typer.main

    help_text = scdx("-h", data_dir=Path("data"), columns=120).stdout
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for name in commands:
        assert re.search(rf"│ {re.escape(name)}\s", help_text), name
    panels = [help_text.index(p) for p in ("Run the pipeline", "Query and explore", "Operate")]
    assert panels == sorted(panels) and "`" not in help_text


def test_every_option_of_every_command_is_described() -> None:
    import typer.main

    def options(command: object, path: str) -> list[tuple[str, str]]:
        found = [(path, p.name or "") for p in command.params if not getattr(p, "help", "x")]  # type: ignore[attr-defined]
        for name, sub in getattr(command, "commands", {}).items():
            found += options(sub, f"{path} {name}")
        return found

    assert options(typer.main.get_command(app), "scdx") == []


# --- operators' commands ------------------------------------------------------------------------


def test_freshness_exits_1_when_a_dataset_is_late_and_0_with_warn_only(published: Path) -> None:
    # bls_qcew_industry's recordings end in 2021: late on any day this test runs or pretends to.
    late = scdx("freshness", "--as-of", "2026-11-23", data_dir=published)
    assert late.returncode == 1 and "bls_qcew_industry: LATE" in late.stdout
    datasets = len(contract_paths(SCHEMAS))
    assert re.search(rf"\d of {datasets} datasets late: .*bls_qcew_industry", late.stderr)
    warned = scdx("freshness", "--as-of", "2026-11-23", "--warn-only", data_dir=published)
    assert warned.returncode == 0 and warned.stdout == late.stdout


def test_publish_list_is_one_line_per_release_with_times_to_the_second(published: Path) -> None:
    from pipelines.store.history import list_publishes
    from pipelines.store.layout import Layout

    lines = scdx("publish", "list", data_dir=published).stdout.splitlines()
    assert len(lines) == len(list_publishes(Layout(published)))
    assert all(re.match(r"\s*\d+  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  ", line) for line in lines)


def test_lineage_of_a_mart_goes_through_its_curated_tables_and_runs_to_the_agency_files(
    published: Path,
) -> None:
    sources = ["bls_qcew_industry", "census_trade_imports", "faf5_regional_flows", "usgs_mineral_production"]
    table = scdx("lineage", "supply_chain_scorecard", data_dir=published, columns=160)
    assert table.returncode == 0, table.stderr
    assert all(f"curated.{name}" in table.stdout for name in sources)
    # URLs shortened to host and path: the query (Census's 25 I_COMMODITY codes) only in --json.
    assert "127.0.0.1:" in table.stdout and "I_COMMODITY" not in table.stdout
    rows = json.loads(scdx("lineage", "--json", "marts.supply_chain_scorecard", data_dir=published).stdout)
    raw = [r for r in rows if r["kind"] == "raw"]
    assert {r["table_name"] for r in rows} >= {f"curated.{name}" for name in sources}
    assert all(len(r["sha256"]) == 64 and r["url"] for r in raw)
    assert any("I_COMMODITY=8507" in r["url"] for r in raw)


def test_datasets_is_one_line_per_dataset_and_a_name_prints_its_whole_contract(published: Path) -> None:
    listing = scdx("datasets", data_dir=published, columns=120).stdout.splitlines()
    assert len(listing) == 1 + len(contract_paths(SCHEMAS))
    census = next(line for line in listing if line.startswith("census_trade_imports "))
    assert "U.S. Census Bureau" in census and "public" in census and "daily 06:00 UTC" in census
    assert "75 days" in census
    contract = yaml.safe_load(scdx("datasets", "census_trade_imports", data_dir=published).stdout)
    assert contract["dataset"] == "census_trade_imports" and contract["fields"]


# --- logs ---------------------------------------------------------------------------------------


def test_log_lines_carry_iso_8601_times(tmp_path: Path) -> None:
    result = scdx("refresh", "usgs_mineral_salient", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr[-2000:]
    logged = [line for line in result.stderr.splitlines() if "scdx.refresh:" in line]
    assert logged and all(
        re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d INFO", line) for line in logged
    ), logged
