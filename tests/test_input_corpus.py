"""Untrusted input never damages what is published (issue 19), case by case: for every dataset, files
made from its own recorded payload that are not its format or that carry hostile header cells and
values (devtools/input_corpus.py) end as each case says, through ``scdx ingest-file``'s path and
through the replay server:

- refused: the run fails naming the file and what was expected and found (or the field the contract
  refuses), and every published table and mart keeps its checksum;
- read: UTF-16, Latin-1, a byte-order mark, CRLF, the other format a source also reads: published as
  the UTF-8 original would be;
- stored verbatim: a hostile value is a value, stored byte for byte; a hostile column name is
  recorded as drift, byte for byte.

And no case writes a file outside the data directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pytest

from devtools.input_corpus import (
    BY_NAME,
    DATASETS,
    FORMAT_CASES,
    HOSTILE_CASES,
    InputCase,
    base_file,
    corpus,
)
from devtools.release_checks import checksums
from pipelines.common.settings import Settings
from pipelines.contracts import Registry
from pipelines.orchestration.guards import start_run
from pipelines.orchestration.refresh import ingest_file, refresh_dataset
from pipelines.replay import faf5_generate
from pipelines.replay.server import ReplayServer
from pipelines.sources.window import Window
from pipelines.store.layout import Layout
from pipelines.store.runs import RunRecord
from pipelines.store.tiers import open_public

from .conftest import AS_OF, RECORDINGS, SCHEMAS

SCDX = str(Path(sys.executable).parent / "scdx")
REFUSED = ("failed", "quarantined", "blocked")
READ = ("published", "unchanged")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Everything of this module: the base release, the data dir, the cases and ``outside``."""
    return tmp_path_factory.mktemp("input-corpus")


@pytest.fixture(scope="module")
def cases(root: Path) -> dict[str, InputCase]:
    (root / "outside").mkdir()
    return {case.id: case for case in corpus(root / "outside", root / "work")}


# What a run never writes in place: a release file, a table segment, a landed or staged file, a
# run's report are written beside the old ones under new names (or aside and renamed into place).
# A restore shares these with the base release by hard link and copies the rest (the catalog,
# GX's stores and Data Docs, the locks), which runs do rewrite.
WRITTEN_ONCE = ("versions", "tables", "raw", "staged", "reports")


@dataclass(frozen=True)
class BaseRelease:
    """The base release kept aside (in the module's ``root``), what it publishes (every table's
    and mart's checksum, taken where it was published), and how its hard-linked files stood then."""

    path: Path
    checksums: dict[str, tuple[int, int]]
    linked: dict[Path, tuple[int, int, int]]


def _written_once(base: Path) -> dict[Path, tuple[int, int, int]]:
    """Size, modification time and mode of every file a restore hard-links: a run that wrote one
    in place (through the link) would change them."""
    stats = {path: path.stat() for top in WRITTEN_ONCE for path in (base / top).rglob("*") if path.is_file()}
    return {path: (stat.st_size, stat.st_mtime_ns, stat.st_mode) for path, stat in stats.items()}


def _restore(base: Path, data: Path) -> None:
    """``base`` at ``data``: the files no run rewrites hard-linked, the others copied; the
    current-release link stays a link."""

    def link_or_copy(source: str, target: str) -> None:
        if Path(source).relative_to(base).parts[0] in WRITTEN_ONCE:
            os.link(source, target)
        else:
            shutil.copy2(source, target)

    shutil.copytree(base, data, symlinks=True, copy_function=link_or_copy)


@pytest.fixture(scope="module")
def base_release(root: Path, registry: Registry) -> BaseRelease:
    """A data dir where every dataset's recorded payload is published (by ingest-file), kept aside."""
    settings = _settings(root / "data")
    settings.data_dir.mkdir()
    for recorded in DATASETS:
        contract = registry.get(recorded.dataset)
        run = ingest_file(contract, registry, settings, base_file(recorded, root / "work"))
        assert run.status == "published", run.error
    shutil.copytree(settings.data_dir, root / "base", symlinks=True)
    return BaseRelease(root / "base", _published(settings), _written_once(root / "base"))


@pytest.fixture
def published(root: Path, base_release: BaseRelease, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The base release restored at the path it was published at (a release's views name their
    Parquet files by absolute path); the working directory is a watched one, so a value taken for a
    relative path would land where the test looks. Afterwards, the base release is as it was."""
    data = root / "data"
    shutil.rmtree(data)
    _restore(base_release.path, data)
    cwd = root / "cwd"
    cwd.mkdir(exist_ok=True)
    monkeypatch.chdir(cwd)
    yield _settings(data)
    # A run that rewrote a hard-linked file in place would have changed the base release itself.
    assert _written_once(base_release.path) == base_release.linked, "a run wrote a WRITTEN_ONCE file in place"


def _settings(data_dir: Path, recordings: Path = RECORDINGS) -> Settings:
    return Settings(data_dir=data_dir, schemas_dir=SCHEMAS, recordings_dir=recordings)


def _files_outside(root: Path, data_dir: Path) -> set[Path]:
    """Every file under ``root`` but in ``data_dir`` (whose tree is not walked); links to
    directories are not followed."""
    found: set[Path] = set()
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if Path(directory, name) != data_dir]
        found.update(Path(directory, name) for name in files)
    return found


def _published(settings: Settings) -> dict[str, tuple[int, int]]:
    with open_public(Layout(settings.data_dir)) as con:
        return checksums(con)


def _column(settings: Settings, dataset: str, column: str) -> set[str]:
    with open_public(Layout(settings.data_dir)) as con:
        return {v for (v,) in con.execute(f"SELECT DISTINCT {column} FROM curated.{dataset}").fetchall()}


def _ingest(settings: Settings, registry: Registry, dataset: str, path: Path) -> RunRecord:
    """``scdx ingest-file``'s path; the run record however it ended (a refused run raises once recorded)."""
    contract = registry.get(dataset)
    run = start_run(contract)
    with contextlib.suppress(ValueError, RuntimeError):
        ingest_file(contract, registry, settings, path, run=run)
    return run


def _landed_manifests(settings: Settings, run: RunRecord) -> list[Path]:
    return list(Layout(settings.data_dir).raw_dir(run.dataset, run.run_id).glob("*.manifest.json"))


def _unchanged_but(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], dataset: str
) -> bool:
    """Every curated table but ``dataset``'s is as it was (marts are built from it, so may change)."""
    return {k: v for k, v in before.items() if k.startswith("curated.") and k != f"curated.{dataset}"} == {
        k: v for k, v in after.items() if k.startswith("curated.") and k != f"curated.{dataset}"
    }


def _folded(name: str) -> str:
    """A header cell as every source's name folding leaves it comparable: lower case, letters and digits."""
    return "".join(c for c in name.lower() if c.isalnum())


def _rows(checksums_: dict[str, tuple[int, int]], dataset: str) -> int:
    return checksums_[f"curated.{dataset}"][0]


def judge(
    case: InputCase, run: RunRecord, settings: Settings, path: Path, before: dict[str, tuple[int, int]]
) -> None:
    """Assert the run ended as ``case`` says and did nothing else to what is published."""
    after = _published(settings)
    if case.outcome == "refused":
        assert run.status in REFUSED, (run.status, run.error)
        for name in case.names:
            assert name in (run.error or ""), (name, run.error)
        assert after == before
        if any(name.startswith("expected ") for name in case.names):
            # A file that is not the dataset's format is refused before anything lands, by its own path.
            assert f"{case.dataset}: {path}: expected " in (run.error or ""), run.error
            assert _landed_manifests(settings, run) == []
        return
    assert run.status in READ, (run.status, run.error)
    assert _unchanged_but(before, after, case.dataset)
    # Merged by key: no published row is lost (a changed key value, a country's name, adds its rows).
    assert _rows(after, case.dataset) >= _rows(before, case.dataset)
    if case.column == "drift":
        # Recorded under the name the source gives a header cell (some fold case and spaces), in full.
        new_fields = [str(event["field"]).lower() for event in run.drift if event["kind"] == "new_field"]
        for value in case.values:
            assert any(_folded(value) in _folded(field) for field in new_fields), (value[:80], new_fields)
    elif case.column is not None:
        stored = _column(settings, case.dataset, case.column)
        missing = [value[:80] for value in case.values if value not in stored]
        assert missing == []
    elif case.outcome == "read":
        assert after == before  # the same rows as the UTF-8 recording already published


FORMAT = [pytest.param(d.dataset, name, id=f"{d.dataset}-{name}") for d in DATASETS for name in FORMAT_CASES]
HOSTILE = [
    pytest.param(d.dataset, name, id=f"{d.dataset}-{name}") for d in DATASETS for name in HOSTILE_CASES
]


def _case(cases: dict[str, InputCase], dataset: str, name: str) -> InputCase:
    return cases[f"{dataset}-{name.replace(' ', '_')}"]


IngestCase = Callable[[str, str], tuple[InputCase, RunRecord, Path, dict[str, tuple[int, int]]]]


@pytest.fixture
def ingest_case(
    cases: dict[str, InputCase],
    root: Path,
    registry: Registry,
    published: Settings,
    base_release: BaseRelease,
) -> IngestCase:
    """Run a dataset's case through ``scdx ingest-file``'s path on the restored base release, watching
    that nothing is written outside the data dir; the case, its run, its file and what was
    published before it (the base release's checksums)."""

    def ingest(dataset: str, name: str) -> tuple[InputCase, RunRecord, Path, dict[str, tuple[int, int]]]:
        case = _case(cases, dataset, name)
        path = case.write(root / "cases" / case.id)
        outside_before = _files_outside(root, published.data_dir)
        run = _ingest(published, registry, case.dataset, path)
        assert _files_outside(root, published.data_dir) == outside_before
        return case, run, path, base_release.checksums

    return ingest


@pytest.mark.parametrize(("dataset", "name"), FORMAT)
def test_a_file_not_in_its_datasets_format_is_refused_naming_it_or_read_as_its_utf8_original(
    dataset: str, name: str, ingest_case: IngestCase, published: Settings
) -> None:
    case, run, path, before = ingest_case(dataset, name)
    judge(case, run, published, path, before)


@pytest.mark.parametrize(("dataset", "name"), HOSTILE)
def test_hostile_header_cells_and_values_are_refused_or_stored_verbatim_and_never_run(
    dataset: str, name: str, ingest_case: IngestCase, published: Settings
) -> None:
    case, run, path, before = ingest_case(dataset, name)
    judge(case, run, published, path, before)


@pytest.mark.parametrize(
    ("dataset", "name", "says"),
    [
        ("bts_border_crossings", "binary data", "expected CSV or JSON, found binary data (gzip)"),
        ("eia_electricity", "the other format", "expected JSON, found delimited text (UTF-8)"),
        ("afdc_charging_stations", "directory", "expected JSON, found a directory"),
        ("usgs_mineral_salient", "empty file", "expected CSV, found an empty file (0 bytes)"),
        ("bls_qcew_industry", "truncated mid-record", "header has 42"),
    ],
)
def test_scdx_ingest_file_refuses_with_exit_1_and_one_line_naming_the_file_and_what_it_found(
    dataset: str,
    name: str,
    says: str,
    cases: dict[str, InputCase],
    root: Path,
    published: Settings,
    base_release: BaseRelease,
) -> None:
    case = _case(cases, dataset, name)
    path = case.write(root / "cli" / case.id)
    before = base_release.checksums  # what ``published`` publishes: the base release, restored
    # The console's width pinned far beyond any message, so one message is one line whatever the terminal.
    env = {**os.environ, "SCDX_DATA_DIR": str(published.data_dir), "COLUMNS": "100000"}
    result = subprocess.run(
        [SCDX, "ingest-file", dataset, str(path)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 1, result.stderr[-2000:]
    # One message (log lines, time-stamped, may come before it), on one line.
    messages = [line for line in result.stderr.splitlines() if line.startswith(f"{dataset}: ")]
    assert len(messages) == 1, result.stderr
    assert case.file_name in messages[0] and says in messages[0], messages[0]
    assert _published(published) == before


# --- through the replay server ---------------------------------------------------------------------

# How each dataset's refresh reaches the recording its hostile variant replaces.
REFRESHES: dict[str, dict[str, object]] = {
    "census_trade_imports": {"window": Window(date(2024, 1, 1), date(2024, 1, 1))},
    "census_trade_exports": {"window": Window(date(2024, 1, 1), date(2024, 1, 1))},
    "usgs_mineral_production": {"as_of": AS_OF},
    "usgs_mineral_salient": {"as_of": AS_OF},
    "bts_border_crossings": {"as_of": AS_OF},
    "eia_electricity": {"window": Window(date(2022, 1, 1), date(2022, 12, 1))},
    "afdc_charging_stations": {"as_of": AS_OF},
    "bls_qcew_industry": {"as_of": date(2022, 3, 15)},
    "faf5_regional_flows": {"as_of": AS_OF},
}
REPLAYED = [
    pytest.param(d.dataset, name, id=f"{d.dataset}-{name}")
    for d in DATASETS
    for name in ("hostile values", "hostile header cell")
]


def _serve_in_place_of_the_recording(
    case: InputCase, recordings: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case's bytes where the replay server reads the dataset's recording (FAF5: the file it
    builds, placed in its cache)."""
    recorded = BY_NAME[case.dataset]
    assert case.content is not None
    if recorded.form == "faf_zip":
        from devtools.input_corpus import FAF_RECORDS

        monkeypatch.setenv("SCDX_CACHE_DIR", str(cache))
        monkeypatch.setenv(faf5_generate.ROWS_ENV, str(FAF_RECORDS))
        built = faf5_generate.cached_faf5_zip(FAF_RECORDS)
        built.write_bytes(case.content)
        return
    content = case.content
    if recorded.dataset == "eia_electricity":  # the replay answers the query's records from the document
        content = json.dumps(json.loads(content)).encode()
    (recordings / recorded.recording).write_bytes(content)


@pytest.mark.parametrize(("dataset", "name"), REPLAYED)
def test_hostile_header_cells_and_values_from_the_agency_end_as_in_a_file_in_hand(
    dataset: str,
    name: str,
    cases: dict[str, InputCase],
    root: Path,
    registry: Registry,
    published: Settings,
    base_release: BaseRelease,
    recordings_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = _case(cases, dataset, name)
    _serve_in_place_of_the_recording(case, recordings_copy, tmp_path / "cache", monkeypatch)
    settings = replace(published, recordings_dir=recordings_copy)
    before = base_release.checksums  # what ``settings`` publishes: the base release, restored
    outside_before = _files_outside(root, settings.data_dir)
    contract = registry.get(dataset)
    run = start_run(contract)
    with ReplayServer(recordings_copy) as server, contextlib.suppress(ValueError, RuntimeError):
        refresh_dataset(contract, registry, settings, server.url, run=run, **REFRESHES[dataset])  # type: ignore[arg-type]
    assert _files_outside(root, settings.data_dir) == outside_before
    after = _published(settings)
    if case.outcome == "refused":
        assert run.status in REFUSED, (run.status, run.error)
        assert after == before
        return
    assert run.status in READ, (run.status, run.error)
    assert _unchanged_but(before, after, dataset)
    stored = _column(settings, dataset, str(case.column))
    assert [value[:80] for value in case.values if value not in stored] == []
