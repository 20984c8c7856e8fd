"""The report's disruption early-warning timeline (issue 23): each container port's weekly loaded
inbound TEUs against its baseline, flagged weeks marked, suppressed weeks drawn as labelled gaps.
It reads ``marts.flow_disruption_warning``, which exists only once partner aggregates publish."""

from __future__ import annotations

import altair as alt
import duckdb

from pipelines.report.figure import Figure, Table, chart_data, read_table

MART = "marts.flow_disruption_warning"

# A suppressed week starts a new line segment, so no line is drawn across it (Vega-Lite would
# join the published weeks on either side and suggest a value the public may not see).
_TIMELINE = f"""
SELECT port_code || ' ' || coalesce(port_name, '') AS port, week, week_start,
       week_start + 7 AS week_end, suppressed, suppression_reason, loaded_teu_in, baseline_teu_in,
       inbound_ratio, dwell_days, dwell_excess_days, forecast_1w_teu, forecast_4w_teu,
       forecast_1w_gap, flag, reason, land_port_disruption, land_port_detail,
       sum(CAST(suppressed AS INTEGER)) OVER (PARTITION BY port_code ORDER BY week) AS segment,
       CASE WHEN suppressed AND NOT coalesce(lag(suppressed) OVER (PARTITION BY port_code ORDER BY week), false)
            THEN 'suppressed (' || suppression_reason || ')' END AS gap_label
FROM {MART}
ORDER BY port_code, week
"""

FLAG_COLORS = {
    "closure_or_drop": "#d62728",
    "surge": "#ff7f0e",
    "dwell": "#9467bd",
    "forecast_miss": "#8c564b",
}


def _layers(table: Table) -> alt.LayerChart:
    """Suppressed gaps (grey, labelled), baseline (dashed), inbound (line), flagged weeks (points)."""
    base = alt.Chart(chart_data(table)).encode(
        x=alt.X("week_start:T", title="ISO week (Monday)", axis=alt.Axis(format="%d %b %Y"))
    )
    week_tip = [alt.Tooltip("port:N"), alt.Tooltip("week:N")]
    gaps = (
        base.transform_filter("datum.suppressed")
        .mark_rect(color="#d9d9d9", opacity=0.7)
        .encode(
            x2="week_end:T",
            tooltip=[
                *week_tip,
                alt.Tooltip("suppression_reason:N", title="suppressed"),
                alt.Tooltip("reason:N"),
            ],
        )
    )
    labels = (
        base.transform_filter("datum.gap_label !== null")
        .mark_text(align="left", baseline="top", dx=2, fontSize=11, color="#555")
        .encode(text="gap_label:N", y=alt.value(4))
    )
    published = base.transform_filter("!datum.suppressed")
    teu = alt.Axis(format="~s")
    baseline = published.mark_line(strokeDash=[5, 3], color="#7f7f7f").encode(
        y=alt.Y("baseline_teu_in:Q", title="loaded inbound TEUs", axis=teu), detail="segment:N"
    )
    inbound = published.mark_line(color="#1f77b4", point=True).encode(
        y=alt.Y("loaded_teu_in:Q", axis=teu),
        detail="segment:N",
        tooltip=[
            *week_tip,
            alt.Tooltip("loaded_teu_in:Q", title="inbound TEUs", format=","),
            alt.Tooltip("baseline_teu_in:Q", title="baseline TEUs", format=","),
            alt.Tooltip("inbound_ratio:Q", title="ratio", format=".2f"),
            alt.Tooltip("dwell_days:Q", title="dwell days", format=".2f"),
            alt.Tooltip("reason:N"),
            alt.Tooltip("land_port_detail:N", title="land ports (BTS)"),
        ],
    )
    flagged = (
        published.transform_filter("datum.flag !== null && datum.flag !== 'none'")
        .mark_point(size=160, filled=True, shape="diamond")
        .encode(
            y=alt.Y("loaded_teu_in:Q"),
            color=alt.Color(
                "flag:N",
                scale=alt.Scale(domain=list(FLAG_COLORS), range=list(FLAG_COLORS.values())),
                legend=alt.Legend(orient="bottom", title="flagged week"),
            ),
            tooltip=[*week_tip, alt.Tooltip("flag:N"), alt.Tooltip("reason:N")],
        )
    )
    return alt.LayerChart(layer=[gaps, labels, baseline, inbound, flagged])


def flow_warning(con: duckdb.DuckDBPyConnection) -> Figure:
    """Disruption early warning per container port: inbound TEUs against their baseline, week by week."""
    table = read_table(con, _TIMELINE)
    chart = (
        _layers(table)
        .properties(width=620, height=140)
        .facet(row=alt.Row("port:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")))
        .resolve_scale(y="independent")
    )
    flags = [r[14] for r in table.rows if r[14] not in (None, "none")]
    suppressed = sum(1 for r in table.rows if r[4])
    counts = ", ".join(f"{flag} {flags.count(flag)}" for flag in FLAG_COLORS if flag in flags) or "none"
    return Figure(
        key="flow_warning",
        title="Disruption early warning: container ports week by week",
        chart=chart,
        table=table,
        method=(
            "One panel per container port of marts.flow_disruption_warning: loaded inbound TEUs per ISO "
            "week (blue line) against the median of the 8 most recent published weeks (dashed); a diamond "
            "marks a flagged week (closure or drop below 0.70 x baseline, surge above 1.25 x, dwell 1.5 "
            "days over its median, or the 1-week forecast index more than 0.25 from the realised index "
            "inbound / baseline). A grey band labelled "
            "suppressed is a week whose port cell disclosure control withheld: no value is drawn and "
            "no line crosses it. Hover a point for the reason and the BTS land-port flags of the "
            "port's state for that month."
        ),
        reads=(MART,),
        notes=(
            "Constructed partner data: no FLOW partner has shared real data; these aggregates come from "
            "partner submissions generated from a documented model (pipelines/replay/flow_generate.py, "
            "values are not statistics) and published through disclosure control.",
            f"{len(flags)} of {len(table.rows)} port-weeks flagged ({counts}); {suppressed} suppressed.",
        ),
    )
