"""``python -m devtools bench dag-parse``: how long the scheduler spends parsing the project's DAG files.

Measured in a child process after Airflow itself is imported (that cost is the scheduler's, not
ours), against a baseline folder holding one trivial TaskFlow DAG parsed the same way, so the
ratio shows what the contract-driven factory adds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

BASELINE_DAG = """
import pendulum
from airflow.sdk import dag, task


@dag(dag_id="baseline", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def baseline():
    @task
    def one():
        return 1

    one()


baseline()
"""

_MEASURE = """
import json, statistics, sys, time
from airflow.dag_processing.dagbag import DagBag
folders, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
out = {}
for name, folder in folders.items():
    DagBag(dag_folder=folder)  # warm: first parse also imports what the files import
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        bag = DagBag(dag_folder=folder)
        times.append(time.perf_counter() - started)
    out[name] = {"median_s": statistics.median(times), "min_s": min(times), "dags": len(bag.dags),
                 "import_errors": len(bag.import_errors)}
print(json.dumps(out))
"""


def dag_parse_bench(dags_dir: Path, repeats: int = 5, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Parse times of the project's DAG folder and of a one-DAG baseline, with their ratio."""
    with tempfile.TemporaryDirectory() as baseline_dir:
        (Path(baseline_dir) / "baseline_dag.py").write_text(textwrap.dedent(BASELINE_DAG))
        folders = {"project": str(dags_dir), "baseline": baseline_dir}
        result = subprocess.run(
            [sys.executable, "-c", _MEASURE, json.dumps(folders), str(repeats)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"DAG parse benchmark failed: {result.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["ratio_project_to_baseline"] = figures["project"]["median_s"] / figures["baseline"]["median_s"]
    return figures
