"""Build the code lists that come from agency reference files (schemas/codelists/source/).

    python scripts/build_codelists.py

Writes countries.csv, counties.csv and critical_minerals.csv next to the hand-kept lists.
Deterministic; the provenance of every list is in schemas/codelists/README.md.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "schemas" / "codelists"
SOURCE = HERE / "source"


def _write(name: str, header: list[str], rows: list[list[str]]) -> None:
    with (HERE / name).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    print(f"{name}: {len(rows)} rows")


def countries() -> None:
    """Census Schedule C (fixed width, pipe separated, banner lines) -> code, name, ISO alpha-2."""
    rows = []
    # One name overflows its fixed-width column into the ISO column upstream:
    # "7660 | Congo, Democratic Republic of the Congo (formerly Za|rCD". The ISO code is the
    # trailing capitals; the name is repaired to what was cut, and README.md says so.
    line_format = re.compile(r"^(\d{4})\s*\|\s*(.+?)\s*\|\s*[a-z]*([A-Z]{2})\s*$")
    repaired = {
        "Congo, Democratic Republic of the Congo (formerly Za": "Congo, Democratic Republic of the Congo (formerly Zaire)"
    }
    for line in (
        (SOURCE / "census_schedule_c_country_codes_27JAN21.txt").read_text(encoding="ascii").splitlines()
    ):
        match = line_format.match(line)
        if match:
            code, name, iso = match.groups()
            rows.append([code, repaired.get(name, name), iso])
    codes = [r[0] for r in rows]
    assert len(codes) == len(set(codes)) == 240, f"expected 240 unique Schedule C codes, got {len(codes)}"
    _write("countries.csv", ["schedule_c_code", "name", "iso_alpha2"], rows)


def counties() -> None:
    """Census 2010 national_county.txt plus the later changes in county_changes.csv."""
    states = {
        r["usps"]: r["state_fips"] for r in csv.DictReader((HERE / "states.csv").open(encoding="utf-8"))
    }
    rows: dict[str, dict[str, str]] = {}
    with (SOURCE / "census_national_county_2010.txt").open(encoding="ascii", newline="") as handle:
        for usps, state_fips, county_fips, name, classfp in csv.reader(handle):
            assert states[usps] == state_fips, (
                f"{usps} is {state_fips} in the county file, {states[usps]} in states.csv"
            )
            code = state_fips + county_fips
            rows[code] = {
                "county_fips": code,
                "state_fips": state_fips,
                "usps": usps,
                "name": name,
                "classfp": classfp,
                "vintage": "2010",
                "valid_to": "",
                "note": "",
            }
    for change in csv.DictReader((HERE / "county_changes.csv").open(encoding="utf-8")):
        for replaced in change["replaces"].split():
            rows[replaced]["valid_to"] = change["year"]
            rows[replaced]["note"] = f"replaced in {change['year']}: {change['change']}"
        code = change["county_fips"]
        if code not in rows:
            rows[code] = {
                "county_fips": code,
                "state_fips": code[:2],
                "usps": change["usps"],
                "name": change["name"],
                "classfp": "",
                "vintage": change["year"],
                "valid_to": "",
                "note": change["change"],
            }
    header = ["county_fips", "state_fips", "usps", "name", "classfp", "vintage", "valid_to", "note"]
    _write("counties.csv", header, [[r[h] for h in header] for _, r in sorted(rows.items())])


def critical_minerals() -> None:
    """USGS MCS 2024 Table 4: the 2022 list of 50 critical minerals, with their MCS chapter."""
    rows = []
    with (SOURCE / "MCS2024_T4_Critical_Minerals_End_Use.csv").open(
        encoding="utf-8-sig", newline=""
    ) as handle:
        for record in csv.DictReader(handle):
            mineral = record["Critical Mineral"].strip()  # "Ytterbium " carries a trailing space upstream
            note = record["Category_Note"].strip()
            chapter = re.match(r"Included in the (.+) chapter\.", note)
            commodity = chapter.group(1) if chapter else mineral
            rows.append(
                [
                    mineral,
                    commodity.capitalize() if chapter else commodity,
                    record["Primary Applications"].strip(),
                ]
            )
    assert len(rows) == 50, f"expected the 50 critical minerals of the 2022 list, got {len(rows)}"
    _write("critical_minerals.csv", ["mineral", "mcs_commodity", "primary_applications"], rows)


if __name__ == "__main__":
    countries()
    counties()
    critical_minerals()
