"""The fault catalogue: inject every way a night can go wrong, check that nothing is lost,
half-published or leaked, and write the figures to docs/reliability.md (``python -m devtools reliability``).

Each case starts from a published baseline (the Census recordings, Q1 2026) in a fresh data
directory, injects its fault during a refresh of a wider window (October 2025 to March 2026),
and checks the invariants:

- the curated table equals either the baseline (the refresh failed cleanly) or the result of an
  uninterrupted refresh (it survived) — never anything in between, never fewer rows;
- the previous version stays readable throughout (crash cases probe it while the refresh is dead);
- a failed refresh says which dataset and which URL or file, and no API key reaches a file;
- nothing temporary is left behind once the next run has gone through.

HTTP faults go through the replay server's fault plan; crashes through ``SCDX_FAULT_KILL_AT``
(pipelines/faults.py) in a child ``scdx refresh`` process; bad local input through the CLI.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml

from devtools import PROJECT_ROOT
from pipelines.common.faults import CRASH_POINTS, FAULT_ENV
from pipelines.common.settings import HttpPolicy, Settings
from pipelines.contracts import Registry, load_registry, load_yaml
from pipelines.orchestration.refresh import refresh_dataset
from pipelines.replay.server import Fault, ReplayServer
from pipelines.sources.window import Window
from pipelines.store.layout import Layout

DATASET = "census_trade_imports"
PATH = "/data/timeseries/intltrade/imports/hs"
BASELINE = Window(date(2026, 1, 1), date(2026, 3, 1))
WIDER = Window(date(2025, 10, 1), date(2026, 3, 1))
FAKE_KEY = "scdxRELIABILITYkey-5e1f0c2d9a"
SCDX = str(Path(sys.executable).parent / "scdx")
FAST_HTTP = HttpPolicy(
    connect_timeout_s=2.0,
    read_timeout_s=1.5,
    max_attempts=4,
    backoff_initial_s=0.01,
    backoff_max_s=0.05,
    retry_after_max_s=30.0,
    max_response_bytes=4 * 1024 * 1024,
)


@dataclass
class Outcome:
    """What one case measured."""

    case: str
    category: str
    injected: str
    times: int
    expectation: str  # "survives" or "fails cleanly"
    survived: bool = False
    failed_cleanly: bool = False
    rows_lost: int = 0
    partial_publish: bool = False
    key_leaked: bool = False
    leftovers: list[str] = field(default_factory=list)
    notes: str = ""

    @property
    def passed(self) -> bool:
        held = self.survived if self.expectation == "survives" else self.failed_cleanly
        return (
            held
            and self.rows_lost == 0
            and not self.partial_publish
            and not self.key_leaked
            and not self.leftovers
        )


# --- shared helpers -----------------------------------------------------------------------------


def _table(layout: Layout) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(layout.public_db), read_only=True) as con:
        return con.execute(f"SELECT * FROM curated.{DATASET} ORDER BY ALL").fetchall()


def _digest(rows: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _consistent(layout: Layout) -> bool:
    """The current version's row counts agree with what its meta.publishes row says."""
    import json

    with duckdb.connect(str(layout.public_db), read_only=True) as con:
        (recorded,) = con.execute(
            "SELECT table_rows FROM meta.publishes ORDER BY version DESC LIMIT 1"
        ).fetchone() or ("{}",)
        (actual,) = con.execute(f"SELECT count(*) FROM curated.{DATASET}").fetchone() or (0,)
    return int(json.loads(recorded).get(f"curated.{DATASET}", -1)) == int(actual)


def _leftovers(layout: Layout) -> list[str]:
    found = [str(p) for p in layout.stale_temporaries(DATASET)]
    for store in (layout.store("public"), layout.store("restricted")):
        if store.versions_dir.exists():
            found += [str(p) for p in store.versions_dir.glob("*.tmp*")]
        if store.link.parent.exists():
            found += [str(p) for p in store.link.parent.glob(f".{store.link.name}.*.link")]
    return found


def _key_in(layout: Layout, extra_text: str = "") -> bool:
    if FAKE_KEY in extra_text:
        return True
    return any(p.is_file() and FAKE_KEY.encode() in p.read_bytes() for p in layout.root.rglob("*"))


class Catalogue:
    """Runs the cases; holds the recordings, the registry and the uninterrupted results."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.registry: Registry = load_registry(PROJECT_ROOT / "schemas")
        self.contract = self.registry.get(DATASET)
        self._counter = 0
        self.baseline_rows: list[tuple[Any, ...]] = []
        self.expected_rows: list[tuple[Any, ...]] = []

    def settings(self, data_dir: Path) -> Settings:
        return Settings(
            data_dir=data_dir,
            schemas_dir=PROJECT_ROOT / "schemas",
            recordings_dir=PROJECT_ROOT / "recordings",
            http=FAST_HTTP,
            dataset_lock_timeout_s=60.0,
        )

    def fresh(self, with_baseline: bool = True) -> tuple[Layout, Settings]:
        self._counter += 1
        data_dir = self.workdir / f"case-{self._counter:03d}" / "data"
        data_dir.mkdir(parents=True)
        settings = self.settings(data_dir)
        if with_baseline:
            with ReplayServer(settings.recordings_dir) as server:
                refresh_dataset(self.contract, self.registry, settings, server.url, window=BASELINE)
        return Layout(data_dir), settings

    def prepare(self) -> None:
        layout, settings = self.fresh()
        self.baseline_rows = _table(layout)
        with ReplayServer(settings.recordings_dir) as server:
            refresh_dataset(self.contract, self.registry, settings, server.url, window=WIDER)
        self.expected_rows = _table(layout)

    def judge(self, outcome: Outcome, layout: Layout, error_text: str = "") -> Outcome:
        """Compare the published table with the baseline and the uninterrupted result."""
        rows = _table(layout)
        expected = self.expected_rows if outcome.expectation == "survives" else self.baseline_rows
        outcome.rows_lost = len(set(expected) - set(rows))
        outcome.partial_publish = _digest(rows) not in {
            _digest(self.baseline_rows),
            _digest(self.expected_rows),
        } or not _consistent(layout)
        outcome.key_leaked = _key_in(layout, error_text)
        outcome.leftovers = _leftovers(layout)
        if outcome.expectation == "survives":
            outcome.survived = _digest(rows) == _digest(self.expected_rows)
        else:
            names_where = DATASET in error_text and (
                "http://127.0.0.1" in error_text or "file" in error_text.lower() or "/" in error_text
            )
            outcome.failed_cleanly = _digest(rows) == _digest(self.baseline_rows) and names_where
            if not names_where:
                outcome.notes = f"error message does not name the dataset and source: {error_text[:200]!r}"
        return outcome


# --- HTTP faults -------------------------------------------------------------------------------


def _http_case(
    cat: Catalogue, name: str, injected: str, faults: list[Fault], expectation: str, times: int | None = None
) -> Outcome:
    layout, settings = cat.fresh()
    outcome = Outcome(
        name, "HTTP", injected, times if times is not None else sum(f.times for f in faults), expectation
    )
    error = ""
    os.environ["SCDX_CENSUS_API_KEY"] = FAKE_KEY
    try:
        with ReplayServer(settings.recordings_dir) as server:
            server.faults.add(*faults)
            try:
                refresh_dataset(cat.contract, cat.registry, settings, server.url, window=WIDER)
            except Exception as exc:
                error = str(exc)
    finally:
        os.environ.pop("SCDX_CENSUS_API_KEY", None)
    if expectation == "fails cleanly" and not error:
        outcome.notes = "the refresh did not fail"
    kept = list((layout.root / "raw" / DATASET).glob("*/_failed_attempts/*.json"))
    if kept:
        outcome.notes = (outcome.notes + f" {len(kept)} failed attempt(s) kept for diagnosis.").strip()
    return cat.judge(outcome, layout, error)


def http_cases(cat: Catalogue) -> Iterator[Outcome]:
    later = datetime.now(UTC) + timedelta(seconds=2)
    yield _http_case(
        cat,
        "burst of 500, 502, 503",
        "HTTP 500, 502, 503 in a row",
        [Fault(500, PATH), Fault(502, PATH), Fault(503, PATH)],
        "survives",
    )
    yield _http_case(
        cat,
        "429 with Retry-After seconds",
        "HTTP 429, Retry-After: 1",
        [Fault(429, PATH, headers={"Retry-After": "1"})],
        "survives",
    )
    yield _http_case(
        cat,
        "429 with Retry-After date",
        "HTTP 429, Retry-After as an HTTP-date 2 s ahead",
        [Fault(429, PATH, headers={"Retry-After": format_datetime(later, usegmt=True)})],
        "survives",
    )
    yield _http_case(
        cat,
        "429 without Retry-After",
        "HTTP 429 twice, no Retry-After",
        [Fault(429, PATH, times=2)],
        "survives",
    )
    yield _http_case(
        cat,
        "connection reset",
        "connection closed without an answer, twice",
        [Fault(mode="reset", path=PATH, times=2)],
        "survives",
    )
    yield _http_case(
        cat,
        "read timeout mid-body",
        "half the body, then silence longer than the read timeout",
        [Fault(mode="stall", path=PATH, delay_s=3.0)],
        "survives",
    )
    yield _http_case(
        cat,
        "truncated body",
        "Content-Length 1000 bytes more than the body",
        [Fault(mode="truncate", path=PATH)],
        "survives",
    )
    yield _http_case(
        cat,
        "HTML error page behind a 200",
        "HTTP 200 text/html maintenance page, twice",
        [
            Fault(
                200,
                PATH,
                times=2,
                headers={"Content-Type": "text/html"},
                body="<html><body>Service maintenance</body></html>",
            )
        ],
        "survives",
    )
    yield _http_case(
        cat,
        "JSON of the wrong shape",
        "HTTP 200 application/json object instead of array of arrays",
        [Fault(mode="wrong_shape", path=PATH, times=100, body='{"error": "unexpected"}')],
        "fails cleanly",
        times=1,
    )
    yield _http_case(
        cat,
        "persistent 503",
        "HTTP 503 on every attempt (more than the retry bound)",
        [Fault(503, PATH, times=100)],
        "fails cleanly",
        times=FAST_HTTP.max_attempts,
    )
    yield _http_case(
        cat,
        "response over the size limit",
        "a 5 MiB body against a 4 MiB limit",
        [
            Fault(
                200,
                PATH,
                headers={"Content-Type": "application/json"},
                body="[" + " " * (5 * 1024 * 1024) + "]",
            )
        ],
        "fails cleanly",
        times=1,
    )
    yield _http_case(
        cat,
        "gzip bomb",
        "62 KiB of gzip inflating to 64 MiB",
        [Fault(mode="gzip_bomb", path=PATH, size=64 * 1024 * 1024)],
        "fails cleanly",
        times=1,
    )
    yield _http_case(
        cat,
        "redirect to another host",
        "HTTP 302 to http://elsewhere.example/ with the key in the URL",
        [Fault(302, PATH, headers={"Location": f"http://elsewhere.example/steal?key={FAKE_KEY}"})],
        "fails cleanly",
        times=1,
    )
    # 204 everywhere: the months answer "no data"; nothing is published, the baseline stays.
    layout, settings = cat.fresh()
    outcome = Outcome(
        "204 for every month", "HTTP", "HTTP 204, empty body, for each of the 6 months", 6, "fails cleanly"
    )
    with ReplayServer(settings.recordings_dir) as server:
        server.faults.add(Fault(204, PATH, times=6))
        run = refresh_dataset(cat.contract, cat.registry, settings, server.url, window=WIDER)
    outcome = cat.judge(outcome, layout, f"{DATASET}: {run.status} from http://127.0.0.1")
    outcome.notes = f"run ended as {run.status}; nothing published"
    outcome.failed_cleanly = outcome.failed_cleanly and run.status == "no_data"
    yield outcome


# --- crashes -----------------------------------------------------------------------------------


def _refresh_process(data_dir: Path, replay_url: str, fault: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCDX_DATA_DIR": str(data_dir), "SCDX_CENSUS_API_KEY": FAKE_KEY}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.run(
        [
            SCDX,
            "refresh",
            DATASET,
            "--replay-url",
            replay_url,
            "--start",
            "2025-10",
            "--end",
            "2026-03",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def crash_cases(cat: Catalogue) -> Iterator[Outcome]:
    for point in CRASH_POINTS:
        layout, settings = cat.fresh()
        outcome = Outcome(
            f"kill -9 at {point}", "crash", f"SIGKILL of the refresh process at {point}", 1, "survives"
        )
        with ReplayServer(settings.recordings_dir) as server:
            killed = _refresh_process(layout.root, server.url, point)
            if killed.returncode != -signal.SIGKILL:
                outcome.notes = f"the process was not killed (exit {killed.returncode})"
                yield outcome
                continue
            # While the refresh is dead, readers still get a complete version.
            rows = _table(layout)
            readable = _digest(rows) in {
                _digest(cat.baseline_rows),
                _digest(cat.expected_rows),
            } and _consistent(layout)
            rerun = _refresh_process(layout.root, server.url, None)
        outcome = cat.judge(outcome, layout, rerun.stderr)
        outcome.partial_publish = outcome.partial_publish or not readable
        outcome.survived = outcome.survived and rerun.returncode == 0
        outcome.notes = (
            "previous version readable while dead; re-run completed"
            if readable and rerun.returncode == 0
            else (f"readable={readable}, re-run exit {rerun.returncode}: {rerun.stderr[-300:]}")
        )
        yield outcome


@contextmanager
def _env(**values: str) -> Iterator[None]:
    """Environment variables set for the duration (what an Airflow worker would have)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- Airflow task retries ----------------------------------------------------------------------

_KILLED_ATTEMPT = """
import json, sys
from pipelines.orchestration import tasks
state = json.loads(sys.argv[1])
getattr(tasks, sys.argv[2])(state)
"""


def retry_cases(cat: Catalogue) -> Iterator[Outcome]:
    """A task killed after doing part of its work, then retried, gives what one clean attempt gives."""
    import json

    from pipelines.orchestration import tasks

    for task, point in (("normalize_and_stage", "after_stage"), ("publish", "publish:after_swap")):
        layout, settings = cat.fresh()
        outcome = Outcome(
            f"Airflow retry of {task}", "retry", f"{task} killed at {point}, then retried", 1, "survives"
        )
        with (
            ReplayServer(settings.recordings_dir) as server,
            _env(SCDX_REPLAY_URL=server.url, SCDX_DATA_DIR=str(layout.root)),
        ):
            # Data interval 2025-12-15 .. 2026-03-15: with the two-month lookback, the catalogue's window.
            state = tasks.extract_and_land(DATASET, server.url, date(2025, 12, 15), date(2026, 3, 15))
            if task == "publish":
                state = tasks.validate(tasks.normalize_and_stage(state))
            env = {**os.environ, FAULT_ENV: point}
            died = subprocess.run(
                [sys.executable, "-c", _KILLED_ATTEMPT, json.dumps(state), task],
                env=env,
                capture_output=True,
                timeout=600,
            ).returncode
            if task == "normalize_and_stage":
                state = tasks.validate(tasks.normalize_and_stage(state))
            tasks.publish(state)
        outcome = cat.judge(outcome, layout)
        outcome.survived = outcome.survived and died == -signal.SIGKILL
        outcome.notes = f"first attempt killed (exit {died}); the retry completed"
        yield outcome


# --- bad local input ---------------------------------------------------------------------------


def _tree(root: Path) -> str:
    """A digest of every file under root (names, sizes, bytes): "changes nothing" made checkable."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "locks" not in p.parts):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _cli(
    args: list[str], env: dict[str, str], preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCDX, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=preexec,
    )


def _broken_schemas(
    cat: Catalogue, name: str, edit: Callable[[dict[str, Any]], None] | None, text: str | None = None
) -> Path:
    schemas = cat.workdir / f"schemas-{name}"
    shutil.copytree(PROJECT_ROOT / "schemas", schemas)
    path = schemas / f"{DATASET}.yaml"
    if text is not None:
        path.write_text(text)
    elif edit is not None:
        raw = load_yaml(path.read_text())
        edit(raw)
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return schemas


def input_cases(cat: Catalogue) -> Iterator[Outcome]:
    def first_field(raw: dict[str, Any]) -> dict[str, Any]:
        field_: dict[str, Any] = raw["fields"][0]
        return field_

    broken: list[tuple[str, str, Callable[[dict[str, Any]], None] | None, str | None, str]] = [
        ("invalid YAML", "a contract that is not YAML", None, "dataset: [unclosed\n", "invalid YAML"),
        (
            "unknown shared type",
            "field type 'hs5'",
            lambda raw: first_field(raw).update(type="hs5"),
            None,
            "unknown shared type 'hs5'",
        ),
        (
            "duplicate field",
            "field 'period' twice",
            lambda raw: raw["fields"].append(dict(first_field(raw))),
            None,
            "duplicate field names: period",
        ),
        (
            "SQL in an identifier",
            "field named 'period; DROP TABLE meta.runs'",
            lambda raw: first_field(raw).update(name="period; DROP TABLE meta.runs"),
            None,
            "not a safe identifier",
        ),
    ]
    for name, injected, edit, text, message in broken:
        layout, _ = cat.fresh()
        before = _tree(layout.root)
        schemas = _broken_schemas(cat, name.replace(" ", "_"), edit, text)
        result = _cli(
            ["refresh", DATASET],
            {"SCDX_DATA_DIR": str(layout.root), "SCDX_SCHEMAS_DIR": str(schemas)},
        )
        printed = _printed(result)
        outcome = Outcome(name, "bad input", injected, 1, "fails cleanly")
        outcome.failed_cleanly = (
            result.returncode == 2 and message in printed and _tree(layout.root) == before
        )
        outcome.notes = printed[:160] or f"exit {result.returncode}"
        outcome.leftovers = _leftovers(layout)
        yield outcome

    layout, _settings = cat.fresh()
    before = _tree(layout.root)
    result = _cli(["refresh", "../../etc/passwd"], {"SCDX_DATA_DIR": str(layout.root)})
    printed = _printed(result)
    outcome = Outcome(
        "path traversal in a dataset name", "bad input", "dataset '../../etc/passwd'", 1, "fails cleanly"
    )
    outcome.failed_cleanly = (
        result.returncode == 2
        and "unknown dataset '../../etc/passwd'" in printed
        and _tree(layout.root) == before
    )
    outcome.notes = printed[:160]
    yield outcome

    yield _read_only_case(cat)
    yield _disk_full_case(cat)


def _printed(result: subprocess.CompletedProcess[str]) -> str:
    """stderr with the console's line wrapping undone."""
    return " ".join(result.stderr.split())


def _wider_refresh(
    server: ReplayServer, layout: Layout, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    args = [
        "refresh",
        DATASET,
        "--replay-url",
        server.url,
        "--start",
        "2025-10",
        "--end",
        "2026-03",
    ]
    return _cli(args, {"SCDX_DATA_DIR": str(layout.root)}, preexec)


def _immutable(root: Path, on: bool) -> bool:
    """chattr +i (or -i) on every file and directory under root (symlinks cannot carry the flag)."""
    paths = [str(p) for p in [root, *root.rglob("*")] if not p.is_symlink()]
    return subprocess.run(["chattr", "+i" if on else "-i", *paths], capture_output=True).returncode == 0


def _read_only_case(cat: Catalogue) -> Outcome:
    layout, settings = cat.fresh()
    before = _tree(layout.root)
    outcome = Outcome(
        "data directory not writable",
        "bad input",
        "every file and directory made immutable (chattr +i)",
        1,
        "fails cleanly",
    )
    try:
        if not _immutable(layout.root, True):
            outcome.notes = "chattr unavailable here: not run"
            return outcome
        with ReplayServer(settings.recordings_dir) as server:
            result = _wider_refresh(server, layout)
    finally:
        _immutable(layout.root, False)
    printed = _printed(result)
    # Refused before any dataset's run starts: the message names the data directory, not a dataset.
    outcome.failed_cleanly = (
        result.returncode != 0
        and str(layout.root) in printed
        and "not writable" in printed
        and _tree(layout.root) == before
    )
    outcome.notes = printed[-200:]
    return outcome


def _disk_full_case(cat: Catalogue) -> Outcome:
    layout, settings = cat.fresh()
    outcome = Outcome(
        "disk full while writing",
        "bad input",
        "writes fail with EFBIG past 64 KiB (RLIMIT_FSIZE)",
        1,
        "fails cleanly",
    )

    def small_disk() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    with ReplayServer(settings.recordings_dir) as server:
        result = _wider_refresh(server, layout, small_disk)
        printed = _printed(result)
        outcome = cat.judge(outcome, layout, printed)
        outcome.failed_cleanly = (
            outcome.failed_cleanly and result.returncode != 0 and "File too large" in printed
        )
        # The next run, with space again, goes through and clears what the failed one left half-written.
        rerun = _wider_refresh(server, layout)
    outcome.failed_cleanly = (
        outcome.failed_cleanly
        and rerun.returncode == 0
        and _digest(_table(layout)) == _digest(cat.expected_rows)
    )
    outcome.leftovers = _leftovers(layout)
    outcome.notes = printed[-200:]
    return outcome


# --- concurrency -------------------------------------------------------------------------------


def concurrency_cases(cat: Catalogue) -> Iterator[Outcome]:
    layout, settings = cat.fresh()
    outcome = Outcome(
        "two refreshes of one dataset at once",
        "concurrency",
        "a second refresh starts while the first holds the dataset (lock wait 1 s)",
        1,
        "survives",
    )
    with ReplayServer(settings.recordings_dir) as server:
        server.faults.add(Fault(429, PATH, headers={"Retry-After": "4"}))  # keeps the first busy
        env = {**os.environ, "SCDX_DATA_DIR": str(layout.root), "SCDX_DATASET_LOCK_TIMEOUT": "1"}
        args = [
            SCDX,
            "refresh",
            DATASET,
            "--replay-url",
            server.url,
            "--start",
            "2025-10",
            "--end",
            "2026-03",
        ]
        first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.0)
        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        _, first_err = first.communicate(timeout=600)
    outcome = cat.judge(outcome, layout, first_err)
    waited = (
        second.returncode == 1
        and "another process holds" in second.stderr
        and "dataset-census_trade_imports.lock" in second.stderr
    )
    outcome.survived = outcome.survived and first.returncode == 0 and waited
    outcome.notes = "the second refresh failed cleanly on the dataset lock; the first published"
    yield outcome


# --- malformed and hostile files in hand (devtools/input_corpus.py) ----------------------------------


def corpus_cases(cat: Catalogue) -> Iterator[Outcome]:
    """Every dataset's corpus through ``scdx ingest-file``'s function, in one data directory per
    dataset holding its recorded payload published: a refusal must leave every table and mart's
    checksum as it was, a read or stored case must lose no row, and no case may write outside."""
    from devtools.input_corpus import DATASETS, base_file, corpus
    from devtools.release_checks import checksums
    from pipelines.orchestration.guards import start_run
    from pipelines.orchestration.refresh import ingest_file
    from pipelines.store.tiers import open_public

    root = cat.workdir / "corpus"
    outside = root / "outside"
    outside.mkdir(parents=True)
    for recorded in DATASETS:
        settings = cat.settings(root / recorded.dataset / "data")
        settings.data_dir.mkdir(parents=True)
        contract = cat.registry.get(recorded.dataset)
        ingest_file(contract, cat.registry, settings, base_file(recorded, root / "work"))
        for case in corpus(outside, root / "work", (recorded.dataset,)):
            path = case.write(root / "cases" / case.id)
            with open_public(Layout(settings.data_dir)) as con:
                before = checksums(con)
            run = start_run(contract)
            # A refused run is recorded before it raises; the record says how it ended.
            with contextlib.suppress(ValueError, RuntimeError, OSError):
                ingest_file(contract, cat.registry, settings, path, run=run)
            with open_public(Layout(settings.data_dir)) as con:
                after = checksums(con)
            table = f"curated.{recorded.dataset}"
            outcome = Outcome(
                f"{recorded.dataset}: {case.name}",
                case.category,
                case.injected,
                1,
                "fails cleanly" if case.outcome == "refused" else "survives",
            )
            outcome.rows_lost = max(0, before[table][0] - after.get(table, (0, 0))[0])
            escaped = any(outside.iterdir())
            if case.outcome == "refused":
                named = all(n in (run.error or "") for n in case.names)
                outcome.failed_cleanly = run.status in ("failed", "quarantined", "blocked") and named
                outcome.partial_publish = after != before
                outcome.failed_cleanly = outcome.failed_cleanly and not outcome.partial_publish
                outcome.notes = f"refused ({run.status}): {_first_line(run.error or '', path)}"
            else:
                outcome.survived = run.status in ("published", "unchanged")
                outcome.notes = f"{case.outcome.replace('_', ' ')} ({run.status})"
            if escaped:
                outcome.leftovers = [str(p) for p in outside.iterdir()]
            yield outcome


def _first_line(error: str, path: Path) -> str:
    """The refusal as a reader needs it: without the run's own paths and ids."""
    text = error.replace(str(path.parent) + "/", "").replace("\n", " ")
    text = re.sub(r"/\S*/(raw|quarantine)/\S*/\d{8}T\d{6}Z-[0-9a-f]{6}/?", "", text)
    return text[:140]


# --- running and reporting ----------------------------------------------------------------------

SUITES: tuple[Callable[[Catalogue], Iterator[Outcome]], ...] = (
    http_cases,
    crash_cases,
    retry_cases,
    input_cases,
    concurrency_cases,
    corpus_cases,
)


def run_catalogue(workdir: Path | None = None) -> list[Outcome]:
    """Every case, in order; each in its own data directory under ``workdir`` (temporary by default)."""
    with tempfile.TemporaryDirectory(prefix="scdx-faults-") as scratch:
        cat = Catalogue(workdir or Path(scratch))
        cat.prepare()
        outcomes = [outcome for suite in SUITES for outcome in suite(cat)]
    for outcome in outcomes:  # the report names no machine-specific directory
        outcome.notes = outcome.notes.replace(str(cat.workdir), "$WORK")
    return outcomes


_VOLATILE = (
    (re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}"), "<run_id>"),
    (re.compile(r"\.tmp[0-9a-f]{8}"), ".tmp<id>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
)


def _stable(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def render_report(outcomes: list[Outcome]) -> str:
    """docs/reliability.md: deterministic (no timings), so a test can tell when it is stale."""
    lines = [
        "# Reliability: the fault catalogue",
        "",
        "Generated by `python -m devtools reliability --write docs/reliability.md` (devtools/reliability.py); the test",
        "suite runs the same catalogue and fails if a case fails or this file is stale.",
        "",
        "Each case starts from a published baseline (Census recordings, January to March 2026), injects its",
        "fault while refreshing October 2025 to March 2026, and checks: the curated table is either the",
        "baseline (failed cleanly) or the uninterrupted result (survived), never in between; the version",
        "readers open stays complete; the error names the dataset and the URL or file; no API key is in",
        "any file; nothing temporary is left after the next run.",
        "",
        "The *input format* and *hostile input* cases (devtools/input_corpus.py; tests/test_input_corpus.py",
        "runs them one by one, also through the `scdx` CLI and the replay server) hand each dataset a file",
        "made from its own recorded payload, in a data directory where that payload is published: a",
        "refused file must fail naming what the case says and leave every table's and mart's checksum as",
        "it was; a read or stored one must lose no row; none may write outside the data directory.",
        "",
        "| category | case | injected | times | expected | outcome | rows lost | partial publish | key leaked | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        result = (
            "survived"
            if o.expectation == "survives" and o.survived
            else "failed cleanly"
            if o.failed_cleanly
            else "NOT OK"
        )
        notes = _stable(o.notes).replace("|", "/")
        if o.leftovers:
            notes += f" leftovers: {len(o.leftovers)}"
        lines.append(
            f"| {o.category} | {o.case} | {o.injected} | {o.times} | {o.expectation} | {result} | {o.rows_lost} | "
            f"{'yes' if o.partial_publish else 'no'} | {'yes' if o.key_leaked else 'no'} | {notes} |"
        )
    passed = sum(o.passed for o in outcomes)
    lines += [
        "",
        f"**{passed} of {len(outcomes)} cases hold; faults injected: {sum(o.times for o in outcomes)}; "
        f"rows lost: {sum(o.rows_lost for o in outcomes)}; partial publishes: {sum(o.partial_publish for o in outcomes)}; "
        f"keys leaked: {sum(o.key_leaked for o in outcomes)}.**",
        "",
    ]
    return "\n".join(lines)
