"""BLS QCEW Open Data Access semantics over recorded CSV slices.

The open data are static files, one per quarter and slice, so the replay is a file server:
``<recordings>/bls_qcew/<year>/<qtr>/industry/<naics>.csv`` answers
``/cew/data/api/<year>/<qtr>/industry/<naics>.csv`` byte for byte, as ``text/csv``. A slice that
is not recorded (a quarter not released, an industry BLS does not publish) gets the server's
HTTP 404, as a missing file does upstream. Query parameters are ignored, as a file server ignores them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines.replay.reply import Reply

SUBDIR = "bls_qcew"
URL_PREFIX = "/cew/data/api"
_CSV_TYPE = "text/csv"


def _serve(path: Path) -> Callable[[str, list[tuple[str, str]]], Reply]:
    def answer(url_path: str, query: list[tuple[str, str]]) -> Reply:
        return Reply(200, {"Content-Type": _CSV_TYPE}, path.read_bytes())

    return answer


def routes(recordings_dir: Path) -> dict[str, Callable[[str, list[tuple[str, str]]], Reply]]:
    """Every recorded QCEW slice under ``recordings_dir/bls_qcew``, at its open-data URL path."""
    directory = recordings_dir / SUBDIR
    if not directory.is_dir():
        return {}
    return {
        f"{URL_PREFIX}/{path.relative_to(directory).as_posix()}": _serve(path)
        for path in sorted(directory.rglob("*.csv"))
    }
