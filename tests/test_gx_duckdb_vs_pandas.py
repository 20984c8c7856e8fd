"""What GX's own cases do not cover, checked against GX's pandas engine on the same data.

The production path is a DuckDB view over the staged Parquet (pipelines.stages.validate); the same
Parquet, read by pandas, is validated by GX's pandas engine. Row conditions as scdx builds them,
code lists long enough for the dialect's ``IN (SELECT unnest(?))`` rewrite (10,000 values), and
scdx's key-uniqueness query must give the same verdicts and counts on both.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.contracts import CheckSpec, Contract, Registry, check_specs

ROWS = 30_000
CODES = [f"{n:04d}" for n in range(12_000)]  # code-list universe; 10,000 of them are "known"
KNOWN = CODES[:10_000]


def _batch() -> pa.Table:
    """A census-shaped batch: duplicated keys, unknown and null codes, groups, negative values."""
    rng = random.Random(25)
    kinds = ["country"] * 8 + ["group", "total"]
    rows: dict[str, list[Any]] = {
        k: [] for k in ("period", "hs_code", "country_code", "partner_kind", "value", "rank")
    }
    for i in range(ROWS):
        rows["period"].append(date(2020 + i % 5, 1 + i % 12, 1))
        rows["hs_code"].append(f"85{i % 97:02d}")
        rows["country_code"].append(None if i % 1_000 == 7 else rng.choice(CODES))
        rows["partner_kind"].append(rng.choice(kinds))
        rows["value"].append(rng.randint(-50, 10_000_000))
        rows["rank"].append(rng.randint(0, 11_999))
    table = pa.table(rows)
    # Keys that repeat: 40 rows copy an earlier row's key (some twice over).
    copies = [rng.randrange(ROWS) for _ in range(40)]
    extra = table.take(copies + copies[:5])
    return pa.concat_tables([table, extra])


@dataclass
class Engines:
    duckdb: Any
    pandas: Any
    sql: list[str]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    from pipelines.stages.gx_suite import duckdb_datasource, import_gx, release

    import_gx()
    import great_expectations as gx
    import sqlalchemy as sa
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults

    work = tmp_path_factory.mktemp("vs_pandas")
    parquet = work / "part-00000.parquet"
    pq.write_table(_batch(), parquet, compression="zstd")
    database = work / "view.duckdb"
    with duckdb.connect(str(database)) as con:
        # As validate() exposes a staged batch.
        con.execute(f"CREATE VIEW batch AS SELECT * FROM read_parquet(['{parquet}'])")
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    )
    config.progress_bars = {"globally": False}
    config.analytics_enabled = False
    context = gx.get_context(project_config=config, mode="ephemeral")
    source = duckdb_datasource(context, "staged", database)
    sql: list[str] = []

    def seen(*args: Any) -> None:
        sql.append(args[2])

    # GX's execution engine makes its own SQLAlchemy engine: listen on every engine.
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)
    on_duckdb = source.add_table_asset("batch", table_name="batch").add_batch_definition_whole_table("all")
    frame = pq.read_table(parquet).to_pandas()
    on_pandas = (
        context.data_sources.add_pandas("frame")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("all")
    )
    try:
        yield Engines(on_duckdb.get_batch(), on_pandas.get_batch(batch_parameters={"dataframe": frame}), sql)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
        release(context, source)


def _verdicts(engines: Engines, expectation: Any, result_format: str = "COMPLETE") -> tuple[Any, Any]:
    """(DuckDB's, pandas') success and counts, and the unexpected values as a multiset."""
    out = []
    for batch in (engines.duckdb, engines.pandas):
        result = batch.validate(expectation, result_format={"result_format": result_format})
        assert not result.exception_info.get("raised_exception"), result.exception_info
        r = result.result
        values = Counter(str(v) for v in r.get("unexpected_list", []))
        out.append(
            (
                result.success,
                r.get("element_count"),
                r.get("missing_count"),
                r.get("unexpected_count"),
                values,
            )
        )
    return out[0], out[1]


def _built_by_scdx(spec: CheckSpec, contract: Contract) -> Any:
    """The GX expectation scdx builds from a contract's check (pipelines.stages.gx_suite)."""
    from pipelines.stages.gx_suite import suite_expectations

    (expectation,) = suite_expectations([spec], contract)
    return expectation


def test_row_condition_as_scdx_builds_it_selects_the_same_rows_on_duckdb_and_pandas(
    engines: Engines, census: Contract
) -> None:
    for condition in ({"partner_kind": "country"}, {"partner_kind": "group", "hs_code": "8501"}):
        spec = CheckSpec(
            "ExpectColumnValuesToBeInSet",
            {"column": "country_code", "value_set": CODES[:6_000]},
            "blocking",
            "known codes where the condition holds",
            row_condition=condition,
        )
        duck, pandas = _verdicts(engines, _built_by_scdx(spec, census))
        assert duck == pandas
        # The condition kept a part of the rows, some of them with unknown codes.
        assert duck[0] is False and 0 < duck[3] < duck[1] < ROWS
    not_null = CheckSpec(
        "ExpectColumnValuesToNotBeNull",
        {"column": "country_code"},
        "blocking",
        "codes where country",
        row_condition={"partner_kind": "country"},
    )
    duck, pandas = _verdicts(engines, _built_by_scdx(not_null, census), "SUMMARY")
    assert duck[:4] == pandas[:4] and duck[3] > 0


def test_ten_thousand_value_code_lists_go_as_one_list_parameter_and_agree_with_pandas(
    engines: Engines,
) -> None:
    from great_expectations import expectations as gxe

    engines.sql.clear()
    duck, pandas = _verdicts(engines, gxe.ExpectColumnValuesToBeInSet(column="country_code", value_set=KNOWN))
    assert duck == pandas
    # Unknown codes, and only they, are unexpected; NULLs are missing, not unexpected.
    assert duck[0] is False and duck[2] > 0 and duck[3] > 0 and set(duck[4]) <= set(CODES[10_000:])
    excluded = CODES[2_000:12_000]
    duck, pandas = _verdicts(
        engines, gxe.ExpectColumnValuesToNotBeInSet(column="country_code", value_set=excluded)
    )
    assert duck == pandas and duck[3] > 0 and set(duck[4]) <= set(excluded)
    ints = gxe.ExpectColumnValuesToBeInSet(column="rank", value_set=list(range(10_000)))
    duck, pandas = _verdicts(engines, ints)
    assert duck == pandas and duck[3] > 0
    # The rewrite ran: each list went as one parameter, not as 10,000 placeholders.
    assert any("unnest(" in s for s in engines.sql)
    assert max(s.count("$") for s in engines.sql) < 20


def test_scdx_key_uniqueness_query_counts_the_keys_gxs_pandas_compound_uniqueness_finds(
    engines: Engines, census: Contract, registry: Registry
) -> None:
    from great_expectations import expectations as gxe

    # The census key is (period, hs_code, country_code), columns the test batch has too.
    (key,) = [
        s for s in check_specs(census, registry) if "AS copies" in str(s.kwargs.get("unexpected_rows_query"))
    ]
    ours = engines.duckdb.validate(_built_by_scdx(key, census), result_format={"result_format": "SUMMARY"})
    assert not ours.exception_info.get("raised_exception"), ours.exception_info
    theirs = engines.pandas.validate(
        gxe.ExpectCompoundColumnsToBeUnique(column_list=list(census.primary_key)),
        result_format={"result_format": "COMPLETE"},
    )
    duplicated = {tuple(str(v) for v in row.values()) for row in theirs.result["unexpected_list"]}
    # Counted once more, without GX: the keys the batch holds more than once.
    keys = Counter(zip(*(_batch().column(k).to_pylist() for k in census.primary_key), strict=True))
    assert ours.success is theirs.success is False
    assert ours.result["observed_value"] == len(duplicated) == sum(1 for n in keys.values() if n > 1) > 0


@pytest.mark.parametrize(
    "make",
    [
        lambda gxe: gxe.ExpectColumnValuesToMatchRegex(column="country_code", regex=r"^0[0-9]{3}$"),
        lambda gxe: gxe.ExpectColumnValuesToNotMatchRegex(column="hs_code", regex="9$"),
        lambda gxe: gxe.ExpectColumnValuesToBeBetween(column="value", min_value=0),
        lambda gxe: gxe.ExpectColumnValuesToNotBeNull(column="country_code"),
        lambda gxe: gxe.ExpectColumnValuesToBeUnique(column="rank"),
        lambda gxe: gxe.ExpectTableRowCountToBeBetween(min_value=ROWS),
    ],
    ids=["regex", "not-regex", "between", "not-null", "unique", "row-count"],
)
def test_column_checks_over_the_parquet_view_agree_with_pandas(engines: Engines, make: Any) -> None:
    from great_expectations import expectations as gxe

    duck, pandas = _verdicts(engines, make(gxe), "SUMMARY")
    assert duck[:4] == pandas[:4]
