"""`scdx bench` at a tiny size: every approach runs on the same input and the ratios are reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCDX = str(Path(sys.executable).parent / "scdx")


def test_bench_smoke_run_measures_floor_pandas_and_scdx_on_both_forms_and_reports_ratios(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [SCDX, "bench", "--rows", "20000", "--no-dlt", "--out", str(out), "--workdir", str(tmp_path / "w")],
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    by = {(f["approach"], f["form"]): f for f in figures["figures"]}
    assert set(by) == {(a, form) for a in ("floor", "pandas", "scdx") for form in ("json", "csv")} | {
        ("scdx unchanged", "json")
    }
    for figure in by.values():
        # Every approach loaded every generated row, in a child process whose peak RSS was read.
        assert figure["ok"], figure["note"]
        assert figure["rows"] == 20000
        assert figure["seconds"] > 0 and figure["peak_rss_mb"] > 0
    ratios = figures["ratios"]
    for form in ("json", "csv"):
        expected = by[("scdx", form)]["seconds"] / by[("floor", form)]["seconds"]
        assert abs(ratios[f"scdx/floor {form}"] - expected) < 0.01
        assert ratios[f"pandas/scdx {form}"] is not None
    # The nightly re-run on the same bytes stops at "unchanged" (checked inside the bench).
    unchanged = by[("scdx unchanged", "json")]["seconds"] / by[("scdx", "json")]["seconds"]
    assert abs(ratios["scdx unchanged/scdx json"] - unchanged) < 0.01
    assert "scdx/floor json" in result.stdout and "peak RSS MiB" in result.stdout
