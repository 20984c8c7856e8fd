"""USGS ScienceBase file downloads over recorded MCS data release files.

Recordings are the published CSV files, byte for byte: ``<recordings>/usgs_mcs/<file name>``.
They are served at the ScienceBase file download form of the MCS 2024 data release item,

    GET /catalog/file/get/65a6e45fd34e5af967a46749?name=<file name>

(the URL form USGS data releases are downloaded with; the item id is the MCS 2024 release's).
The replay answers as a file store does: the file's bytes as ``text/csv`` with a
``Content-Disposition`` naming it, 404 for a name the item does not hold, 400 without ``name``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines.replay.reply import Reply

MCS2024_ITEM = "65a6e45fd34e5af967a46749"
FILE_PATH = f"/catalog/file/get/{MCS2024_ITEM}"
_TYPES = {".csv": "text/csv", ".txt": "text/plain"}


class ScienceBaseFiles:
    """The files of one ScienceBase item, read from a recordings directory on each request."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.names = {p.name for p in directory.iterdir() if p.is_file() and p.suffix in _TYPES}

    def answer(self, path: str, query: list[tuple[str, str]]) -> Reply:
        """The reply to ``GET <path>?name=<file>``."""
        names = [value for key, value in query if key == "name"]
        if len(names) != 1:
            return Reply(400, {"Content-Type": "text/plain"}, b"exactly one 'name' parameter is required")
        name = names[0]
        if name not in self.names:
            return Reply(404, {"Content-Type": "text/plain"}, f"File not found: {name}".encode())
        file = self.directory / name
        headers = {
            "Content-Type": _TYPES[file.suffix],
            "Content-Disposition": f'attachment; filename="{name}"',
        }
        return Reply(200, headers, file.read_bytes())


def routes(recordings_dir: Path) -> dict[str, Callable[[str, list[tuple[str, str]]], Reply]]:
    """The ScienceBase file download of the MCS 2024 item, when ``usgs_mcs`` recordings exist."""
    directory = recordings_dir / "usgs_mcs"
    if not directory.is_dir():
        return {}
    return {FILE_PATH: ScienceBaseFiles(directory).answer}
