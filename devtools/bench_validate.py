"""``python -m devtools bench validate``: validation of one staged batch, scdx's dialect against its old reflection.

GX reads a batch's column types through SQLAlchemy's reflection. Until issue 25 the dialect
reflected through duckdb_engine's PostgreSQL ``pg_catalog`` queries, which DuckDB cannot bind, so
each validation ran them, saw them fail and fell back to reading a row for the column names. Now
it reflects from DuckDB's catalog. This bench stages the bench's Census-shaped input once (the
pipeline's own land, normalize and stage, cached by size), then validates it round after round,
alternately through the baseline (:class:`pipelines.stages.gx_duckdb.TransactionlessDuckDBDialect`,
the same dialect with the old reflection) and through scdx's, each in a fresh child process with
GX already imported, timing ``validate()`` alone and counting the statements that failed, then
timing the column lookup GX makes (the part of a validation the change touches) on its own. Each
ratio is that round's scdx time over its baseline time (wall, and CPU of all threads, which other
processes on the machine move less); the reported ratio is their median.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BASELINE_SCHEME = "scdx_duckdb_pg_catalog"
VARIANTS = ("baseline", "scdx")
RUN_ID = "bench-validate"


def stage_input(rows: int, workdir: Path) -> tuple[Path, Path]:
    """The bench's input, staged once per size and contract; (schemas directory, data directory)."""
    import hashlib

    from devtools.bench import DATASET, bench_schemas, generate

    inputs = generate(workdir, rows)
    months = json.loads((inputs / "meta.json").read_text())["months"]
    fresh = bench_schemas(workdir / "validate-schemas", months)
    # The staged batch is the contract's: a changed contract (or shared types) stages again.
    digest = hashlib.sha256()
    for path in sorted(p for p in fresh.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(fresh)).encode() + b"\0" + path.read_bytes())
    target = workdir / f"validate-input-{rows}"
    if (target / "DONE").exists() and (target / "DONE").read_text() == digest.hexdigest():
        return target / "schemas", target / "data"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    schemas = shutil.copytree(fresh, target / "schemas")
    from pipelines.contracts import load_registry
    from pipelines.stages.land import land_file
    from pipelines.stages.normalize import normalize
    from pipelines.stages.stage import stage
    from pipelines.store.layout import Layout

    registry = load_registry(schemas)
    contract = registry.get(DATASET)
    layout = Layout(target / "data")
    landed = land_file(inputs / "input.csv", DATASET, RUN_ID, layout)
    staged = stage(normalize(landed, contract, registry), contract, registry, RUN_ID, layout)
    # Only the staged Parquet is validated; the landed copy of the input is not needed again.
    shutil.rmtree(layout.raw_dir(DATASET, RUN_ID), ignore_errors=True)
    if staged.rows != rows:
        raise RuntimeError(f"staged {staged.rows} rows of {rows}")
    (target / "DONE").write_text(digest.hexdigest())
    return schemas, target / "data"


def _child(variant: str, schemas: Path, data: Path, scratch: Path) -> dict[str, Any]:
    """One validation in a fresh process: its seconds, statements, failed statements, outcome."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.bench_validate",
            "run",
            variant,
            str(schemas),
            str(data),
            str(scratch),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"validation ({variant}) failed: {done.stderr[-2000:]}")
    figure: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figure


def run_validate_bench(rows: int, workdir: Path, rounds: int = 3) -> dict[str, Any]:
    """Each round validates the staged batch through the baseline and through scdx's dialect.

    The order alternates between rounds (the machine's speed drifts within minutes); each ratio
    compares the two runs of one round.
    """
    from devtools.bench import code_version

    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    workdir.mkdir(parents=True, exist_ok=True)
    schemas, data = stage_input(rows, workdir)
    figures: list[dict[str, Any]] = []
    ratios: list[float] = []
    saved: list[float] = []
    cpu_ratios: list[float] = []
    for number in range(1, rounds + 1):
        order = VARIANTS if number % 2 else VARIANTS[::-1]
        by_variant = {}
        for variant in order:
            scratch = workdir / f"validate-scratch-{variant}"
            shutil.rmtree(scratch, ignore_errors=True)
            figure = {"variant": variant, "round_number": number, **_child(variant, schemas, data, scratch)}
            shutil.rmtree(scratch, ignore_errors=True)
            figures.append(figure)
            by_variant[variant] = figure
        baseline, scdx = by_variant["baseline"]["seconds"], by_variant["scdx"]["seconds"]
        ratios.append(round(scdx / baseline, 3))
        saved.append(round(baseline - scdx, 3))
        cpu_ratios.append(round(by_variant["scdx"]["cpu_seconds"] / by_variant["baseline"]["cpu_seconds"], 3))
    return {
        "rows": rows,
        "rounds": rounds,
        "started_at": started_at,
        "code": code_version(),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "figures": figures,
        "ratio_scdx_to_baseline": statistics.median(ratios),
        "ratios_by_round": ratios,
        "cpu_ratio_scdx_to_baseline": statistics.median(cpu_ratios),
        "cpu_ratios_by_round": cpu_ratios,
        "seconds_saved": statistics.median(saved),
        "seconds_saved_by_round": saved,
        "lookup_ms": {
            v: statistics.median(f["lookup_ms"] for f in figures if f["variant"] == v) for v in VARIANTS
        },
    }


def _validate_once(variant: str, schemas: Path, data: Path, scratch: Path) -> dict[str, Any]:
    import time

    from sqlalchemy import event
    from sqlalchemy.dialects import registry as dialects
    from sqlalchemy.engine import Engine

    from devtools.bench import DATASET
    from pipelines.contracts import load_registry
    from pipelines.stages.gx_suite import import_gx
    from pipelines.stages.stage import open_staged
    from pipelines.stages.validate import validate
    from pipelines.store.layout import Layout

    import_gx()  # GX's import is not what is measured
    dialects.register(BASELINE_SCHEME, "pipelines.stages.gx_duckdb", "TransactionlessDuckDBDialect")
    registry = load_registry(schemas)
    contract = registry.get(DATASET)
    staged = open_staged(DATASET, RUN_ID, Layout(data))
    sent: list[str] = []
    succeeded: list[str] = []
    event.listen(Engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    event.listen(Engine, "after_cursor_execute", lambda *args: succeeded.append(args[2]))
    scheme = BASELINE_SCHEME if variant == "baseline" else None
    started, cpu_started = time.perf_counter(), time.process_time()
    report = validate(staged, contract, registry, Layout(scratch), dialect=scheme)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "seconds": round(seconds, 3),
        # CPU time of every thread: less moved than wall time by other processes on the machine.
        "cpu_seconds": round(cpu_seconds, 3),
        "rows": staged.rows,
        "statements": len(sent),
        "failed_statements": len(sent) - len(succeeded),
        "catalog_statements": sum(1 for s in sent if any(c in s for c in CATALOG)),
        "lookup_ms": _lookup_ms(scheme or "scdx_duckdb", staged.files, scratch),
        "outcome": report.outcome,
        "passed": report.passed,
    }


CATALOG = ("pg_catalog.", "duckdb_columns()", "duckdb_constraints()")  # reflection's statements


def _lookup_ms(scheme: str, files: Sequence[Path], scratch: Path, repeats: int = 15) -> float:
    """Median milliseconds of one lookup of the batch's columns as GX makes it.

    GX asks a fresh inspector for the primary key and the columns and, when reflection fails,
    reads one row for the column names (``get_sqlalchemy_column_metadata``), over the same kind
    of view validate() makes.
    """
    import time

    import duckdb
    import sqlalchemy as sa

    database = scratch / "lookup.duckdb"
    with duckdb.connect(str(database)) as con:
        paths = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
        con.execute(f"CREATE VIEW batch AS SELECT * FROM read_parquet([{paths}])")
    engine = sa.create_engine(f"{scheme}:///{database}")
    times = []
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            inspector = sa.inspect(engine)
            with contextlib.suppress(sa.exc.ProgrammingError):
                inspector.get_pk_constraint("batch")
            try:
                inspector.get_columns("batch")
            except sa.exc.ProgrammingError:
                with engine.connect() as connection:
                    connection.execute(sa.select(sa.text("*")).select_from(sa.table("batch")).limit(1)).keys()
            times.append(time.perf_counter() - started)
    finally:
        engine.dispose()
    return round(statistics.median(times) * 1000, 1)


def main(argv: list[str]) -> None:
    """Child entry point: ``python -m devtools.bench_validate run <variant> <schemas> <data> <scratch>``."""
    if argv[:1] == ["run"]:
        variant, schemas, data, scratch = argv[1:5]
        print(json.dumps(_validate_once(variant, Path(schemas), Path(data), Path(scratch))))
        sys.stdout.flush()
        os._exit(0)  # skip DuckDB 2.0's leak report at interpreter shutdown (see pipelines/cli.py)


if __name__ == "__main__":
    main(sys.argv[1:])
