"""Build the Census International Trade API recordings for exports (``/timeseries/intltrade/exports/hs``).

No real Census export payload was available offline. These bodies are CONSTRUCTED to the API's
documented format (array of arrays, header first, every value a string, one row per line,
predicate variables appended) with plausible, deterministic values: a monthly scale per HS heading,
a seasonal wave and a hash-derived wobble, split over partner countries by fixed shares. They
exercise the exports contract and the shared Census source module; they are not statistics.
What is constructed is listed in recordings/PROVENANCE.md.

    python scripts/build_census_export_recordings.py
"""

from __future__ import annotations

import csv
import hashlib
import math
from datetime import date
from pathlib import Path

from pipelines.replay.census import render

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "recordings/census_intltrade/exports_hs"
BASKET = ROOT / "schemas/codelists/ev_basket_hs.csv"
HEADER = ["CTY_CODE", "CTY_NAME", "E_COMMODITY", "E_COMMODITY_SDESC", "ALL_VAL_MO", "COMM_LVL", "time"]

# Monthly U.S. exports of the heading to all countries, USD (order of magnitude only).
SCALE = {
    "8507": 450_000_000,
    "8542": 3_500_000_000,
    "8541": 600_000_000,
    "8703": 4_000_000_000,
    "8506": 60_000_000,
}
DEFAULT_SCALE = 20_000_000
# Partner shares of the total (the rest goes to countries not in the recording).
PARTNERS = [
    ("1220", "CANADA", 0.30),
    ("2010", "MEXICO", 0.20),
    ("5700", "CHINA", 0.08),
    ("5880", "JAPAN", 0.06),
    ("5800", "KOREA, SOUTH", 0.05),
    ("4280", "GERMANY", 0.05),
]
EU_SHARE = 0.12  # 0003 EUROPEAN UNION, Germany included


def _wobble(*parts: str) -> float:
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return 0.85 + 0.3 * digest[0] / 255


def main() -> None:
    with BASKET.open(encoding="utf-8", newline="") as handle:
        basket = [(row["hs4"], row["description"].upper()) for row in csv.DictReader(handle)]
    OUT.mkdir(parents=True, exist_ok=True)
    month = date(2024, 1, 1)
    index = 0
    while month <= date(2026, 3, 1):
        period = f"{month:%Y-%m}"
        rows = []
        for hs4, description in basket:
            total = SCALE.get(hs4, DEFAULT_SCALE) * (1 + 0.08 * math.sin(index / 2)) * _wobble(hs4, period)
            rows.append(["-", "TOTAL FOR ALL COUNTRIES", hs4, description, str(round(total)), "HS4", period])
            rows.append(
                ["0003", "EUROPEAN UNION", hs4, description, str(round(total * EU_SHARE)), "HS4", period]
            )
            for code, name, share in PARTNERS:
                value = round(total * share * _wobble(hs4, period, code) / 1.0)
                rows.append(
                    [code, name, hs4, description, str(min(value, round(total * 0.95))), "HS4", period]
                )
        (OUT / f"{period}.json").write_bytes(render(HEADER, rows))
        index += 1
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    print(f"wrote {index} months to {OUT}")


if __name__ == "__main__":
    main()
