"""The public aggregates of partner data (issue 23): restricted rows in, disclosure-controlled
cells out, shaped as the pinned public tables ``curated.flow_port_weekly`` and
``curated.flow_forecast_weekly`` (docs/architecture.md, "Partner data sharing (FLOW)").

Every value goes through :func:`pipelines.disclosure.protect`, one measure at a time, and a cell
is suppressed when any of its measures is (:func:`protect_measures`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import Contract, Registry
from pipelines.disclosure import REASONS, DisclosureError, DisclosureRule, Hierarchy, Level, protect
from pipelines.store import Column, TableSchema

PORTS_CODELIST = "us_container_ports"
CellKey = tuple[str, tuple[object, ...]]
"""A cell by its level's name and its values of that level's dimensions (as pipelines.disclosure)."""
PARTNER = "partner_id"

TERMINAL_WEEK = Level("terminal_week", ("region", "port_code", "terminal_code", "week"))
PORT_WEEK = Level("port_week", ("region", "port_code", "week"))
REGION_WEEK = Level("region_week", ("region", "week"))
WEEK = Level("week", ("week",))
THROUGHPUT_LEVELS = (
    Hierarchy(TERMINAL_WEEK, PORT_WEEK),
    Hierarchy(PORT_WEEK, REGION_WEEK),
    Hierarchy(REGION_WEEK, WEEK),
)
# Forecasts: every level per horizon, two margins of one port x commodity table sharing the week:
# commodity group within port -> port -> week, and national commodity group -> week. The library
# audits the pair with linear programs (pipelines.disclosure.audit); the first level, holding every
# dimension, is the table's interior.
FORECAST_COMMODITY_WEEK = Level(
    "commodity_week", ("horizon_weeks", "port_code", "commodity_system", "commodity_code", "week")
)
FORECAST_PORT_WEEK = Level("port_week", ("horizon_weeks", "port_code", "week"))
FORECAST_NATIONAL_WEEK = Level(
    "commodity_national_week", ("horizon_weeks", "commodity_system", "commodity_code", "week")
)
FORECAST_WEEK = Level("week", ("horizon_weeks", "week"))
FORECAST_LEVELS = (
    Hierarchy(FORECAST_COMMODITY_WEEK, FORECAST_PORT_WEEK),
    Hierarchy(FORECAST_PORT_WEEK, FORECAST_WEEK),
    Hierarchy(FORECAST_NATIONAL_WEEK, FORECAST_WEEK),
)

TEU_MEASURES = ("loaded_teu_in", "loaded_teu_out", "empty_teu_in", "empty_teu_out", "vessel_arrivals")
# dwell x loaded TEUs in: the numerator of the weighted mean dwell. Published dwell times published
# loaded_teu_in gives it back, so it is protected like any measure.
DWELL_TEU_DAYS = "dwell_teu_days"

_CELL = {
    "suppressed": (
        "BOOLEAN",
        "True when the cell fails the disclosure rule or hides one that does; its values are then null.",
    ),
    "suppression_reason": (
        "VARCHAR",
        "Why the cell is suppressed: too_few_partners, dominant_partner, estimable_by_partner (primary) or "
        "complementary (it would let a suppressed cell be derived); null when published.",
    ),
    "contributors": (
        "VARCHAR",
        "Contributing partners as a band (3-4, 5-9, 10+), never the count; null when suppressed.",
    ),
}
PORT_COLUMNS = {
    "level": ("VARCHAR", "Aggregation level of the cell: terminal_week, port_week, region_week or week."),
    "region": (
        "VARCHAR",
        "The port's coast (West, East, Gulf) from code list us_container_ports; null at level week.",
    ),
    "port_code": ("VARCHAR", "UN/LOCODE of the port; null above port level."),
    "terminal_code": ("VARCHAR", "Terminal within the port; null above terminal level."),
    "week": ("VARCHAR", "ISO week of the moves, YYYY-Www."),
    "loaded_teu_in": (
        "DOUBLE",
        "Loaded TEUs discharged, summed over partners [unit TEU]; null when suppressed.",
    ),
    "loaded_teu_out": (
        "DOUBLE",
        "Loaded TEUs loaded onto vessels, summed over partners [unit TEU]; null when suppressed.",
    ),
    "empty_teu_in": (
        "DOUBLE",
        "Empty TEUs discharged, summed over partners [unit TEU]; null when suppressed.",
    ),
    "empty_teu_out": (
        "DOUBLE",
        "Empty TEUs loaded (repositioned), summed over partners [unit TEU]; null when suppressed.",
    ),
    "vessel_arrivals": ("DOUBLE", "Container vessel arrivals, summed over partners; null when suppressed."),
    "dwell_days": (
        "DOUBLE",
        "Mean import dwell in days, weighted by loaded_teu_in; null when suppressed or when a partner of the "
        "cell did not measure dwell.",
    ),
    **_CELL,
}
FORECAST_COLUMNS = {
    "level": (
        "VARCHAR",
        "Aggregation level of the cell: commodity_week (a commodity group at a port), port_week, "
        "commodity_national_week (a commodity group over all ports) or week, each per horizon.",
    ),
    "port_code": (
        "VARCHAR",
        "UN/LOCODE of the port of discharge; null at levels commodity_national_week and week.",
    ),
    "commodity_system": (
        "VARCHAR",
        "HS2 or SCTG2, the system of commodity_code; null at levels port_week and week.",
    ),
    "commodity_code": ("VARCHAR", "HS chapter or SCTG group; null at levels port_week and week."),
    "week": ("VARCHAR", "Target ISO week (when the TEUs are expected), YYYY-Www."),
    "horizon_weeks": ("INTEGER", "Weeks between the forecast's issue and the target week, 1 to 8."),
    "teu_expected": (
        "DOUBLE",
        "TEUs the shippers expect, summed over partners [unit TEU]; null when suppressed.",
    ),
    **_CELL,
}
_ARROW = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(), "INTEGER": pa.int32()}


def disclosure_rule(contract: Contract) -> DisclosureRule:
    """The rule the partner contract's ``disclosure:`` fields set (the p% margin: the library's)."""
    if contract.disclosure is None:
        raise DisclosureError(
            f"{contract.dataset}: the contract has no disclosure rule; nothing may leave the restricted tier"
        )
    return DisclosureRule(
        min_partners=contract.disclosure.min_partners, max_share_pct=contract.disclosure.max_share_pct
    )


def table_schema(columns: dict[str, tuple[str, str]], comment: str) -> TableSchema:
    """The public table as analysts see it: every column typed and commented."""
    return TableSchema(tuple(Column(name, kind, text) for name, (kind, text) in columns.items()), comment)


def protect_measures(
    contributions: pa.Table,
    hierarchies: tuple[Hierarchy, ...],
    dimensions: tuple[str, ...],
    measures: tuple[str, ...],
    rule: DisclosureRule,
    withheld: Mapping[str, Collection[CellKey]] | None = None,
) -> pa.Table:
    """One row per cell: level, ``dimensions``, each measure (null where the cell is suppressed),
    suppressed, suppression_reason, contributors. ``withheld``: cells where a measure is not
    published in any case (null): its suppression there suppresses nothing else.

    Each measure is protected on its own, and a cell is suppressed when any of its measures is.
    That union is safe: for every measure it publishes a subset of that measure's safe pattern, and
    publishing fewer cells only widens what an attacker can infer an interval to be, never narrows
    it. A cell hidden only for another measure's sake passed the rule for this one; a measure
    withheld from more cells than its pattern asks publishes a subset of it too.
    """
    keys: pa.Table | None = None
    values: dict[str, list[float | None]] = {}
    reasons: list[list[str | None]] = []
    bands: list[str | None] = []
    for measure in measures:
        one = contributions.select([*dimensions, PARTNER]).append_column(
            "value", pc.cast(contributions.column(measure), pa.float64())
        )
        public = protect(one, hierarchies, rule)
        cells = public.select(["level", *dimensions])
        if keys is None:
            keys, bands = cells, public.column("contributors").to_pylist()
        elif not cells.equals(keys):
            raise DisclosureError(f"measure {measure} gave other cells than {measures[0]}")
        hidden = _withheld(cells, hierarchies, (withheld or {}).get(measure, ()))
        values[measure] = [
            None if h else v for v, h in zip(public.column("value").to_pylist(), hidden, strict=True)
        ]
        reasons.append(
            [
                None if h else r
                for r, h in zip(public.column("suppression_reason").to_pylist(), hidden, strict=True)
            ]
        )
    if keys is None:
        raise DisclosureError("no measure to protect")
    return _union(keys, values, reasons, bands)


def _union(
    keys: pa.Table,
    values: dict[str, list[float | None]],
    reasons: list[list[str | None]],
    bands: list[str | None],
) -> pa.Table:
    """The cells with every measure, null where any measure's pattern suppresses the cell."""
    # A cell suppressed for several measures gets the first reason of REASONS: its own sensitivity
    # before the cover it gives another cell.
    union = [
        min((r for r in row if r), key=REASONS.index, default=None) for row in zip(*reasons, strict=True)
    ]
    table = keys
    for measure, column in values.items():
        # Sums in another order differ in the last bits: rounded, equal inputs give equal rows (no release).
        kept = [
            None if reason or value is None else round(value, 6)
            for value, reason in zip(column, union, strict=True)
        ]
        table = table.append_column(measure, pa.array(kept, pa.float64()))
    # Contributors are the same partners for every measure but for zeros: the first measure's band.
    return (
        table.append_column("suppressed", pa.array([r is not None for r in union], pa.bool_()))
        .append_column("suppression_reason", pa.array(union, pa.string()))
        .append_column(
            "contributors",
            pa.array([b if r is None else None for b, r in zip(bands, union, strict=True)], pa.string()),
        )
    )


def _withheld(cells: pa.Table, hierarchies: tuple[Hierarchy, ...], hidden: Collection[CellKey]) -> list[bool]:
    """For each cell (level and dimensions), whether it is one of ``hidden``."""
    if not hidden:
        return [False] * cells.num_rows
    dimensions = {level.name: level.dimensions for h in hierarchies for level in (h.child, h.parent)}
    return [
        (row["level"], tuple(row[d] for d in dimensions[row["level"]])) in hidden for row in cells.to_pylist()
    ]


def _regions(registry: Registry, ports: pa.ChunkedArray) -> pa.Array:
    coasts = {row["unlocode"]: row["coast"] for row in registry.codelists.rows(PORTS_CODELIST)}
    unknown = sorted(set(ports.to_pylist()) - set(coasts))
    if unknown:
        raise DisclosureError(f"flow_port_throughput: ports {unknown} are not in code list {PORTS_CODELIST}")
    return pa.array([coasts[port] for port in ports.to_pylist()], pa.string())


def _unmeasured(rows: pa.Table) -> set[CellKey]:
    """Cells (level, key) where some partner's row has no dwell: their mean dwell would be biased."""
    missing = rows.filter(pc.is_null(rows.column("dwell_days")))
    found = set()
    for hierarchy in THROUGHPUT_LEVELS:
        for level in (hierarchy.child, hierarchy.parent):
            for row in missing.select(list(level.dimensions)).to_pylist():
                found.add((level.name, tuple(row[d] for d in level.dimensions)))
    return found


def port_weekly(throughput: pa.Table, registry: Registry, rule: DisclosureRule) -> pa.Table:
    """``curated.flow_port_weekly`` from the restricted ``flow_port_throughput`` rows."""
    rows = throughput.append_column("region", _regions(registry, throughput.column("port_code")))
    teu_days = pc.multiply(rows.column("dwell_days"), rows.column("loaded_teu_in"))
    # An unmeasured dwell adds nothing to the numerator, and the cells holding it publish no dwell:
    # a mean over some partners only would be biased. Their numerator is withheld, so its zero
    # (one contributor fewer) suppresses none of their own TEUs; the cover the numerator's pattern
    # picks for them may still hide a sibling (safe, more than needed).
    rows = rows.append_column(DWELL_TEU_DAYS, pc.fill_null(teu_days, 0.0))
    dimensions = ("region", "port_code", "terminal_code", "week")
    measures = (*TEU_MEASURES, DWELL_TEU_DAYS)
    withheld = {DWELL_TEU_DAYS: _unmeasured(rows)}
    cells = protect_measures(rows, THROUGHPUT_LEVELS, dimensions, measures, rule, withheld)
    dwell = [
        round(days / teu, 3) if teu and days is not None else None
        for teu, days in zip(
            cells.column("loaded_teu_in").to_pylist(), cells.column(DWELL_TEU_DAYS).to_pylist(), strict=True
        )
    ]
    cells = cells.drop_columns([DWELL_TEU_DAYS]).append_column("dwell_days", pa.array(dwell, pa.float64()))
    return _shaped(cells, PORT_COLUMNS)


def forecast_weekly(forecasts: pa.Table, rule: DisclosureRule) -> pa.Table:
    """``curated.flow_forecast_weekly`` from the restricted ``flow_shipper_forecasts`` rows."""
    dimensions = ("horizon_weeks", "port_code", "commodity_system", "commodity_code", "week")
    rows = forecasts.set_column(
        forecasts.schema.get_field_index("horizon_weeks"),
        "horizon_weeks",
        pc.cast(forecasts.column("horizon_weeks"), pa.int32()),
    )
    cells = protect_measures(rows, FORECAST_LEVELS, dimensions, ("teu_expected",), rule)
    return _shaped(cells, FORECAST_COLUMNS)


def _shaped(cells: pa.Table, columns: dict[str, tuple[str, str]]) -> pa.Table:
    """The pinned column order and types."""
    return pa.table(
        {name: pc.cast(cells.column(name), _ARROW[kind]) for name, (kind, _) in columns.items()},
    )
