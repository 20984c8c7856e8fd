"""`make demo` end to end, and every query in docs/analysts.md run against the database it builds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from devtools import PROJECT_ROOT
from pipelines.contracts import load_registry

GUIDE = PROJECT_ROOT / "docs" / "analysts.md"
BLOCK = re.compile(r"```(sql|python)\n(.*?)```", re.DOTALL)


@pytest.fixture(scope="module")
def demo(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The demo's data dir and output: every dataset refreshed offline, the marts built (the
    session's one `scdx demo`, tests/conftest.py; these tests only read it)."""
    return demo_run


def _blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(GUIDE.read_text()) if lang == language]


def test_demo_refreshes_every_dataset_offline_and_prints_summary_scorecard_and_battery_imports(
    demo: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    data_dir, result = demo
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for heading in ("dataset", "rows landed", "rows published", "rows quarantined", "validation", "seconds"):
        assert heading in out
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        contracts = {
            c.dataset
            for c in load_registry(PROJECT_ROOT / "schemas").contracts.values()
            if not c.source.inbox
        }
        published = {
            d
            for (d,) in con.execute(
                "SELECT DISTINCT dataset FROM meta.runs WHERE status = 'published'"
            ).fetchall()
        }
        # The demo ends by materializing its release: the marts are DuckDB tables now.
        marts = {
            t
            for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'"
            ).fetchall()
        }
        scorecard_items = con.execute("SELECT count(*) FROM marts.supply_chain_scorecard").fetchone()
    assert published == contracts
    assert {
        "import_concentration",
        "mineral_supply_risk",
        "supply_chain_scorecard",
        "workforce_capacity",
    } <= marts
    assert scorecard_items == (9,)
    assert "census_trade_imports" in out and "1,924" in out
    # The analyst's hand downloads: the three USA Trade Online reports of 16 partners, merged.
    assert out.count("census_trade_imports") >= 4 and "24,681" in out
    # The demo ends with the scorecard and the real concentration of the basket's HS chapters.
    assert "supply_chain_scorecard" in out and "Lithium-ion batteries" in out
    assert "import_concentration" in out and "hs_level = 'HS2'" in out and "Mexico" in out
    assert (data_dir / "scdx.duckdb").is_symlink()


def test_every_sql_example_in_the_analyst_guide_runs_read_only_and_returns_rows(
    demo: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    data_dir, result = demo
    assert result.returncode == 0
    queries = _blocks("sql")
    assert len(queries) >= 10
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        for query in queries:
            if "WHERE disruption" in query:
                # The recorded months are too few for a trailing average: valid, but no rows.
                con.execute(query).fetchall()
                continue
            rows = con.execute(query).fetchall()
            assert rows, f"no rows from the guide's query:\n{query}"


def test_the_python_example_in_the_analyst_guide_runs_two_queries_on_one_connection(
    demo: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    data_dir, _ = demo
    (code,) = _blocks("python")
    assert '"data/scdx.duckdb"' in code and "read_only=True" in code
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=data_dir.parent, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    count, shown = result.stdout.split("\n", 1)
    assert re.fullmatch(r"\(\d+,\)", count) and count != "(0,)"
    # The second query ran on the same connection: the first left nothing pending.
    assert "census_trade_imports" in shown and "last_run" in shown


def test_every_guide_query_gives_the_same_rows_on_the_release_as_on_the_same_tables_stored_in_duckdb(
    demo: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    from devtools.bench_releases import analyst_guide_queries, native_copy

    data_dir, result = demo
    assert result.returncode == 0
    release = (data_dir / "scdx.duckdb").resolve()
    native = native_copy(release, tmp_path / "native.duckdb")
    queries = analyst_guide_queries()
    assert len(queries) == len(_blocks("sql"))
    with (
        duckdb.connect(str(release), read_only=True) as views,
        duckdb.connect(str(native), read_only=True) as tables,
    ):
        for name, query in queries.items():
            ordered = f"SELECT * FROM ({query.strip().rstrip(';')}) ORDER BY ALL"
            assert views.execute(ordered).fetchall() == tables.execute(ordered).fetchall(), name
