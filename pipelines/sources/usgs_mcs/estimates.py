"""Which production figures are estimates, as each edition's production notes word it.

The header marks the latest year (``Prod_t_est_2023``, ``Prod_t_Est_2021``); a production note
(``Prod_notes``, ``Prod_note`` in some MCS2024 files) marks others, worded differently from edition
to edition ("Production in 2021 is also estimated.", "Estimated in 2021 also.", "Also estimated in
2022" ...: ESTIMATE_WORDINGS). A note that speaks of an estimate for an unmarked year in a wording
not in that table is drift (type_change), never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from pipelines.contracts import Contract
from pipelines.sources import ACTIONS, DriftEvent, DriftRejected, RawPage
from pipelines.sources.usgs_mcs.table import Table, clean

_SENTENCE_END = re.compile(r"(?<=\.)\s+")
_A_YEAR = re.compile(r"\b(\d{4})\b")


@dataclass(frozen=True)
class EstimateWording:
    """One way a production note says that figures its header does not mark are estimates too."""

    sentence: re.Pattern[str]  # one whole sentence of the note; group "year" names the year, else all
    seen: str  # where USGS wrote it so


def _wording(pattern: str, seen: str) -> EstimateWording:
    return EstimateWording(re.compile(pattern, re.IGNORECASE), seen)


# "This year is an estimate too", as each edition words it in Prod_notes (a sentence matched whole,
# ignoring case and the final period): every wording in the world tables of MCS2023 and MCS2024
# (all commodities, from the repository recordings/PROVENANCE.md names for them) and MCS2025's as
# quoted. Sentences that merely mention estimates ("Estimated amount of rhenium recovered ...",
# "Other countries estimated to still have ... capacity") match none. The header marks the latest
# year itself in every edition (Prod_t_Est_2021 in MCS2022, Prod_t_est_2023 in MCS2024). Tested
# with each edition's files in tests/test_usgs_production.py.
ESTIMATE_WORDINGS = (
    _wording(
        r"also estimated in (?P<year>\d{4})",
        "MCS2024 'Also estimated in 2022' (lithium, graphite, nickel, antimony ...), 'also estimated in 2022'",
    ),
    _wording(
        r"estimated in (?P<year>\d{4}) also",
        "MCS2023 'Estimated in 2021 also.' (rare earths, salt); MCS2024 'estimated in 2022 also' (gallium)",
    ),
    _wording(
        r"production in (?P<year>\d{4}) is also estimated",
        "MCS2023 'Production in 2021 is also estimated.' (lithium, cobalt, beryllium ...); MCS2024 (aluminum)",
    ),
    _wording(r"production data in (?P<year>\d{4}) were also estimated", "MCS2023 (magnesium metal)"),
    _wording(
        r"estimated (?P<year>\d{4})",
        "MCS2025 'Estimated 2023.' (lithium, manganese, vanadium; as Our World in Data quotes the release)",
    ),
    _wording(
        r"estimated(?: in both years)?", "MCS2023 'Estimated in both years.' (silver), 'Estimated' (perlite)"
    ),
)


def note_estimates(note: str, years: Collection[int]) -> tuple[set[int], list[tuple[str, int]]]:
    """The ``years`` a production note says are estimates, and its unrecognised estimate sentences.

    A sentence that matches no wording of ESTIMATE_WORDINGS but speaks of an estimate ("estimat")
    and names one of ``years`` comes back with that year: its meaning is unknown, not "no".
    """
    estimated: set[int] = set()
    unknown: list[tuple[str, int]] = []
    for sentence in _SENTENCE_END.split(clean(note)):
        sentence = sentence.rstrip(".").strip()
        matched = next((m for w in ESTIMATE_WORDINGS if (m := w.sentence.fullmatch(sentence))), None)
        if matched is not None:
            year = matched.groupdict().get("year")
            estimated |= set(years) if year is None else {int(year)} & set(years)
        elif "estimat" in sentence.casefold():
            unknown += [(sentence, int(y)) for y in _A_YEAR.findall(sentence) if int(y) in years]
    return estimated, unknown


def unread_estimate(
    page: RawPage, contract: Contract, table: Table, notes_at: int | None, sentence: str, year: int, row: int
) -> DriftEvent:
    """A note speaking of an estimate for ``year`` in unknown wording: rejected, or the event to record."""
    column = table.header[notes_at] if notes_at is not None else "Prod_notes"
    policy = contract.evolution.type_change
    event = DriftEvent(
        "estimated",
        "type_change",
        ACTIONS[policy],
        f"{table.name}: column {column!r}: the note {sentence!r} speaks of an estimate for {year} in "
        f"wording this source does not recognise (usgs_mcs.ESTIMATE_WORDINGS); {year} is flagged only "
        "where the header marks it",
    )
    if policy == "reject":
        raise DriftRejected(contract.dataset, page.path, event, row=row)
    return event
