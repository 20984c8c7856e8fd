"""Finding damage in a local store: a file of a release that is missing, changed or unrecorded.

Before a release is built on, its files are checked cheaply (size and modification time against
the catalog); ``scdx publish verify`` checks every kept release by checksum."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.store import Damage, DamagedRelease
from pipelines.store.catalog import Catalog
from pipelines.store.segments import StoredTable, file_sha256

CHANGED = "checksum differs from the one recorded when it was written"


def stat_problem(path: Path, record: Mapping[str, Any] | None) -> str | None:
    """What is wrong with a table file by its size and time against the catalog's record, or None."""
    if record is None:
        return "is not recorded in the catalog"
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "is missing"
    if stat.st_size != record["bytes"]:
        return f"is {stat.st_size} bytes, {record['bytes']} when it was written"
    if stat.st_mtime_ns != record["mtime_ns"]:
        return "was modified after it was written"
    return None


def checksum_problem(path: Path, sha256: str) -> str | None:
    """What is wrong with a file against its recorded checksum (missing, changed), or None."""
    if not path.exists():
        return "missing"
    return CHANGED if file_sha256(path) != sha256 else None


def check_release_files(
    catalog: Catalog,
    tier: str,
    root: Path,
    number: int,
    tables: Mapping[str, StoredTable],
    release_file: bool,
) -> None:
    """Refuse to build on a release whose files changed since they were written (size, time)."""
    paths = [s.file for t in tables.values() for s in t.segments]
    recorded = catalog.files(tier, paths)
    for path in paths:
        problem = stat_problem(root / path, recorded.get(path))
        if problem:
            raise DamagedRelease(
                f"{tier} tier, release {number}: {path} {problem}; nothing published. "
                f"Check with `scdx publish verify`; restore with `scdx publish rollback <an undamaged release>`"
            )
    row = catalog.release(tier, number) if release_file else None
    if not row or not row["file"]:
        return
    path = root / row["file"]
    if not path.exists():
        raise DamagedRelease(
            f"{tier} tier, release {number}: its file {row['file']} is missing; nothing published. "
            f"Restore it with `scdx publish rollback {number}`"
        )
    if path.stat().st_size != row["bytes"]:
        raise DamagedRelease(
            f"{tier} tier, release {number}: its file {row['file']} changed size since it was written; "
            f"nothing published. Restore it with `scdx publish rollback {number}`"
        )


def damaged_files(
    catalog: Catalog, tier: str, root: Path, kept: Mapping[int, Mapping[str, StoredTable]]
) -> list[Damage]:
    """Every file of the ``kept`` releases (release number -> its tables) that is missing, not
    recorded, or whose checksum differs from the recorded one; the release files too."""
    damage: list[Damage] = []
    recorded = catalog.files(tier)
    release_rows = {r["number"]: r for r in catalog.releases(tier)}
    for number, tables in kept.items():
        row = release_rows[number]
        if row["file"] and (problem := checksum_problem(root / row["file"], row["sha256"])):
            damage.append(Damage(number, row["file"], problem))
        for table in tables.values():
            for segment in table.segments:
                record = recorded.get(segment.file)
                if record is None:
                    damage.append(Damage(number, segment.file, "not recorded in the catalog"))
                elif problem := checksum_problem(root / segment.file, record["sha256"]):
                    damage.append(Damage(number, segment.file, problem))
    return damage
