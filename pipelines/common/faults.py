"""Crash points: where the fault catalogue kills a refresh to prove nothing is lost or half-published.

``SCDX_FAULT_KILL_AT=<point>`` makes the process SIGKILL itself when it reaches that point — the
same as a machine losing power or the OOM killer — and is unset in normal operation. The points
are the stage boundaries and the steps of a publish: before its commit (data and release files
being written), before the catalog records it, before and after the symlink swap
(docs/reliability.md lists them); and the steps of materializing a release.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "SCDX_FAULT_KILL_AT"
CRASH_POINTS = (
    "land:after_first_page",
    "after_land",
    "after_stage",
    "after_validate",
    "publish:before_commit",
    "publish:before_catalog",
    "publish:before_swap",
    "publish:after_swap",
)
# The steps of ``scdx publish materialize`` (not a refresh's): its copy written, moved into place,
# recorded in the catalog, and the path swapped to it.
MATERIALIZE_POINTS = ("materialize:before_move", "materialize:before_record", "materialize:before_swap")


def crash_point(name: str) -> None:
    """Die here, at once and uncleanly, if the fault catalogue asked for this point."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
