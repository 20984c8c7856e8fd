"""Partner submissions (FLOW-style data sharing) constructed from a documented model.

No partner has shared real data, so the replay tooling constructs submissions in the contracts'
CSV layout (``schemas/flow_port_throughput.yaml``, ``schemas/flow_shipper_forecasts.yaml``), one
file per partner and dataset, for the partners of ``schemas/partners.yaml`` (all constructed).
Values are not statistics. The same seed always gives the same bytes.

The model, weekly over ``WEEKS`` (ISO weeks of 2024):

* Ports: each port's loaded inbound TEUs are ``PORT_BASE`` times a seasonal factor
  ``1 + 0.12 sin(2 pi (w - 10) / 52)`` (peak season in late summer) times noise ``1 + N(0, 0.04)``.
* Terminals: each port-terminal partner runs one terminal and takes its ``share`` of its port.
  Los Angeles and Houston have three comparable terminals each (none above 40 %), so their port
  weeks publish; Savannah has one dominant terminal (82 %: its port weeks fail the 60 % dominance
  rule) and Charleston exactly two (its port weeks fail the rule of three partners).
* Per terminal: loaded outbound 0.5 of inbound; empty inbound 0.05; empty outbound (repositioned
  empties) 0.35 on the West Coast, 0.15 elsewhere; a vessel arrival per 2,500 loaded TEUs in
  (at least one); import dwell 3.5 days plus ``N(0, 0.3)``.
* Disruptions: Houston is closed in ``CLOSURE`` (a storm: volumes at 10 %, then 50 % the week
  after) and Los Angeles surges in ``SURGE`` (volumes 135 %, dwell 2.5 days longer).
* Shippers: each issues forecasts every week of ``ISSUED``, for 1 to 8 weeks ahead, of TEUs by
  port of discharge and commodity (HS2 or SCTG2): its ``base`` TEUs a week at each of its ports
  (split evenly over its commodities) times the target week's seasonal factor times noise whose
  spread grows with the horizon (3 % a week). Los Angeles and Houston have four shippers each
  (none above 35 % of the port's forecasts), Savannah three; together the shippers are about
  30 % of Los Angeles' and Houston's loaded inbound and 25 % of Savannah's, Charleston has none.
  Commodity groups at a port mostly have one or two shippers (suppressed), but at Houston HS2 85,
  39 and 87 have three shippers each while HS2 68 has one, so a suppressed commodity cell sits
  beside publishable ones (disclosure control suppresses complements with it).
  Shippers do not foresee the storm (their forecasts of Houston's closed weeks are normal, so the
  realised drop is a forecast miss); they foresee the Los Angeles surge partly, from their own
  bookings: ``SURGE_FORESEEN`` of the 35 % one week ahead, 10 points less per week further out.

``python -m pipelines.replay.flow_generate [--out DIR] [--seed N]`` writes
``DIR/<dataset>/<partner_id>.csv`` (default ``recordings/flow``).
"""

from __future__ import annotations

import argparse
import math
import random
from datetime import date
from pathlib import Path

from pipelines.common.settings import DEFAULT_RECORDINGS_DIR

DEFAULT_SEED = 23
WEEKS = range(1, 27)
ISSUED = range(1, 26)
CLOSURE = {("USHOU", 14): 0.10, ("USHOU", 15): 0.50}
SURGE = range(20, 24)
SURGE_FACTOR = 0.35
SURGE_FORESEEN = 0.6
PORT_BASE = {"USLAX": 90_000.0, "USSAV": 55_000.0, "USHOU": 40_000.0, "USCHS": 30_000.0}
WEST = {"USLAX"}
# partner -> (port, terminal, share of the port's volume)
TERMINALS = {
    "lax_pier_a_terminal": ("USLAX", "PIERA", 0.40),
    "lax_harbor_gateway": ("USLAX", "HGW", 0.35),
    "lax_bay_container": ("USLAX", "BCT", 0.25),
    "sav_garden_terminal": ("USSAV", "GCT", 0.82),
    "sav_ocean_terminal": ("USSAV", "OCT", 0.10),
    "sav_river_terminal": ("USSAV", "RVT", 0.08),
    "hou_bayport_ops": ("USHOU", "BPT", 0.40),
    "hou_barbours_ops": ("USHOU", "BCT", 0.35),
    "hou_turning_basin_ops": ("USHOU", "TBT", 0.25),
    "chs_wando_terminal": ("USCHS", "WWT", 0.55),
    "chs_north_terminal": ("USCHS", "NCT", 0.45),
}
# partner -> (TEUs a week at each port, (system, code) commodities)
SHIPPERS = {
    "shipper_alpha_retail": ({"USLAX": 9_000.0, "USSAV": 4_500.0}, (("HS2", "94"), ("HS2", "95"))),
    "shipper_beta_auto": (
        {"USSAV": 4_500.0, "USHOU": 3_500.0, "USLAX": 4_000.0},
        (("HS2", "87"), ("HS2", "85")),
    ),
    "shipper_gamma_energy": ({"USLAX": 7_000.0, "USHOU": 3_000.0}, (("HS2", "85"), ("HS2", "39"))),
    "shipper_delta_home": ({"USLAX": 7_000.0, "USSAV": 4_500.0}, (("SCTG2", "35"), ("SCTG2", "40"))),
    "shipper_epsilon_industrial": ({"USHOU": 4_000.0}, (("HS2", "85"), ("HS2", "39"), ("HS2", "87"))),
    "shipper_zeta_materials": ({"USHOU": 2_500.0}, (("HS2", "39"), ("HS2", "87"), ("HS2", "68"))),
}
THROUGHPUT_HEADER = (
    "port_code,terminal_code,week,loaded_teu_in,loaded_teu_out,empty_teu_in,empty_teu_out,"
    "vessel_arrivals,dwell_days"
)
FORECAST_HEADER = "issued_week,week,horizon_weeks,port_code,commodity_system,commodity_code,teu_expected"


def iso_week(week: int, year: int = 2024) -> str:
    """ISO week ``week`` of ``year`` written YYYY-Www (rolled into the next year past its last)."""
    monday = date.fromisocalendar(year, 1, 1).toordinal() + 7 * (week - 1)
    found = date.fromordinal(monday).isocalendar()
    return f"{found.year}-W{found.week:02d}"


def seasonal(week: int) -> float:
    return 1 + 0.12 * math.sin(2 * math.pi * (week - 10) / 52)


def port_volumes(rng: random.Random) -> dict[tuple[str, int], float]:
    """Loaded inbound TEUs per port and week, disruptions included."""
    volumes = {}
    for port, base in PORT_BASE.items():
        for week in WEEKS:
            surge = 1 + SURGE_FACTOR if port == "USLAX" and week in SURGE else 1.0
            factor = CLOSURE.get((port, week), 1.0) * surge
            volumes[port, week] = base * seasonal(week) * (1 + rng.gauss(0, 0.04)) * factor
    return volumes


def throughput_rows(partner: str, volumes: dict[tuple[str, int], float], rng: random.Random) -> list[str]:
    port, terminal, share = TERMINALS[partner]
    rows = []
    for week in WEEKS:
        teu_in = volumes[port, week] * share
        empty_out = 0.35 if port in WEST else 0.15
        dwell = 3.5 + rng.gauss(0, 0.3) + (2.5 if port == "USLAX" and week in SURGE else 0.0)
        values = (teu_in, 0.5 * teu_in, 0.05 * teu_in, empty_out * teu_in)
        teus = ",".join(f"{v:.0f}" for v in values)
        arrivals = max(1, round(teu_in / 2500))
        rows.append(f"{port},{terminal},{iso_week(week)},{teus},{arrivals},{max(dwell, 0.5):.1f}")
    return rows


def foreseen(port: str, target: int, horizon: int) -> float:
    """The factor of the surge a shipper's forecast made ``horizon`` weeks ahead carries (the storm
    closure is never foreseen)."""
    if port != "USLAX" or target not in SURGE:
        return 1.0
    return 1 + SURGE_FACTOR * max(0.0, SURGE_FORESEEN - 0.1 * (horizon - 1))


def forecast_rows(partner: str, rng: random.Random) -> list[str]:
    bases, commodities = SHIPPERS[partner]
    rows = []
    for issued in ISSUED:
        for horizon in range(1, 9):
            target = issued + horizon
            for port, base in bases.items():
                for system, code in commodities:
                    expected = base * seasonal(target) * foreseen(port, target, horizon) / len(commodities)
                    teu = expected * (1 + rng.gauss(0, 0.03 * horizon))
                    rows.append(
                        f"{iso_week(issued)},{iso_week(target)},{horizon},{port},{system},{code},{max(teu, 0):.0f}"
                    )
    return rows


def write_submissions(out: Path, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write every partner's submission files under ``out``; the paths written."""
    rng = random.Random(seed)  # noqa: S311 - a seeded model, not a secret
    volumes = port_volumes(rng)
    files: dict[Path, list[str]] = {}
    for partner in TERMINALS:
        rows = throughput_rows(partner, volumes, rng)
        files[out / "flow_port_throughput" / f"{partner}.csv"] = [THROUGHPUT_HEADER, *rows]
    for partner in SHIPPERS:
        files[out / "flow_shipper_forecasts" / f"{partner}.csv"] = [
            FORECAST_HEADER,
            *forecast_rows(partner, rng),
        ]
    for path, lines in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written = list(files)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_RECORDINGS_DIR / "flow")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    for path in write_submissions(args.out, args.seed):
        print(path)


if __name__ == "__main__":
    main()
