-- mart: mineral_supply_risk
-- reads: usgs_mineral_production, usgs_mineral_salient
-- title: Supply risk per critical mineral: U.S. import reliance and the concentration of world supply
-- method: One row per mineral of the USGS Mineral Commodity Summaries. World production and reserves
--   come from the latest edition's latest year per mineral; only country rows count (aggregates such
--   as "World total (rounded)" and "Other countries" are excluded, and so are withheld or missing
--   values), so shares are of the listed countries' sum. HHI = 10,000 x sum of squared country shares
--   (0-10,000). FEOC share = share of production from the covered nations in ref_feoc_countries
--   (China, Russia, Iran, North Korea), matched on ISO alpha-2. Net import reliance is the latest year
--   USGS published for the mineral (the mineral's salient table before the Figure 2 summary when both
--   give that year; the highest when several of its commodities do, as platinum and palladium for the
--   platinum-group metals), kept as published (">95", "E") beside its number and qualifier: "more_than"
--   means the number is a lower bound, "less_than" an upper bound, "net_exporter" no reliance.
-- column: mineral: Critical mineral (USGS name).
-- column: production_year: Year of the production figures used.
-- column: producing_countries: Countries with a published production figure above zero.
-- column: world_production_t: Sum of the listed countries' production, metric tons.
-- column: top_producer: Country with the largest production share.
-- column: top_producer_iso: ISO 3166 alpha-2 code of the top producer.
-- column: top_producer_share_pct: Its share of the listed countries' production, percent.
-- column: production_hhi: Herfindahl-Hirschman index of production over countries, 0 to 10,000.
-- column: feoc_production_share_pct: Share of production from foreign-entity-of-concern countries, percent.
-- column: reserves_year: Year the reserves figures refer to.
-- column: top_reserves_holder: Country with the largest reserves.
-- column: reserves_hhi: Herfindahl-Hirschman index of reserves over countries, 0 to 10,000.
-- column: feoc_reserves_share_pct: Share of reserves held by foreign-entity-of-concern countries, percent.
-- column: net_import_reliance_pct: U.S. net import reliance as a number (see its qualifier), percent of apparent consumption.
-- column: net_import_reliance_qualifier: more_than (lower bound), less_than (upper bound), net_exporter, or null (exact).
-- column: net_import_reliance_published: Net import reliance exactly as USGS published it.
-- column: net_import_reliance_year: Year of the net import reliance figure.
-- check: SELECT mineral, production_hhi, reserves_hhi FROM marts.mineral_supply_risk WHERE production_hhi NOT BETWEEN 0 AND 10000.0001 OR reserves_hhi NOT BETWEEN 0 AND 10000.0001
-- check: SELECT mineral, top_producer_share_pct, feoc_production_share_pct FROM marts.mineral_supply_risk WHERE top_producer_share_pct > 100.0001 OR feoc_production_share_pct > 100.0001
CREATE OR REPLACE TABLE marts.mineral_supply_risk AS
WITH world AS (
    SELECT p.*
    FROM curated.usgs_mineral_production p
    WHERE p.edition = (SELECT max(edition) FROM curated.usgs_mineral_production q WHERE q.mineral = p.mineral)
      AND NOT p.is_aggregate AND p.value_t > 0
),
latest AS (
    SELECT mineral, measure, max(year) AS year FROM world GROUP BY mineral, measure
),
shares AS (
    SELECT w.mineral, w.measure, w.year, w.country_name, w.country_iso, w.value_t,
           w.value_t / sum(w.value_t) OVER (PARTITION BY w.mineral, w.measure) AS share,
           w.country_iso IN (SELECT iso_alpha2 FROM curated.ref_feoc_countries) AS is_feoc
    FROM world w JOIN latest USING (mineral, measure, year)
),
summary AS (
    SELECT mineral, measure, any_value(year) AS year, count(*) AS countries, sum(value_t) AS total_t,
           -- ties in share go to the first country by name: the same answer whatever the row order
           first(country_name ORDER BY share DESC, country_name) AS top_country,
           first(country_iso ORDER BY share DESC, country_name) AS top_iso,
           round(100 * max(share), 2) AS top_share_pct,
           round(10000 * sum(share * share), 1) AS hhi,
           round(100 * coalesce(sum(share) FILTER (WHERE is_feoc), 0), 2) AS feoc_share_pct
    FROM shares GROUP BY mineral, measure
),
reliance AS (
    SELECT mineral, net_import_reliance_pct, value_qualifier, published_value, year,
           row_number() OVER (
               PARTITION BY mineral ORDER BY year DESC, edition DESC, (source_table = 'salient') DESC,
                   net_import_reliance_pct DESC NULLS LAST, published_value
           ) AS pick
    FROM curated.usgs_mineral_salient
    WHERE measure = 'net_import_reliance' AND mineral IS NOT NULL AND published_value IS NOT NULL
)
SELECT coalesce(p.mineral, r.mineral) AS mineral,
       p.year AS production_year,
       p.countries AS producing_countries,
       p.total_t AS world_production_t,
       p.top_country AS top_producer,
       p.top_iso AS top_producer_iso,
       p.top_share_pct AS top_producer_share_pct,
       p.hhi AS production_hhi,
       p.feoc_share_pct AS feoc_production_share_pct,
       s.year AS reserves_year,
       s.top_country AS top_reserves_holder,
       s.hhi AS reserves_hhi,
       s.feoc_share_pct AS feoc_reserves_share_pct,
       r.net_import_reliance_pct,
       r.value_qualifier AS net_import_reliance_qualifier,
       r.published_value AS net_import_reliance_published,
       r.year AS net_import_reliance_year
FROM (SELECT * FROM summary WHERE measure = 'production') p
FULL OUTER JOIN (SELECT * FROM reliance WHERE pick = 1) r ON r.mineral = p.mineral
LEFT JOIN (SELECT * FROM summary WHERE measure = 'reserves') s ON s.mineral = coalesce(p.mineral, r.mineral)
ORDER BY mineral
