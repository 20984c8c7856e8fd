"""Great Expectations' own test cases hold on scdx's DuckDB adapter, but for a reasoned list.

GX's declarative cases (``tests/gx_conformance/cases``, GX 1.2.0) run through the production path
(:func:`pipelines.stages.gx_suite.duckdb_datasource`, the ``scdx_duckdb`` dialect) on GX 1.24, one GX
context for all of them. Each case either meets its ``out`` as GX's runner checks it, or differs
in exactly the keys listed below for it, with the reason. A listed difference is confirmed on GX's
own engines: it must show there too (SQLite, pandas) exactly where the list says so, and nowhere
else; so the list separates what GX changed since the cases were written from what is DuckDB's.
A change to the adapter that flips a verdict, or ends a listed difference, fails the suite.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.gx_conformance import harness
from tests.gx_conformance.harness import Case

BOTH = frozenset({"sqlite", "pandas"})
SQLITE = frozenset({"sqlite"})
NONE: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Expected:
    """Cases that differ from their ``out`` in these keys, and on which of GX's engines too."""

    keys: frozenset[str]
    on_gx: frozenset[str]  # GX's own engines where the same keys differ; empty: DuckDB's own
    reason: str
    cases: tuple[str, ...]


def _ids(expectation: str, dataset: int, *tests: tuple[int, str]) -> tuple[str, ...]:
    return tuple(f"{expectation}[{dataset}.{t}] {title}" for t, title in tests)


EXPECTED_DIFFERENCES = (
    Expected(
        frozenset({"observed_value", "value_counts"}),
        BOTH,
        "GX 1.24's distinct-values expectations report observed_value None and no value_counts "
        "(GX stopped fetching every value count after 1.2.0); the verdict is unchanged",
        _ids(
            "expect_column_distinct_values_to_be_in_set",
            1,
            (1, "basic_positive_test"),
            (3, "positive_test_with_null_values_in_column"),
            (4, "positive_test_with_duplicate_values_in_column"),
            (5, "positive_test_duplicate_and_null_values"),
        ),
    ),
    Expected(
        frozenset({"observed_value"}),
        BOTH,
        "GX 1.24's distinct-values expectations report observed_value None (the unexpected values "
        "are in partial_unexpected_list instead); the verdict is unchanged",
        _ids(
            "expect_column_distinct_values_to_be_in_set",
            1,
            (6, "basic_negative_test_no_set_intersection"),
            (7, "negative_test_some_set_intersection_and_extra"),
            (8, "negative_test_with_null_values_in_column"),
            (9, "negative_test_with_duplicate_values_in_column"),
            (10, "negative_test_duplicate_and_null_values"),
        )
        + _ids(
            "expect_column_distinct_values_to_contain_set",
            1,
            (1, "basic_positive_test"),
            (2, "positive_test_with_null_values_in_column"),
            (3, "positive_test_with_duplicate_values_in_column"),
            (4, "positive_test_duplicate_and_null_values"),
            (5, "basic_negative_test_no_set_intersection"),
            (6, "negative_test_some_set_intersection"),
            (7, "negative_test_with_null_values_in_column"),
            (8, "negative_test_with_duplicate_values_in_column"),
            (9, "negative_test_duplicate_and_null_values"),
            (10, "positive_test_string_values"),
            (11, "negative_test_string_values"),
        )
        + _ids(
            "expect_column_distinct_values_to_equal_set",
            1,
            (1, "basic_positive_test"),
            (2, "positive_test_with_null_values_in_column"),
            (3, "positive_test_with_duplicate_values_in_column"),
            (4, "positive_test_duplicate_and_null_values"),
            (5, "basic_negative_test_set_contained"),
            (6, "negative_test_some_set_intersection"),
            (7, "negative_test_with_null_values_in_column"),
            (8, "negative_test_with_duplicate_values_in_column"),
            (9, "negative_test_duplicate_and_null_values"),
        ),
    ),
    Expected(
        frozenset({"observed_value"}),
        SQLITE,
        "GX 1.24's UnexpectedRowsExpectation reports the count as an integer, not the text "
        '"0 unexpected rows" of 1.2.0 (scdx reads the integer); the verdict is unchanged',
        _ids("unexpected_rows_expectation", 1, (1, "basic_positive_test"), (2, "basic_negative_test")),
    ),
    Expected(
        frozenset({"error"}),
        SQLITE,
        "GX 1.24 raises \"'NoneType' object is not iterable\" on SQL backends for a column_set of "
        "None (the pandas engine accepts it)",
        _ids(
            "expect_table_columns_to_match_set",
            1,
            (11, "negative_test_null_set_exact_match_true"),
            (12, "positive_test_vacuously_true_null_set_exact_match_false"),
        ),
    ),
    Expected(
        frozenset({"error"}),
        BOTH,
        "GX 1.24 rejects a value_set of None when the expectation is built (pydantic), where 1.2.0 "
        "took it as the universal set",
        _ids("expect_column_distinct_values_to_be_in_set", 1, (2, "vacuously_true_universal_set")),
    ),
    Expected(
        frozenset({"error"}),
        BOTH,
        "an error case GX 1.24 no longer raises: min_value and max_value may both be None, and "
        "reversed bounds or quantile ranges make the check fail instead of raising",
        _ids("expect_column_min_to_be_between", 1, (8, "raise_valueerror_with_both_max_and_min_are_missing"))
        + _ids(
            "expect_column_sum_to_be_between", 1, (7, "raise_valueerror_with_both_max_and_min_are_missing")
        )
        + _ids(
            "expect_column_quantile_values_to_be_between",
            1,
            (5, "basic_negative_test_disordered_quantile_ranges"),
        )
        + _ids("expect_table_column_count_to_be_between", 1, (5, "test_error_handling_for_max_lt_min")),
    ),
    Expected(
        frozenset({"error_message"}),
        BOTH,
        "the error comes, in pydantic's words: GX 1.24 validates an expectation's arguments when it "
        "is built, not with 1.2.0's messages",
        _ids(
            "expect_column_value_lengths_to_be_between",
            1,
            (8, "test_error_handling_for_non_int_min_value"),
            (9, "test_error_handling_for_non_int_max_value"),
        )
        + _ids("expect_column_values_to_not_be_in_set", 1, (11, "raise_typeerror_when_values_set_is_missing"))
        + _ids(
            "expect_table_column_count_to_be_between",
            1,
            (7, "test_error_handling_for_non_int_min_value"),
            (8, "test_error_handling_for_non_int_max_value"),
        )
        + _ids(
            "expect_table_row_count_to_be_between",
            1,
            (5, "test_error_handling_for_min_greater_than_max"),
            (7, "test_error_handling_for_non_int_min_value"),
            (8, "test_error_handling_for_non_int_max_value"),
        ),
    ),
    Expected(
        frozenset({"error_message"}),
        SQLITE,
        "the error comes from GX's SQL engine (\"ColumnValuesBetween metrics cannot be computed on "
        'column of type VARCHAR"), not the TypeError of its pandas engine the case quotes',
        tuple(
            case
            for expectation in (
                "expect_column_values_to_be_between",
                "expect_column_values_to_be_between_tz_naive",
            )
            for case in _ids(
                expectation,
                1,
                (17, "error:_improperly_mixed_types"),
                (18, "error:_improperly_mixed_types_again"),
                (19, "error:_improperly_mixed_types_once_more"),
            )
        ),
    ),
    Expected(
        frozenset({"error"}),
        SQLITE,
        "the case's sqlite schema types the column INTEGER, so SQL compares integers and nothing "
        "raises (only the pandas engine, with text, raises the TypeError the case quotes)",
        _ids("expect_column_values_to_be_between", 1, (23, "error_on_string-to-int_comparisons"))
        + _ids("expect_column_values_to_be_between_tz_naive", 1, (23, "error_on_string-to-int_comparisons")),
    ),
    Expected(
        frozenset({"error"}),
        NONE,
        "DuckDB, like PostgreSQL (for which GX suppresses these cases), has no avg() of BOOLEAN or "
        "VARCHAR values; SQLite averages booleans as 0/1 and text as NULL. The check errors "
        "instead of deciding: no contract averages such a column",
        _ids(
            "expect_column_mean_to_be_between",
            3,
            (2, "coerced_types_true_false_values"),
            (3, "coerced_types_true_false_and_null"),
        )
        + _ids(
            "expect_column_mean_to_be_between",
            4,
            (1, "test_empty_column_should_be_false_no_observed_value_with_which_to_compare"),
        ),
    ),
    Expected(
        frozenset({"error_message"}),
        NONE,
        "the case wants an error for the length of integers, and DuckDB gives one (no length() of "
        "BIGINT) in its own words; SQLite's length() takes integers as text, so GX's engines raise none",
        _ids("expect_column_value_lengths_to_be_between", 1, (11, "test_error_handling_values_are_integers")),
    ),
    Expected(
        frozenset({"unexpected_index_list"}),
        NONE,
        "the rows are the same; DuckDB holds the column as TIMESTAMP, whose JSON form is ISO 8601 "
        "(1970-01-01T12:00:01), where SQLite holds the text the case shows (1970-01-01 12:00:01)",
        _ids(
            "expect_column_values_to_be_between__evaluation_parameters",
            1,
            (3, "basic_negative_now_test_other_sql"),
            (6, "basic_negative_now_timedelta_test_other_sql"),
            (9, "basic_negative_datetime_test_other_sql"),
        ),
    ),
)


@dataclass(frozen=True)
class Outcome:
    """A case's differences on the adapter and on each of GX's engines that runs it."""

    case: Case
    differs: frozenset[str]
    on_gx: dict[str, frozenset[str]]
    verdict: str  # "same", "differs", "error" (no verdict), or "n/a" (the case checks no verdict)


def _verdict(case: Case, observed: harness.Observed) -> str:
    """Whether the adapter decided as the case says: the check's success, or the error it wants."""
    if case.error_substring is not None or "traceback_substring" in case.out:
        return "same" if observed.error is not None else "differs"
    if "success" not in case.out and not case.exact:
        return "n/a"
    if observed.error is not None:
        return "error"
    return "same" if observed.success == case.out.get("success") else "differs"


@pytest.fixture(scope="module")
def suite() -> harness.Suite:
    return harness.load()


@pytest.fixture(scope="module")
def engines(suite: harness.Suite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Engines]:
    from pipelines.stages.gx_suite import import_gx

    import_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    )
    config.progress_bars = {"globally": False}
    config.analytics_enabled = False
    context = gx.get_context(project_config=config, mode="ephemeral")
    engines = harness.Engines(context, tmp_path_factory.mktemp("gx_cases"), suite.tables)
    try:
        yield engines
    finally:
        engines.close()


@pytest.fixture(scope="module")
def outcomes(suite: harness.Suite, engines: harness.Engines) -> dict[str, Outcome]:
    """Every applicable case run on the adapter; a differing one also on GX's engines that run it."""
    results = {}
    for case in suite.cases:
        observed = engines.run(case)
        differs = frozenset(harness.differences(case, observed))
        on_gx = {}
        if differs:
            for reference in harness.REFERENCES:
                if harness.applies_on(case, reference):
                    on_gx[reference] = frozenset(harness.differences(case, engines.run(case, reference)))
        results[case.id] = Outcome(case, differs, on_gx, _verdict(case, observed))
    return results


def test_every_gx_case_holds_on_the_adapter_or_differs_exactly_as_listed(
    outcomes: dict[str, Outcome], request: pytest.FixtureRequest
) -> None:
    listed = {case: expected for expected in EXPECTED_DIFFERENCES for case in expected.cases}
    assert len(listed) == sum(len(e.cases) for e in EXPECTED_DIFFERENCES), "a case is listed twice"
    problems = [f"listed but not an applicable case: {case}" for case in listed if case not in outcomes]
    for case_id, outcome in outcomes.items():
        expected = listed.get(case_id)
        if expected is None:
            if outcome.differs:
                problems.append(f"{case_id}: differs in {sorted(outcome.differs)}")
            continue
        if outcome.differs != expected.keys:
            problems.append(
                f"{case_id}: listed as {sorted(expected.keys)}, differs in {sorted(outcome.differs)}"
            )
            continue
        for engine, keys in outcome.on_gx.items():
            if (keys == expected.keys) != (engine in expected.on_gx):
                problems.append(
                    f"{case_id}: on GX's {engine} engine differs in {sorted(keys)}; listed on {sorted(expected.on_gx)}"
                )
        missing = expected.on_gx - set(outcome.on_gx)
        if missing:
            problems.append(f"{case_id}: listed as on GX's {sorted(missing)}, which does not run it")
    counts = Counter(o.verdict for o in outcomes.values())
    as_listed = [c for c, e in listed.items() if c in outcomes and outcomes[c].differs == e.keys]
    adapter_own = {c for c in as_listed if not listed[c].on_gx}
    other = [o for o in outcomes.values() if o.verdict in ("differs", "error")]
    request.config.stash[harness.SUMMARY] = (
        f"{len(outcomes)} cases run (GX 1.2.0's for SQLite + regex), "
        f"{sum(1 for o in outcomes.values() if not o.differs)} passed, "
        f"{len(as_listed)} expected differences ({len(as_listed) - len(adapter_own)} also on GX's own "
        f"engines, {len(adapter_own)} DuckDB's own); verdict the same in {counts['same']} of "
        f"{len(outcomes) - counts['n/a']} cases that decide one; of the {len(other)} others "
        f"{sum(1 for o in other if o.case.id not in adapter_own)} decide as on GX's own engines, "
        f"{sum(1 for o in other if o.case.id in adapter_own)} are DuckDB's"
    )
    assert not problems, "\n".join(problems)


def test_no_verdict_of_an_expectation_scdx_uses_differs_from_gx(
    outcomes: dict[str, Outcome], registry: Any
) -> None:
    from pipelines.contracts import check_specs

    used = {
        spec.expectation
        for contract in registry.contracts.values()
        for spec in check_specs(contract, registry)
    }
    # GX's snake-case names of the classes, and the type expectations contracts may now use.
    snake = {"".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_") for name in used}
    snake |= {"expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"}
    ours = [o for o in outcomes.values() if o.case.expectation_type in snake]
    assert {o.case.expectation_type for o in ours} == snake
    # Each decides as the case says, or as GX's own SQLite engine does (a listed difference) ...
    listed_on_sqlite = {case for e in EXPECTED_DIFFERENCES if "sqlite" in e.on_gx for case in e.cases}
    assert [
        o.case.id for o in ours if o.verdict not in ("same", "n/a") and o.case.id not in listed_on_sqlite
    ] == []
    # ... and what differs on DuckDB alone is how a value is rendered, not whether the check holds.
    own = {case for e in EXPECTED_DIFFERENCES if not e.on_gx for case in e.cases}
    verdict_keys = {"success", "error", "error_message"}
    assert [o.case.id for o in ours if o.case.id in own and o.differs & verdict_keys] == []


def test_type_expectation_cases_run_and_pass(outcomes: dict[str, Outcome]) -> None:
    typed = [o for o in outcomes.values() if o.case.expectation_type.endswith(("_of_type", "_in_type_list"))]
    assert len(typed) == 12
    assert [o.case.id for o in typed if o.differs] == []


def test_the_case_files_are_gx_1_2_0s_unmodified() -> None:
    manifest = {}
    for line in (harness.CASES / "MANIFEST.tsv").read_text().splitlines():
        blob, path = line.split("\t")
        manifest[path] = blob
    files = {str(p.relative_to(harness.CASES)): p for p in harness.CASES.glob("*/*.json")}
    assert set(files) == set(manifest) and len(files) == 63
    for path, file in files.items():
        data = file.read_bytes()
        # The git blob id GX's repository gives the file at the pinned commit.
        assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == manifest[path], path
    assert harness.PINNED_COMMIT in (harness.CASES / "PROVENANCE.md").read_text()


def test_gx_applicability_rules_pick_the_sqlite_cases_and_the_regex_ones(suite: harness.Suite) -> None:
    assert (suite.files, suite.tests, len(suite.cases)) == (63, 663, 447)
    assert suite.regex_extension == 31
    assert dict(suite.not_applicable) == {
        "GX has no SQL implementation": 90,
        "dataset only for other backends": 2,
        "test only for other backends": 117,
        "test suppressed for SQL or SQLite": 7,
    }
    ids = {c.id for c in suite.cases}
    # A test only for SQLite applies; one only for PostgreSQL, or suppressed for SQLite, does not.
    assert "expect_column_values_to_be_of_type[1.6] negative_sqlite_integer_is_not_varchar" in ids
    assert "expect_column_values_to_be_of_type[1.5] negative_test_sql_ints_are_not_text" not in ids
    assert "expect_column_max_to_be_between[1.1] datetime_except_sqlite" not in ids
    assert not any(c.expectation_type in harness.NOT_IMPLEMENTED_FOR_SQL for c in suite.cases)


def _case(**flags: Any) -> Case:
    names = tuple(
        frozenset(flags.get(k, ())) for k in ("dataset_only", "dataset_suppressed", "only", "suppressed")
    )
    return Case("x", "expect_column_values_to_be_null", "t", {}, {}, False, None, None, False, names)


@pytest.mark.parametrize(
    ("flags", "sqlite", "pandas"),
    [
        ({}, True, True),
        ({"only": ["sqlalchemy"]}, True, False),
        ({"only": ["pandas"]}, False, True),
        ({"only": ["postgresql", "mysql"]}, False, False),
        ({"suppressed": ["sqlite"]}, False, True),
        ({"suppressed": ["sqlalchemy"]}, False, True),
        ({"dataset_suppressed": ["sqlite", "mssql"]}, False, True),
        ({"dataset_only": ["spark"]}, False, False),
    ],
)
def test_gx_engine_applicability_follows_gxs_flags(
    flags: dict[str, list[str]], sqlite: bool, pandas: bool
) -> None:
    case = _case(**flags)
    assert (harness.applies_on(case, "sqlite"), harness.applies_on(case, "pandas")) == (sqlite, pandas)
