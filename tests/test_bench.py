"""`python -m devtools bench` at a tiny size: every approach runs on the same input and the ratios are reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

SCDX = str(Path(sys.executable).parent / "scdx")
# The benches are developer tooling (devtools/), run from the checkout.
DEVTOOLS = [sys.executable, "-m", "devtools"]


def devtools(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m devtools ARGS`` at a fixed width (rich wraps at the terminal's); must succeed."""
    result = subprocess.run(
        [*DEVTOOLS, *args], env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_bench_smoke_run_measures_floor_pandas_and_scdx_on_both_forms_and_reports_ratios(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bench.json"
    result = devtools(
        "bench",
        "--rows",
        "20000",
        "--no-dlt",
        "--no-demo",
        "--rounds",
        "2",
        "--out",
        str(out),
        "--workdir",
        str(tmp_path / "w"),
    )
    figures = json.loads(out.read_text())
    by = {(f["approach"], f["form"], f["round_number"]): f for f in figures["figures"]}
    # Every approach ran once per round on each form; dlt was left out (--no-dlt).
    assert set(by) == {
        (a, form, n) for a in ("floor", "scdx", "pandas") for form in ("json", "csv") for n in (1, 2)
    } | {("scdx unchanged", "json", n) for n in (1, 2)}
    for figure in by.values():
        # Every approach loaded every generated row, in a child process whose peak RSS was read.
        assert figure["ok"], figure["note"]
        assert figure["rows"] == 20000
        assert figure["seconds"] > 0 and figure["peak_rss_mb"] > 0
    ratios, each = figures["ratios"], figures["ratios_by_round"]

    def seconds(approach: str, form: str, n: int) -> float:
        return float(by[(approach, form, n)]["seconds"])

    for form in ("json", "csv"):
        # Each round's ratio compares the runs of that round; the reported ratio is their median.
        expected = [seconds("scdx", form, n) / seconds("floor", form, n) for n in (1, 2)]
        assert each[f"scdx/floor {form}"] == pytest.approx(expected, abs=0.01)
        assert ratios[f"scdx/floor {form}"] == pytest.approx(sum(each[f"scdx/floor {form}"]) / 2, abs=0.01)
        # pandas is compared with the scdx run of its own round, the same way.
        pandas_ratios = [seconds("pandas", form, n) / seconds("scdx", form, n) for n in (1, 2)]
        assert each[f"pandas/scdx {form}"] == pytest.approx(pandas_ratios, abs=0.01)
        assert ratios[f"pandas/scdx {form}"] == pytest.approx(sum(each[f"pandas/scdx {form}"]) / 2, abs=0.01)
        assert ratios[f"dlt/scdx {form}"] is None
    # The nightly re-run on the same bytes stops at "unchanged" (checked inside the bench).
    unchanged = [seconds("scdx unchanged", "json", n) / seconds("scdx", "json", n) for n in (1, 2)]
    assert each["scdx unchanged/scdx json"] == pytest.approx(unchanged, abs=0.01)
    assert ratios["scdx unchanged/scdx json"] == pytest.approx(
        sum(each["scdx unchanged/scdx json"]) / 2, abs=0.01
    )
    # What releases cost: a month published into the whole table against into that month alone
    # (the publish step of real refreshes), and analysts' queries on the release against tables.
    releases = figures["releases"]
    cost = releases["publish_cost"]
    assert len(cost["into_full_s"]) == len(cost["into_month_only_s"]) == 2
    assert cost["ratio"] == pytest.approx(sum(cost["ratios_by_round"]) / 2, abs=0.01)
    for compared in ("bench_queries", "bench_queries_materialized"):
        queries = releases[compared]["queries"]
        assert len(queries) == 5 and all(q["release_ms"] > 0 and q["tables_ms"] > 0 for q in queries.values())
    # The release is materialized once the refresh is done: that took time, and made a copy.
    assert releases["materialize"]["seconds"] > 0 and releases["materialize"]["mib"] > 0
    assert ratios["materialize/scdx json"] is not None and ratios["materialize/scdx json"] > 0
    assert ratios["publish into 10M rows/into one month"] == cost["ratio"]
    assert releases["demo_queries"] is None
    assert "scdx/floor json" in result.stdout and "median of rounds" in result.stdout
    assert "peak RSS MiB" in result.stdout
    # Which code made the figures, and when: benches are compared across days.
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parents[1], capture_output=True, text=True
    ).stdout.strip()
    assert figures["code"]["commit"] == (head or None)
    assert isinstance(figures["code"]["uncommitted_changes"], bool) or not head
    assert datetime.fromisoformat(figures["started_at"]).tzinfo is not None


def test_bench_names_the_commit_it_measured_and_whether_tracked_files_differed(tmp_path: Path) -> None:
    from devtools.bench import code_version

    # Outside a git checkout (an installed package, a container) the figures say so.
    assert code_version(tmp_path) == {"commit": None, "uncommitted_changes": None}

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True)
        return done.stdout.strip()

    git("init", "-q")
    (tmp_path / "refresh.py").write_text("one\n")
    git("add", "refresh.py")
    git("-c", "user.email=bench@example.org", "-c", "user.name=bench", "commit", "-qm", "one")
    head = git("rev-parse", "HEAD")
    assert code_version(tmp_path) == {"commit": head, "uncommitted_changes": False}
    (tmp_path / "scratch.txt").write_text("not tracked, not the code measured\n")
    assert code_version(tmp_path) == {"commit": head, "uncommitted_changes": False}
    (tmp_path / "refresh.py").write_text("two\n")
    assert code_version(tmp_path) == {"commit": head, "uncommitted_changes": True}


def test_bench_validate_times_validation_through_scdx_dialect_against_its_old_reflection(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bench-validate.json"
    result = devtools(
        "bench",
        "validate",
        "--rows",
        "20000",
        "--rounds",
        "2",
        "--out",
        str(out),
        "--workdir",
        str(tmp_path / "w"),
    )
    figures = json.loads(out.read_text())
    # The order alternates between rounds, so neither dialect always runs first.
    assert [(f["variant"], f["round_number"]) for f in figures["figures"]] == [
        ("baseline", 1),
        ("scdx", 1),
        ("scdx", 2),
        ("baseline", 2),
    ]
    by = {(f["variant"], f["round_number"]): f for f in figures["figures"]}
    for figure in by.values():
        assert figure["passed"] and figure["rows"] == 20000
        assert figure["seconds"] > 0 and figure["cpu_seconds"] > 0 and figure["lookup_ms"] > 0
    # The baseline's reflection fails on DuckDB; scdx's sends no failing statement, and fewer.
    for n in (1, 2):
        assert by[("baseline", n)]["failed_statements"] > 0
        assert by[("scdx", n)]["failed_statements"] == 0
        assert by[("scdx", n)]["statements"] < by[("baseline", n)]["statements"]
    each = [by[("scdx", n)]["seconds"] / by[("baseline", n)]["seconds"] for n in (1, 2)]
    assert figures["ratios_by_round"] == pytest.approx(each, abs=0.01)
    assert figures["ratio_scdx_to_baseline"] == pytest.approx(sum(each) / 2, abs=0.01)
    cpu = [by[("scdx", n)]["cpu_seconds"] / by[("baseline", n)]["cpu_seconds"] for n in (1, 2)]
    assert figures["cpu_ratios_by_round"] == pytest.approx(cpu, abs=0.01)
    assert "scdx/baseline" in result.stdout and "column lookup" in result.stdout


def test_bench_iceberg_publishes_a_month_into_a_full_and_an_empty_table_and_reports_the_ratio(
    tmp_path: Path,
) -> None:
    out = tmp_path / "iceberg.json"
    result = devtools("bench", "iceberg", "--rows", "24000", "--repeats", "1", "--out", str(out))
    figures = json.loads(out.read_text())
    assert figures["table_rows"] == 24000 and figures["batch_rows"] == 200  # 120 months of 200 rows
    assert figures["median_full_s"] > 0 and figures["median_empty_s"] > 0
    assert figures["ratio_full_to_empty"] == round(figures["median_full_s"] / figures["median_empty_s"], 2)
    assert f"ratio {figures['ratio_full_to_empty']:.2f}x" in result.stdout
