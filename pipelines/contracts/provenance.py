"""Whether a dataset's published rows are real agency values or constructed ones.

The offline demo and the tests run on the bundled recordings (recordings/PROVENANCE.md says what
each file is). Some are real agency payloads; others were constructed in the agency's documented
format because no real payload was available offline, and their values are not statistics. Each
contract says which in ``source.offline_recordings``; the report, the catalog and ``scdx demo``
read it here, mark a dataset fetched from constructed recordings "constructed" and link the
provenance note (the section of recordings/PROVENANCE.md on its recordings folder).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pipelines.contracts.models import Contract

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Provenance:
    """How a dataset's current rows were obtained: ``agency`` (from the agency, or a file downloaded
    from it), ``recorded`` (real values replayed from the recordings) or ``constructed`` (from
    recordings whose values were constructed)."""

    dataset: str
    kind: str
    note: str
    folder: str | None

    @property
    def anchor(self) -> str:
        """The id of the provenance note on the pages that carry the notes (report, catalog)."""
        return f"provenance-{self.folder}" if self.folder else "provenance"


def provenance_of(contract: Contract, replayed: bool) -> Provenance:
    """A dataset's provenance, given whether its current rows came from the bundled recordings."""
    recordings = contract.source.offline_recordings
    if not replayed:
        return Provenance(contract.dataset, "agency", "fetched from the agency", None)
    if recordings is None:
        return Provenance(contract.dataset, "recorded", "replayed from recordings", None)
    return Provenance(contract.dataset, recordings.kind, recordings.note, recordings.folder)


def from_recordings(urls: Iterable[str], recordings_dir: Path) -> bool:
    """Whether any of these fetched URLs is the replay server (loopback) or a recorded file."""
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme == "file":
            if Path(unquote(parts.path)).resolve().is_relative_to(recordings_dir.resolve()):
                return True
        elif parts.hostname in LOOPBACK:
            return True
    return False


@dataclass(frozen=True)
class ProvenanceNote:
    """One section of recordings/PROVENANCE.md: a recordings folder and what its files are."""

    folder: str
    heading: str
    text: str

    @property
    def anchor(self) -> str:
        return f"provenance-{self.folder}"


def provenance_notes(recordings_dir: Path, folders: set[str] | None = None) -> list[ProvenanceNote]:
    """The sections of the recordings' provenance file (for these folders; all when None), in file
    order; empty if the file is absent."""
    path = recordings_dir / "PROVENANCE.md"
    if not path.is_file():
        return []
    notes = []
    for section in path.read_text(encoding="utf-8").split("\n## ")[1:]:
        heading, _, text = section.partition("\n")
        folder = heading.split("/", 1)[0].strip()
        if folders is None or folder in folders:
            notes.append(ProvenanceNote(folder, heading.strip(), text.strip()))
    return notes
