"""Validation runs GX inside DuckDB; its verdicts must mean what GX's expectations say."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.contracts import Contract, Registry, arrow_schema
from pipelines.stages.stage import StagedBatch
from pipelines.stages.validate import validate
from pipelines.store.layout import Layout


def _staged(
    layout: Layout,
    contract: Contract,
    registry: Registry,
    rows: list[dict[str, object]],
    run_id: str = "run-1",
) -> StagedBatch:
    directory = layout.staged_dir(contract.dataset, run_id)
    directory.mkdir(parents=True)
    path = directory / "part-00000.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(contract, registry)), path)
    return StagedBatch(
        dataset=contract.dataset, run_id=run_id, directory=directory, files=(path,), rows=len(rows)
    )


def _row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "period": date(2024, 1, 1),
        "hs_code": "8507",
        "hs_level": "HS4",
        "hs_description": "ELECTRIC STORAGE BATTERIES",
        "country_code": "5700",
        "country_name": "CHINA",
        "partner_kind": "country",
        "general_value_usd": 10,
        "consumption_value_usd": 10,
    }
    row.update(overrides)
    return row


@pytest.fixture
def lenient(census: Contract) -> Contract:
    """The census contract with a row floor of 1, for small hand-made batches."""
    return census.model_copy(update={"checks": census.checks.model_copy(update={"min_rows": 1})})


CODES = ["5700", "0003", "-", "5XXX", "57000", "570", "ABCD", "5700 ", "x5700", "57X0", ""]


def test_regex_check_in_duckdb_agrees_with_python_re_search(
    lenient: Contract, registry: Registry, data_dir: Path
) -> None:
    layout = Layout(data_dir)
    rows = [
        _row(country_code=code, period=date(2024, 1 + i % 12, 1), hs_code=f"{1000 + i}")
        for i, code in enumerate(CODES)
    ]
    report = validate(_staged(layout, lenient, registry, rows), lenient, registry, layout)
    pattern = registry.types.types["census_cty_code"].pattern
    assert pattern is not None
    expected_bad = sorted(code for code in CODES if not re.search(pattern, code))
    (regex,) = [
        c for c in report.checks if c.check == "ExpectColumnValuesToMatchRegex" and c.column == "country_code"
    ]
    assert regex.error is None
    assert regex.unexpected_count == len(expected_bad)
    assert sorted(regex.unexpected_sample) == expected_bad
    assert not report.passed


def test_clean_batch_passes_every_check(lenient: Contract, registry: Registry, data_dir: Path) -> None:
    layout = Layout(data_dir)
    rows = [
        _row(
            country_code="-",
            country_name="TOTAL FOR ALL COUNTRIES",
            partner_kind="total",
            general_value_usd=30,
        ),
        _row(),
    ]
    report = validate(_staged(layout, lenient, registry, rows), lenient, registry, layout)
    failed = [c.describe() for c in report.checks if not c.success]
    assert failed == []
    assert report.outcome == "passed"
    assert report.report_path.exists() and report.gx_result_path.exists() and report.data_docs_index.exists()


def test_duplicate_key_and_nulls_and_negative_values_are_each_reported(
    lenient: Contract, registry: Registry, data_dir: Path
) -> None:
    layout = Layout(data_dir)
    rows = [
        _row(),
        _row(),
        _row(hs_code="2504", general_value_usd=-1),
        _row(hs_code="2846", country_name=None),
    ]
    report = validate(_staged(layout, lenient, registry, rows), lenient, registry, layout)
    failed = {(c.check, c.column) for c in report.blocking_failures}
    assert ("UnexpectedRowsExpectation", None) in failed
    (duplicate,) = [c for c in report.blocking_failures if c.check == "UnexpectedRowsExpectation"]
    assert duplicate.observed_value == 1  # one key is duplicated
    assert ("ExpectColumnValuesToBeBetween", "general_value_usd") in failed
    assert ("ExpectColumnValuesToNotBeNull", "country_name") in failed


def test_row_floor_from_the_contract_is_blocking(
    census: Contract, registry: Registry, data_dir: Path
) -> None:
    layout = Layout(data_dir)
    report = validate(_staged(layout, census, registry, [_row()]), census, registry, layout)
    (floor,) = [c for c in report.blocking_failures if c.check == "ExpectTableRowCountToBeBetween"]
    assert floor.observed_value == 1


def test_country_codelist_check_over_the_whole_list_flags_exactly_the_unknown_country_codes(
    lenient: Contract, registry: Registry, data_dir: Path
) -> None:
    # The country list has ~240 codes, long enough to be sent as one list parameter (gx_duckdb).
    known = registry.codelists.values("countries", "schedule_c_code")
    assert len(known) > 32
    unknown = ["9999", "0000", "5701"]
    assert not set(unknown) & set(known)
    rows = [_row(country_code=code, hs_code=f"{1000 + i}") for i, code in enumerate([*known[:50], *unknown])]
    # Groups are checked by pattern only: the code list applies to partner_kind = country.
    rows.append(_row(country_code="0003", partner_kind="group", hs_code="0999"))
    layout = Layout(data_dir)
    report = validate(_staged(layout, lenient, registry, rows), lenient, registry, layout)
    (in_set,) = [
        c for c in report.checks if c.check == "ExpectColumnValuesToBeInSet" and c.column == "country_code"
    ]
    assert in_set.error is None
    assert in_set.unexpected_count == len(unknown)
    assert sorted(in_set.unexpected_sample) == sorted(unknown)


def test_a_run_id_whose_suffix_reads_as_a_utc_offset_validates_and_renders_data_docs(
    lenient: Contract, registry: Registry, data_dir: Path
) -> None:
    # dateutil reads "20261130T090619Z-8572ad" as 09:06:19 at UTC+86:12; GX used to take its
    # run time from the run name and Data Docs then failed on the impossible offset.
    layout = Layout(data_dir)
    staged = _staged(layout, lenient, registry, [_row()], run_id="20261130T090619Z-8572ad")
    report = validate(staged, lenient, registry, layout)
    assert report.passed
    assert report.data_docs_index.exists()


def test_a_failed_batch_stores_one_gx_result_with_counts_and_a_passing_batch_only_verdicts(
    lenient: Contract, registry: Registry, data_dir: Path
) -> None:
    import json

    layout = Layout(data_dir)
    bad = validate(
        _staged(layout, lenient, registry, [_row(), _row(hs_code="2504", general_value_usd=-1)], "run-bad"),
        lenient,
        registry,
        layout,
    )
    good = validate(_staged(layout, lenient, registry, [_row()], "run-good"), lenient, registry, layout)
    stored = {run: list(layout.gx_results_dir.rglob(f"*{run}*/**/*.json")) for run in ("run-bad", "run-good")}
    # The suite ran twice for the failed batch; its detailed result replaced the first.
    assert len(stored["run-bad"]) == 1 and len(stored["run-good"]) == 1
    bad_result = json.loads(stored["run-bad"][0].read_text())
    (between,) = [
        r
        for r in bad_result["results"]
        if r["expectation_config"]["type"] == "expect_column_values_to_be_between"
        and r["expectation_config"]["kwargs"]["column"] == "general_value_usd"
    ]
    assert between["success"] is False and between["result"]["unexpected_count"] == 1
    assert between["result"]["partial_unexpected_list"] == [-1]
    assert not bad.passed and good.passed
    good_result = json.loads(stored["run-good"][0].read_text())
    assert all(r["success"] and not r["result"] for r in good_result["results"])


def test_key_uniqueness_query_runs_once_and_a_duplicate_still_fails_with_its_count(
    lenient: Contract, registry: Registry, data_dir: Path
) -> None:
    # GX's own UnexpectedRowsExpectation also fetches the rows, which only a COMPLETE result
    # shows: over 10M rows that second run of the GROUP BY is 0.6 s of nothing.
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    layout = Layout(data_dir)
    event.listen(Engine, "before_cursor_execute", seen)
    try:
        good = validate(_staged(layout, lenient, registry, [_row()], "run-good"), lenient, registry, layout)
        key_queries_good = [s for s in statements if "AS copies" in s]
        statements.clear()
        bad = validate(
            _staged(layout, lenient, registry, [_row(), _row()], "run-bad"), lenient, registry, layout
        )
        key_queries_bad = [s for s in statements if "AS copies" in s]
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert good.passed and len(key_queries_good) == 1
    # A failure runs the suite again for counts: once per pass, never twice in one.
    assert len(key_queries_bad) == 2
    (duplicate,) = [c for c in bad.blocking_failures if c.check == "UnexpectedRowsExpectation"]
    assert duplicate.observed_value == 1
    # Data Docs render the check and its observed value (the count of duplicated keys).
    (page,) = [p for p in layout.data_docs_dir.rglob("*.html") if "run-bad" in p.parts]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text()))
    assert "primary key (period, hs_code, country_code) is unique 1 " in text


def test_gx_is_imported_when_validating_or_by_one_warm_up_a_process_and_as_it_is() -> None:
    # A fresh interpreter: another test has imported GX in this one.
    import subprocess
    import sys

    program = """
import sys, threading, types
from pipelines.stages import gx_suite, validate
print("great_expectations" in sys.modules)
gx_suite.warm_up()
gx_suite.warm_up()  # a second dataset's normalize: no second import thread
warming = [t for t in threading.enumerate() if t.name == "scdx-gx-import"]
print(len(warming))
warming[0].join()
print("great_expectations" in sys.modules, "pipelines.stages.gx_duckdb" in sys.modules)
# GX's own imports are its own: every module it loaded is a real module, none a stand-in.
print(all(type(m) is types.ModuleType for n, m in list(sys.modules.items()) if n.startswith(("scipy", "altair"))))
"""
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:4] == ["False", "1", "True True", "True"]


def test_a_contracts_type_expectations_check_the_staged_column_types(
    lenient: Contract, registry: Registry, data_dir: Path
) -> None:
    # GX reads column types through SQLAlchemy's reflection of the staged view (gx_duckdb).
    from pipelines.contracts import ExpectationCheck

    typed = [
        ExpectationCheck(
            expectation="column_values_to_be_of_type",
            column="general_value_usd",
            kwargs={"type_": "BIGINT"},
            description="values are 64-bit integers",
        ),
        ExpectationCheck(
            expectation="column_values_to_be_in_type_list",
            column="period",
            kwargs={"type_list": ["DATE"]},
            description="period is a date",
        ),
        ExpectationCheck(
            expectation="column_values_to_be_of_type",
            column="country_code",
            kwargs={"type_": "INTEGER"},
            severity="warning",
            description="codes are not integers",
        ),
    ]
    contract = lenient.model_copy(
        update={
            "checks": lenient.checks.model_copy(
                update={"expectations": [*lenient.checks.expectations, *typed]}
            )
        }
    )
    layout = Layout(data_dir)
    report = validate(_staged(layout, contract, registry, [_row()]), contract, registry, layout)
    by_check = {(c.check, c.column): c for c in report.checks}
    assert all(c.error is None for c in report.checks)
    assert by_check[("ExpectColumnValuesToBeOfType", "general_value_usd")].success
    assert by_check[("ExpectColumnValuesToBeInTypeList", "period")].success
    varchar = by_check[("ExpectColumnValuesToBeOfType", "country_code")]
    assert not varchar.success and varchar.observed_value == "VARCHAR"
    assert report.passed and len(report.warnings) == 1
