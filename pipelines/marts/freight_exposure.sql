-- mart: freight_exposure
-- reads: faf5_regional_flows
-- title: Freight of the EV supply chain's commodity groups by mode (FAF5), latest estimate year
-- method: FAF5 flows of the SCTG2 groups that carry the EV and battery chain (14 metallic ores and
--   concentrates: lithium, cobalt, nickel, manganese and rare-earth ores; 20 basic chemicals: lithium
--   carbonate and hydroxide, cathode precursors; 32 base metal in primary or semi-finished forms;
--   35 electronic and electrical equipment: cells, batteries, semiconductors; 36 motorized vehicles
--   and parts), summed per group and domestic mode over all origins, destinations and trade types,
--   for the latest year FAF estimates (forecast years excluded). Each mode's share is of its group's
--   total; a group dominated by one mode is exposed to that mode's disruptions. Corridors and
--   border ports are in freight_exposure_corridors and freight_exposure_border_ports.
-- column: sctg2: SCTG 2-digit commodity group.
-- column: commodity: Name of the SCTG group (ref_sctg2).
-- column: chain_role: Why the EV and battery chain needs the group.
-- column: year: Year of the FAF estimate.
-- column: domestic_mode: FAF mode code of the U.S. leg.
-- column: mode: Name of the FAF mode.
-- column: weight_t: Metric tons moved.
-- column: value_usd: Value moved, U.S. dollars at the FAF base year's prices.
-- column: tonne_km: Tonne-kilometres on the U.S. leg.
-- column: tons_share_pct: This mode's share of the group's tons, percent.
-- column: value_share_pct: This mode's share of the group's value, percent.
-- column: tonne_km_share_pct: This mode's share of the group's tonne-kilometres, percent.
-- check: SELECT sctg2, sum(value_share_pct) FROM marts.freight_exposure GROUP BY sctg2 HAVING abs(sum(value_share_pct) - 100) > 0.1
CREATE OR REPLACE TABLE marts.freight_exposure AS
WITH chain(sctg2, chain_role) AS (
    VALUES ('14', 'ores and concentrates of battery minerals'),
           ('20', 'battery chemicals and cathode precursors'),
           ('32', 'refined base metals'),
           ('35', 'cells, batteries and semiconductors'),
           ('36', 'vehicles and parts')
),
latest AS (SELECT max(year) AS year FROM curated.faf5_regional_flows WHERE NOT is_forecast),
by_mode AS (
    SELECT f.sctg2, f.year, f.domestic_mode,
           sum(f.weight_t) AS weight_t, sum(f.value_constant_usd) AS value_usd, sum(f.freight_tonne_km) AS tonne_km
    FROM curated.faf5_regional_flows f JOIN latest USING (year) JOIN chain USING (sctg2)
    GROUP BY ALL
)
SELECT m.sctg2, s.name AS commodity, c.chain_role, m.year, m.domestic_mode, md.name AS mode,
       m.weight_t, m.value_usd, m.tonne_km,
       round(100 * m.weight_t / nullif(sum(m.weight_t) OVER w, 0), 2) AS tons_share_pct,
       round(100 * m.value_usd / nullif(sum(m.value_usd) OVER w, 0), 2) AS value_share_pct,
       round(100 * m.tonne_km / nullif(sum(m.tonne_km) OVER w, 0), 2) AS tonne_km_share_pct
FROM by_mode m
JOIN chain c USING (sctg2)
LEFT JOIN curated.ref_sctg2 s USING (sctg2)
LEFT JOIN curated.ref_faf_modes md ON md.mode = m.domestic_mode
WINDOW w AS (PARTITION BY m.sctg2)
ORDER BY m.sctg2, m.value_usd DESC
