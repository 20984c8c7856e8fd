"""The report's charts of freight and people: freight mode shares per commodity group, border-port
crossings and disruptions on a timeline, and the EV-chain workforce by state. Each takes a
read-only connection to the release and returns a :class:`Figure`."""

from __future__ import annotations

import altair as alt
import duckdb

from pipelines.report.figure import Figure, chart_data, read_table

_FREIGHT_MODES = """
SELECT sctg2, sctg2 || ' ' || commodity AS commodity_group, chain_role, year, mode,
       value_usd, value_share_pct, tons_share_pct, tonne_km_share_pct
FROM marts.freight_exposure
ORDER BY sctg2, value_share_pct DESC
"""


def freight_modes(con: duckdb.DuckDBPyConnection) -> Figure:
    """Each EV-chain commodity group's freight value split by domestic mode."""
    table = read_table(con, _FREIGHT_MODES)
    groups = sorted({r[1] for r in table.rows})
    chart = (
        alt.Chart(chart_data(table))
        .mark_bar(stroke="white", strokeWidth=1)
        .encode(
            y=alt.Y("commodity_group:N", sort=groups, title=None, axis=alt.Axis(labelLimit=330)),
            x=alt.X(
                "value_share_pct:Q",
                stack="normalize",
                title="share of the group's freight value",
                axis=alt.Axis(format="%"),
            ),
            color=alt.Color(
                "mode:N", scale=alt.Scale(scheme="set2"), legend=alt.Legend(orient="bottom", columns=4)
            ),
            order=alt.Order("value_share_pct:Q", sort="descending"),
            tooltip=[
                alt.Tooltip("commodity_group:N", title="commodity"),
                alt.Tooltip("chain_role:N", title="role in the chain"),
                alt.Tooltip("mode:N"),
                alt.Tooltip("value_share_pct:Q", title="value share %", format=".1f"),
                alt.Tooltip("tons_share_pct:Q", title="tons share %", format=".1f"),
                alt.Tooltip("year:O"),
            ],
        )
        .properties(width=560, height=36 * max(len(groups), 1))
    )
    return Figure(
        key="freight_modes",
        title="Freight mode shares per commodity group of the EV chain",
        chart=chart,
        table=table,
        method=(
            "One bar per SCTG2 commodity group of marts.freight_exposure, split by the domestic mode "
            "that carries it, as a share of the group's freight value in the latest FAF estimate year "
            "(forecasts excluded); hover a segment for its share of tons."
        ),
        reads=("marts.freight_exposure",),
    )


_BORDER_PORTS = """
SELECT port_code, port_name || ', ' || state_usps AS port, border, measure, month, crossings,
       trailing_avg_3m, change_vs_trailing_pct, disruption,
       CASE WHEN disruption THEN 'disruption (>30 % below the 3-month average)'
            WHEN disruption IS NULL THEN 'no 3-month average to compare with'
            ELSE 'within 30 % of the 3-month average' END AS status
FROM marts.freight_exposure_border_ports
ORDER BY border, port_code, measure, month
"""

_STATUS_COLORS = {
    "disruption (>30 % below the 3-month average)": "#d62728",
    "within 30 % of the 3-month average": "#2ca02c",
    "no 3-month average to compare with": "#9e9e9e",
}


def border_ports(con: duckdb.DuckDBPyConnection) -> Figure:
    """Freight crossings per border port and month, coloured by the disruption flag."""
    table = read_table(con, _BORDER_PORTS)
    ports = list(dict.fromkeys(r[1] for r in table.rows))
    chart = (
        alt.Chart(chart_data(table))
        .mark_circle(opacity=0.85, stroke="#333", strokeWidth=0.5)
        .encode(
            x=alt.X("yearmonth(month):T", title="month", axis=alt.Axis(format="%b %Y", tickCount="month")),
            y=alt.Y("port:N", sort=ports, title=None),
            size=alt.Size(
                "crossings:Q",
                scale=alt.Scale(type="sqrt", range=[30, 900]),
                legend=alt.Legend(orient="bottom", title="crossings in the month"),
            ),
            color=alt.Color(
                "status:N",
                scale=alt.Scale(domain=list(_STATUS_COLORS), range=list(_STATUS_COLORS.values())),
                legend=alt.Legend(orient="bottom", direction="vertical", title="disruption flag"),
            ),
            tooltip=[
                alt.Tooltip("port:N"),
                alt.Tooltip("border:N"),
                alt.Tooltip("measure:N"),
                alt.Tooltip("month:T", format="%b %Y"),
                alt.Tooltip("crossings:Q", format=","),
                alt.Tooltip("trailing_avg_3m:Q", title="3-month average", format=",.1f"),
                alt.Tooltip("change_vs_trailing_pct:Q", title="change %", format=".1f"),
                alt.Tooltip("status:N", title="flag"),
            ],
        )
        .properties(width=560, height=22 * max(len(ports), 1))
    )
    flagged = sum(1 for r in table.rows if r[8])
    compared = sum(1 for r in table.rows if r[8] is not None)
    return Figure(
        key="border_ports",
        title="Border-port freight crossings and disruptions on a timeline",
        chart=chart,
        table=table,
        method=(
            "One circle per border port, freight measure and month of "
            "marts.freight_exposure_border_ports, sized by the month's crossings and coloured by the "
            "disruption flag: red when the count is more than 30 % below the mean of the same port and "
            "measure over the three preceding months, grey when those three months are not all published."
        ),
        reads=("marts.freight_exposure_border_ports",),
        notes=(
            f"{flagged} of {compared} port-months with a complete 3-month average are flagged as "
            f"disruptions; {len(table.rows) - compared} of {len(table.rows)} have no such average yet.",
        ),
    )


_WORKFORCE = """
SELECT state_usps, state_name, industry_code, industry_title, ev_chain_role, period, establishments,
       employment, avg_weekly_wage_usd, location_quotient, state_suppressed, county_cells,
       suppressed_county_cells
FROM marts.workforce_capacity
ORDER BY state_name, industry_code
"""


def workforce(con: duckdb.DuckDBPyConnection) -> Figure:
    """Employment in the EV chain's industries per state, stacked by industry."""
    table = read_table(con, _WORKFORCE)
    totals: dict[str, float] = {}
    for row in table.rows:
        totals[row[1]] = totals.get(row[1], 0.0) + float(row[7] or 0)
    states = sorted(totals, key=lambda s: -totals[s])
    chart = (
        alt.Chart(chart_data(table))
        .transform_filter("datum.employment !== null")
        .mark_bar(stroke="white", strokeWidth=1)
        .encode(
            y=alt.Y("state_name:N", sort=states, title=None),
            x=alt.X(
                "employment:Q", title="employment, third month of the quarter", axis=alt.Axis(format="~s")
            ),
            color=alt.Color(
                "industry_title:N",
                scale=alt.Scale(scheme="tableau10"),
                legend=alt.Legend(orient="bottom", columns=2, title="industry (NAICS)", labelLimit=320),
            ),
            tooltip=[
                alt.Tooltip("state_name:N", title="state"),
                alt.Tooltip("industry_title:N", title="industry"),
                alt.Tooltip("employment:Q", format=","),
                alt.Tooltip("avg_weekly_wage_usd:Q", title="average weekly wage USD", format=","),
                alt.Tooltip("location_quotient:Q", title="location quotient", format=".2f"),
                alt.Tooltip("suppressed_county_cells:Q", title="suppressed county cells"),
            ],
        )
        .properties(width=560, height=26 * max(len(states), 1))
    )
    suppressed = [f"{r[1]} ({r[3]})" for r in table.rows if r[10]]
    return Figure(
        key="workforce",
        title="EV-chain workforce by state",
        chart=chart,
        table=table,
        method=(
            "One bar per state of marts.workforce_capacity (the latest quarter of BLS QCEW, private "
            "ownership), stacked by NAICS industry: employment in the quarter's third month. A state-"
            "level cell BLS suppressed is not drawn (its employment is unknown, not zero)."
        ),
        reads=("marts.workforce_capacity",),
        notes=("State cells suppressed by BLS: " + (", ".join(suppressed) if suppressed else "none") + ".",),
    )
