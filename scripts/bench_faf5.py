"""Peak memory of a FAF5 refresh as the file grows: the streaming claim, measured.

    .venv/bin/python scripts/bench_faf5.py                      # 2,000,000 and 4,000,000 records
    .venv/bin/python scripts/bench_faf5.py --rows 200 --rows 400 --out /tmp/faf5.json   # a smoke run

For each size, the FAF5 regional zip is generated once (cached, see pipelines/faf5_generate.py)
and served by a replay server in this process; the refresh runs as ``scdx refresh
faf5_regional_flows --replay-url ...`` in a child process (extract, land, normalize,
stage, validate, publish, in a fresh data directory) under ``/usr/bin/time -v``, whose "Maximum
resident set size" is the peak RSS reported. With ``--per-task`` each Airflow task body
(pipelines.orchestration.tasks: extract_and_land, normalize_and_stage, validate, publish) also runs in its own
measured child, as the scheduler runs them. Generating the files is not measured: it is the
agency's side. Figures go to a JSON file and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from pipelines.replay import faf5_generate  # noqa: E402
from pipelines.replay.server import ReplayServer  # noqa: E402

DATASET = "faf5_regional_flows"
TIME = Path("/usr/bin/time")
SCDX = Path(sys.executable).parent / "scdx"
MAX_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
TASKS = ("extract_and_land", "normalize_and_stage", "validate", "publish")
TASK_CODE = """
import json, os, sys
from pipelines.orchestration import tasks
state_file, task = sys.argv[1], sys.argv[2]
if task == "extract_and_land":
    state = tasks.extract_and_land({dataset!r})
else:
    state = getattr(tasks, task)(json.loads(open(state_file).read()))
open(state_file, "w").write(json.dumps(state, default=str))
sys.stdout.flush()
os._exit(0)
"""


def measured(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``command``; its wall time, exit status and peak RSS (MiB), from /usr/bin/time -v or wait4."""
    started = time.monotonic()
    if TIME.exists():
        result = subprocess.run([str(TIME), "-v", *command], env=env, capture_output=True, text=True)
        match = MAX_RSS.search(result.stderr)
        peak_kib = int(match.group(1)) if match else 0
        code, tail = result.returncode, (result.stdout + result.stderr)[-2000:]
    else:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output = process.stdout.read() if process.stdout else b""
        _, status, usage = os.wait4(process.pid, 0)
        peak_kib, code = usage.ru_maxrss, os.waitstatus_to_exitcode(status)
        tail = output.decode(errors="replace")[-2000:]
    return {
        "seconds": round(time.monotonic() - started, 1),
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "exit_code": code,
        "tail": "" if code == 0 else tail,
    }


def published_rows(data_dir: Path) -> int:
    import duckdb

    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        row = con.execute(f"SELECT count(*) FROM curated.{DATASET}").fetchone()
    return int(row[0]) if row else 0


def bench_size(rows: int, workdir: Path, server: ReplayServer, per_task: bool) -> dict[str, Any]:
    """Generate (once) and refresh the file of ``rows`` records; the figures of that size."""
    generated = time.monotonic()
    zip_path = faf5_generate.cached_faf5_zip(rows)  # the file the replay server will serve
    figures: dict[str, Any] = {
        "records": rows,
        "zip_bytes": zip_path.stat().st_size,
        "generate_seconds": round(time.monotonic() - generated, 1),
    }
    os.environ[faf5_generate.ROWS_ENV] = str(rows)  # what the replay server (this process) serves
    env = {
        **os.environ,
        "SCDX_HTTP_MAX_RESPONSE_BYTES": str(4 * 1024**3),
        "SCDX_HTTP_READ_TIMEOUT": "600",
        "COLUMNS": "200",
    }
    data_dir = workdir / f"data-{rows}"
    shutil.rmtree(data_dir, ignore_errors=True)
    command = [
        str(SCDX),
        "refresh",
        DATASET,
        "--replay-url",
        server.url,
        "--data-dir",
        str(data_dir),
    ]
    figures["refresh"] = measured(command, env)
    if figures["refresh"]["exit_code"] == 0:
        figures["rows_published"] = published_rows(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
    if per_task:
        task_env = {**env, "SCDX_DATA_DIR": str(data_dir), "SCDX_REPLAY_URL": server.url}
        state = workdir / f"state-{rows}.json"
        figures["tasks"] = {}
        for task in TASKS:
            code = TASK_CODE.format(dataset=DATASET)
            figures["tasks"][task] = measured([sys.executable, "-c", code, str(state), task], task_env)
            if figures["tasks"][task]["exit_code"] != 0:
                break
        state.unlink(missing_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, action="append", help="FAF5 records (repeat for sizes)")
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / "bench-results" / "faf5")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench-results" / "faf5.json")
    parser.add_argument("--per-task", action="store_true", help="also measure each Airflow task body")
    args = parser.parse_args()
    sizes = sorted(args.rows or [2_000_000, 4_000_000])
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SCDX_CACHE_DIR", str(workdir / "cache"))
    results: dict[str, Any] = {"dataset": DATASET, "sizes": []}
    with ReplayServer(PROJECT_ROOT / "recordings") as server:
        for rows in sizes:
            results["sizes"].append(bench_size(rows, workdir, server, args.per_task))
    ok = [s for s in results["sizes"] if s["refresh"]["exit_code"] == 0]
    if len(ok) >= 2:
        first, last = ok[0], ok[-1]
        results["peak_ratio"] = round(last["refresh"]["peak_rss_mb"] / first["refresh"]["peak_rss_mb"], 3)
        results["rows_ratio"] = round(last["records"] / first["records"], 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'records':>12} {'zip MB':>8} {'rows published':>15} {'seconds':>8} {'peak RSS MiB':>13}")
    for s in results["sizes"]:
        r = s["refresh"]
        print(
            f"{s['records']:>12,} {s['zip_bytes'] / 1e6:>8.0f} {s.get('rows_published', 0):>15,} "
            f"{r['seconds']:>8.1f} {r['peak_rss_mb']:>13.0f}" + ("" if r["exit_code"] == 0 else "  FAILED")
        )
        for task, t in s.get("tasks", {}).items():
            print(f"{'':>12} {task:>24} {t['seconds']:>8.1f} {t['peak_rss_mb']:>13.0f}")
    if "peak_ratio" in results:
        print(f"peak RSS ratio {results['peak_ratio']} for {results['rows_ratio']}x the records")
    print(f"figures written to {args.out}")
    failed = [s for s in results["sizes"] if s["refresh"]["exit_code"] != 0]
    for s in failed:
        print(f"{s['records']:,} records failed:\n{s['refresh']['tail']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
