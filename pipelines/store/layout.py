"""The data directory's layout: every path the pipeline reads or writes is named here, once.

raw/<dataset>/<run_id>/          bytes exactly as received + one manifest per response
staged/<dataset>/<run_id>/       contract-typed Parquet (zstd)
quarantine/<dataset>/<run_id>/   staged Parquet that failed a blocking check, with its report
reports/<dataset>/<run_id>/      validation results (ours and GX's)
gx/data_docs/                    Great Expectations Data Docs site
tables/public/<table>/           immutable table data of the releases (Parquet, read-only)
versions/public/                 one small DuckDB file per release: views over its tables, meta.*
scdx.duckdb                      symlink to the current public release (what analysts open)
catalog.sqlite                   the operational catalog: runs, releases, files (or SCDX_CATALOG_URL)
restricted/                      the restricted tier's tables, releases and path (owner-only)
restricted/catalog.key           the key sealing that tier's partition keys in the catalog
locks/                           publish and dataset locks
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipelines.common.errors import UsageError
from pipelines.common.sql import IDENTIFIER

RUN_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.+-]{0,127}$")


class LayoutError(UsageError, ValueError):
    """A dataset name or run id that cannot safely become part of a path."""


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: UTC timestamp plus random suffix."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    """Refuse run ids that would escape their directory."""
    if not RUN_ID.match(run_id) or ".." in run_id:
        raise LayoutError(f"invalid run id {run_id!r}: letters, digits, '_', '.', '+', '-' only")
    return run_id


def check_dataset(dataset: str) -> str:
    """Refuse dataset names that are not plain identifiers (no '../', no '/')."""
    if not IDENTIFIER.match(dataset):
        raise LayoutError(f"invalid dataset name {dataset!r}: lowercase identifier expected")
    return dataset


def fsync_path(path: Path, release_cache: bool = False) -> None:
    """Flush a file, or a directory's entries, to disk.

    ``release_cache``: then drop the flushed file's pages from the page cache, for large files
    written once and read back once (landed responses). Keeping them cached makes the page cache
    grow, and on a virtual machine the first touch of memory costs the writer CPU: landing 950 MB
    of responses took ~2.5 s of CPU, against ~0.3 s when the writes reuse pages just released.
    Normalize then reads them back from disk. Skipped where the platform has no posix_fadvise.
    """
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
        if release_cache and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class VersionStore:
    """One tier of releases: the path readers open, the release files behind it, its publish lock."""

    tier: str
    link: Path
    versions_dir: Path
    lock: Path
    private: bool

    def version_path(self, version: int) -> Path:
        prefix = "scdx" if self.tier == "public" else f"scdx_{self.tier}"
        return self.versions_dir / f"{prefix}-v{version:06d}.duckdb"


@dataclass(frozen=True)
class Layout:
    """Paths under one data directory."""

    root: Path

    def _run_dir(self, area: str, dataset: str, run_id: str) -> Path:
        return self.root / area / check_dataset(dataset) / check_run_id(run_id)

    def raw_dir(self, dataset: str, run_id: str) -> Path:
        return self._run_dir("raw", dataset, run_id)

    def staged_dir(self, dataset: str, run_id: str) -> Path:
        return self._run_dir("staged", dataset, run_id)

    def quarantine_dir(self, dataset: str, run_id: str) -> Path:
        return self._run_dir("quarantine", dataset, run_id)

    def report_dir(self, dataset: str, run_id: str) -> Path:
        return self._run_dir("reports", dataset, run_id)

    @property
    def data_docs_dir(self) -> Path:
        return self.root / "gx" / "data_docs"

    @property
    def gx_results_dir(self) -> Path:
        return self.root / "gx" / "validations"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    @property
    def public_db(self) -> Path:
        """The path analysts open: a symlink swapped atomically to the current version."""
        return self.root / "scdx.duckdb"

    @property
    def public_versions_dir(self) -> Path:
        return self.root / "versions" / "public"

    def public_version_path(self, version: int) -> Path:
        return self.public_versions_dir / f"scdx-v{version:06d}.duckdb"

    @property
    def publish_lock(self) -> Path:
        return self.store("public").lock

    def dataset_lock(self, dataset: str) -> Path:
        """Held by whatever refreshes ``dataset`` (CLI run, Airflow task) while it writes run files."""
        return self.root / "locks" / f"dataset-{check_dataset(dataset)}.lock"

    def stale_temporaries(self, dataset: str) -> list[Path]:
        """What a crashed run of ``dataset`` leaves behind: half-staged directories, scratch, partial downloads."""
        staged = self.root / "staged" / check_dataset(dataset)
        leftovers = sorted(staged.glob("*.tmp")) if staged.exists() else []
        leftovers += (
            sorted(self.work_dir.glob(f"validate-{dataset}-*.duckdb*")) if self.work_dir.exists() else []
        )
        # UTF-8 copies of text in other encodings that a killed normalize left (pipelines.stages.normalize).
        leftovers += sorted(self.work_dir.glob(f"normalize-{dataset}-*")) if self.work_dir.exists() else []
        # A download spooled to disk (pipelines.sources.http) by a run killed before landing it.
        leftovers += (
            sorted(self.work_dir.glob(f"download-{dataset}-*.part")) if self.work_dir.exists() else []
        )
        return leftovers

    @property
    def restricted_db(self) -> Path:
        """The restricted tier's database: never referenced by the public one, owner-only files."""
        return self.store("restricted").link

    @property
    def catalog_key(self) -> Path:
        """The key sealing the restricted tier's partition keys in the catalog (pipelines.store.sealing)."""
        return self.root / "restricted" / "catalog.key"

    def store(self, tier: str) -> VersionStore:
        """The version store of a tier ("public" or "restricted")."""
        if tier == "public":
            return VersionStore(
                tier,
                self.public_db,
                self.public_versions_dir,
                self.root / "locks" / "publish-public.lock",
                False,
            )
        if tier == "restricted":
            base = self.root / "restricted"
            return VersionStore(
                tier,
                base / "scdx_restricted.duckdb",
                base / "versions",
                self.root / "locks" / "publish-restricted.lock",
                True,
            )
        raise LayoutError(f"unknown tier {tier!r}: public or restricted")
