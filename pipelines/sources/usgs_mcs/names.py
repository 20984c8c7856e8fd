"""Minerals and countries as USGS names them, matched against the code lists.

Footnote digits glued to names (``Other countries6``, ``New Caledonia11``), the footnote marker
"e" (estimated) glued to names (``Japane``, ``Russiae`` in MCS2024 gallium) and non-breaking
spaces inside and around names (``United\\u00a0States``) are undone here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipelines.contracts import Contract, Registry
from pipelines.sources import NormalizeError, RawPage
from pipelines.sources.usgs_mcs.table import Table, clean, fold

COUNTRY_CROSSWALK = "usgs_country_names"

_FOOTNOTE = re.compile(r"(?<=[^\d\s])\d+$")
_FILE_CODE = re.compile(r"mcs\d{4}-([a-z]+)_", re.IGNORECASE)
_AGGREGATES = ("world total", "other countries")


def mineral_names(registry: Registry) -> dict[str, str]:
    """Folded mineral and MCS chapter names -> MCS chapter (critical_minerals.mcs_commodity)."""
    names: dict[str, str] = {}
    for row in registry.codelists.rows("critical_minerals"):
        names.setdefault(fold(row["mcs_commodity"]), row["mcs_commodity"])
        names.setdefault(fold(row["mineral"]), row["mcs_commodity"])
    return names


def mineral_file_code(commodity: str) -> str:
    """The 5-letter code USGS files a chapter under: its letters, lower case (Rare earths: raree)."""
    return re.sub(r"[^a-z]", "", commodity.lower())[:5]


def commodity_mineral(commodity: str, names: dict[str, str]) -> str | None:
    """The MCS chapter of a commodity as a table names it, ignoring USGS's qualifiers.

    "Graphite (Natural)", "RARE EARTHS, compounds and metals", "ZINC, refined" -> Graphite, Rare
    earths, Zinc; a commodity off the critical-minerals list ("CEMENT") -> None.
    """
    base = fold(commodity).split(",", 1)[0]
    base = re.sub(r"\s*\(.*?\)", "", base).strip()
    return names.get(base)


def world_mineral(page: RawPage, contract: Contract, registry: Registry, table: Table) -> str:
    """The mineral of a world table: its file code (mcs2024-lithi_world.csv), checked against Type."""
    chapters = sorted(set(mineral_names(registry).values()))
    by_code = {mineral_file_code(c): c for c in chapters}
    code = _FILE_CODE.search(table.name)
    from_file = by_code.get(code.group(1).lower()) if code else None
    type_at = table.index("Type")
    from_type: set[str] = set()
    if type_at is not None:
        texts = " | ".join(fold(cells[type_at]) for _, cells in table.rows)
        for name, chapter in mineral_names(registry).items():
            if re.search(rf"\b{re.escape(name)}\b", texts):
                from_type.add(chapter)
    if from_file and from_type and from_file not in from_type:
        raise NormalizeError(
            contract.dataset,
            page.path,
            f"{table.name}: the file name says {from_file} but its Type column says {', '.join(sorted(from_type))}",
            field="mineral",
        )
    if from_file:
        return from_file
    if len(from_type) == 1:
        return from_type.pop()
    raise NormalizeError(
        contract.dataset,
        page.path,
        f"{table.name}: cannot tell the mineral (no known commodity code in the file name, "
        f"Type column names {sorted(from_type) or 'none'})",
        field="mineral",
    )


@dataclass
class CountryNames:
    """USGS country name -> ISO alpha-2: the usgs_country_names crosswalk, else the Census list."""

    crosswalk: dict[str, str] = field(default_factory=dict)
    census: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, registry: Registry) -> CountryNames:
        names = cls()
        for row in registry.codelists.rows(COUNTRY_CROSSWALK):
            names.crosswalk[fold(row["usgs_name"])] = row["iso_alpha2"]
        for row in registry.codelists.rows("countries"):
            names.census.setdefault(fold(row["name"]), row["iso_alpha2"])
            # "Burma (Myanmar)", "Tanzania (United Republic of Tanzania)": USGS writes the short name.
            short = re.sub(r"\s*\(.*\)$", "", row["name"])
            names.census.setdefault(fold(short), row["iso_alpha2"])
        return names

    def without_estimate_marker(self, name: str) -> str | None:
        """The name without the footnote marker "e" glued to it ("Japane" -> "Japan"); None if it has none.

        Only when the name is no country and the name without the "e" is one: "Chile" stays.
        """
        if name.endswith("e") and self.iso(name) is None and self.iso(name[:-1]) is not None:
            return name[:-1]
        return None

    def iso(self, name: str) -> str | None:
        """The code of a country name; a qualifier after a comma ("Ukraine, concentrate") is ignored."""
        candidates = [fold(name)]
        if ", " in name:
            candidates.append(fold(name.rsplit(", ", 1)[0]))
        for candidate in candidates:
            code = self.crosswalk.get(candidate) or self.census.get(candidate)
            if code:
                return code
        return None


def country_name(text: str) -> str:
    """A USGS country cell without footnote digits or stray spaces ("Other countries6")."""
    return _FOOTNOTE.sub("", clean(text)).rstrip()


def is_aggregate(name: str) -> bool:
    """World total and "Other countries" rows sum several countries."""
    folded = fold(name)
    return folded == "world" or folded.startswith(_AGGREGATES)
