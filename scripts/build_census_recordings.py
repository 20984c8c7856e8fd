"""Build the Census International Trade API recordings from the real USA Trade Online export.

No raw Census API JSON with provenance was available offline. This script writes, for each month,
the body the API returns for

    GET /data/timeseries/intltrade/imports/hs
        ?get=CTY_CODE,CTY_NAME,I_COMMODITY,I_COMMODITY_SDESC,GEN_VAL_MO,CON_VAL_MO&COMM_LVL=HS4&time=YYYY-MM

in the API's documented format (array of arrays, header first, every value a string), from the
values Census published in USA Trade Online (recordings/census_intltrade/source/*.csv). What is real
and what is constructed is listed in recordings/PROVENANCE.md. Deterministic: running it again
gives byte-identical files.

Real HS4 values exist offline for one partner only (China), so the files carry China's real rows
and constructed group rows, and no all-countries total: with one partner and no total, the
import-concentration mart leaves a heading's shares and HHI null (coverage unknown) instead of
showing figures made by the construction. The real many-partner values (16 partners) are at HS2,
in the USA Trade Online reports under recordings/census_intltrade/usatradeonline/, which the demo
ingests as hand downloads; the contract asks the API for COMM_LVL=HS4 only, so HS2 rows here would
never be requested.

    python scripts/build_census_recordings.py
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from pipelines.replay.census import render

ROOT = Path(__file__).resolve().parents[1]
SOURCE = (
    ROOT
    / "recordings/census_intltrade/source/usatradeonline_imports_hs4_china_critical_minerals_2024-01_2026-03.csv"
)
OUT = ROOT / "recordings/census_intltrade/imports_hs"
HEADER = [
    "CTY_CODE",
    "CTY_NAME",
    "I_COMMODITY",
    "I_COMMODITY_SDESC",
    "GEN_VAL_MO",
    "CON_VAL_MO",
    "COMM_LVL",
    "time",
]

# Constructed group rows, as multiples of the real China value (see PROVENANCE.md). They carry the
# API's group and continent code quirks (leading zeros, "XXX"); the marts never count groups as
# suppliers. There is deliberately no "-" TOTAL FOR ALL COUNTRIES row: no real all-countries total
# of these headings is available offline, and a constructed one (it used to be 2 x China) made every
# heading read "China 50 %, HHI 2,500".
CONSTRUCTED = [
    ("0003", "EUROPEAN UNION", 0.25),
    ("0014", "PACIFIC RIM COUNTRIES", 1.6),
    ("5XXX", "ASIA", 1.5),
]


def main() -> None:
    by_month: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    with SOURCE.open(newline="", encoding="ascii") as handle:
        lines = handle.read().splitlines()
    # Two preamble lines ("Standard Report - Imports", "Current date: ..."), then the header row.
    reader = csv.reader(lines[2:])
    header = next(reader)
    if header[:4] != ["Commodity", "Country", "Time", "Customs Value (Gen) ($US)"]:
        raise SystemExit(f"unexpected USA Trade Online header {header}")
    for commodity, country, month_name, value, *_ in reader:
        if country != "China":
            raise SystemExit(f"unexpected country {country}")
        hs4, description = commodity.split(" ", 1)
        month = datetime.strptime(month_name, "%B %Y").strftime("%Y-%m")
        by_month[month].append((hs4, description.upper(), int(value.replace(",", ""))))
    OUT.mkdir(parents=True, exist_ok=True)
    for month, items in sorted(by_month.items()):
        rows = []
        for hs4, description, china in sorted(items):
            for code, name, factor in CONSTRUCTED:
                total = str(round(china * factor))
                rows.append([code, name, hs4, description, total, total, "HS4", month])
            rows.append(["5700", "CHINA", hs4, description, str(china), str(china), "HS4", month])
        (OUT / f"{month}.json").write_bytes(render(HEADER, rows))
    print(f"wrote {len(by_month)} months to {OUT}")


if __name__ == "__main__":
    main()
