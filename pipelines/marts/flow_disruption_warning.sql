-- mart: flow_disruption_warning
-- reads: flow_port_weekly, flow_forecast_weekly, marts.freight_exposure_border_ports
-- title: Disruption early warning per container port and ISO week (FLOW partner aggregates, BTS land-port flags)
-- method: One row per port_week cell of curated.flow_port_weekly (published or suppressed). Thresholds:
--   BASELINE_WEEKS = 8, BASELINE_LOOKBACK_WEEKS = 12, DROP_RATIO = 0.70, SURGE_RATIO = 1.25,
--   DWELL_EXCESS_DAYS = 1.5, FORECAST_MISS_GAP = 0.25. Baseline: the median loaded inbound TEUs of the
--   BASELINE_WEEKS most recent published weeks of the same port before the week, found within the
--   BASELINE_LOOKBACK_WEEKS before it (so a baseline steps over up to four suppressed weeks but never
--   reaches back across a season); null, with the reason, when fewer are published. The median, not
--   the mean: an event's own first weeks enter the baseline of its later weeks, and a mean lets a
--   surge of 35 % fall under the threshold by its third week (1.22 x), while the median of eight
--   weeks ignores up to three such weeks. A suppressed cell
--   gives no indicator at all (its value is not public, and nothing here estimates it). The ratio is
--   inbound over baseline: below DROP_RATIO flags closure_or_drop (the 30 % drop of the BTS border-port
--   flag), above SURGE_RATIO flags surge (a quarter above the recent level is beyond a season's weekly
--   drift and the 4 % weekly noise of a port's volume). Dwell is compared with the median dwell of the
--   same baseline weeks (the median, so one congested week does not move it); an excess of
--   DWELL_EXCESS_DAYS or more (about a third of a typical 3.5-day import dwell) flags dwell. Shippers'
--   forecasts are those of curated.flow_forecast_weekly at port_week level for horizons 1 and 4: one week
--   ahead is the shippers' firmest view (bookings mostly made), four weeks ahead the early-warning lead
--   a port needs to plan labour and chassis, and the one the monthly BTS flags can still be read
--   beside. The shippers who forecast carry only part of a port's inbound, so their TEUs are never
--   compared with the port's total: each side is an index on its own level (like with like). The
--   realised index is inbound_ratio; the forecast index of a horizon is the week's published forecast
--   over the median of the same horizon's published forecasts for the same baseline weeks (null unless
--   all 8 are published). Gap = forecast index - realised index; a gap beyond FORECAST_MISS_GAP either
--   way on the 1-week forecast flags forecast_miss: the shippers expected a level a quarter of the
--   usual volume away from what came (a storm they did not foresee, a surge they under-booked). One
--   flag per row, the first that applies in the order closure_or_drop, surge, dwell, forecast_miss; none
--   when assessed and none applies; null when the week cannot be assessed (suppressed, or no baseline).
--   The reason gives every condition met with its figures. Land ports: the BTS freight disruption
--   flags of marts.freight_exposure_border_ports for the land ports in the seaport's state
--   (curated.ref_us_container_ports), for the calendar month containing the ISO week's Thursday (the
--   day ISO uses to place a week): the seaport and the border crossings of its state share the same
--   inland truck and rail network, and BTS publishes monthly. A state without land border ports (e.g.
--   GA) gets no land-port figures.
-- column: port_code: UN/LOCODE of the container port.
-- column: port_name: Port name from the container-port code list.
-- column: state_usps: USPS code of the port's state (what the land-port join uses).
-- column: region: The port's coast (West, East, Gulf), as the aggregates publish it.
-- column: week: ISO week YYYY-Www.
-- column: week_start: Monday of the ISO week.
-- column: suppressed: True when the port's cell for the week is suppressed by disclosure control (no indicator is given).
-- column: suppression_reason: Why the cell is suppressed (too_few_partners, dominant_partner, estimable_by_partner, complementary).
-- column: loaded_teu_in: Loaded inbound TEUs of the week (null when suppressed).
-- column: baseline_weeks: Published weeks found for the baseline (0 to 8).
-- column: baseline_teu_in: Median loaded inbound TEUs of the 8 most recent published weeks within the 12 weeks before (null unless all 8 are there, or when suppressed).
-- column: inbound_ratio: Loaded inbound TEUs over the baseline.
-- column: dwell_days: Loaded-inbound-weighted mean container dwell of the week, days.
-- column: dwell_baseline_days: Median dwell of the baseline weeks (null unless all 8 have dwell).
-- column: dwell_excess_days: Dwell of the week minus its baseline, days.
-- column: forecast_1w_teu: Shippers' forecast of the week's TEUs made one week ahead (null when that cell is suppressed or absent).
-- column: forecast_4w_teu: Shippers' forecast of the week's TEUs made four weeks ahead (null when suppressed or absent).
-- column: forecast_1w_index: The 1-week forecast over the median of the 1-week forecasts of the baseline weeks (null unless all 8 are published).
-- column: forecast_4w_index: The 4-week forecast over the median of the 4-week forecasts of the baseline weeks (null unless all 8 are published).
-- column: forecast_1w_gap: forecast_1w_index minus inbound_ratio (the realised index); beyond 0.25 either way flags forecast_miss.
-- column: forecast_4w_gap: forecast_4w_index minus inbound_ratio (shown, not flagged).
-- column: flag: closure_or_drop, surge, dwell, forecast_miss or none; null when the week cannot be assessed.
-- column: reason: Why the week is flagged or not, with the figures; for a suppressed week or one without a baseline, why there is no indicator.
-- column: bts_month: The month whose BTS border-crossing flags are joined (the month containing the week's Thursday).
-- column: land_port_measures: Freight port-measures BTS published in the port's state for that month (0 when none).
-- column: land_port_disruptions: How many of them BTS data flags as disruptions (more than 30 % below their 3-month average).
-- column: land_port_disruption: True when a land port of the state is flagged that month, false when some were assessed and none is, null when none could be assessed.
-- column: land_port_detail: The flagged land ports and measures with their change, or what was (not) assessed.
-- check: SELECT port_code, week FROM marts.flow_disruption_warning WHERE suppressed AND (loaded_teu_in IS NOT NULL OR baseline_teu_in IS NOT NULL OR inbound_ratio IS NOT NULL OR dwell_days IS NOT NULL OR dwell_excess_days IS NOT NULL OR forecast_1w_gap IS NOT NULL OR forecast_4w_gap IS NOT NULL OR flag IS NOT NULL)
-- check: SELECT port_code, week FROM marts.flow_disruption_warning WHERE baseline_teu_in IS NOT NULL AND baseline_weeks <> 8
-- check: SELECT port_code, week FROM marts.flow_disruption_warning WHERE (flag = 'surge' AND NOT inbound_ratio > 1.25) OR (flag = 'closure_or_drop' AND NOT inbound_ratio < 0.70)
-- check: SELECT port_code, week FROM marts.flow_disruption_warning GROUP BY ALL HAVING count(*) > 1
CREATE OR REPLACE TABLE marts.flow_disruption_warning AS
WITH port_weeks AS (
    SELECT f.port_code, f.region, f.week, f.suppressed, f.suppression_reason,
           CASE WHEN NOT f.suppressed THEN f.loaded_teu_in END AS loaded_teu_in,
           CASE WHEN NOT f.suppressed THEN f.dwell_days END AS dwell_days,
           -- Monday of ISO week 1 is the Monday on or before 4 January.
           make_date(CAST(left(f.week, 4) AS INTEGER), 1, 4)
             - CAST(isodow(make_date(CAST(left(f.week, 4) AS INTEGER), 1, 4)) - 1 AS INTEGER)
             + 7 * (CAST(right(f.week, 2) AS INTEGER) - 1) AS week_start
    FROM curated.flow_port_weekly f
    WHERE f.level = 'port_week'
),
published AS (
    SELECT * FROM port_weeks WHERE NOT suppressed AND loaded_teu_in IS NOT NULL
),
baseline_frame AS (
    SELECT w.port_code, w.week, p.week AS baseline_week, p.loaded_teu_in, p.dwell_days
    FROM port_weeks w
    JOIN published p ON p.port_code = w.port_code
     AND p.week_start BETWEEN w.week_start - 7 * 12 AND w.week_start - 7
    QUALIFY row_number() OVER (PARTITION BY w.port_code, w.week ORDER BY p.week_start DESC) <= 8
),
baseline AS (
    SELECT port_code, week, count(*) AS baseline_weeks,
           CASE WHEN count(*) = 8 THEN median(loaded_teu_in) END AS baseline_teu_in,
           CASE WHEN count(dwell_days) = 8 THEN median(dwell_days) END AS dwell_baseline_days
    FROM baseline_frame
    GROUP BY port_code, week
),
forecasts AS (
    SELECT port_code, week,
           max(teu_expected) FILTER (WHERE horizon_weeks = 1 AND NOT suppressed) AS forecast_1w_teu,
           max(teu_expected) FILTER (WHERE horizon_weeks = 4 AND NOT suppressed) AS forecast_4w_teu
    FROM curated.flow_forecast_weekly
    WHERE level = 'port_week'
    GROUP BY port_code, week
),
-- The same horizon's forecasts for the weeks the inbound baseline is made of.
forecast_baseline AS (
    SELECT b.port_code, b.week,
           CASE WHEN count(f.forecast_1w_teu) = 8 THEN median(f.forecast_1w_teu) END AS forecast_1w_baseline,
           CASE WHEN count(f.forecast_4w_teu) = 8 THEN median(f.forecast_4w_teu) END AS forecast_4w_baseline
    FROM baseline_frame b
    LEFT JOIN forecasts f ON f.port_code = b.port_code AND f.week = b.baseline_week
    GROUP BY b.port_code, b.week
),
indicators AS (
    SELECT w.port_code, c.name AS port_name, c.state_usps, w.region, w.week, w.week_start,
           w.suppressed, w.suppression_reason, w.loaded_teu_in,
           coalesce(b.baseline_weeks, 0) AS baseline_weeks,
           CASE WHEN NOT w.suppressed THEN b.baseline_teu_in END AS baseline_teu_in,
           w.loaded_teu_in / nullif(b.baseline_teu_in, 0) AS inbound_ratio,
           w.dwell_days,
           CASE WHEN NOT w.suppressed THEN b.dwell_baseline_days END AS dwell_baseline_days,
           w.dwell_days - b.dwell_baseline_days AS dwell_excess_days,
           fc.forecast_1w_teu, fc.forecast_4w_teu,
           fc.forecast_1w_teu / nullif(fb.forecast_1w_baseline, 0) AS forecast_1w_index,
           fc.forecast_4w_teu / nullif(fb.forecast_4w_baseline, 0) AS forecast_4w_index,
           date_trunc('month', w.week_start + 3)::DATE AS bts_month
    FROM port_weeks w
    LEFT JOIN baseline b USING (port_code, week)
    LEFT JOIN forecasts fc USING (port_code, week)
    LEFT JOIN forecast_baseline fb USING (port_code, week)
    LEFT JOIN curated.ref_us_container_ports c ON c.unlocode = w.port_code
),
gaps AS (
    -- A gap needs the realised side: none for a suppressed week or one without a baseline.
    SELECT i.*, forecast_1w_index - inbound_ratio AS forecast_1w_gap,
           forecast_4w_index - inbound_ratio AS forecast_4w_gap
    FROM indicators i
),
conditions AS (
    SELECT g.*,
           list_filter([
               CASE WHEN inbound_ratio < 0.70 THEN 'closure_or_drop: inbound ' || printf('%,.0f', round(loaded_teu_in, 0))
                    || ' TEU is ' || printf('%.2f', inbound_ratio) || ' x its 8-week median '
                    || printf('%,.0f', round(baseline_teu_in, 0)) || ' TEU (below 0.70)' END,
               CASE WHEN inbound_ratio > 1.25 THEN 'surge: inbound ' || printf('%,.0f', round(loaded_teu_in, 0))
                    || ' TEU is ' || printf('%.2f', inbound_ratio) || ' x its 8-week median '
                    || printf('%,.0f', round(baseline_teu_in, 0)) || ' TEU (above 1.25)' END,
               CASE WHEN dwell_excess_days >= 1.5 THEN 'dwell: ' || printf('%.1f', dwell_days)
                    || ' days against a median of ' || printf('%.1f', dwell_baseline_days)
                    || ' (+' || printf('%.1f', dwell_excess_days) || ', threshold +1.5)' END,
               CASE WHEN abs(forecast_1w_gap) > 0.25 THEN 'forecast_miss: the 1-week forecast index '
                    || printf('%.2f', forecast_1w_index) || ' against the realised index '
                    || printf('%.2f', inbound_ratio) || ' (gap ' || printf('%+.2f', forecast_1w_gap)
                    || ', beyond 0.25)' END
           ], lambda x: x IS NOT NULL) AS met
    FROM gaps g
),
land AS (
    SELECT state_usps, month, count(*) AS land_port_measures,
           count(*) FILTER (WHERE disruption) AS land_port_disruptions,
           count(*) FILTER (WHERE disruption IS NOT NULL) AS assessed,
           string_agg(port_name || ' ' || port_code || ' ' || measure || ' ' || printf('%+.1f', change_vs_trailing_pct) || ' %', '; '
                      ORDER BY port_code, measure) FILTER (WHERE disruption) AS flagged
    FROM marts.freight_exposure_border_ports
    GROUP BY state_usps, month
)
SELECT c.port_code, c.port_name, c.state_usps, c.region, c.week, c.week_start, c.suppressed,
       c.suppression_reason, round(c.loaded_teu_in, 0) AS loaded_teu_in, c.baseline_weeks,
       round(c.baseline_teu_in, 0) AS baseline_teu_in, round(c.inbound_ratio, 3) AS inbound_ratio,
       round(c.dwell_days, 2) AS dwell_days, round(c.dwell_baseline_days, 2) AS dwell_baseline_days,
       round(c.dwell_excess_days, 2) AS dwell_excess_days, round(c.forecast_1w_teu, 0) AS forecast_1w_teu,
       round(c.forecast_4w_teu, 0) AS forecast_4w_teu, round(c.forecast_1w_index, 3) AS forecast_1w_index,
       round(c.forecast_4w_index, 3) AS forecast_4w_index, round(c.forecast_1w_gap, 3) AS forecast_1w_gap,
       round(c.forecast_4w_gap, 3) AS forecast_4w_gap,
       CASE WHEN c.suppressed OR c.baseline_teu_in IS NULL THEN NULL
            WHEN len(c.met) > 0 THEN split_part(c.met[1], ':', 1)
            ELSE 'none' END AS flag,
       CASE WHEN c.suppressed THEN 'suppressed: the port''s cell for this week is suppressed ('
                 || c.suppression_reason || '), so no indicator is published'
            WHEN c.loaded_teu_in IS NULL THEN 'no indicator: loaded inbound TEUs are not published for this week'
            WHEN c.baseline_teu_in IS NULL THEN 'no baseline: ' || c.baseline_weeks
                 || ' of the 8 published weeks it needs in the 12 weeks before'
            WHEN len(c.met) > 0 THEN array_to_string(c.met, '; ')
            ELSE 'none: inbound ' || printf('%.2f', c.inbound_ratio) || ' x its 8-week median'
                 || coalesce(', dwell ' || printf('%+.1f', c.dwell_excess_days) || ' days on its median', '')
                 || coalesce(', 1-week forecast index ' || printf('%.2f', c.forecast_1w_index)
                             || ' (gap ' || printf('%+.2f', c.forecast_1w_gap) || ')', '')
       END AS reason,
       c.bts_month, coalesce(l.land_port_measures, 0) AS land_port_measures,
       coalesce(l.land_port_disruptions, 0) AS land_port_disruptions,
       CASE WHEN coalesce(l.assessed, 0) = 0 THEN NULL ELSE l.land_port_disruptions > 0 END AS land_port_disruption,
       CASE WHEN l.land_port_measures IS NULL THEN 'no BTS freight crossings published for ' || c.state_usps || ' in this month'
            WHEN l.land_port_disruptions > 0 THEN l.flagged
            WHEN l.assessed = 0 THEN l.land_port_measures || ' freight port-measures in ' || c.state_usps
                 || ', none with a complete 3-month average to assess'
            ELSE 'none flagged of ' || l.assessed || ' assessed freight port-measures in ' || c.state_usps END
           AS land_port_detail
FROM conditions c
LEFT JOIN land l ON l.state_usps = c.state_usps AND l.month = c.bts_month
ORDER BY c.port_code, c.week
