"""USA Trade Online "Standard Report" CSVs: the second format of the Census trade datasets.

Not an API: the report an analyst downloads by hand from usatrade.census.gov and gives to
``scdx ingest-file``. ``census_intltrade`` hands a page here when its preamble says it is one.
The layout (see recordings/PROVENANCE.md, census_intltrade/usatradeonline):

    "Standard Report - Imports"
    "Current date: 05/31/2026 5:48 AM (Eastern Daylight Time)"
    "Commodity","Country","Time","Customs Value (Gen) ($US)",
    "01 Live Animals","Indonesia","January 2024","104,632"

Quirks handled here and nowhere else:
- a preamble (title, date) before the header, and a header ending in a comma (an empty column);
- "Commodity" is "<code> <description>", the code's length saying the HS level (2, 4, 6, 10);
- "Country" is a name, mapped to the trade API's CTY_CODE through the Schedule C list and the
  report's own spellings (``census_partner_names``: "Korea, South", the "Europe" group); a name
  in neither is new_code drift, judged by the contract's evolution policy;
- "Time" is "January 2024"; values carry thousands separators;
- each measure column is named by what it measures; one the contract has no field for is refused
  by name, and the API variables the report does not carry are declared absent (null, drift).

Rows come out under the API's variable names (the contract's field sources), so the common
normalize step treats both formats alike.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date

from pipelines.contracts import Contract, Registry
from pipelines.sources import ACTIONS, DriftEvent, DriftRejected, NormalizeError, RawPage, SourceRows

REPORT_TITLE = re.compile(r"^\s*\"?Standard Report - (Imports|Exports)\"?", re.IGNORECASE)
PARTNER_NAMES = "census_partner_names"
# USA Trade Online's measure headers -> the trade API variable with the same meaning, per flow.
# "Customs Value (Gen) ($US)" is the one the bundled reports carry; the others are the same
# product's names for the API's other monthly values.
MEASURES: dict[str, dict[str, str]] = {
    "imports": {
        "Customs Value (Gen) ($US)": "GEN_VAL_MO",
        "Customs Value (Cons) ($US)": "CON_VAL_MO",
    },
    "exports": {
        "Total Exports Value ($US)": "ALL_VAL_MO",
    },
}
DIMENSIONS = ("Commodity", "Country", "Time")
_COMMODITY = re.compile(r"^(\d{2}|\d{4}|\d{6}|\d{10})\s+(\S.*)$")
_MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        start=1,
    )
}


def is_report(opening: str) -> bool:
    """Whether a file's opening text is a USA Trade Online standard report's preamble."""
    return bool(REPORT_TITLE.match(opening))


def _flow(contract: Contract) -> str:
    """imports or exports: which trade API endpoint the contract reads."""
    return "exports" if "/exports/" in contract.source.path else "imports"


def _source_of(contract: Contract, field: str) -> str | None:
    return contract.field(field).source if field in contract.field_names else None


def _partner_lookup(registry: Registry) -> dict[str, tuple[str, str]]:
    """Lower-cased partner name -> (CTY_CODE, partner kind): Schedule C names, then the report's own."""
    lookup = {
        row["name"].lower(): (row["schedule_c_code"], "country")
        for row in registry.codelists.rows("countries")
    }
    for row in registry.codelists.rows(PARTNER_NAMES):
        lookup[row["name"].lower()] = (row["cty_code"], row["partner_kind"])
    return lookup


def _month(text: str) -> str | None:
    """ "January 2024" -> "2024-01-01"; None when it is not a month and year."""
    parts = text.split()
    if len(parts) != 2 or parts[0].lower() not in _MONTHS or not parts[1].isdigit():
        return None
    return date(int(parts[1]), _MONTHS[parts[0].lower()], 1).isoformat()


def _header(reader: Iterator[list[str]], page: RawPage, dataset: str) -> tuple[list[str], int]:
    """The report's column header (trailing empty cells dropped) and its line number (the title,
    already read, is line 1)."""
    for line, cells in enumerate(reader, start=2):
        if cells and cells[0].strip() == DIMENSIONS[0]:
            while cells and not cells[-1].strip():
                cells = cells[:-1]
            return [c.strip() for c in cells], line
        if line > 20:
            break
    raise NormalizeError(
        dataset, page.path, f"a USA Trade Online report without its header row ({', '.join(DIMENSIONS)}, ...)"
    )


def _measure_columns(
    header: list[str], header_line: int, flow: str, page: RawPage, contract: Contract
) -> dict[str, str]:
    """The report's measure columns -> the API variable each is; a column or measure the contract
    does not read is refused by name."""
    dataset = contract.dataset
    unknown = [h for h in header if h not in DIMENSIONS and h not in MEASURES[flow]]
    if unknown or any(d not in header for d in DIMENSIONS):
        raise NormalizeError(
            dataset,
            page.path,
            f"report columns {header}: {dataset} reads {', '.join(DIMENSIONS)} and the measures "
            f"{', '.join(MEASURES[flow])}; unknown: {', '.join(unknown) or 'none'}",
            row=header_line,
        )
    measures = {h: MEASURES[flow][h] for h in header if h in MEASURES[flow]}
    if not measures:
        raise NormalizeError(dataset, page.path, "the report has no measure column", row=header_line)
    for name, variable in measures.items():
        if variable not in {f.source for f in contract.fields}:
            raise NormalizeError(
                dataset, page.path, f"measure {name!r} has no field in {dataset}", row=header_line, field=name
            )
    return measures


def _dimension_sources(contract: Contract, page: RawPage) -> dict[str, str]:
    """The API variable each dimension the report gives goes in (period, HS code ..., partner)."""
    roles = {
        role: _source_of(contract, role)
        for role in ("period", "hs_code", "hs_level", "hs_description", "country_code", "country_name")
    }
    missing_roles = [role for role, source in roles.items() if source is None]
    if missing_roles:
        raise NormalizeError(
            contract.dataset, page.path, f"the contract has no field {', '.join(missing_roles)}"
        )
    return {role: str(source) for role, source in roles.items()}


def _commodity_of(text: str, line: int, page: RawPage, dataset: str) -> tuple[str, str]:
    """ "2805 Alkali Metals ..." -> (HS code, description); anything else is refused."""
    commodity = _COMMODITY.match(text.strip())
    if commodity is None:
        raise NormalizeError(
            dataset, page.path, "expected '<HS code> <description>'", row=line, field="Commodity"
        )
    return commodity.group(1), commodity.group(2).strip()


def _month_of(text: str, line: int, page: RawPage, dataset: str) -> str:
    """ "January 2024" -> "2024-01-01"; anything else is refused."""
    month = _month(text.strip())
    if month is None:
        raise NormalizeError(
            dataset,
            page.path,
            f"expected a month such as 'January 2024', found {text!r}",
            row=line,
            field="Time",
        )
    return month


def report_batches(page: RawPage, contract: Contract, registry: Registry) -> Iterator[SourceRows]:
    """The report's rows as the trade API's variables (one batch: reports are a few MB)."""
    dataset = contract.dataset
    text = page.path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    title = (next(reader, None) or [""])[0]
    flow = _flow(contract)
    if title.strip().lower() != f"standard report - {flow}":
        raise NormalizeError(
            dataset, page.path, f"a report of {title.strip()!r}; {dataset} reads {flow}", row=1
        )
    header, header_line = _header(reader, page, dataset)
    measures = _measure_columns(header, header_line, flow, page, contract)
    sources = _dimension_sources(contract, page)
    lookup = _partner_lookup(registry)
    position = {name: header.index(name) for name in header}
    columns: dict[str, list[str | None]] = {source: [] for source in sources.values()}
    columns.update({variable: [] for variable in measures.values()})
    kinds: list[str | None] = []
    unknown_partners: dict[str, int] = {}
    first_row = header_line + 1
    rows = 0
    for line, cells in enumerate(reader, start=first_row):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) < len(header):
            raise NormalizeError(
                dataset, page.path, f"{len(cells)} values, header has {len(header)}", row=line
            )
        rows += 1
        hs_code, description = _commodity_of(cells[position["Commodity"]], line, page, dataset)
        month = _month_of(cells[position["Time"]], line, page, dataset)
        name = cells[position["Country"]].strip()
        partner = lookup.get(name.lower())
        if partner is None:
            unknown_partners.setdefault(name, line)
            continue
        code, kind = partner
        columns[sources["period"]].append(month)
        columns[sources["hs_code"]].append(hs_code)
        columns[sources["hs_level"]].append(f"HS{len(hs_code)}")
        columns[sources["hs_description"]].append(description)
        columns[sources["country_code"]].append(code)
        columns[sources["country_name"]].append(name)
        kinds.append(kind)
        for header_name, variable in measures.items():
            value = cells[position[header_name]].strip().replace(",", "")
            columns[variable].append(value or None)
    drift: list[DriftEvent] = []
    if unknown_partners:
        drift.append(_unknown_partners(contract, page, unknown_partners))
    derived = {"partner_kind": kinds} if "partner_kind" in contract.field_names else {}
    yield SourceRows(
        columns=columns,
        source_rows=rows,
        derived=derived,
        first_row=first_row,
        absent=_absent(contract, set(columns), measures),
        drift=tuple(drift),
    )


def _absent(contract: Contract, carried: set[str], measures: dict[str, str]) -> dict[str, str]:
    """The API variables the contract reads that a report does not carry, with why (null, drift)."""
    return {
        f.source: f"a USA Trade Online report carries only the measures asked for ({', '.join(measures)}); "
        f"no {f.source}"
        for f in contract.fields
        if f.source and f.source not in carried
    }


def _unknown_partners(contract: Contract, page: RawPage, names: dict[str, int]) -> DriftEvent:
    """Partner names in no list: new_code drift, refused or (warn/allow) their rows left out."""
    policy = contract.evolution.new_code
    listed = ", ".join(f"{name!r} (row {line})" for name, line in list(names.items())[:5])
    action = ACTIONS[policy]
    event = DriftEvent(
        "country_code",
        "new_code",
        action,
        f"{len(names)} partner name(s) in neither the Schedule C list nor {PARTNER_NAMES}: {listed}"
        + ("" if policy == "reject" else "; their rows are left out"),
    )
    if policy == "reject":
        raise DriftRejected(contract.dataset, page.path, event, row=next(iter(names.values())))
    return event
