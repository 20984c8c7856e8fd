"""Build the BLS QCEW open-data recordings: industry slices ``/cew/data/api/{year}/{qtr}/industry/{naics}.csv``.

No real QCEW open-data CSV slice was available offline. These files are CONSTRUCTED to the
documented layout of the QCEW Open Data Access CSV data slices (BLS, "QCEW Open Data Access: CSV
Data Slices", quarterly layout, 42 fields: area_fips ... oty_avg_wkly_wage_pct_chg), written the way
BLS writes them: a quoted header, the code fields quoted ("area_fips" ... "disclosure_code",
"lq_disclosure_code", "oty_disclosure_code"), numbers unquoted, location quotients with two
decimals and over-the-year percent changes with one, CRLF line endings. A cell BLS does not
disclose has disclosure code "N" and its employment and wage fields published as 0 (establishment
counts stay published), as in real slices.

The values are plausible and deterministic (a national scale per industry, fixed area shares, a
seasonal factor and hash-derived wobbles); average weekly wage, totals, location quotients and
over-the-year changes are computed from them so that each row is internally consistent. They are
not BLS statistics. What is constructed is listed in recordings/PROVENANCE.md.

    python scripts/build_qcew_recordings.py
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "recordings/bls_qcew"
YEAR = 2021
QUARTERS = (1, 2, 3, 4)

HEADER = [
    "area_fips", "own_code", "industry_code", "agglvl_code", "size_code", "year", "qtr", "disclosure_code",
    "qtrly_estabs", "month1_emplvl", "month2_emplvl", "month3_emplvl",
    "total_qtrly_wages", "taxable_qtrly_wages", "qtrly_contributions", "avg_wkly_wage",
    "lq_disclosure_code", "lq_qtrly_estabs", "lq_month1_emplvl", "lq_month2_emplvl", "lq_month3_emplvl",
    "lq_total_qtrly_wages", "lq_taxable_qtrly_wages", "lq_qtrly_contributions", "lq_avg_wkly_wage",
    "oty_disclosure_code", "oty_qtrly_estabs_chg", "oty_qtrly_estabs_pct_chg",
    "oty_month1_emplvl_chg", "oty_month1_emplvl_pct_chg", "oty_month2_emplvl_chg", "oty_month2_emplvl_pct_chg",
    "oty_month3_emplvl_chg", "oty_month3_emplvl_pct_chg", "oty_total_qtrly_wages_chg",
    "oty_total_qtrly_wages_pct_chg", "oty_taxable_qtrly_wages_chg", "oty_taxable_qtrly_wages_pct_chg",
    "oty_qtrly_contributions_chg", "oty_qtrly_contributions_pct_chg", "oty_avg_wkly_wage_chg",
    "oty_avg_wkly_wage_pct_chg",
]  # fmt: skip
QUOTED = {"area_fips", "own_code", "industry_code", "agglvl_code", "size_code", "year", "qtr"} | {
    name for name in HEADER if name.endswith("disclosure_code")
}
PRIVATE = "5"


@dataclass(frozen=True)
class Industry:
    """National private employment, establishments and weekly wage of an industry (scale only)."""

    naics: str
    employment: int
    establishments: int
    weekly_wage: int
    # Areas: (area_fips, share of national employment, what is not disclosed: "", "all" or "oty").
    areas: tuple[tuple[str, float, str], ...]


INDUSTRIES = (
    Industry(
        "335911", 22_000, 330, 1_250,
        (
            ("13000", 0.08, ""), ("26000", 0.12, ""), ("39000", 0.07, ""), ("47000", 0.06, ""), ("48000", 0.05, ""),
            ("13157", 0.02, "all"), ("26125", 0.03, ""), ("32029", 0.01, "all"), ("39093", 0.02, "oty"),
            ("47149", 0.015, ""), ("26999", 0.001, ""), ("C1206", 0.03, ""), ("C1982", 0.05, ""),
        ),
    ),
    Industry(
        "335912", 6_500, 75, 1_300,
        (
            ("13000", 0.10, ""), ("37000", 0.12, ""), ("39000", 0.15, ""), ("47000", 0.08, ""), ("53000", 0.05, ""),
            ("13121", 0.02, "all"), ("37183", 0.04, "all"), ("39035", 0.05, ""), ("47037", 0.03, ""),
            ("53033", 0.02, ""), ("39999", 0.002, ""), ("C1746", 0.06, ""), ("C3958", 0.04, ""),
        ),
    ),
    Industry(
        "3361", 245_000, 2_150, 1_900,
        (
            ("18000", 0.08, ""), ("21000", 0.10, ""), ("26000", 0.25, ""), ("39000", 0.09, ""), ("48000", 0.06, ""),
            ("18157", 0.015, ""), ("21209", 0.03, ""), ("26163", 0.08, ""), ("39159", 0.02, "all"),
            ("48029", 0.02, ""), ("26999", 0.002, ""), ("C1982", 0.12, ""), ("C3046", 0.035, ""),
        ),
    ),
    Industry(
        "3363", 530_000, 5_300, 1_400,
        (
            ("18000", 0.10, ""), ("26000", 0.17, ""), ("39000", 0.11, ""), ("47000", 0.07, ""), ("48000", 0.05, ""),
            ("18097", 0.015, ""), ("26125", 0.03, ""), ("26163", 0.03, ""), ("39095", 0.01, ""),
            ("47149", 0.01, "all"), ("18999", 0.001, ""), ("C1982", 0.08, ""), ("C2690", 0.03, ""),
        ),
    ),
    Industry(
        "334413", 110_000, 1_000, 2_600,
        (
            ("04000", 0.10, ""), ("06000", 0.22, ""), ("36000", 0.06, ""), ("41000", 0.12, ""), ("48000", 0.12, ""),
            ("04013", 0.08, ""), ("06085", 0.08, ""), ("36091", 0.02, "all"), ("41067", 0.10, ""),
            ("48453", 0.04, ""), ("06999", 0.002, ""), ("C3806", 0.085, ""), ("C4194", 0.09, ""),
        ),
    ),
)  # fmt: skip

SEASON = {1: 0.985, 2: 1.0, 3: 1.005, 4: 1.01}
# First quarters carry bonuses; taxable wages stop at each state's annual base, so they fall by quarter.
WAGE_SEASON = {1: 1.08, 2: 0.97, 3: 0.96, 4: 1.02}
TAXABLE_SHARE = {1: 0.34, 2: 0.16, 3: 0.07, 4: 0.05}


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def agglvl(area_fips: str, naics: str) -> str:
    """Aggregation level of an industry-slice row: the geography's decade, the NAICS depth's unit."""
    digit = {4: "6", 5: "7", 6: "8"}[len(naics)]
    if area_fips == "US000":
        return "1" + digit
    if area_fips.startswith("C"):
        return "4" + digit
    if area_fips.endswith("000"):
        return "5" + digit
    return "7" + digit


@dataclass(frozen=True)
class Measures:
    estabs: int
    months: tuple[int, int, int]
    total_wages: int
    taxable_wages: int
    contributions: int
    weekly_wage: int


def measures(industry: Industry, area: str, share: float, year: int, quarter: int) -> Measures:
    """One area's quarter of an industry: employment, wages and establishments, consistent with each other."""
    growth = 1 + 0.06 * (_unit(industry.naics, area, "growth") - 0.35) * (year - 2019)
    level = industry.employment * share * growth * SEASON[quarter] * (0.9 + 0.2 * _unit(industry.naics, area))
    months = tuple(
        max(1, round(level * (0.99 + 0.02 * _unit(industry.naics, area, year, quarter, m))))
        for m in (1, 2, 3)
    )
    weekly = industry.weekly_wage * WAGE_SEASON[quarter] * (0.85 + 0.3 * _unit(industry.naics, area, "wage"))
    weekly *= 1 + (0.01 + 0.05 * _unit(industry.naics, area, "raise")) * (year - 2020)
    average = sum(months) / 3
    total = round(average * 13 * weekly)
    taxable = round(total * TAXABLE_SHARE[quarter])
    estabs = max(
        1, round(industry.establishments * share * (0.8 + 0.4 * _unit(industry.naics, area, "estabs")))
    )
    if year < YEAR:
        estabs = max(1, estabs - round(2 * _unit(industry.naics, area, "opened")))
    return Measures(
        estabs=estabs,
        months=(months[0], months[1], months[2]),
        total_wages=total,
        taxable_wages=taxable,
        contributions=round(taxable * 0.024),
        weekly_wage=round(total / average / 13),
    )


def _pct(now: int, before: int) -> str:
    return f"{100 * (now - before) / before:.1f}" if before else "0.0"


def row(industry: Industry, area: str, share: float, hidden: str, quarter: int) -> list[str]:
    """One CSV row of the slice, as BLS writes it."""
    now = measures(industry, area, share, YEAR, quarter)
    before = measures(industry, area, share, YEAR - 1, quarter)
    national = area == "US000"
    base = [area, PRIVATE, industry.naics, agglvl(area, industry.naics), "0", str(YEAR), str(quarter)]
    levels = [now.estabs, *now.months, now.total_wages, now.taxable_wages, now.contributions, now.weekly_wage]
    if national:
        quotients = ["1.00"] * 8
    else:
        lq = 0.4 + 8 * share * (0.8 + 0.4 * _unit(industry.naics, area, "lq"))
        wage_lq = lq * (0.85 + 0.3 * _unit(industry.naics, area, "wage"))
        quotients = [
            f"{q:.2f}" for q in (lq * 0.9, lq, lq, lq, wage_lq, wage_lq * 0.9, wage_lq * 0.95, wage_lq / lq)
        ]
    pairs = [
        (now.estabs, before.estabs),
        *zip(now.months, before.months, strict=True),
        (now.total_wages, before.total_wages),
        (now.taxable_wages, before.taxable_wages),
        (now.contributions, before.contributions),
        (now.weekly_wage, before.weekly_wage),
    ]
    changes = [str(v) for n, b in pairs for v in (n - b, _pct(n, b))]
    if hidden == "all":
        # Not disclosed: BLS publishes zeros in place of employment and wages; establishments stay.
        levels = [now.estabs, 0, 0, 0, 0, 0, 0, 0]
        quotients = [quotients[0], "0", "0", "0", "0", "0", "0", "0"]
    if hidden in {"all", "oty"}:
        changes = [*changes[:2], *["0"] * 14]
    disclosure = "N" if hidden == "all" else ""
    return [
        *base,
        disclosure,
        *(str(v) for v in levels),
        disclosure,
        *quotients,
        "N" if hidden in {"all", "oty"} else "",
        *changes,
    ]


def _order(area: str) -> tuple[int, str]:
    return (0 if area == "US000" else 2 if area.startswith("C") else 1, area)


def render(rows: list[list[str]]) -> bytes:
    """The slice as BLS writes it: quoted header and code fields, bare numbers, CRLF."""
    lines = [",".join(f'"{name}"' for name in HEADER)]
    for values in rows:
        lines.append(
            ",".join(f'"{v}"' if name in QUOTED else v for name, v in zip(HEADER, values, strict=True))
        )
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def main() -> None:
    for industry in INDUSTRIES:
        areas = [("US000", 1.0, ""), *industry.areas]
        for quarter in QUARTERS:
            rows = [row(industry, area, share, hidden, quarter) for area, share, hidden in areas]
            rows.sort(key=lambda values: _order(values[0]))
            path = OUT / str(YEAR) / str(quarter) / "industry" / f"{industry.naics}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(render(rows))
            print(f"{path.relative_to(ROOT)}: {len(rows)} rows")


if __name__ == "__main__":
    main()
