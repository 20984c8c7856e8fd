"""FAF5 download semantics: the regional database is one static zip at a fixed path.

``GET /faf5/data/download_files/FAF5.7.1.zip`` answers the file with ``Content-Type:
application/zip``, as the ORNL download server does; query parameters are ignored (it is a static
file) and any other file name under the download folder is a 404.

No real FAF5 file is available offline: the served bytes are constructed to the documented layout
by :mod:`pipelines.replay.faf5_generate` (see recordings/PROVENANCE.md), with ``SCDX_FAF5_ROWS`` records
(a small default for the demo; the bench serves millions). The file is generated on the first
request for a size, cached outside the recordings, and streamed from disk, so the server's memory
does not grow with the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines.replay import faf5_generate
from pipelines.replay.reply import Reply

LAYOUT = "FAF5.7.1_layout.json"


def routes(recordings_dir: Path) -> dict[str, Callable[[str, list[tuple[str, str]]], Reply]]:
    """The FAF5 download path, when ``recordings_dir/faf5`` documents a layout."""
    layout_file = recordings_dir / "faf5" / LAYOUT
    if not layout_file.exists():
        return {}
    layout = faf5_generate.load_layout(layout_file)

    def answer(path: str, query: list[tuple[str, str]]) -> Reply:
        # Read at request time, so one server can be asked for another size by its environment.
        rows = faf5_generate.configured_rows()
        zip_path = faf5_generate.cached_faf5_zip(rows)
        return Reply(
            200,
            {
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="{layout.file_name}"',
            },
            file=zip_path,
        )

    return {layout.url_path: answer}
