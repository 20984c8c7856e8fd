"""Whether a dataset's figures are real agency values or constructed ones.

The offline demo and the tests run on the bundled recordings (recordings/PROVENANCE.md says what
each file is). Some are real agency payloads; others were constructed in the agency's documented
format because no real payload was available offline, and their values are not statistics. A
chart over a dataset fetched from those recordings must say so: the report marks it
"constructed" and links to the provenance note, which it carries in an appendix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The datasets whose recordings hold constructed values, and what is constructed.
CONSTRUCTED = {
    "census_trade_imports": (
        "The trade API responses are built from real China values: the all-countries totals (2 x "
        "China) and the group rows are constructed, so the HS4 headings' shares, HHI and FEOC share "
        "are artifacts of that construction (China 50 %, HHI 2,500). The HS2 chapters come from real "
        "USA Trade Online reports of 16 partners."
    ),
    "census_trade_exports": "Every value is constructed (a scale per heading, a seasonal wave, fixed partner shares).",
    "bls_qcew_industry": "BLS's layout and codes; every number is constructed.",
    "faf5_regional_flows": "Every byte is constructed by a seeded generator to the documented FAF5 layout.",
}
# Each dataset's recordings folder: its section of recordings/PROVENANCE.md.
RECORDINGS_FOLDER = {
    "census_trade_imports": "census_intltrade",
    "census_trade_exports": "census_intltrade",
    "bts_border_crossings": "bts_border_crossing",
    "afdc_charging_stations": "nrel_afdc",
    "usgs_mineral_production": "usgs_mcs",
    "usgs_mineral_salient": "usgs_mcs",
    "eia_electricity": "eia_v2",
    "bls_qcew_industry": "bls_qcew",
    "faf5_regional_flows": "faf5",
}


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
        """The id of the provenance note in the report's appendix."""
        return f"provenance-{self.folder}" if self.folder else "provenance"


def provenance_of(dataset: str, from_recordings: bool) -> Provenance:
    """A dataset's provenance, given whether its current rows came from the bundled recordings."""
    folder = RECORDINGS_FOLDER.get(dataset)
    if not from_recordings:
        return Provenance(dataset, "agency", "fetched from the agency", None)
    if dataset in CONSTRUCTED:
        return Provenance(dataset, "constructed", CONSTRUCTED[dataset], folder)
    return Provenance(dataset, "recorded", "real agency values, replayed from the recordings", folder)


@dataclass(frozen=True)
class Note:
    """One section of recordings/PROVENANCE.md: a recordings folder and what its files are."""

    folder: str
    heading: str
    text: str

    @property
    def anchor(self) -> str:
        return f"provenance-{self.folder}"


def provenance_notes(recordings_dir: Path, folders: set[str]) -> list[Note]:
    """The sections of the recordings' provenance file for these folders (empty if it is absent)."""
    path = recordings_dir / "PROVENANCE.md"
    if not path.is_file():
        return []
    notes = []
    for section in path.read_text(encoding="utf-8").split("\n## ")[1:]:
        heading, _, text = section.partition("\n")
        folder = heading.split("/", 1)[0].strip()
        if folder in folders:
            notes.append(Note(folder, heading.strip(), text.strip()))
    return notes
