"""File locks: one writer per database tier, one refresh per dataset, across processes.

``fcntl.flock`` locks belong to an open file description, so a process taking the same lock twice
would wait on itself; these locks are re-entrant within a process (a count per path) and
exclusive across processes. A waiter gives up after ``timeout_s`` with a clear error.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from pipelines.common.errors import ScdxError

_held: dict[Path, tuple[IO[str], int]] = {}
_guard = threading.Lock()


class LockError(ScdxError, RuntimeError):
    """The lock cannot be taken: its file cannot be created (e.g. the data directory is read-only)."""


class LockTimeout(LockError):
    """Another process held the lock for longer than the caller would wait."""


@contextmanager
def file_lock(path: Path, timeout_s: float, holder: str) -> Iterator[None]:
    """Hold the exclusive lock at ``path``; ``holder`` says what waits, in the timeout message."""
    path = path.resolve()
    with _guard:
        if path in _held:
            handle, count = _held[path]
            _held[path] = (handle, count + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                handle, count = _held[path]
                _held[path] = (handle, count - 1)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - kept open while the lock is held
    except OSError as exc:
        raise LockError(f"{holder}: cannot open the lock file {path}: {exc.strerror}") from None
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{holder}: another process holds {path} for more than {timeout_s:.0f} s"
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        with _guard:
            _held[path] = (handle, 1)
        try:
            yield
        finally:
            with _guard:
                _, count = _held[path]
                if count == 1:
                    del _held[path]
                else:  # pragma: no cover - re-entries always exit before the outer one
                    _held[path] = (handle, count - 1)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()
