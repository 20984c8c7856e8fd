"""Land: raw response bytes exactly as received, with a manifest per response.

``raw/<dataset>/<run_id>/`` is written once and never modified or deleted afterwards. The run
directory is complete when ``_landed.json`` exists; a crashed run leaves a directory without it,
which later stages refuse to read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipelines.common.errors import ScdxError
from pipelines.common.faults import crash_point
from pipelines.common.redact import redact_params, redact_text
from pipelines.sources.http import FetchedPage, PageRequest
from pipelines.store.layout import Layout, fsync_path

LANDED_MARKER = "_landed.json"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")

_EXTENSIONS = {
    "application/json": "json",
    "text/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/zip": "zip",
    "text/plain": "txt",
}


class LandError(ScdxError, RuntimeError):
    """Raw data could not be written, or a landed run is incomplete."""


@dataclass(frozen=True)
class LandedPage:
    body_path: Path
    manifest: dict[str, Any]


@dataclass(frozen=True)
class LandedBatch:
    """The raw responses of one run of one dataset."""

    dataset: str
    run_id: str
    directory: Path
    pages: tuple[LandedPage, ...]

    @property
    def sha256s(self) -> list[str]:
        return [p.manifest["sha256"] for p in self.pages]

    @property
    def total_bytes(self) -> int:
        return sum(int(p.manifest["bytes"]) for p in self.pages)


def _extension(content_type: str | None) -> str:
    media = (content_type or "").split(";")[0].strip().lower()
    return _EXTENSIONS.get(media, "bin")


def _write_new(path: Path, data: bytes) -> None:
    """Write a file that must not exist yet (the caller flushes it to disk)."""
    with open(path, "xb") as handle:
        handle.write(data)


def _place_file(source: Path, target: Path, move: bool) -> str:
    """Put a body that is on disk at ``target`` (a new file), in chunks; return its sha256.

    A temporary download is moved (renamed when on the same filesystem); a file in hand is copied,
    never moved. Memory holds one chunk, whatever the size.
    """
    digest = hashlib.sha256()
    if move and not target.exists():
        try:
            os.rename(source, target)
        except OSError:
            pass  # another filesystem: copy below, then remove the temporary
        else:
            with open(target, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                os.fsync(handle.fileno())
            return digest.hexdigest()
    with open(source, "rb") as reader, open(target, "xb") as writer:
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    if move:
        source.unlink(missing_ok=True)
    return digest.hexdigest()


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def _request_key(url: str, params: Iterable[Iterable[str]]) -> str:
    """What asked for a response (path and redacted parameters): pairs it with an earlier run's.

    Not the host: the same request to a mirror, or to a replay server on another port, is the same.
    """
    return json.dumps([urlsplit(url).path, [list(p) for p in params]])


def _holds_bytes(previous: LandedPage, body: bytes) -> bool:
    """Whether an earlier landed file holds exactly ``body``, compared byte for byte.

    A comparison, not a checksum: reading a file back from the page cache and comparing costs a
    third of hashing it, and it also proves the earlier file was not altered on disk since.
    """
    try:
        if previous.body_path.stat().st_size != len(body):
            return False
        return previous.body_path.read_bytes() == body
    except OSError:
        return False


def _link_same_bytes(previous: Path, target: Path) -> bool:
    """Land ``target`` as a hard link to an earlier run's identical raw file; False if that fails.

    Raw files are never modified, so two runs can share one copy of bytes the agency sent twice
    (the nightly refresh of a month that did not change): no second write, no second fsync.
    """
    try:
        os.link(previous, target)
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class _EarlierFiles:
    """An earlier run's landed files, by the request that fetched them and by checksum."""

    by_request: dict[str, LandedPage]
    by_sha256: dict[str, LandedPage]

    @classmethod
    def of(cls, earlier: LandedBatch | None) -> _EarlierFiles:
        pages = earlier.pages if earlier is not None else ()
        return cls(
            by_request={_request_key(p.manifest["url"], p.manifest["params"]): p for p in pages},
            by_sha256={p.manifest["sha256"]: p for p in pages},
        )

    def same_bytes(self, page: FetchedPage) -> tuple[LandedPage | None, str]:
        """(the earlier file holding exactly this body or None, the body's sha256)."""
        key = _request_key(page.request.redacted_url, redact_params(page.request.params))
        counterpart = self.by_request.get(key)
        if counterpart is not None and _holds_bytes(counterpart, page.body):
            # The same bytes as that earlier response: its checksum is this one's, no hashing.
            return counterpart, str(counterpart.manifest["sha256"])
        sha256 = hashlib.sha256(page.body).hexdigest()
        other = self.by_sha256.get(sha256)
        return (other if other is not None and _holds_bytes(other, page.body) else None), sha256


def _land_page(
    sequence: int,
    page: FetchedPage,
    dataset: str,
    run_id: str,
    directory: Path,
    origin: dict[str, str] | None,
    earlier: _EarlierFiles,
) -> tuple[LandedPage, list[Path]]:
    """Write one response and its manifest; returns the landed page and the files still to flush."""
    unflushed: list[Path] = []
    # The partition (a month, an offset, a file name) names the file; keep it a safe file name.
    partition = page.request.partition
    stem = partition.rsplit(".", 1)[0] if "." in partition else partition  # a file's own extension goes
    name = f"{sequence:05d}-{_SAFE_NAME.sub('_', stem)[:100]}"
    size = page.size
    body_path = directory / f"{name}.{_extension(page.content_type) if size else 'empty'}"
    try:
        same_as: LandedPage | None = None
        if page.body_file is not None:
            sha256 = _place_file(page.body_file, body_path, move=page.body_file_is_temporary)
        else:
            same_as, sha256 = earlier.same_bytes(page)
            if same_as is None or not _link_same_bytes(same_as.body_path, body_path):
                same_as = None
                _write_new(body_path, page.body)
                unflushed.append(body_path)
    except OSError as exc:
        raise LandError(f"{dataset}: cannot write {body_path}: {exc.strerror}") from None
    manifest = {
        "dataset": dataset,
        "run_id": run_id,
        "sequence": sequence,
        "partition": page.request.partition,
        "url": page.request.redacted_url,
        "params": [list(p) for p in redact_params(page.request.params)],
        "status": page.status,
        "content_type": page.content_type,
        "bytes": size,
        "sha256": sha256,
        "fetched_at": page.fetched_at.isoformat(),
        "attempts": page.attempts,
        "elapsed_s": round(page.elapsed_s, 4),
        "response_headers": page.response_headers,
        "file": body_path.name,
        **(origin or {"source": "http"}),
    }
    if same_as is not None:
        # The same bytes as this earlier landed file, stored once (a hard link).
        manifest["same_bytes_as"] = f"{same_as.manifest['run_id']}/{same_as.body_path.name}"
    try:
        _write_new(directory / f"{name}.manifest.json", _manifest_bytes(manifest))
    except OSError as exc:
        raise LandError(f"{dataset}: cannot write {body_path}: {exc.strerror}") from None
    unflushed.append(directory / f"{name}.manifest.json")
    return LandedPage(body_path=body_path, manifest=manifest), unflushed


def land(
    pages: Iterable[FetchedPage],
    dataset: str,
    run_id: str,
    layout: Layout,
    origin: dict[str, str] | None = None,
    earlier: LandedBatch | None = None,
) -> LandedBatch:
    """Write each response as it arrives (memory stays at one page) and mark the run complete.

    ``origin`` is added to every manifest (default: the agency's HTTP API). ``earlier``: a landed
    run whose files are shared by hard link when a response has exactly their bytes (compared
    byte for byte with the file the same request landed, else found by sha256 and compared).
    """
    earlier_files = _EarlierFiles.of(earlier)
    directory = layout.raw_dir(dataset, run_id)
    try:
        directory.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise LandError(f"{dataset}: {directory} already exists; landed data is never overwritten") from None
    except OSError as exc:
        raise LandError(f"{dataset}: cannot create {directory}: {exc.strerror}") from None
    landed: list[LandedPage] = []
    # Each file is flushed to disk by a second thread while the next response arrives; the run
    # is marked complete only once every flush has succeeded.
    with ThreadPoolExecutor(1, thread_name_prefix=f"scdx-fsync-{dataset}") as flusher:
        flushes: list[tuple[Path, Future[None]]] = []
        for sequence, page in enumerate(pages, start=1):
            landed_page, unflushed = _land_page(
                sequence, page, dataset, run_id, directory, origin, earlier_files
            )
            landed.append(landed_page)
            flushes.extend(
                (path, flusher.submit(fsync_path, path, path == landed_page.body_path)) for path in unflushed
            )
            if sequence == 1:
                crash_point("land:after_first_page")
        for path, flushed in flushes:
            try:
                flushed.result()
            except OSError as exc:
                raise LandError(f"{dataset}: cannot write {path}: {exc.strerror}") from None
    summary = {
        "dataset": dataset,
        "run_id": run_id,
        "landed_at": datetime.now(UTC).isoformat(),
        "pages": [p.manifest["file"] for p in landed],
        "bytes": sum(int(p.manifest["bytes"]) for p in landed),
        "sha256": [p.manifest["sha256"] for p in landed],
    }
    _write_new(directory / LANDED_MARKER, _manifest_bytes(summary))
    fsync_path(directory / LANDED_MARKER)
    return LandedBatch(dataset=dataset, run_id=run_id, directory=directory, pages=tuple(landed))


_SUFFIX_TYPES = {
    ".json": "application/json",
    ".csv": "text/csv",
    ".zip": "application/zip",
    ".parquet": "application/vnd.apache.parquet",
    ".txt": "text/plain",
}


def land_file(
    path: Path,
    dataset: str,
    run_id: str,
    layout: Layout,
    encoding: str | None = None,
    origin: dict[str, str] | None = None,
) -> LandedBatch:
    """Land a file a user downloaded by hand, exactly like a response: bytes, manifest, marker.

    ``encoding``: the text encoding the file was found in (pipelines.sources.formats), kept in the manifest
    so normalize reads the bytes as written. ``origin``: more to say in the manifest (a partner
    submission: its partner and submission id).
    """
    if not path.is_file():
        raise LandError(f"{dataset}: cannot read {path}: not a file")
    # The file is copied into place in chunks, never read whole (a bulk file can be hundreds of MB).
    page = FetchedPage(
        request=PageRequest(dataset=dataset, url=path.resolve().as_uri(), params=(), partition=path.name),
        status=200,
        content_type=_SUFFIX_TYPES.get(path.suffix.lower(), "application/octet-stream"),
        body=b"",
        fetched_at=datetime.now(UTC),
        attempts=1,
        elapsed_s=0.0,
        response_headers={},
        body_file=path,
        body_file_is_temporary=False,
    )
    # The manifest says where the bytes came from: a file in hand, by name (and, as always, checksum).
    said = {"source": "file", "file_name": path.name, **(origin or {})}
    if encoding is not None:
        said["encoding"] = encoding
    return land([page], dataset, run_id, layout, origin=said)


class FailedAttempts:
    """Keeps the bytes of failed attempts for diagnosis, beside the run's landed pages, bounded.

    ``raw/<dataset>/<run_id>/_failed_attempts/``: at most ``max_files`` records of at most 64 KiB
    each (what the HTTP client keeps of a rejected body), text redacted so no key echoed back by
    an error page is stored. They are diagnostics, never read by normalize.
    """

    def __init__(self, directory: Path, max_files: int = 20) -> None:
        self.directory = directory
        self.max_files = max_files
        self.kept = 0

    def __call__(self, request: PageRequest, attempt: int, error: Exception) -> None:
        if self.kept >= self.max_files:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.kept += 1
        stem = f"{self.kept:03d}-{_SAFE_NAME.sub('_', request.partition)[:60]}-attempt{attempt}"
        body = getattr(error, "body", b"") or b""
        with contextlib.suppress(UnicodeDecodeError):
            body = redact_text(body.decode("utf-8")).encode()
        record = {
            "url": request.redacted_url,
            "attempt": attempt,
            "status": getattr(error, "status", None),
            "error": redact_text(str(error)),
            "at": datetime.now(UTC).isoformat(),
            "body_file": f"{stem}.body" if body else None,
        }
        if body:
            (self.directory / f"{stem}.body").write_bytes(body)
        (self.directory / f"{stem}.json").write_bytes(_manifest_bytes(record))


def open_landed(dataset: str, run_id: str, layout: Layout) -> LandedBatch:
    """A previously landed run, read back from its manifests (used by Airflow's later tasks)."""
    directory = layout.raw_dir(dataset, run_id)
    marker = directory / LANDED_MARKER
    if not marker.exists():
        raise LandError(f"{dataset}: {directory} is not a complete landed run (no {LANDED_MARKER})")
    summary = json.loads(marker.read_text())
    pages = []
    for file_name in summary["pages"]:
        stem = file_name.rsplit(".", 1)[0]
        manifest = json.loads((directory / f"{stem}.manifest.json").read_text())
        pages.append(LandedPage(body_path=directory / file_name, manifest=manifest))
    return LandedBatch(dataset=dataset, run_id=run_id, directory=directory, pages=tuple(pages))
