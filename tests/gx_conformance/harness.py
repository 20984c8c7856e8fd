"""Great Expectations' own declarative expectation cases, run through scdx's DuckDB dialect.

GX keeps, per expectation, JSON files of datasets and tests (``tests/test_definitions`` in its
repository, copied under ``cases/``; see ``cases/PROVENANCE.md``); its own runner loads each dataset
into each backend and checks each test's ``out`` against the validation result. This module is
scdx's runner for its adapter, written from the case format and GX's applicability rules:

- which cases apply: those GX runs on its SQLite backend (its in-process SQL reference, whose
  tables the cases describe with a ``sqlite`` schema), by the rules GX's runner applies: the
  expectation types GX has not implemented for SQL backends are skipped, a dataset's ``only_for``
  / ``suppress_test_for`` name backends, a test's name backends or ``sqlalchemy``. One extension:
  GX suppresses the regular-expression datasets for SQLite, which has no regex operator; DuckDB
  has one (the dialect's ``REGEXP_MATCHES``), and scdx's contracts check patterns on every batch,
  so those datasets apply.
- how the tables are loaded: as GX loads them into SQLite (pandas infers each column, a column the
  ``sqlite`` schema types is converted as GX converts it), into DuckDB columns of the declared
  type, or the type pandas' ``to_sql`` would have chosen; map expectations get GX's ``pk_index``.
- how a result is checked: each key of the test's ``out`` as GX's runner compares it (floats with
  its tolerances, unexpected lists sorted, ``unexpected_count`` not compared), with the complete
  result format and ``pk_index`` as the unexpected index column, as GX's runner asks.

A few cases compare dates from 1970-2001 with GX's ``now()`` (less a year, or 100 years): their
verdicts are the same on any run date from 2002 to 2069, so the run date does not matter.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CASES = Path(__file__).parent / "cases"
PINNED_COMMIT = "84cfd3d6b25aa5b9998e27bcb87e31b2b123a72a"  # GX's tag 1.2.0 (cases/PROVENANCE.md)
# The counts line the conformance test leaves for pytest's terminal summary (tests/conftest.py).
SUMMARY = pytest.StashKey[str]()
BACKEND = "sqlite"  # the GX backend whose cases the adapter is held to
SQL_ENGINE = "sqlalchemy"  # what GX's flags call every SQL backend
INDEX_COLUMN = "pk_index"

# Expectation types GX's runner skips on every SQL backend, not implemented there (GX 1.2.0,
# great_expectations/self_check/util.py, the list for SQL dialect names).
NOT_IMPLEMENTED_FOR_SQL = frozenset(
    {
        "expect_column_values_to_be_increasing",
        "expect_column_values_to_be_decreasing",
        "expect_column_values_to_match_strftime_format",
        "expect_column_values_to_be_dateutil_parseable",
        "expect_column_values_to_be_json_parseable",
        "expect_column_values_to_match_json_schema",
        "expect_multicolumn_values_to_be_unique",
        "expect_column_pair_cramers_phi_value_to_be_less_than",
        "expect_column_bootstrapped_ks_test_p_value_to_be_greater_than",
        "expect_column_chisquare_test_p_value_to_be_greater_than",
        "expect_column_parameterized_distribution_ks_test_p_value_to_be_greater_than",
    }
)
# Suppressed for SQLite for want of a regex operator, which DuckDB has (module docstring).
REGEX_EXPECTATIONS = frozenset(
    {
        "expect_column_values_to_match_regex",
        "expect_column_values_to_match_regex_list",
        "expect_column_values_to_not_match_regex",
        "expect_column_values_to_not_match_regex_list",
    }
)
# Categories whose datasets GX's runner gives an index column, reported with unexpected rows.
INDEXED_CATEGORIES = frozenset(
    {"column_map_expectations", "column_pair_map_expectations", "multicolumn_map_expectations"}
)
# Validation settings that GX's old validator took among an expectation's arguments.
RUNTIME_KWARGS = ("catch_exceptions", "result_format", "include_config")
# GX's runner's float tolerances (numpy.allclose) and when it uses them.
RTOL, ATOL = 1.0e-7, 5.0e-2
FLOAT_TEXT = re.compile(r".*\d\.\d+.*")


@dataclass(frozen=True)
class Table:
    """One dataset of a case file, loaded as one table."""

    name: str
    columns: Mapping[str, list[Any]]
    schemas: Mapping[str, Mapping[str, str]]  # backend -> column -> type, as the case declares them
    indexed: bool

    @property
    def declared(self) -> Mapping[str, str]:
        """The column types of the case's ``sqlite`` schema."""
        return self.schemas.get(BACKEND) or {}


@dataclass(frozen=True)
class Case:
    """One test of a case file that applies to the adapter."""

    id: str
    expectation_type: str
    table: str
    kwargs: Mapping[str, Any]
    out: Mapping[str, Any]
    exact: bool
    tolerance: float | None
    error_substring: str | None
    indexed: bool
    # (only_for, suppress_test_for) of the dataset and of the test, to judge other backends by.
    flags: tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]] = (
        frozenset(),
        frozenset(),
        frozenset(),
        frozenset(),
    )


@dataclass
class Suite:
    """Every case file: the tables, the applicable cases and why the others do not apply."""

    files: int = 0
    tests: int = 0
    tables: dict[str, Table] = field(default_factory=dict)
    cases: list[Case] = field(default_factory=list)
    not_applicable: Counter[str] = field(default_factory=Counter)
    regex_extension: int = 0  # cases applying only by the regex extension


def _names(flag: Any) -> frozenset[str]:
    if flag is None:
        return frozenset()
    return frozenset([flag] if isinstance(flag, str) else flag)


def _dataset_exclusion(dataset: Mapping[str, Any], expectation_type: str) -> str | None:
    if expectation_type in NOT_IMPLEMENTED_FOR_SQL:
        return "GX has no SQL implementation"
    only = _names(dataset.get("only_for"))
    if only and BACKEND not in only:
        return "dataset only for other backends"
    if BACKEND in _names(dataset.get("suppress_test_for")) and expectation_type not in REGEX_EXPECTATIONS:
        return "dataset suppressed for SQLite"
    return None


def _test_exclusion(test: Mapping[str, Any]) -> str | None:
    only = _names(test.get("only_for"))
    if only and not only & {SQL_ENGINE, BACKEND}:
        return "test only for other backends"
    if _names(test.get("suppress_test_for")) & {SQL_ENGINE, BACKEND}:
        return "test suppressed for SQL or SQLite"
    return None


def _table(dataset: Mapping[str, Any], fallback: str, indexed: bool) -> Table:
    return Table(
        dataset.get("dataset_name") or fallback, dataset["data"], dataset.get("schemas") or {}, indexed
    )


def load(cases: Path = CASES) -> Suite:
    """Read every case file; keep the tests GX would run on its SQLite backend (module docstring)."""
    suite = Suite()
    for path in sorted(cases.glob("*/*.json")):
        suite.files += 1
        config = json.loads(path.read_text(encoding="utf-8"))
        expectation_type = config["expectation_type"]
        indexed = path.parent.name in INDEXED_CATEGORIES
        for d, dataset in enumerate(config["datasets"], 1):
            tests = dataset["tests"]
            suite.tests += len(tests)
            exclusion = _dataset_exclusion(dataset, expectation_type)
            if exclusion:
                suite.not_applicable[exclusion] += len(tests)
                continue
            fallback = f"{expectation_type}_dataset_{d}"
            if isinstance(dataset["data"], list):
                # Several tables (expectations comparing tables); the first is the batch.
                tables = [_table(t, f"{fallback}_{i}", False) for i, t in enumerate(dataset["data"], 1)]
            else:
                tables = [_table(dataset, fallback, indexed)]
            applicable = False
            for t, test in enumerate(tests, 1):
                exclusion = _test_exclusion(test)
                if exclusion:
                    suite.not_applicable[exclusion] += 1
                    continue
                applicable = True
                if BACKEND in _names(dataset.get("suppress_test_for")):
                    suite.regex_extension += 1
                suite.cases.append(
                    Case(
                        id=f"{path.stem}[{d}.{t}] {test['title']}",
                        expectation_type=expectation_type,
                        table=tables[0].name,
                        kwargs=test.get("input", test["in"]),
                        out=test.get("output", test["out"]),
                        exact=bool(test["exact_match_out"]),
                        tolerance=test.get("tolerance"),
                        error_substring=(test.get("error") or {}).get("traceback_substring"),
                        indexed=tables[0].indexed,
                        flags=(
                            _names(dataset.get("only_for")),
                            _names(dataset.get("suppress_test_for")),
                            _names(test.get("only_for")),
                            _names(test.get("suppress_test_for")),
                        ),
                    )
                )
            if applicable:
                suite.tables.update((table.name, table) for table in tables)
    return suite


# Expectation types GX's runner skips on its pandas engine (GX 1.2.0, the list for "pandas").
NOT_IMPLEMENTED_FOR_PANDAS = frozenset(
    {
        "expect_table_row_count_to_equal_other_table",
        "expect_column_values_to_match_like_pattern",
        "expect_column_values_to_not_match_like_pattern",
        "expect_column_values_to_match_like_pattern_list",
        "expect_column_values_to_not_match_like_pattern_list",
        "expect_multicolumn_values_to_be_unique",
        "expect_column_pair_cramers_phi_value_to_be_less_than",
        "expect_column_bootstrapped_ks_test_p_value_to_be_greater_than",
        "expect_column_chisquare_test_p_value_to_be_greater_than",
        "expect_column_parameterized_distribution_ks_test_p_value_to_be_greater_than",
    }
)
REFERENCES = ("sqlite", "pandas")  # GX's own engines a difference is confirmed on


def applies_on(case: Case, reference: str) -> bool:
    """Whether GX's runner runs this case on one of its own engines (``sqlite`` or ``pandas``)."""
    dataset_only, dataset_suppressed, test_only, test_suppressed = case.flags
    if reference == "sqlite":
        names = {SQL_ENGINE, BACKEND}
        return (
            (not dataset_only or BACKEND in dataset_only)
            and BACKEND not in dataset_suppressed
            and (not test_only or bool(test_only & names))
            and not test_suppressed & names
        )
    if reference != "pandas" or case.expectation_type in NOT_IMPLEMENTED_FOR_PANDAS:
        return False
    # "pandas>=024" holds for every pandas since 1.0; the v2 API is GX's old one.
    names = {"pandas", "pandas_v3_api", "pandas>=024"}
    return (
        (not dataset_only or "pandas" in dataset_only)
        and "pandas" not in dataset_suppressed
        and (not test_only or bool(test_only & names))
        and not test_suppressed & {"pandas", "pandas_v3_api"}
    )


# --- loading a table, as GX's runner loads it ---


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _cell(value: Any) -> Any:
    """A pandas cell as a plain Python value; NaN, NaT and None as None."""
    if value is None:
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _inferred(values: list[Any]) -> Any:
    """A column as pandas 2 (GX 1.2.0's) infers it: numbers numeric (None as NaN), text as objects."""
    import pandas as pd

    series = pd.Series(values, dtype=object)
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pd.to_numeric(series)
    if present and len(present) == len(values) and all(isinstance(v, bool) for v in present):
        return series.astype(bool)
    return series


def _raw_frame(table: Table) -> Any:
    import pandas as pd

    frame = pd.DataFrame({n: _inferred(v) for n, v in table.columns.items()})
    if table.indexed:
        frame[INDEX_COLUMN] = range(len(frame))
    return frame


def sql_frame(table: Table) -> Any:
    """The table as GX's runner prepares it for SQLite: pandas' inference, then each column the
    ``sqlite`` schema types converted as GX converts it (text columns get ``str()`` of every value,
    None included; date-times are parsed)."""
    import pandas as pd

    frame = _raw_frame(table)
    for name, declared in table.declared.items():
        kind = declared.upper()
        if kind in ("INTEGER", "SMALLINT", "BIGINT"):
            frame[name] = pd.to_numeric(frame[name], downcast="signed")
        elif kind in ("FLOAT", "DOUBLE", "REAL"):
            frame[name] = pd.to_numeric(frame[name])
        elif kind in ("DATETIME", "TIMESTAMP", "DATE"):
            frame[name] = pd.to_datetime(frame[name], format="mixed")
        elif kind in ("VARCHAR", "TEXT", "STRING"):
            frame[name] = frame[name].map(str).astype(object)
    return frame


def pandas_frame(table: Table) -> Any:
    """The table as GX's runner prepares it for its pandas engine, typed by the ``pandas`` schema."""
    import numpy as np
    import pandas as pd

    frame = _raw_frame(table)
    dtypes: dict[str, Any] = {}
    for name, declared in (table.schemas.get("pandas") or {}).items():
        kind = declared.lower()
        if kind in ("timestamp", "datetime64[ns, tz]"):
            frame[name] = pd.to_datetime(frame[name], utc=True, format="mixed")
        elif kind in ("datetime", "datetime64", "datetime64[ns]"):
            frame[name] = pd.to_datetime(frame[name], format="mixed")
        elif kind == "date":
            frame[name] = pd.to_datetime(frame[name], format="mixed").dt.date
        else:
            try:
                dtypes[name] = np.dtype(declared)
            except TypeError:
                dtypes[name] = getattr(pd, declared)()
    return frame.astype(dtypes)


def _duckdb_column(series: Any, declared: str | None) -> tuple[str, list[Any]]:
    """A column's DuckDB type (the declared one, else what pandas' ``to_sql`` would create) and its
    values, date-times as text for DuckDB to cast."""
    import pandas as pd

    kind = (declared or "").upper()
    if kind in ("DATETIME", "TIMESTAMP", "DATE"):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        text = [None if pd.isna(v) else v.isoformat(sep=" ") for v in series]
        return ("DATE" if kind == "DATE" else "TIMESTAMP"), text
    values = [_cell(v) for v in series.tolist()]
    if kind == "INTEGER" and any(v is not None and abs(v) >= 2**31 for v in values):
        return "BIGINT", values  # SQLite's INTEGER holds 64 bits, DuckDB's 32
    if kind:
        return kind, values
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred == "integer":
        return "BIGINT", values
    if inferred in ("floating", "mixed-integer-float", "decimal"):
        return "DOUBLE", [None if v is None else float(v) for v in values]
    if inferred == "boolean":
        return "BOOLEAN", values
    return "VARCHAR", [None if v is None else str(v) for v in values]


def _arrow_type(values: list[Any]) -> Any:
    """Arrow's own inference, except that mixed Python types go as text for DuckDB to cast."""
    import pyarrow as pa

    kinds = {type(v) for v in values if v is not None}
    if kinds <= {bool} or kinds <= {int} or kinds <= {int, float} or kinds <= {str}:
        return None
    return pa.string()


def create_duckdb_tables(con: Any, tables: Iterable[Table]) -> None:
    """Create and fill each table on a DuckDB connection."""
    import pyarrow as pa

    for table in tables:
        frame = sql_frame(table)
        typed = {n: _duckdb_column(frame[n], table.declared.get(n)) for n in frame.columns}
        definitions = ", ".join(f"{_quote(n)} {t}" for n, (t, _) in typed.items())
        con.execute(f"CREATE TABLE {_quote(table.name)} ({definitions})")
        if len(frame) == 0:
            continue
        incoming = pa.table({n: pa.array(v, type=_arrow_type(v)) for n, (_, v) in typed.items()})
        casts = ", ".join(f"CAST({_quote(n)} AS {t})" for n, (t, _) in typed.items())
        con.register("incoming", incoming)
        con.execute(f"INSERT INTO {_quote(table.name)} SELECT {casts} FROM incoming")
        con.unregister("incoming")


def create_sqlite_tables(engine: Any, tables: Iterable[Table]) -> None:
    """Create and fill each table in SQLite as GX's runner does (pandas' ``to_sql``)."""
    from sqlalchemy.dialects import sqlite

    for table in tables:
        dtypes = {
            n: sqlite.DATETIME(truncate_microseconds=True)
            if t.upper() == "DATETIME"
            else getattr(sqlite, t.upper())
            for n, t in table.declared.items()
        }
        if table.indexed and table.declared:
            dtypes[INDEX_COLUMN] = sqlite.INTEGER
        sql_frame(table).to_sql(table.name, engine, index=False, dtype=dtypes, if_exists="replace")


# --- running a case and comparing its result as GX's runner does ---


@dataclass(frozen=True)
class Observed:
    """What GX reported for a case: its verdict and result, or the error it raised."""

    success: bool | None
    result: Mapping[str, Any]
    error: str | None


def expectation_for(case: Case) -> tuple[Any, Any]:
    """The GX expectation of a case and its result format (GX's runner's: complete, indexed)."""
    from great_expectations.expectations.registry import get_expectation_impl

    kwargs = {k: v for k, v in case.kwargs.items() if k not in RUNTIME_KWARGS}
    result_format: dict[str, Any] = {"result_format": "COMPLETE"}
    if case.indexed:
        result_format["unexpected_index_column_names"] = [INDEX_COLUMN]
    return get_expectation_impl(case.expectation_type)(**kwargs), result_format


def run(case: Case, batch: Any) -> Observed:
    """Validate the case's expectation on its table's batch."""
    from great_expectations import exceptions as gx_exceptions

    try:
        expectation, result_format = expectation_for(case)
        result = batch.validate(expectation, result_format=result_format)
    except (ValueError, TypeError, gx_exceptions.GreatExpectationsError) as exc:
        return Observed(None, {}, f"{type(exc).__name__}: {exc}")
    # GX reports one exception at the top, or one per metric that failed to resolve.
    info = result.exception_info or {}
    raised = [info] if "raised_exception" in info else [i for i in info.values() if isinstance(i, dict)]
    errors = [
        f"{i.get('exception_message')}\n{i.get('exception_traceback') or ''}"
        for i in raised
        if i.get("raised_exception")
    ]
    if errors:
        return Observed(None, {}, "\n".join(errors).strip())
    return Observed(bool(result.success), result.to_json_dict()["result"] or {}, None)


def _allclose(a: Any, b: Any, rtol: float = RTOL, atol: float = ATOL) -> bool:
    import numpy as np

    try:
        return bool(np.allclose(a, b, rtol=rtol, atol=atol))
    except (TypeError, ValueError):
        return bool(a == b)


def _sorted_like_gx(values: Any, key_from: Any) -> Any:
    """GX's runner sorts unexpected lists before comparing: dicts by their values, others as text."""
    if not isinstance(values, list) or not isinstance(key_from, list) or not key_from:
        return values
    first = key_from[0]
    if isinstance(first, dict):
        keys = list(first)
        return sorted(values, key=lambda row: tuple(str(row.get(k)) for k in keys))
    if first is None or isinstance(first, list):
        return values
    return sorted(values, key=str)


def _observed_value_differs(case: Case, observed: Any, expected: Any) -> bool:
    if case.tolerance is not None:
        if isinstance(expected, dict):
            return set(observed) != set(expected) or not all(
                _allclose(observed[k], v, rtol=case.tolerance, atol=1e-8) for k, v in expected.items()
            )
        return not _allclose(observed, expected, rtol=case.tolerance, atol=1e-8)
    if isinstance(expected, dict) and "values" in expected:
        return not (isinstance(observed, dict) and _allclose(observed.get("values"), expected["values"]))
    if FLOAT_TEXT.match(repr(expected)):
        return not _allclose(observed, expected)
    return bool(observed != expected)


def _partition_differs(observed: Mapping[str, Any] | None, expected: Mapping[str, Any]) -> bool:
    if not observed:
        return True
    keys = ["bins", "weights", *(["tail_weights"] if "tail_weights" in observed else [])]
    return not all(_allclose(observed[k], expected[k], rtol=1e-5, atol=1e-8) for k in keys)


def differences(case: Case, observed: Observed) -> dict[str, str]:
    """The keys of the case's ``out`` the observed result does not meet, each with what was seen."""
    wanted = case.error_substring or case.out.get("traceback_substring")
    if wanted is not None:
        # The verdict is the error; its message is GX's wording, a separate key.
        if observed.error is None:
            return {"error": f"no error (success {observed.success!r})"}
        if wanted not in observed.error:
            return {"error_message": observed.error.splitlines()[0][:300]}
        return {}
    if observed.error is not None:
        return {"error": observed.error.splitlines()[0][:300]}
    result = observed.result
    found: dict[str, str] = {}
    if case.exact:
        expected_result = case.out.get("result") or {}
        common = set(result) & set(expected_result)
        if observed.success != case.out.get("success"):
            found["success"] = f"{observed.success!r}"
        for key in sorted(common):
            if key == "observed_value" and isinstance(result[key], float):
                same = _allclose(result[key], expected_result[key])
            else:
                same = result[key] == expected_result[key]
            if not same:
                found[f"result.{key}"] = f"{result[key]!r}"
        if bool(result) != bool(expected_result):
            found["result"] = f"{result!r}"
        return found
    details = result.get("details") or {}
    for key, expected in case.out.items():
        seen = result.get(key)
        differs: bool
        if key == "success":
            seen = observed.success
            differs = seen != expected
        elif key == "observed_value":
            differs = _observed_value_differs(case, seen, expected)
        elif key == "observed_value_list":
            seen = result.get("observed_value")
            differs = seen not in expected
        elif key == "unexpected_index_list":
            # GX's runner compares it only for indexed datasets that reported some, by index.
            differs = bool(case.indexed and seen) and sorted(seen, key=lambda r: r[INDEX_COLUMN]) != expected
        elif key in ("unexpected_list", "partial_unexpected_list"):
            seen = _sorted_like_gx(seen, expected)
            expected = _sorted_like_gx(expected, expected)
            differs = seen != expected and (
                not seen or not isinstance(seen[0], list) or [tuple(x) for x in seen] != expected
            )
        elif key == "unexpected_count":
            differs = False  # GX's runner does not compare it
        elif key == "details":
            seen = details
            differs = seen != expected
        elif key == "value_counts":
            seen = details.get("value_counts")
            differs = not all(v in (seen or []) for v in expected)
        elif key.startswith("observed_cdf"):
            xs = (details.get("observed_cdf") or {}).get("x") or [math.nan]
            x = xs[-1] if "x_-1" in key else xs[0]
            seen = x
            differs = not (
                x > expected if key.endswith("gt") else x < expected if key.endswith("lt") else x == expected
            )
        elif key in ("expected_partition", "observed_partition"):
            seen = details.get(key)
            differs = _partition_differs(seen, expected)
        else:
            raise ValueError(f"{case.id}: unknown key {key!r} in the case's out")
        if differs:
            found[key] = f"{seen!r}"[:300]
    return found


class Engines:
    """GX batches of the tables on scdx's DuckDB adapter and, on demand, on GX's own references.

    One GX context for every case: each table is a table asset of one datasource per engine, its
    batch made once. ``duckdb`` goes through :func:`pipelines.stages.gx_suite.duckdb_datasource` (the
    production path); ``sqlite`` is GX's SQLite datasource on the same tables loaded with pandas'
    ``to_sql``; ``pandas`` is GX's pandas datasource on the frames typed by each ``pandas`` schema.
    """

    def __init__(self, context: Any, workdir: Path, tables: Mapping[str, Table]) -> None:
        import duckdb

        from pipelines.stages.gx_suite import duckdb_datasource

        self.context = context
        self.workdir = workdir
        self.tables = tables
        database = workdir / "cases.duckdb"
        with duckdb.connect(str(database)) as con:
            create_duckdb_tables(con, tables.values())
        self.datasources: dict[str, Any] = {"duckdb": duckdb_datasource(context, "duckdb", database)}
        self.batches: dict[tuple[str, str], Any] = {}

    def _datasource(self, engine: str) -> Any:
        if engine not in self.datasources:
            if engine == "sqlite":
                import sqlalchemy as sa

                path = self.workdir / "cases.sqlite"
                loader = sa.create_engine(f"sqlite:///{path}")
                try:
                    create_sqlite_tables(loader, self.tables.values())
                finally:
                    loader.dispose()
                self.datasources[engine] = self.context.data_sources.add_sqlite(
                    "sqlite", connection_string=f"sqlite:///{path}"
                )
            else:
                self.datasources[engine] = self.context.data_sources.add_pandas(engine)
        return self.datasources[engine]

    def batch(self, engine: str, table: str) -> Any:
        """The whole-table batch of one table on one engine."""
        key = (engine, table)
        if key not in self.batches:
            source = self._datasource(engine)
            if engine == "pandas":
                definition = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("all")
                self.batches[key] = definition.get_batch(
                    batch_parameters={"dataframe": pandas_frame(self.tables[table])}
                )
            else:
                definition = source.add_table_asset(table, table_name=table).add_batch_definition_whole_table(
                    "all"
                )
                self.batches[key] = definition.get_batch()
        return self.batches[key]

    def run(self, case: Case, engine: str = "duckdb") -> Observed:
        """The case validated on one engine."""
        return run(case, self.batch(engine, case.table))

    def close(self) -> None:
        """Dispose of every engine's connections and GX's global reference to the context."""
        from pipelines.stages.gx_suite import release

        for name, source in self.datasources.items():
            if name != "pandas":
                source.get_engine().dispose()
        release(self.context, self.datasources["duckdb"])
