"""``python -m devtools bench``: scdx against the floor and the usual alternatives, on the same input, in one run.

The input is Census-trade-shaped (HS10 x country x month, the 8 variables of the imports
contract) and generated deterministically, as the API's JSON pages (array of arrays, header
first, all strings, one page per month) and as one CSV. Each approach runs in its own child
process, one after another; wall time and peak RSS (``ru_maxrss`` of that child, from
``os.wait4``) are measured from outside. With ``rounds``, every approach runs that many times,
one round after another, and each ratio is the median of the rounds' ratios (see ``run_bench``):

- floor: DuckDB alone reads the input, casts, writes zstd Parquet and loads a table;
- pandas: pandas reads, Great Expectations validates with its pandas engine, DuckDB gets the frame;
- dlt: dlt loads Arrow tables into DuckDB (in its own venv, when dlt installs);
- scdx: ``scdx refresh`` through the replay server (JSON pages) / ``scdx ingest-file`` (CSV):
  extract, land, normalize, stage, validate, publish.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from devtools import PROJECT_ROOT

ROWS_PER_PAGE = 50_000
FIRST_MONTH = (2000, 1)
DATASET = "bench_census_trade"
HEADER = [
    "I_COMMODITY",
    "COMM_LVL",
    "I_COMMODITY_SDESC",
    "CTY_CODE",
    "CTY_NAME",
    "GEN_VAL_MO",
    "CON_VAL_MO",
    "COMM_LVL",
    "time",
]
CSV_HEADER = [
    "I_COMMODITY",
    "COMM_LVL",
    "I_COMMODITY_SDESC",
    "CTY_CODE",
    "CTY_NAME",
    "GEN_VAL_MO",
    "CON_VAL_MO",
    "time",
]
SCDX = str(Path(sys.executable).parent / "scdx")


def _months(count: int) -> list[str]:
    year, month = FIRST_MONTH
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return out


def _codes() -> tuple[list[tuple[str, str]], list[str]]:
    with (PROJECT_ROOT / "schemas/codelists/countries.csv").open(encoding="utf-8", newline="") as handle:
        countries = [(r["schedule_c_code"], r["name"].upper()) for r in csv.DictReader(handle)]
    with (PROJECT_ROOT / "schemas/codelists/ev_basket_hs.csv").open(encoding="utf-8", newline="") as handle:
        basket = [r["hs4"] for r in csv.DictReader(handle)]
    return countries, basket


def generate(workdir: Path, rows: int, rows_per_page: int = ROWS_PER_PAGE) -> Path:
    """Write (once; cached by size) the input as JSON pages and as one CSV; return its directory."""
    target = workdir / f"input-{rows}-{rows_per_page}"
    if (target / "DONE").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    (target / "pages").mkdir(parents=True)
    countries, basket = _codes()
    months = _months(math.ceil(rows / rows_per_page))
    remaining = rows
    with (target / "input.csv").open("w", encoding="utf-8", newline="") as csv_out:
        csv_out.write(",".join(CSV_HEADER) + "\n")
        for m, period in enumerate(months):
            count = min(rows_per_page, remaining)
            remaining -= count
            lines, csv_lines = [], []
            for j in range(count):
                code, name = countries[j % len(countries)]
                k = j // len(countries)
                hs10 = f"{basket[k % len(basket)]}{k // len(basket):06d}"
                general = (m * 7919 + j * 104729) % 50_000_000
                consumption = general - general // 50
                values = (hs10, "HS10", f"DESC {hs10[:4]}", code, name, str(general), str(consumption))
                lines.append('["' + '","'.join((*values, "HS10", period)) + '"]')
                csv_lines.append(",".join((*values[:4], f'"{name}"', *values[5:], period)))
            header = '["' + '","'.join(HEADER) + '"]'
            (target / "pages" / f"{period}.json").write_text("[" + ",\n".join([header, *lines]) + "]")
            csv_out.write("\n".join(csv_lines) + "\n")
    (target / "meta.json").write_text(json.dumps({"rows": rows, "months": months}))
    (target / "DONE").touch()
    return target


def bench_schemas(workdir: Path, months: list[str]) -> Path:
    """The project's schemas plus the bench contract: the imports contract at HS10, any heading."""
    schemas = workdir / "schemas"
    shutil.rmtree(schemas, ignore_errors=True)
    schemas.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "schemas" / "types.yaml", schemas)
    shutil.copytree(PROJECT_ROOT / "schemas" / "codelists", schemas / "codelists")
    # Imported here: the floor and pandas children import this module, and their time is measured.
    from pipelines.contracts import load_yaml

    raw = load_yaml((PROJECT_ROOT / "schemas" / "census_trade_imports.yaml").read_text())
    raw["dataset"] = DATASET
    raw["source"]["params"] = {"COMM_LVL": "HS10"}
    raw["source"]["incremental"]["start"] = months[0]
    raw["source"].pop("rate_limit", None)
    for field in raw["fields"]:
        if field["name"] == "hs_code":
            field["type"] = "hs10"
            field.pop("codelist", None)
    raw["checks"]["min_rows"] = 1
    (schemas / f"{DATASET}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return schemas


# --- the approaches (each runs in a child: `python -m devtools.bench run <approach> <form> <input> <work>`) ---


def _floor(form: str, inputs: Path, work: Path) -> int:
    import duckdb

    con = duckdb.connect(str(work / "floor.duckdb"))
    if form == "json":
        source = (
            f"(SELECT json AS j FROM read_json('{inputs}/pages/*.json', format='array', records=false, "
            "columns={'json': 'VARCHAR[]'}) WHERE j[1] <> 'I_COMMODITY')"
        )
        select = (
            "SELECT strptime(j[9], '%Y-%m')::DATE AS period, j[1] AS hs_code, j[2] AS hs_level, j[3] AS hs_description, "
            "j[4] AS country_code, j[5] AS country_name, j[6]::BIGINT AS general_value_usd, "
            f"j[7]::BIGINT AS consumption_value_usd FROM {source}"
        )
    else:
        select = (
            "SELECT strptime(time, '%Y-%m')::DATE AS period, I_COMMODITY AS hs_code, COMM_LVL AS hs_level, "
            "I_COMMODITY_SDESC AS hs_description, CTY_CODE AS country_code, CTY_NAME AS country_name, "
            "GEN_VAL_MO::BIGINT AS general_value_usd, CON_VAL_MO::BIGINT AS consumption_value_usd "
            f"FROM read_csv('{inputs}/input.csv', all_varchar=true)"
        )
    con.execute(f"COPY ({select}) TO '{work}/floor.parquet' (FORMAT parquet, COMPRESSION zstd)")
    con.execute(f"CREATE TABLE imports AS SELECT * FROM '{work}/floor.parquet'")
    con.execute("CHECKPOINT")
    ((rows,),) = con.execute("SELECT count(*) FROM imports").fetchall()
    con.close()
    return int(rows)


def _pandas(form: str, inputs: Path, work: Path) -> int:
    import duckdb
    import great_expectations as gx
    import pandas as pd

    columns = [
        "hs_code",
        "hs_level",
        "hs_description",
        "country_code",
        "country_name",
        "general_value_usd",
        "consumption_value_usd",
        "period",
    ]
    if form == "json":
        frames = []
        for path in sorted((inputs / "pages").glob("*.json")):
            rows = json.loads(path.read_bytes())
            frame = pd.DataFrame(rows[1:], columns=HEADER)
            frames.append(frame.iloc[:, [0, 1, 2, 3, 4, 5, 6, 8]].set_axis(columns, axis=1))
        df = pd.concat(frames, ignore_index=True)
    else:
        df = pd.read_csv(inputs / "input.csv", dtype=str, keep_default_na=False)
        df.columns = columns
    df["general_value_usd"] = df["general_value_usd"].astype("int64")
    df["consumption_value_usd"] = df["consumption_value_usd"].astype("int64")
    df["period"] = pd.to_datetime(df["period"], format="%Y-%m")
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("bench")
        .add_dataframe_asset("imports")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="imports"))
    for expectation in (
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["period", "hs_code", "country_code"]),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="country_code"),
        gx.expectations.ExpectColumnValuesToMatchRegex(column="hs_code", regex=r"^[0-9]{10}$"),
        gx.expectations.ExpectColumnValuesToMatchRegex(
            column="country_code", regex=r"^(-|[0-9]{4}|[0-9]XXX)$"
        ),
        gx.expectations.ExpectColumnValuesToBeBetween(column="general_value_usd", min_value=0),
        gx.expectations.ExpectColumnValuesToBeBetween(column="consumption_value_usd", min_value=0),
    ):
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="imports", data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": df})
    if not result.success:
        raise RuntimeError("the pandas validation failed")
    con = duckdb.connect(str(work / "pandas.duckdb"))
    con.register("frame", df)
    con.execute("CREATE TABLE imports AS SELECT * FROM frame")
    con.execute("CHECKPOINT")
    ((rows,),) = con.execute("SELECT count(*) FROM imports").fetchall()
    return int(rows)


APPROACHES = {"floor": _floor, "pandas": _pandas}


@dataclass
class Figure:
    approach: str
    form: str
    rows: int
    seconds: float
    peak_rss_mb: float
    ok: bool
    note: str = ""
    round_number: int = 1

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _measure(args: list[str], env: dict[str, str] | None = None) -> tuple[int, float, float, str]:
    """Run a child; (exit code, wall seconds, its peak RSS in MiB, the end of its output).

    Output goes to files, not pipes, so a chatty child never blocks on a full pipe.
    """
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(args, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    code = child.returncode
    return code, seconds, usage.ru_maxrss / 1024, (stdout if code == 0 else stderr + stdout)[-1500:]


def _in_process_approach(name: str, form: str, inputs: Path, work: Path) -> Figure:
    scratch = work / f"{name}-{form}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    code, seconds, rss, tail = _measure(
        [sys.executable, "-m", "devtools.bench", "run", name, form, str(inputs), str(scratch)]
    )
    rows = int(tail.strip().splitlines()[-1]) if code == 0 and tail.strip() else 0
    shutil.rmtree(scratch, ignore_errors=True)
    return Figure(name, form, rows, seconds, rss, code == 0, "" if code == 0 else tail[-300:])


def _replay_process(pages: Path) -> tuple[subprocess.Popen[str], str]:
    code = "import sys; from devtools.bench import serve_pages; serve_pages(sys.argv[1])"
    server = subprocess.Popen([sys.executable, "-c", code, str(pages)], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    return server, url


def serve_pages(pages: str) -> None:
    """A replay of the Census endpoint serving the generated pages verbatim, one per month."""
    from pipelines.replay.reply import Reply
    from pipelines.replay.server import ReplayServer

    folder = Path(pages)

    def answer(path: str, query: list[tuple[str, str]]) -> Reply:
        month = dict(query).get("time", "")
        page = folder / f"{month}.json"
        if not page.exists():
            return Reply(204)
        return Reply(200, {"Content-Type": "application/json;charset=utf-8"}, page.read_bytes())

    server = ReplayServer(
        PROJECT_ROOT / "recordings", routes={"/data/timeseries/intltrade/imports/hs": answer}
    )
    print(server.url, flush=True)
    server.serve_forever()


def _scdx(
    form: str, inputs: Path, work: Path, months: list[str], schemas: Path, keep: bool = False
) -> list[Figure]:
    """scdx's refresh of the input; for JSON pages also the nightly re-run on unchanged bytes.

    ``keep``: leave its data directory (``work/scdx-<form>``) for the release figures."""
    data_dir = work / f"scdx-{form}"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {**os.environ, "SCDX_DATA_DIR": str(data_dir), "SCDX_SCHEMAS_DIR": str(schemas)}
    for key in ("SCDX_LIVE", "SCDX_REPLAY_URL"):
        env.pop(key, None)
    server = None
    try:
        if form == "json":
            server, url = _replay_process(inputs / "pages")
            args = [
                SCDX,
                "refresh",
                DATASET,
                "--replay-url",
                url,
                "--start",
                months[0],
                "--end",
                months[-1],
            ]
        else:
            args = [SCDX, "ingest-file", DATASET, str(inputs / "input.csv")]
        code, seconds, rss, tail = _measure(args, env)
        rows = 0
        if code == 0:
            import duckdb

            with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
                ((rows,),) = con.execute(f"SELECT count(*) FROM curated.{DATASET}").fetchall()
        figures = [Figure("scdx", form, int(rows), seconds, rss, code == 0, "" if code == 0 else tail[-300:])]
        if form == "json" and code == 0:
            # The nightly refresh when the agency published nothing new: same pages, same bytes.
            code, seconds, rss, tail = _measure(args, env)
            from pipelines.store.catalog import open_catalog

            history = open_catalog(data_dir).runs()
            statuses = [(r["status"],) for r in sorted(history, key=lambda r: r["started_at"])]
            unchanged = code == 0 and statuses == [("published",), ("unchanged",)]
            note = "" if unchanged else f"expected a published then an unchanged run, got {statuses}"
            figures.append(Figure("scdx unchanged", form, int(rows), seconds, rss, unchanged, note))
        return figures
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)


DLT_NOT_INSTALLED = "dlt did not install"


def _dlt(form: str, inputs: Path, work: Path) -> Figure:
    """dlt in its own venv (created on first use from the package registry), fed Arrow tables."""
    venv = work / "dlt-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        created = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True)
        installed = (
            created.returncode == 0
            and subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "dlt[duckdb]", "pyarrow"],
                capture_output=True,
            ).returncode
            == 0
        )
        if not installed:
            shutil.rmtree(venv, ignore_errors=True)
            return Figure("dlt", form, 0, 0.0, 0.0, False, DLT_NOT_INSTALLED)
    scratch = work / f"dlt-{form}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    code, seconds, rss, tail = _measure([str(python), "-c", DLT_SCRIPT, form, str(inputs), str(scratch)])
    rows = int(tail.strip().splitlines()[-1]) if code == 0 and tail.strip() else 0
    shutil.rmtree(scratch, ignore_errors=True)
    return Figure("dlt", form, rows, seconds, rss, code == 0, "" if code == 0 else tail[-300:])


DLT_SCRIPT = r"""
import json, sys, pathlib
import dlt, pyarrow as pa, pyarrow.csv as pacsv
form, inputs, work = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
names = ["hs_code", "hs_level", "hs_description", "country_code", "country_name", "general_value_usd", "consumption_value_usd", "period"]
def tables():
    if form == "json":
        for path in sorted((inputs / "pages").glob("*.json")):
            rows = json.loads(path.read_bytes())[1:]
            cols = list(zip(*rows))
            yield pa.table({n: pa.array(cols[i]) for n, i in zip(names, [0, 1, 2, 3, 4, 5, 6, 8])})
    else:
        reader = pacsv.open_csv(inputs / "input.csv", convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in ["I_COMMODITY","COMM_LVL","I_COMMODITY_SDESC","CTY_CODE","CTY_NAME","GEN_VAL_MO","CON_VAL_MO","time"]}))
        for batch in reader:
            yield pa.Table.from_batches([batch]).rename_columns(names)
pipeline = dlt.pipeline(pipeline_name="bench", destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")), pipelines_dir=str(work / "pipelines"))
pipeline.run(dlt.resource(tables(), name="imports"))
import duckdb
print(duckdb.connect(str(work / "dlt.duckdb")).execute("select count(*) from bench_dataset.imports").fetchall()[0][0])
"""


def code_version(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The commit a bench measured and whether tracked files differed from it (None outside git).

    Figures from benches days apart are only comparable knowing which code each one ran.
    """

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30
        )
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        changes = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "uncommitted_changes": None}
    return {"commit": commit, "uncommitted_changes": bool(changes)}


def _release_figures(
    workdir: Path, inputs: Path, months: list[str], schemas: Path, rounds: int, with_demo: bool
) -> dict[str, Any]:
    """What releases cost, measured on scdx's data directory of the last JSON round: analysts'
    queries on the release as published (views over Parquet) and once materialized, each against
    the same rows as DuckDB tables, and what materializing took; publishing a month into the full
    table against into a month alone; the same queries on the demo (docs/analysts.md's)."""
    from devtools.bench_releases import (
        bench_queries,
        compare_queries,
        demo_queries,
        native_copy,
        publish_cost,
    )
    from pipelines.store.layout import Layout
    from pipelines.store.tiers import materialize_current

    data_dir = workdir / "scdx-json"
    release = (data_dir / "scdx.duckdb").resolve()
    native = native_copy(release, workdir / "bench-native.duckdb", ("curated",))
    try:
        queries = bench_queries(release, f"curated.{DATASET}")
        on_views = compare_queries(release, native, queries)
        done = materialize_current(Layout(data_dir))
        if done is None or not done.made:
            raise RuntimeError(f"the bench's release in {data_dir} was not materialized")
        on_copy = compare_queries(done.path, native, queries)
    finally:
        native.unlink(missing_ok=True)
    materialized = {"seconds": round(done.seconds, 2), "mib": round(done.path.stat().st_size / 2**20, 1)}
    cost = publish_cost(data_dir, workdir, inputs, months, schemas, DATASET, rounds)
    demo = demo_queries(workdir) if with_demo else None
    return {
        "bench_queries": on_views,
        "bench_queries_materialized": on_copy,
        "materialize": materialized,
        "publish_cost": cost,
        "demo_queries": demo,
    }


def _seconds_ratio(
    seconds: float, figures: list[Figure], approach: str, form: str, number: int
) -> float | None:
    """``seconds`` against that round's run of ``approach``."""
    run = next((f for f in figures if (f.approach, f.form, f.round_number) == (approach, form, number)), None)
    return round(seconds / run.seconds, 2) if run and run.ok and run.seconds else None


def _ratio(a: Figure | None, b: Figure | None) -> float | None:
    return round(a.seconds / b.seconds, 2) if a and b and a.ok and b.ok and b.seconds else None


def run_bench(
    rows: int,
    workdir: Path,
    with_dlt: bool = True,
    forms: tuple[str, ...] = ("json", "csv"),
    rounds: int = 1,
    with_demo: bool = True,
) -> dict[str, Any]:
    """All approaches on both input forms; figures and ratios.

    The machine's speed drifts by half within minutes, so each ratio compares runs made one right
    after the other: per round, the floor, scdx (and its unchanged re-run), pandas and dlt, each
    alternative compared with that round's scdx. A ratio over several rounds is the median of the
    rounds' ratios; every round's ratio is kept beside it.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    workdir.mkdir(parents=True, exist_ok=True)
    inputs = generate(workdir, rows)
    months = json.loads((inputs / "meta.json").read_text())["months"]
    schemas = bench_schemas(workdir, months)
    figures: list[Figure] = []
    by_round: dict[str, list[float | None]] = {}

    def record(name: str, a: Figure | None, b: Figure | None) -> None:
        by_round.setdefault(name, []).append(_ratio(a, b))

    releases: dict[str, Any] = {}
    for form in forms:
        for number in range(1, rounds + 1):
            floor = _in_process_approach("floor", form, inputs, workdir)
            last_json = form == "json" and number == rounds
            scdx, *unchanged = _scdx(form, inputs, workdir, months, schemas, keep=last_json)
            # The alternatives run every round too: one run of each is as noisy as one of scdx
            # (their single-run ratios moved by up to 28 % between benches of the same refresh).
            pandas = _in_process_approach("pandas", form, inputs, workdir)
            dlt = _dlt(form, inputs, workdir) if with_dlt else None
            ran = [floor, scdx, *unchanged, pandas, *([dlt] if dlt else [])]
            figures += [replace(f, round_number=number) for f in ran]
            record(f"scdx/floor {form}", scdx, floor)
            if form == "json":
                record("scdx unchanged/scdx json", unchanged[0] if unchanged else None, scdx)
            record(f"pandas/scdx {form}", pandas, scdx)
            if dlt is not None:
                record(f"dlt/scdx {form}", dlt, scdx)
                # A dlt that would not install is not tried again in every round.
                with_dlt = dlt.note != DLT_NOT_INSTALLED
            if last_json and scdx.ok:
                releases = _release_figures(workdir, inputs, months, schemas, rounds, with_demo)
            if last_json:
                shutil.rmtree(workdir / "scdx-json", ignore_errors=True)
        by_round.setdefault(f"dlt/scdx {form}", [None])
    # A ratio is reported only when every round produced it (a failed run is no figure).
    ratios = {
        name: None if None in values else round(statistics.median(v for v in values if v is not None), 2)
        for name, values in by_round.items()
    }
    if releases:
        ratios["publish into 10M rows/into one month"] = releases["publish_cost"]["ratio"]
        ratios["analyst queries release/tables, bench table (max)"] = releases["bench_queries"]["max_ratio"]
        ratios["analyst queries materialized/tables, bench table (max)"] = releases[
            "bench_queries_materialized"
        ]["max_ratio"]
        ratios["materialize/scdx json"] = _seconds_ratio(
            releases["materialize"]["seconds"], figures, "scdx", "json", rounds
        )
        demo = releases.get("demo_queries")
        if demo:
            ratios["analyst queries release/tables, demo (max)"] = demo["views"]["max_ratio"]
            ratios["analyst queries materialized/tables, demo (max)"] = demo["materialized"]["max_ratio"]
    return {
        "rows": rows,
        "rounds": rounds,
        "started_at": started_at,
        "releases": releases,
        "code": code_version(),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "figures": [{**asdict(f), "rows_per_second": round(f.rows_per_second)} for f in figures],
        "ratios": ratios,
        "ratios_by_round": by_round,
    }


def main(argv: list[str]) -> None:
    """Child entry point: `python -m devtools.bench run <approach> <form> <inputs> <work>`."""
    if argv[:1] == ["run"]:
        approach, form, inputs, work = argv[1:5]
        print(APPROACHES[approach](form, Path(inputs), Path(work)))
        sys.stdout.flush()
        os._exit(0)  # skip DuckDB 2.0's leak report at interpreter shutdown (see pipelines/cli.py)


if __name__ == "__main__":
    main(sys.argv[1:])
