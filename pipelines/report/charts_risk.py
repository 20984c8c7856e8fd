"""The report's risk charts: the scorecard heat map, import concentration over time, and world
production shares per mineral. Each takes a read-only connection to the release and returns a
:class:`Figure` (chart, data table, method, tables read)."""

from __future__ import annotations

import altair as alt
import duckdb

from pipelines.report.figure import Figure, chart_data, read_table

PILLARS = ("Raw materials", "Manufacturing", "Workforce", "Logistics", "Mean of pillars")

_SCORECARD_LONG = """
SELECT item, item_kind, pillar, pillar_order, score, inputs, item_order FROM (
    SELECT *, row_number() OVER () AS item_order FROM marts.supply_chain_scorecard
) s, LATERAL (VALUES
    ('Raw materials', 1, s.raw_materials_score, concat_ws('; ',
        'net import reliance ' || s.net_import_reliance_pct || ' %',
        'world production HHI ' || s.production_hhi,
        'FEOC share of world production ' || s.feoc_production_share_pct || ' %')),
    ('Manufacturing', 2, s.manufacturing_score, concat_ws('; ',
        'imports ' || s.import_year || ': ' || format('{:,.0f}', s.import_value_usd) || ' USD',
        'import HHI ' || s.import_hhi, 'FEOC share of imports ' || s.import_feoc_share_pct || ' %')),
    ('Workforce', 3, s.workforce_score, concat_ws('; ',
        'employment ' || format('{:,.0f}', s.workforce_employment),
        s.workforce_states || ' states', 'HHI across states ' || s.workforce_hhi)),
    ('Logistics', 4, s.logistics_score, concat_ws('; ',
        'SCTG ' || s.sctg2, 'dominant mode ' || s.dominant_mode,
        'its share of freight value ' || s.dominant_mode_share_pct || ' %')),
    ('Mean of pillars', 5, s.mean_score, s.pillars_scored || ' of 4 pillars scored')
) v(pillar, pillar_order, score, inputs)
ORDER BY item_order, pillar_order
"""


def scorecard(con: duckdb.DuckDBPyConnection) -> Figure:
    """The supply-chain scorecard as a heat map: items by pillars, each cell's inputs on hover."""
    long = read_table(con, _SCORECARD_LONG)
    items = [r[0] for r in long.rows if r[3] == 1]
    base = alt.Chart(chart_data(long)).encode(
        x=alt.X("pillar:N", sort=list(PILLARS), title=None, axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("item:N", sort=items, title=None),
    )
    unscored = base.transform_filter("datum.score === null").mark_rect(
        stroke="white", strokeWidth=2, color="#e6e6e6"
    )
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color(
            "score:Q",
            scale=alt.Scale(domain=[0, 100], scheme="orangered"),
            title="score (0-100, higher = more exposed)",
            legend=alt.Legend(orient="bottom", gradientLength=300),
        ),
        tooltip=[
            alt.Tooltip("item:N"),
            alt.Tooltip("pillar:N"),
            alt.Tooltip("score:Q", format=".1f"),
            alt.Tooltip("inputs:N"),
        ],
    )
    labels = base.mark_text(fontSize=13).encode(
        text=alt.condition("datum.score === null", alt.value("no inputs"), alt.Text("score:Q", format=".1f")),
        color=alt.condition("datum.score > 60", alt.value("white"), alt.value("#222")),
    )
    chart = (unscored + cells + labels).properties(width=700, height=38 * max(len(items), 1))
    wide = read_table(con, "SELECT * FROM marts.supply_chain_scorecard")
    return Figure(
        key="scorecard",
        title="Supply-chain scorecard: four risk pillars per mineral and product",
        chart=chart,
        table=wide,
        method=(
            "Each cell is one pillar's score of marts.supply_chain_scorecard (0-100, higher = more "
            "exposed); the last column is the mean of the pillars scored. Hover a cell for the inputs "
            "behind it; the table below carries every input beside the scores."
        ),
        reads=("marts.supply_chain_scorecard",),
    )


_IMPORTS_MONTHLY = """
SELECT hs_level, hs_code,
       hs_level || ' ' || hs_code || ' ' || coalesce(left(hs_description, 38), '') AS heading,
       period AS month, total_import_value_usd, supplier_countries, top_supplier, top_supplier_share_pct,
       hhi, feoc_share_pct, country_coverage_pct, total_is_reported
FROM marts.import_concentration
WHERE period_grain = 'month'
ORDER BY hs_level, hs_code, period
"""


def import_concentration(con: duckdb.DuckDBPyConnection) -> Figure:
    """Import concentration per HS chapter and heading, month by month: HHI and FEOC share."""
    table = read_table(con, _IMPORTS_MONTHLY)
    headings = sorted({r[2] for r in table.rows})
    tooltip = [
        alt.Tooltip("heading:N"),
        alt.Tooltip("month:T", format="%b %Y"),
        alt.Tooltip("hhi:Q", title="HHI", format=",.0f"),
        alt.Tooltip("top_supplier:N", title="top supplier"),
        alt.Tooltip("top_supplier_share_pct:Q", title="top supplier share %", format=".1f"),
        alt.Tooltip("feoc_share_pct:Q", title="FEOC share %", format=".1f"),
        alt.Tooltip("total_import_value_usd:Q", title="imports USD", format=",.0f"),
    ]
    base = alt.Chart(chart_data(table)).encode(
        x=alt.X("yearmonth(month):O", title=None, axis=alt.Axis(format="%b %y", labelAngle=-90)),
        y=alt.Y("heading:N", sort=headings, title=None),
        tooltip=tooltip,
    )
    size = {"width": 430, "height": 15 * max(len(headings), 1)}
    hhi = base.mark_rect().encode(
        color=alt.Color(
            "hhi:Q",
            scale=alt.Scale(domain=[0, 5000], scheme="blues", clamp=True),
            title="HHI (5,000 and above darkest)",
            legend=alt.Legend(orient="bottom"),
        )
    )
    feoc = base.mark_rect().encode(
        y=alt.Y("heading:N", sort=headings, title=None, axis=None),
        color=alt.Color(
            "feoc_share_pct:Q",
            scale=alt.Scale(domain=[0, 100], scheme="reds"),
            title="FEOC share %",
            legend=alt.Legend(orient="bottom"),
        ),
    )
    chart = alt.hconcat(
        hhi.properties(title="Supplier concentration (HHI)", **size),
        feoc.properties(title="Share from foreign entities of concern (%)", **size),
    ).resolve_scale(color="independent")
    return Figure(
        key="import_concentration",
        title="Import concentration over time per HS chapter and heading",
        chart=chart,
        table=table,
        method=(
            "One cell per HS code and month of marts.import_concentration (monthly grain): left the "
            "Herfindahl-Hirschman index of supplier shares, right the share of imports from foreign "
            "entities of concern; hover a cell for the top supplier and its share."
        ),
        reads=("marts.import_concentration",),
        notes=(
            "HS2 chapters come from USA Trade Online reports of 16 partners, without an all-countries "
            "total: their HHI is over the partners present (a lower bound).",
        ),
    )


_PRODUCTION_SHARES = """
WITH world AS (
    SELECT p.* FROM curated.usgs_mineral_production p
    WHERE p.measure = 'production' AND NOT p.is_aggregate AND p.value_t > 0
      AND p.edition = (SELECT max(edition) FROM curated.usgs_mineral_production q WHERE q.mineral = p.mineral)
),
latest AS (SELECT mineral, max(year) AS year FROM world GROUP BY mineral),
shares AS (
    SELECT w.mineral, w.edition, w.year, w.country_name, w.value_t,
           100 * w.value_t / sum(w.value_t) OVER (PARTITION BY w.mineral) AS share_pct,
           w.country_iso IN (SELECT iso_alpha2 FROM curated.ref_feoc_countries) AS feoc,
           row_number() OVER (PARTITION BY w.mineral ORDER BY w.value_t DESC, w.country_name) AS rank
    FROM world w JOIN latest USING (mineral, year)
),
grouped AS (
    SELECT mineral, any_value(edition) AS edition, any_value(year) AS year,
           CASE WHEN rank <= 5 THEN country_name ELSE 'Other countries' END AS producer,
           sum(value_t) AS production_t, sum(share_pct) AS share, bool_or(feoc) AND rank <= 5 AS feoc,
           min(rank) AS rank
    FROM shares
    GROUP BY mineral, producer, rank <= 5
)
SELECT mineral, edition, year, producer, production_t, round(share, 2) AS share_pct, feoc, rank,
       round(coalesce(sum(share) OVER w, 0) - share, 3) AS share_start, round(sum(share) OVER w, 3) AS share_end
FROM grouped
WINDOW w AS (PARTITION BY mineral ORDER BY rank ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
ORDER BY mineral, rank
"""

# Tableau's 20 categorical colours; "Other countries" is grey.
_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#a0cbe8",
    "#ffbe7d",
    "#ff9d9a",
    "#86bcb6",
    "#8cd17d",
    "#f1ce63",
    "#d4a6c8",
    "#fabfd2",
    "#d7b5a6",
    "#499894",
    "#79706e",
)


def world_production(con: duckdb.DuckDBPyConnection) -> Figure:
    """World mine production shares per mineral: the five largest producers and the rest."""
    table = read_table(con, _PRODUCTION_SHARES)
    producers = [*sorted({r[3] for r in table.rows if r[3] != "Other countries"}), "Other countries"]
    colors = [*(_PALETTE[i % len(_PALETTE)] for i in range(len(producers) - 1)), "#bab0ac"]
    base = alt.Chart(chart_data(table)).encode(y=alt.Y("mineral:N", title=None))
    bars = base.mark_bar(strokeWidth=1.5).encode(
        x=alt.X("share_start:Q", scale=alt.Scale(domain=[0, 100]), title="share of world production, %"),
        x2="share_end:Q",
        color=alt.Color(
            "producer:N",
            scale=alt.Scale(domain=producers, range=colors),
            legend=alt.Legend(
                columns=4, orient="bottom", title="producer (outlined: foreign entity of concern)"
            ),
        ),
        stroke=alt.condition("datum.feoc", alt.value("#000"), alt.value("white")),
        tooltip=[
            alt.Tooltip("mineral:N"),
            alt.Tooltip("producer:N"),
            alt.Tooltip("share_pct:Q", title="share %", format=".1f"),
            alt.Tooltip("production_t:Q", title="production t", format=",.0f"),
            alt.Tooltip("year:O"),
            alt.Tooltip("edition:N"),
            alt.Tooltip("feoc:N", title="FEOC"),
        ],
    )
    labels = (
        base.transform_filter("datum.share_pct >= 12")
        .transform_calculate(mid="(datum.share_start + datum.share_end) / 2")
        .mark_text(fontSize=12, color="#111")
        .encode(x="mid:Q", text=alt.Text("producer:N"))
    )
    minerals = len({r[0] for r in table.rows})
    chart = (bars + labels).properties(width=700, height=36 * max(minerals, 1))
    return Figure(
        key="world_production",
        title="World mine production shares per mineral",
        chart=chart,
        table=table,
        method=(
            "Each bar is one mineral's world mine production in the latest year of the latest USGS "
            "Mineral Commodity Summaries edition (curated.usgs_mineral_production, countries only, "
            "aggregates and withheld values left out), split by producer: the five largest, then the "
            "rest as 'Other countries'. Producers that are foreign entities of concern "
            "(curated.ref_feoc_countries) have a black outline. The same shares give the production "
            "HHI and FEOC share of marts.mineral_supply_risk."
        ),
        reads=("curated.usgs_mineral_production", "curated.ref_feoc_countries", "marts.mineral_supply_risk"),
    )
