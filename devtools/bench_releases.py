"""Bench figures of releases (part of ``python -m devtools bench``): what a publish costs against the size of the
database, and what views over Parquet cost analysts against DuckDB tables.

- publish cost: a one-month batch published into a release holding the 10M-row bench table,
  against the same month published into one holding only that month; the publish step alone,
  timed inside a real refresh (extract, land, normalize, stage and validate run untimed first);
- analyst queries: a few typical queries on a release as published (views over Parquet) and on
  its materialized copy (``scdx publish materialize``), each against the same rows as DuckDB
  tables in one database file (how every release was stored before): on the bench table, and on
  the demo's whole database with the queries of docs/analysts.md.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from devtools import PROJECT_ROOT

BENCH_QUERIES = {
    "top headings of a partner, last 12 months": (
        "SELECT hs_code, sum(general_value_usd) AS usd FROM {t} WHERE country_code = '5700' "
        "AND period > (SELECT max(period) FROM {t}) - INTERVAL 12 MONTH GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
    ),
    "monthly totals": "SELECT period, count(*), sum(general_value_usd) FROM {t} GROUP BY 1 ORDER BY 1",
    "partners of one heading": (
        "SELECT country_name, sum(general_value_usd) AS usd FROM {t} WHERE hs_code LIKE '8507%' "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
    ),
    # The key of a row in the middle of the table, written out as an analyst would.
    "one row by its key": "SELECT * FROM {t} WHERE period = {period} AND hs_code = {hs_code} AND country_code = {country}",
    "distinct headings": "SELECT count(DISTINCT hs_code) FROM {t}",
}
REPEATS = 5
MIN_SECONDS = 0.3
MAX_REPEATS = 300


def bench_queries(release: Path, table: str) -> dict[str, str]:
    """BENCH_QUERIES on ``table``, the lookup's key taken from a row in the middle of the table."""
    import duckdb

    from pipelines.common.sql import quote_literal

    with duckdb.connect(str(release), read_only=True) as con:
        (rows,) = con.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
        key = con.execute(
            f"SELECT period::VARCHAR, hs_code, country_code FROM {table} LIMIT 1 OFFSET {int(rows) // 2}"
        ).fetchone() or ("2000-01-01", "", "")
    period, hs_code, country = key
    return {
        name: sql.format(
            t=table,
            period=f"DATE {quote_literal(period)}",
            hs_code=quote_literal(hs_code),
            country=quote_literal(country),
        )
        for name, sql in BENCH_QUERIES.items()
    }


def _best(con: Any, sql: str) -> float:
    """The query's best time over at least REPEATS runs and MIN_SECONDS of running: a query of a
    millisecond is timed a few hundred times, so one slow run does not decide its ratio."""
    best, runs, spent = float("inf"), 0, 0.0
    while runs < REPEATS or (spent < MIN_SECONDS and runs < MAX_REPEATS):
        started = time.perf_counter()
        con.execute(sql).fetchall()
        took = time.perf_counter() - started
        best, runs, spent = min(best, took), runs + 1, spent + took
    return best


def native_copy(release: Path, target: Path, schemas: tuple[str, ...] = ("curated", "marts", "meta")) -> Path:
    """The release's tables and views as DuckDB tables in one file: how a release was stored before."""
    import duckdb

    target.unlink(missing_ok=True)
    with duckdb.connect(str(target)) as con:
        con.execute(f"ATTACH '{release}' AS release (READ_ONLY)")
        relations = con.execute(
            "SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = 'release' AND NOT internal "
            "UNION ALL SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'release'"
        ).fetchall()
        for schema, name in relations:
            if schema in schemas:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                con.execute(f'CREATE TABLE "{schema}"."{name}" AS SELECT * FROM release."{schema}"."{name}"')
        con.execute("DETACH release")
        con.execute("CHECKPOINT")
    return target


def compare_queries(release: Path, native: Path, queries: dict[str, str]) -> dict[str, Any]:
    """Each query's best time on the release and on its native copy, and their ratio."""
    import duckdb

    out: dict[str, Any] = {}
    with (
        duckdb.connect(str(release), read_only=True) as on_release,
        duckdb.connect(str(native), read_only=True) as on_native,
    ):
        for name, sql in queries.items():
            views, tables = _best(on_release, sql), _best(on_native, sql)
            out[name] = {
                "release_ms": round(views * 1000, 2),
                "tables_ms": round(tables * 1000, 2),
                "ratio": round(views / tables, 2) if tables else None,
            }
    ratios = [q["ratio"] for q in out.values() if q["ratio"] is not None]
    return {
        "queries": out,
        "median_ratio": round(statistics.median(ratios), 2) if ratios else None,
        "max_ratio": max(ratios) if ratios else None,
    }


def analyst_guide_queries() -> dict[str, str]:
    """The SQL blocks of docs/analysts.md, by their first comment line (or their number)."""
    text = (PROJECT_ROOT / "docs" / "analysts.md").read_text()
    queries = {}
    for number, body in enumerate(re.findall(r"```sql\n(.*?)```", text, re.DOTALL), start=1):
        first = body.strip().splitlines()[0]
        name = first.lstrip("- ").strip() if first.startswith("--") else f"query {number}"
        queries[name[:60]] = body
    return queries


def _modified_month(pages: Path, month: str, target: Path, delta: int) -> Path:
    """A copy of the month's page with every general value raised by ``delta`` (a revised month)."""
    target.mkdir(parents=True, exist_ok=True)
    rows = json.loads((pages / f"{month}.json").read_bytes())
    at = rows[0].index("GEN_VAL_MO")
    for row in rows[1:]:
        row[at] = str(int(row[at]) + delta)
    (target / f"{month}.json").write_text("[" + ",\n".join(json.dumps(r) for r in rows) + "]")
    return target


def _timed_publish(data_dir: Path, schemas: Path, dataset: str, month: str, pages: Path) -> float:
    """One real refresh of ``month`` from ``pages`` into ``data_dir``; the seconds of its publish step."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from pipelines.contracts import load_registry\n"
        "from pipelines.orchestration.guards import start_run\n"
        "from pipelines.orchestration.steps import step_extract_land, step_normalize_stage, step_publish, "
        "step_validate\n"
        "from pipelines.store.history import begin_run\n"
        "from pipelines.store.layout import Layout\n"
        "from pipelines.common.settings import load_settings\n"
        "from pipelines.sources.window import Window, parse_month\n"
        "data_dir, schemas, dataset, month, url = sys.argv[1:6]\n"
        "settings = load_settings().with_overrides(data_dir=Path(data_dir), schemas_dir=Path(schemas))\n"
        "registry = load_registry(settings.schemas_dir)\n"
        "contract = registry.get(dataset)\n"
        "run = start_run(contract)\n"
        "begin_run(run, contract, registry, Layout(settings.data_dir))\n"
        "window = Window(parse_month(month), parse_month(month))\n"
        "landed = step_extract_land(run, contract, registry, settings, url, window=window)\n"
        "staged = step_normalize_stage(run, landed, contract, registry, settings, force=True)\n"
        "step_validate(run, staged, contract, registry, settings)\n"
        "started = time.perf_counter()\n"
        "step_publish(run, staged, contract, registry, settings)\n"
        "print(time.perf_counter() - started, run.status, flush=True)\n"
    )
    from devtools.bench import _replay_process

    server, url = _replay_process(pages)
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(data_dir), str(schemas), dataset, month, url],
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"the timed publish failed: {done.stderr[-1500:]}")
    seconds, status = done.stdout.strip().splitlines()[-1].split()
    if status != "published":
        raise RuntimeError(f"the timed publish ended {status}, not published")
    return float(seconds)


def publish_cost(
    full: Path, work: Path, inputs: Path, months: list[str], schemas: Path, dataset: str, rounds: int
) -> dict[str, Any]:
    """Publishing one revised month into ``full`` (the whole bench table) against into a data
    directory holding only that month, alternating, ``rounds`` times each."""
    month = months[-1]
    small = work / "publish-cost-small"
    shutil.rmtree(small, ignore_errors=True)
    pages = inputs / "pages"
    # The small database: that month alone (and the reference lists), published once untimed.
    _timed_publish(small, schemas, dataset, month, _modified_month(pages, month, work / "month-0", 0))
    into_full: list[float] = []
    into_small: list[float] = []
    for number in range(1, rounds + 1):
        revised = _modified_month(pages, month, work / f"month-{number}", number)
        into_full.append(_timed_publish(full, schemas, dataset, month, revised))
        into_small.append(_timed_publish(small, schemas, dataset, month, revised))
    shutil.rmtree(small, ignore_errors=True)
    ratios = [round(f / s, 2) for f, s in zip(into_full, into_small, strict=True)]
    return {
        "month": month,
        "into_full_s": [round(s, 3) for s in into_full],
        "into_month_only_s": [round(s, 3) for s in into_small],
        "ratio": round(statistics.median(ratios), 2),
        "ratios_by_round": ratios,
    }


def demo_queries(work: Path) -> dict[str, Any]:
    """``scdx demo`` once (its last step materializes the release), then docs/analysts.md's
    queries on the release as published (views over Parquet) and on its materialized copy, each
    against a native copy."""
    import os

    data_dir = work / "demo-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    scdx = str(Path(sys.executable).parent / "scdx")
    done = subprocess.run(
        [scdx, "demo"],
        env={**os.environ, "SCDX_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scdx demo failed: {done.stderr[-1500:]}")
    copy = (data_dir / "scdx.duckdb").resolve()
    if not copy.name.endswith(".tables.duckdb"):
        raise RuntimeError(f"scdx demo left {copy.name} current, not a materialized copy")
    views = copy.with_name(copy.name.replace(".tables.duckdb", ".duckdb"))
    native = native_copy(views, work / "demo-native.duckdb")
    queries = analyst_guide_queries()
    try:
        return {
            "views": compare_queries(views, native, queries),
            "materialized": compare_queries(copy, native, queries),
        }
    finally:
        native.unlink(missing_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)
