"""The public FLOW aggregates (``curated.flow_port_weekly``, ``curated.flow_forecast_weekly``, the
schema pinned between the FLOW helpers) built from the real generator's partner submissions, for
tests of what reads them while their publishing step is not on main yet.

Suppression is ``pipelines.disclosure.protect``'s, never re-implemented here: the port table is
protected on loaded inbound TEUs (what the early warning reads) and its other measures are filled
in for the cells protect published; dwell is the loaded_teu_in-weighted mean of the partners'
dwell, as the pinned schema defines it.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pyarrow as pa

from pipelines.common.settings import Settings
from pipelines.contracts import Registry
from pipelines.disclosure import Hierarchy, Level, protect
from pipelines.marts import MartsBuild, publish_marts
from pipelines.orchestration.refresh import ingest_file
from pipelines.replay.flow_generate import write_submissions
from pipelines.store import Column, Draft, TableSchema
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_store

BTS_EXPORT = (
    Path(__file__).resolve().parent.parent
    / "recordings"
    / "bts_border_crossing"
    / "border_crossing_entry_data_socrata_export_head40.csv"
)
CODELIST = Path(__file__).resolve().parent.parent / "schemas" / "codelists" / "us_container_ports.csv"


def _pinned(columns: str, comment: str) -> TableSchema:
    """A table of the pinned schema from its ``name TYPE, ...`` list."""
    return TableSchema(tuple(Column(*column.split()) for column in columns.split(",")), comment)


PORT_WEEKLY = _pinned(
    "level VARCHAR, region VARCHAR, port_code VARCHAR, terminal_code VARCHAR, week VARCHAR, "
    "loaded_teu_in DOUBLE, loaded_teu_out DOUBLE, empty_teu_in DOUBLE, empty_teu_out DOUBLE, "
    "vessel_arrivals DOUBLE, dwell_days DOUBLE, suppressed BOOLEAN, suppression_reason VARCHAR, "
    "contributors VARCHAR",
    "Disclosure-controlled weekly port throughput (test fixture of the pinned schema).",
)
FORECAST_WEEKLY = _pinned(
    "level VARCHAR, port_code VARCHAR, commodity_system VARCHAR, commodity_code VARCHAR, week VARCHAR, "
    "horizon_weeks INTEGER, teu_expected DOUBLE, suppressed BOOLEAN, suppression_reason VARCHAR, "
    "contributors VARCHAR",
    "Disclosure-controlled weekly shipper forecasts (test fixture of the pinned schema).",
)
MEASURES = ("loaded_teu_in", "loaded_teu_out", "empty_teu_in", "empty_teu_out", "vessel_arrivals")

_TERMINAL = Level("terminal_week", ("region", "port_code", "terminal_code", "week"))
_PORT = Level("port_week", ("region", "port_code", "week"))
_REGION = Level("region_week", ("region", "week"))
_WEEK = Level("week", ("week",))
PORT_HIERARCHIES = (Hierarchy(_TERMINAL, _PORT), Hierarchy(_PORT, _REGION), Hierarchy(_REGION, _WEEK))
_HORIZON_WEEK = Level("week", ("week", "horizon_weeks"))
FORECAST_BY_PORT = (Hierarchy(Level("port_week", ("port_code", "week", "horizon_weeks")), _HORIZON_WEEK),)
FORECAST_BY_COMMODITY = (
    Hierarchy(
        Level("commodity_week", ("commodity_system", "commodity_code", "week", "horizon_weeks")),
        _HORIZON_WEEK,
    ),
)


def submissions(out: Path) -> dict[str, list[dict[str, str]]]:
    """The generator's rows per dataset, each with the partner_id its file was written for."""
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for path in write_submissions(out):
        with path.open(encoding="utf-8", newline="") as handle:
            rows[path.parent.name].extend({**row, "partner_id": path.stem} for row in csv.DictReader(handle))
    return rows


def _regions() -> dict[str, str]:
    with CODELIST.open(encoding="utf-8", newline="") as handle:
        return {row["unlocode"]: row["coast"] for row in csv.DictReader(handle)}


def port_weekly(throughput: list[dict[str, str]]) -> pa.Table:
    """``curated.flow_port_weekly`` from the partners' throughput rows."""
    region = _regions()
    dimensions = ("region", "port_code", "terminal_code", "week")
    contributions = pa.Table.from_pylist(
        [
            {
                "region": region[r["port_code"]],
                **{d: r[d] for d in dimensions[1:]},
                "partner_id": r["partner_id"],
                "value": float(r["loaded_teu_in"]),
            }
            for r in throughput
        ]
    )
    cells = protect(contributions, PORT_HIERARCHIES).to_pylist()
    located = [{**r, "region": region[r["port_code"]]} for r in throughput]
    rows = []
    for cell in cells:
        members = [r for r in located if all(cell[d] in (None, r[d]) for d in dimensions)]
        published = not cell["suppressed"]
        sums = {m: sum(float(r[m]) for r in members) if published else None for m in MEASURES}
        weighted = [(float(r["loaded_teu_in"]), float(r["dwell_days"])) for r in members if r["dwell_days"]]
        inbound = sum(teu for teu, _ in weighted)
        dwell = sum(teu * days for teu, days in weighted) / inbound if published and inbound else None
        rows.append(
            {**{c: cell.get(c) for c in ("level", *dimensions)}, **sums, "dwell_days": dwell}
            | {c: cell[c] for c in ("suppressed", "suppression_reason", "contributors")}
        )
    return pa.Table.from_pylist(rows, schema=_arrow(PORT_WEEKLY))


def forecast_weekly(forecasts: list[dict[str, str]]) -> pa.Table:
    """``curated.flow_forecast_weekly`` from the shippers' forecast rows (port and commodity levels,
    each protected with the week total it sums to; the week rows are the same in both)."""
    contributions = pa.Table.from_pylist(
        [
            {
                "port_code": r["port_code"],
                "commodity_system": r["commodity_system"],
                "commodity_code": r["commodity_code"],
                "week": r["week"],
                "horizon_weeks": int(r["horizon_weeks"]),
                "partner_id": r["partner_id"],
                "value": float(r["teu_expected"]),
            }
            for r in forecasts
        ]
    )
    by_port = protect(contributions, FORECAST_BY_PORT).to_pylist()
    by_commodity = [
        c for c in protect(contributions, FORECAST_BY_COMMODITY).to_pylist() if c["level"] != "week"
    ]
    rows = [{**cell, "teu_expected": cell["value"]} for cell in by_port + by_commodity]
    return pa.Table.from_pylist(rows, schema=_arrow(FORECAST_WEEKLY))


def _arrow(schema: TableSchema) -> pa.Schema:
    types = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(), "INTEGER": pa.int32()}
    return pa.schema([pa.field(c.name, types[c.type]) for c in schema.columns])


def publish_flow_tables(layout: Layout, port: pa.Table, forecast: pa.Table) -> None:
    """One public release holding these two tables as ``curated.flow_port_weekly`` and
    ``curated.flow_forecast_weekly``."""
    import pyarrow.parquet as pq

    def change(draft: Draft) -> None:
        for name, table, schema in (
            ("flow_port_weekly", port, PORT_WEEKLY),
            ("flow_forecast_weekly", forecast, FORECAST_WEEKLY),
        ):
            target = draft.scratch() / f"{name}.parquet"
            pq.write_table(table, target)
            draft.replace_table(f"curated.{name}", [target], schema, "fixture")

    open_store(layout).publish(change, "fixture")


def empty_flow_tables() -> tuple[pa.Table, pa.Table]:
    """The two tables with no rows (their schema only)."""
    return _arrow(PORT_WEEKLY).empty_table(), _arrow(FORECAST_WEEKLY).empty_table()


def publish_with_recorded_bts(
    registry: Registry, settings: Settings, port: pa.Table | None, forecast: pa.Table | None
) -> MartsBuild:
    """Ingest the recorded BTS export through the real file path, publish the FLOW aggregates when
    given (else leave them out, as before any partner submits), and build the marts."""
    ingest_file(registry.get("bts_border_crossings"), registry, settings, BTS_EXPORT)
    layout = Layout(settings.data_dir)
    if port is not None and forecast is not None:
        publish_flow_tables(layout, port, forecast)
    return publish_marts(layout)


def generated_aggregates(out: Path) -> tuple[pa.Table, pa.Table]:
    """The generator's submissions (written under ``out``) as the two public tables (port, forecast)."""
    rows = submissions(out)
    return port_weekly(rows["flow_port_throughput"]), forecast_weekly(rows["flow_shipper_forecasts"])
