"""A run's files on the data root (``SCDX_DATA_URL``): put there as each stage ends, read back by
the next task, which may run on another host.

Keys under the root:

raw/<dataset>/sha256/<sha256>                  each response's bytes, create-only, by content
raw/<dataset>/<run_id>/_manifest.json          the run's responses: request -> object key (create-only)
raw/<dataset>/<run_id>/_failed_attempts/...    diagnostics of failed attempts (redacted)
staged/<dataset>/<run_id>/part-NNNNN.parquet   the staged Parquet, then _staged.json once all are there
quarantine/<dataset>/<run_id>/...              a refused batch with the reports saying why
reports/<dataset>/<run_id>/...                 validation results

Raw bytes are addressed by their sha256 and written with a conditional put, so landing the same
bytes again writes nothing and nothing landed is ever replaced. A run's staged files count only
once ``_staged.json`` names them: a reader never takes a half-uploaded run for a whole one.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.common.settings import Settings
from pipelines.stages.land import LANDED_MARKER, LandedBatch, LandedPage, LandError
from pipelines.stages.stage import StagedBatch, StageError
from pipelines.store.data_root import DataRoot, open_data_root
from pipelines.store.layout import check_dataset, check_run_id

MANIFEST = "_manifest.json"
# A file name read from the root becomes a local path: one plain segment, no "..", no "/".
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}$")
STAGED_MARKER = "_staged.json"


def data_root_of(settings: Settings) -> DataRoot | None:
    """The data root the settings name (``SCDX_DATA_URL``), or None: run files stay local only."""
    if settings.data_url is None:
        return None
    return open_data_root(settings.data_url, settings.data_max_attempts)


def raw_key(dataset: str, sha256: str) -> str:
    """Where the bytes with this sha256 live: the key says what the content is."""
    if not _SHA256.match(sha256):
        raise LandError(f"{dataset}: {sha256!r} is not a sha256 (64 lowercase hex digits)")
    return f"raw/{check_dataset(dataset)}/sha256/{sha256}"


def run_prefix(area: str, dataset: str, run_id: str) -> str:
    """``<area>/<dataset>/<run_id>``: a run's prefix under the root (raw, staged, quarantine, reports)."""
    return f"{area}/{check_dataset(dataset)}/{check_run_id(run_id)}"


def _json_bytes(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class RootLanding:
    """What putting a landed run on the root did: its manifest's key and the objects it added."""

    manifest_key: str
    objects_written: int


def put_landed(landed: LandedBatch, root: DataRoot) -> RootLanding:
    """Put each response under its content address (create-only), then the run's manifest."""
    written = 0
    pages = []
    for page in landed.pages:
        key = raw_key(landed.dataset, page.manifest["sha256"])
        # Bytes landed before are looked up, not sent again; the create-only put settles a race.
        if not root.exists(key):
            written += root.write_create_only(key, page.body_path)
        pages.append({**page.manifest, "object": key})
    failed = landed.directory / "_failed_attempts"
    if failed.is_dir():
        for path in sorted(failed.iterdir()):
            root.write_create_only(
                f"{run_prefix('raw', landed.dataset, landed.run_id)}/_failed_attempts/{path.name}", path
            )
    manifest = {
        "dataset": landed.dataset,
        "run_id": landed.run_id,
        "put_at": datetime.now(UTC).isoformat(),
        "pages": pages,
        "bytes": landed.total_bytes,
    }
    key = f"{run_prefix('raw', landed.dataset, landed.run_id)}/{MANIFEST}"
    if not root.write_create_only(key, _json_bytes(manifest)):
        raise LandError(f"{landed.dataset}: {root.uri(key)} already exists; a run is landed once")
    return RootLanding(manifest_key=key, objects_written=written)


def _read_json(root: DataRoot, key: str) -> dict[str, Any]:
    with root.open_input(key) as stream:
        document: dict[str, Any] = json.loads(stream.read())
    return document


def _download(root: DataRoot, key: str, target: Path) -> str:
    """Copy an object to a new local file in chunks; returns the sha256 of what was copied."""
    digest = hashlib.sha256()
    with root.open_input(key) as stream, open(target, "xb") as writer:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            writer.write(chunk)
    return digest.hexdigest()


def landed_manifest(dataset: str, run_id: str, root: DataRoot) -> list[dict[str, Any]]:
    """The page manifests of a run landed on the root (each with ``object``, its bytes' key)."""
    manifest_key = f"{run_prefix('raw', dataset, run_id)}/{MANIFEST}"
    if not root.exists(manifest_key):
        raise LandError(
            f"{dataset}: {root.uri(manifest_key)} does not exist: run {run_id} was not landed on the data root"
        )
    pages: list[dict[str, Any]] = _read_json(root, manifest_key)["pages"]
    return pages


def fetch_landed(dataset: str, run_id: str, root: DataRoot, into: Path) -> LandedBatch:
    """A landed run read back from the root into ``into`` (a directory the calling task created).

    Each object's bytes are checked against the sha256 its key and manifest state.
    """
    entries = landed_manifest(dataset, run_id, root)
    manifest_key = f"{run_prefix('raw', dataset, run_id)}/{MANIFEST}"
    directory = into / "raw" / dataset / run_id
    directory.mkdir(parents=True)
    pages = []
    for entry in entries:
        page_manifest = {k: v for k, v in entry.items() if k != "object"}
        # The key is derived from the sha256 again, never taken from the manifest as written.
        key = raw_key(dataset, str(page_manifest["sha256"]))
        target = directory / _local_name(dataset, root.uri(manifest_key), page_manifest["file"])
        if _download(root, key, target) != page_manifest["sha256"]:
            raise LandError(f"{dataset}: {root.uri(key)} does not hold the bytes its sha256 names")
        pages.append(LandedPage(body_path=target, manifest=page_manifest))
    summary = {"dataset": dataset, "run_id": run_id, "pages": [p.manifest["file"] for p in pages]}
    (directory / LANDED_MARKER).write_bytes(_json_bytes(summary))
    return LandedBatch(dataset=dataset, run_id=run_id, directory=directory, pages=tuple(pages))


def _local_name(dataset: str, where: str, name: object) -> str:
    if not isinstance(name, str) or not _FILE_NAME.match(name):
        raise LandError(f"{dataset}: {where} names a file {name!r} that is not a plain file name")
    return name


def put_tree(directory: Path, prefix: str, root: DataRoot) -> list[str]:
    """Put every file under a local directory below ``prefix`` (replacing what is there); their keys."""
    keys = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(directory).as_posix()}"
        root.write(key, path)
        keys.append(key)
    return keys


def put_staged(staged: StagedBatch, root: DataRoot) -> tuple[str, ...]:
    """Put a staged run's Parquet under its run prefix, then the marker naming them; their URIs."""
    prefix = run_prefix("staged", staged.dataset, staged.run_id)
    keys = [f"{prefix}/{path.name}" for path in staged.files]
    for key, path in zip(keys, staged.files, strict=True):
        root.write(key, path)
    marker = {
        "dataset": staged.dataset,
        "run_id": staged.run_id,
        "rows": staged.rows,
        "files": [Path(k).name for k in keys],
    }
    root.write(f"{prefix}/{STAGED_MARKER}", _json_bytes(marker))
    return tuple(root.uri(k) for k in keys)


def remove_staged(dataset: str, run_id: str, root: DataRoot) -> None:
    """Take a staged run off the root (it was quarantined): its marker first, so the run is never
    seen as complete with files missing."""
    prefix = run_prefix("staged", dataset, run_id)
    root.delete(f"{prefix}/{STAGED_MARKER}")
    for key in root.list(prefix):
        root.delete(key)


def staged_keys(dataset: str, run_id: str, root: DataRoot) -> tuple[list[str], int]:
    """The keys of a completely staged run and its row count (the release step reads these)."""
    prefix = run_prefix("staged", dataset, run_id)
    if not root.exists(f"{prefix}/{STAGED_MARKER}"):
        raise StageError(f"{dataset}: no complete staged run {run_id} under {root.uri(prefix)}")
    marker = _read_json(root, f"{prefix}/{STAGED_MARKER}")
    names = [_local_name(dataset, root.uri(f"{prefix}/{STAGED_MARKER}"), n) for n in marker["files"]]
    return [f"{prefix}/{name}" for name in names], int(marker["rows"])


def fetch_staged(dataset: str, run_id: str, root: DataRoot, into: Path) -> StagedBatch:
    """A staged run read back from the root into ``into`` (a directory the calling task created)."""
    keys, rows = staged_keys(dataset, run_id, root)
    directory = into / "staged" / dataset / run_id
    directory.mkdir(parents=True)
    files = []
    for key in keys:
        target = directory / Path(key).name
        _download(root, key, target)
        files.append(target)
    return StagedBatch(dataset=dataset, run_id=run_id, directory=directory, files=tuple(files), rows=rows)
