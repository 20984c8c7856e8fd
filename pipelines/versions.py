"""Versioned curated databases: build aside, swap a symlink, never block a reader.

DuckDB allows one read-write process per database file, and a writer excludes readers. So the
path readers open (``scdx.duckdb``, or the restricted tier's) is a symlink to an immutable version
file. A change copies a version to a temporary file, changes the copy in one transaction,
checkpoints and closes it, renames it to the next version number and swaps the symlink with an
atomic rename. A reader that opened the old version keeps reading it (on POSIX an unlinked open
file stays readable); a reader opening the path afterwards gets the new version. Changes to a tier
are serialized by a lock file. Old versions are kept up to a retention count; any kept version
can be restored (a rollback is itself a new version, so history only grows).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipelines.faults import crash_point
from pipelines.layout import VersionStore, fsync_path
from pipelines.locks import LockTimeout, file_lock
from pipelines.settings import duckdb_config

log = logging.getLogger("scdx.versions")

VERSION_FILE = re.compile(r"^scdx(?:_[a-z]+)?-v(\d{6})\.duckdb$")
LOCK_TIMEOUT_S = 3600.0

# change(connection to the new version, its number, the version it was built from) -> run ids
Change = Callable[[duckdb.DuckDBPyConnection, int, int | None], list[str]]


class VersionError(RuntimeError):
    """A tier's versions cannot be changed as asked; what is published stays as it was."""


@contextmanager
def store_lock(store: VersionStore, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the tier's lock (one writer at a time); wait up to ``timeout_s``, then fail cleanly."""
    try:
        with file_lock(store.lock, timeout_s, f"publishing to the {store.tier} tier"):
            yield
    except LockTimeout as exc:
        raise VersionError(f"another publish holds {store.lock} for more than {timeout_s:.0f} s") from exc


def version_files(store: VersionStore) -> dict[int, Path]:
    """Every complete version file of the tier, by version number."""
    out: dict[int, Path] = {}
    if store.versions_dir.exists():
        for path in store.versions_dir.iterdir():
            match = VERSION_FILE.match(path.name)
            if match:
                out[int(match.group(1))] = path
    return out


def current_version(store: VersionStore) -> int | None:
    """The version the tier's path points to, or None before its first publish."""
    if not store.link.is_symlink():
        if store.link.exists():
            raise VersionError(f"{store.link} is not a symlink to a version; refusing to replace it")
        return None
    match = VERSION_FILE.match(Path(os.readlink(store.link)).name)
    if not match:
        raise VersionError(f"{store.link} points to {os.readlink(store.link)}, not a version file")
    return int(match.group(1))


def _prepare_dirs(store: VersionStore) -> None:
    mode = 0o700 if store.private else 0o755
    for directory in (store.link.parent, store.versions_dir):
        directory.mkdir(parents=True, exist_ok=True)
        if store.private:
            os.chmod(directory, mode)


def _swap_link(store: VersionStore, target: Path) -> None:
    temporary = store.link.parent / f".{store.link.name}.{uuid.uuid4().hex}.link"
    os.symlink(os.path.relpath(target, store.link.parent), temporary)
    os.replace(temporary, store.link)
    fsync_path(store.link.parent)


# Copies of a version made ahead of the change that will need them (prepare_copy), by this
# process's threads still making them.
_copying: dict[Path, threading.Thread] = {}
_copying_guard = threading.Lock()


def _spare_path(store: VersionStore, version: int) -> Path:
    path = store.version_path(version)
    return path.with_name(path.name + ".spare")


def prepare_copy(store: VersionStore) -> None:
    """Start copying the tier's current version, on a background thread, for its next change.

    Every run ends in a new version (its data, or only its run record), and a new version starts
    as a copy of the current one: for a large database, most of that version's cost. Started when
    a run starts, the copy is made while the run downloads; ``new_version`` takes it if it is
    still of the version being changed, else copies as usual. The copy is an exact, flushed
    duplicate of an immutable file, so taking it is the same as copying then.
    """
    try:
        version = current_version(store)
    except VersionError:
        return
    if version is None:
        return
    spare = _spare_path(store, version)
    with _copying_guard:
        if spare in _copying or spare.exists():
            return
        thread = threading.Thread(
            target=_copy_spare,
            args=(store.version_path(version), spare),
            name=f"scdx-copy-{store.tier}",
            daemon=True,
        )
        _copying[spare] = thread
    thread.start()


def _copy_spare(source: Path, spare: Path) -> None:
    # A copy cut short (the process died) matches _clean_leftovers' "*.tmp*" and is removed.
    partial = spare.with_name(spare.name + f".tmp{uuid.uuid4().hex[:8]}")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        shutil.copyfile(source, partial)
        shutil.copymode(source, partial)  # readable by whom the version is, no more
        fsync_path(partial)
        os.rename(partial, spare)
    except OSError as exc:
        # Only an optimisation: the change copies the version itself.
        log.debug("no copy ahead of %s: %s", source.name, exc)
        partial.unlink(missing_ok=True)
    finally:
        with _copying_guard:
            _copying.pop(spare, None)


def wait_for_copies() -> None:
    """Wait until this process's copies ahead (``prepare_copy``) are finished or abandoned."""
    with _copying_guard:
        threads = list(_copying.values())
    for thread in threads:
        thread.join()


def _take_spare(store: VersionStore, version: int, target: Path) -> bool:
    """Move a finished copy of ``version`` made ahead to ``target``; False when there is none."""
    spare = _spare_path(store, version)
    try:
        if spare.stat().st_size != store.version_path(version).stat().st_size:
            return False
        os.rename(spare, target)
    except FileNotFoundError:
        return False
    return True


def _clean_leftovers(store: VersionStore) -> None:
    """Remove what a crashed change left behind (temporary copies, WALs, dangling links)."""
    for path in store.versions_dir.glob("*.tmp*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)  # DuckDB's spill directory of a crashed change
        else:
            path.unlink(missing_ok=True)
    for path in store.link.parent.glob(f".{store.link.name}.*.link"):
        path.unlink(missing_ok=True)


def _prune(store: VersionStore, keep: int) -> None:
    files = version_files(store)
    current = current_version(store)
    for spare in store.versions_dir.glob("*.spare"):
        if current is None or spare != _spare_path(store, current):
            spare.unlink(missing_ok=True)  # a copy of a version no change will start from
    for version in sorted(files)[:-keep] if keep > 0 else []:
        if version != current:
            files[version].unlink(missing_ok=True)


def new_version(store: VersionStore, keep: int, change: Change, base: int | None = None) -> tuple[int, Path]:
    """Copy version ``base`` (default: the current one), apply ``change`` in one transaction, swap it in."""
    _prepare_dirs(store)
    with store_lock(store):
        wait_for_copies()  # this process's copies ahead are not leftovers
        _clean_leftovers(store)
        previous = current_version(store)
        source = previous if base is None else base
        files = version_files(store)
        if base is not None and base not in files:
            kept = ", ".join(str(v) for v in sorted(files)) or "none"
            raise VersionError(f"version {base} of the {store.tier} tier is no longer kept (kept: {kept})")
        version = max(files, default=0) + 1
        final = store.version_path(version)
        temporary = final.with_name(final.name + f".tmp{uuid.uuid4().hex[:8]}")
        try:
            if source is not None and not _take_spare(store, source, temporary):
                shutil.copyfile(store.version_path(source), temporary)
            con = duckdb.connect(str(temporary), config=duckdb_config())
            try:
                con.execute("BEGIN TRANSACTION")
                change(con, version, previous)
                crash_point("publish:before_commit")
                con.execute("COMMIT")
                con.execute("CHECKPOINT")
            finally:
                con.close()
            if store.private:
                os.chmod(temporary, 0o600)
            fsync_path(temporary)
            os.rename(temporary, final)
            crash_point("publish:before_swap")
            _swap_link(store, final)
            crash_point("publish:after_swap")
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            Path(str(temporary) + ".wal").unlink(missing_ok=True)
            raise VersionError(
                f"{store.tier} tier: cannot write version {version} ({temporary}): {exc.strerror or exc}"
            ) from None
        except BaseException:
            temporary.unlink(missing_ok=True)
            Path(str(temporary) + ".wal").unlink(missing_ok=True)
            raise
        _prune(store, keep)
    log.info("%s tier: version %d", store.tier, version)
    return version, final


@contextmanager
def open_current(store: VersionStore) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the tier's current version (what an analyst gets)."""
    if not store.link.exists():
        raise VersionError(f"nothing published yet in the {store.tier} tier ({store.link})")
    con = duckdb.connect(str(store.link), read_only=True)
    try:
        yield con
    finally:
        con.close()
