-- mart: freight_exposure_corridors
-- reads: faf5_regional_flows, marts.freight_exposure
-- title: Top origin-destination corridors of the EV chain's commodity groups (FAF5), latest estimate year
-- method: For each commodity group in freight_exposure and the same year, FAF zone pairs (origin
--   zone to destination zone of the U.S. leg, all modes and trade types) ranked by value moved; the
--   ten largest per group are kept, with their share of the group's value. A corridor holding a
--   large share is a single point of failure for that commodity.
-- column: sctg2: SCTG 2-digit commodity group.
-- column: year: Year of the FAF estimate.
-- column: corridor_rank: Rank of the corridor by value within the group (1 = largest).
-- column: origin_zone: FAF zone where the U.S. leg starts.
-- column: origin: Short name of the origin zone (ref_faf_zones).
-- column: destination_zone: FAF zone where the U.S. leg ends.
-- column: destination: Short name of the destination zone (ref_faf_zones).
-- column: weight_t: Metric tons moved on the corridor.
-- column: value_usd: Value moved, U.S. dollars at the FAF base year's prices.
-- column: value_share_pct: The corridor's share of the group's value, percent.
-- check: SELECT sctg2, corridor_rank FROM marts.freight_exposure_corridors WHERE corridor_rank > 10 OR value_share_pct > 100.0001
CREATE OR REPLACE TABLE marts.freight_exposure_corridors AS
WITH scope AS (SELECT DISTINCT sctg2, year FROM marts.freight_exposure),
pairs AS (
    SELECT f.sctg2, f.year, f.origin_zone, f.destination_zone,
           sum(f.weight_t) AS weight_t, sum(f.value_constant_usd) AS value_usd
    FROM curated.faf5_regional_flows f JOIN scope USING (sctg2, year)
    GROUP BY ALL
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY sctg2 ORDER BY value_usd DESC, origin_zone, destination_zone) AS corridor_rank,
           100 * value_usd / nullif(sum(value_usd) OVER (PARTITION BY sctg2), 0) AS share
    FROM pairs
)
SELECT r.sctg2, r.year, r.corridor_rank, r.origin_zone, o.short_name AS origin,
       r.destination_zone, d.short_name AS destination, r.weight_t, r.value_usd,
       round(r.share, 2) AS value_share_pct
FROM ranked r
LEFT JOIN curated.ref_faf_zones o ON o.faf_zone = r.origin_zone
LEFT JOIN curated.ref_faf_zones d ON d.faf_zone = r.destination_zone
WHERE r.corridor_rank <= 10
ORDER BY r.sctg2, r.corridor_rank
