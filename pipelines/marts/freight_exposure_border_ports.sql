-- mart: freight_exposure_border_ports
-- reads: bts_border_crossings
-- title: Freight crossings per border port and month with a disruption flag (BTS border crossing data)
-- method: Inbound freight crossings (the truck and rail measures of ref_bts_measures: trucks, trains
--   and their loaded and empty containers) per port, measure and month. The trailing average is the
--   mean of the same port and measure over the three preceding calendar months, computed only when
--   all three were published. disruption is true when the month's count is more than 30 % below
--   that trailing average (the early-warning idea of DOT's freight data exchange); null when there is
--   no complete trailing average to compare with.
-- column: port_code: BTS port code (4 characters).
-- column: port_name: Port name as BTS publishes it.
-- column: state_usps: USPS code of the port's state.
-- column: border: US-Canada Border or US-Mexico Border, as BTS publishes it.
-- column: measure: BTS measure (vehicles or containers counted).
-- column: month: First day of the month.
-- column: crossings: Count for the month.
-- column: trailing_avg_3m: Mean count of the three preceding months (null unless all three exist).
-- column: change_vs_trailing_pct: Change of the month against the trailing average, percent.
-- column: disruption: True when the count is more than 30 % below the trailing average.
-- check: SELECT port_code, measure, month FROM marts.freight_exposure_border_ports WHERE disruption AND change_vs_trailing_pct >= -30
CREATE OR REPLACE TABLE marts.freight_exposure_border_ports AS
WITH freight AS (
    SELECT b.port_code, b.port_name, b.state_usps, b.border, b.measure, b.month, b.value AS crossings
    FROM curated.bts_border_crossings b
    JOIN curated.ref_bts_measures m ON m.measure = b.measure
    WHERE m.mode IN ('truck', 'rail') AND m.measure NOT LIKE '%Passengers'
),
with_trailing AS (
    SELECT f.*,
           (SELECT avg(p.crossings) FROM freight p
             WHERE p.port_code = f.port_code AND p.measure = f.measure
               AND p.month BETWEEN f.month - INTERVAL 3 MONTH AND f.month - INTERVAL 1 MONTH
             HAVING count(*) = 3) AS trailing_avg_3m
    FROM freight f
)
SELECT port_code, port_name, state_usps, border, measure, month, crossings,
       round(trailing_avg_3m, 1) AS trailing_avg_3m,
       round(100 * (crossings - trailing_avg_3m) / nullif(trailing_avg_3m, 0), 1) AS change_vs_trailing_pct,
       CASE WHEN trailing_avg_3m IS NULL OR trailing_avg_3m = 0 THEN NULL
            ELSE crossings < 0.7 * trailing_avg_3m END AS disruption
FROM with_trailing
ORDER BY port_code, measure, month
