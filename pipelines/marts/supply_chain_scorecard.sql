-- mart: supply_chain_scorecard
-- reads: marts.mineral_supply_risk, marts.import_concentration, marts.workforce_capacity, marts.freight_exposure
-- title: EV supply-chain scorecard: four risk pillars per mineral and product, each 0-100 (higher = more exposed)
-- method: One row per item of the EV chain (six battery minerals, and lithium-ion batteries,
--   semiconductors and electric vehicles), each mapped below to its HS headings (by EV-basket
--   category), its NAICS industries (by EV-chain role), its SCTG freight group and, for a product,
--   the minerals it is made from. Raw materials = mean of the U.S. net import reliance (percent, its
--   bound as published), world production HHI / 100 and the FEOC share of world production, from
--   mineral_supply_risk; a product takes the mean of its minerals' scores. Manufacturing = mean of
--   import HHI / 100 and the FEOC share of imports over the item's HS headings in the latest calendar
--   year of import_concentration, weighted by import value. Workforce = HHI / 100 of the industry's
--   employment across states in workforce_capacity (a workforce in few states is fragile; suppressed
--   states are left out, so it is a bound). Logistics = share of the group's freight value carried by
--   its single largest domestic mode in freight_exposure. A pillar without inputs is null; the
--   inputs are beside each score. Scores compare items with each other; they are not probabilities.
-- column: item: Mineral or product scored.
-- column: item_kind: mineral or product.
-- column: raw_materials_score: Raw-materials pillar, 0-100.
-- column: manufacturing_score: Manufacturing (import dependence) pillar, 0-100.
-- column: workforce_score: Workforce concentration pillar, 0-100.
-- column: logistics_score: Logistics (mode dependence) pillar, 0-100.
-- column: pillars_scored: How many of the four pillars have inputs.
-- column: mean_score: Mean of the scored pillars.
-- column: net_import_reliance_pct: Input: U.S. net import reliance (minerals).
-- column: production_hhi: Input: HHI of world production (minerals).
-- column: feoc_production_share_pct: Input: FEOC share of world production (minerals).
-- column: import_year: Input: calendar year of the import figures.
-- column: import_value_usd: Input: U.S. imports of the item's HS headings in that year.
-- column: import_hhi: Input: value-weighted HHI of import suppliers.
-- column: import_feoc_share_pct: Input: value-weighted FEOC share of imports.
-- column: workforce_employment: Input: employment in the item's industries, published states.
-- column: workforce_states: Input: states with published employment.
-- column: workforce_hhi: Input: HHI of employment across states.
-- column: sctg2: Input: SCTG freight group.
-- column: dominant_mode: Input: the group's largest domestic mode by value.
-- column: dominant_mode_share_pct: Input: that mode's share of the group's freight value.
-- check: SELECT item FROM marts.supply_chain_scorecard WHERE greatest(raw_materials_score, manufacturing_score, workforce_score, logistics_score) > 100.0001 OR least(raw_materials_score, manufacturing_score, workforce_score, logistics_score) < 0
CREATE OR REPLACE TABLE marts.supply_chain_scorecard AS
WITH items(item, item_kind, hs_categories, ev_chain_role, sctg2, ord) AS (
    VALUES ('Lithium', 'mineral', ['lithium'], 'batteries', '20', 1),
           ('Cobalt', 'mineral', ['cobalt'], 'batteries', '14', 2),
           ('Nickel', 'mineral', ['nickel'], 'batteries', '14', 3),
           ('Manganese', 'mineral', ['manganese'], 'batteries', '14', 4),
           ('Graphite', 'mineral', ['graphite'], 'batteries', '14', 5),
           ('Rare earths', 'mineral', ['rare_earths', 'magnets'], 'vehicle_parts', '14', 6),
           ('Lithium-ion batteries', 'product', ['batteries'], 'batteries', '35', 7),
           ('Semiconductors', 'product', ['semiconductors'], 'semiconductors', '35', 8),
           ('Electric vehicles', 'product', ['electric_vehicles'], 'vehicles', '36', 9)
),
made_of(item, mineral) AS (
    VALUES ('Lithium-ion batteries', 'Lithium'), ('Lithium-ion batteries', 'Cobalt'),
           ('Lithium-ion batteries', 'Nickel'), ('Lithium-ion batteries', 'Manganese'),
           ('Lithium-ion batteries', 'Graphite'),
           ('Electric vehicles', 'Lithium'), ('Electric vehicles', 'Cobalt'), ('Electric vehicles', 'Nickel'),
           ('Electric vehicles', 'Manganese'), ('Electric vehicles', 'Graphite'), ('Electric vehicles', 'Rare earths')
),
mineral_scores AS (
    SELECT mineral, net_import_reliance_pct, production_hhi, feoc_production_share_pct,
           (coalesce(net_import_reliance_pct, 0) + coalesce(production_hhi / 100, 0) + coalesce(feoc_production_share_pct, 0))
             / nullif((net_import_reliance_pct IS NOT NULL)::INT + (production_hhi IS NOT NULL)::INT
                      + (feoc_production_share_pct IS NOT NULL)::INT, 0) AS score
    FROM marts.mineral_supply_risk
),
raw_materials AS (
    SELECT i.item, m.score, m.net_import_reliance_pct, m.production_hhi, m.feoc_production_share_pct
    FROM items i JOIN mineral_scores m ON m.mineral = i.item WHERE i.item_kind = 'mineral'
    UNION ALL
    SELECT d.item, avg(m.score), NULL, NULL, NULL
    FROM made_of d JOIN mineral_scores m USING (mineral) GROUP BY d.item
),
import_year AS (
    SELECT coalesce(max(period) FILTER (WHERE months_covered = 12), max(period)) AS period
    FROM marts.import_concentration WHERE period_grain = 'year'
),
manufacturing AS (
    SELECT i.item, any_value(year(c.period)) AS import_year, sum(c.total_import_value_usd) AS import_value_usd,
           sum(c.hhi * c.total_import_value_usd) / nullif(sum(c.total_import_value_usd), 0) AS import_hhi,
           sum(c.feoc_share_pct * c.total_import_value_usd) / nullif(sum(c.total_import_value_usd), 0) AS import_feoc_share_pct
    FROM items i
    JOIN marts.import_concentration c ON list_contains(i.hs_categories, c.category)
    JOIN import_year y ON c.period = y.period
    WHERE c.period_grain = 'year'
    GROUP BY i.item
),
workforce AS (
    SELECT i.item, sum(w.employment) AS employment, count(DISTINCT w.state_fips) AS states,
           10000 * sum(power(w.employment / nullif(t.total, 0), 2)) AS hhi
    FROM items i
    JOIN (SELECT ev_chain_role, state_fips, sum(employment) AS employment FROM marts.workforce_capacity
          WHERE employment IS NOT NULL GROUP BY ALL) w ON w.ev_chain_role = i.ev_chain_role
    JOIN (SELECT ev_chain_role, sum(employment) AS total FROM marts.workforce_capacity GROUP BY ALL) t
      ON t.ev_chain_role = i.ev_chain_role
    GROUP BY i.item
),
logistics AS (
    SELECT sctg2, arg_max(mode, value_share_pct) AS dominant_mode, max(value_share_pct) AS dominant_mode_share_pct
    FROM marts.freight_exposure GROUP BY sctg2
),
scored AS (
    SELECT i.item, i.item_kind, i.ord,
           round(r.score, 1) AS raw_materials_score,
           round((m.import_hhi / 100 + m.import_feoc_share_pct) / 2, 1) AS manufacturing_score,
           round(w.hhi / 100, 1) AS workforce_score,
           round(l.dominant_mode_share_pct, 1) AS logistics_score,
           r.net_import_reliance_pct, r.production_hhi, r.feoc_production_share_pct,
           m.import_year, m.import_value_usd, round(m.import_hhi, 1) AS import_hhi,
           round(m.import_feoc_share_pct, 2) AS import_feoc_share_pct,
           w.employment AS workforce_employment, w.states AS workforce_states, round(w.hhi, 1) AS workforce_hhi,
           i.sctg2, l.dominant_mode, l.dominant_mode_share_pct
    FROM items i
    LEFT JOIN raw_materials r USING (item)
    LEFT JOIN manufacturing m USING (item)
    LEFT JOIN workforce w USING (item)
    LEFT JOIN logistics l USING (sctg2)
)
SELECT item, item_kind, raw_materials_score, manufacturing_score, workforce_score, logistics_score,
       (raw_materials_score IS NOT NULL)::INT + (manufacturing_score IS NOT NULL)::INT
         + (workforce_score IS NOT NULL)::INT + (logistics_score IS NOT NULL)::INT AS pillars_scored,
       round((coalesce(raw_materials_score, 0) + coalesce(manufacturing_score, 0) + coalesce(workforce_score, 0)
              + coalesce(logistics_score, 0))
             / nullif((raw_materials_score IS NOT NULL)::INT + (manufacturing_score IS NOT NULL)::INT
                      + (workforce_score IS NOT NULL)::INT + (logistics_score IS NOT NULL)::INT, 0), 1) AS mean_score,
       * EXCLUDE (item, item_kind, ord, raw_materials_score, manufacturing_score, workforce_score, logistics_score)
FROM scored
ORDER BY ord
