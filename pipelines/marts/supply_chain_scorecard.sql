-- mart: supply_chain_scorecard
-- reads: marts.mineral_supply_risk, marts.import_concentration, marts.workforce_capacity, marts.freight_exposure
-- title: EV supply-chain scorecard: four risk pillars per mineral and product, each 0-100 (higher = more exposed)
-- method: One row per item of the EV chain (six battery minerals, and lithium-ion batteries,
--   semiconductors and electric vehicles), each mapped below to its HS headings (by EV-basket
--   category), its NAICS industries (by EV-chain role), its SCTG freight group and, for a product,
--   the minerals it is made from. Raw materials = mean of the U.S. net import reliance (percent, its
--   bound as published), world production HHI / 100 and the FEOC share of world production, from
--   mineral_supply_risk; a product takes the mean of its minerals' scores. Manufacturing = mean of
--   import HHI / 100 and the FEOC share of imports in the latest calendar year of
--   import_concentration, weighted by import value, over the item's HS4 headings whose supplier
--   concentration is known; when none is known (one partner and no all-countries total, as in the
--   offline demo, whose API recordings carry China's real values only), over the HS2 chapters that
--   hold those headings, a proxy that covers other goods too (manufacturing_basis says which). It
--   used to be 37.5 for every item: the recordings' constructed totals (2 x China) gave each
--   heading China 50 % and HHI 2,500. Workforce = HHI / 100 of the industry's
--   employment across states in workforce_capacity (a workforce in few states is fragile; suppressed
--   states are left out, so it is a bound). Logistics = share of the group's freight value carried by
--   its single largest domestic mode in freight_exposure, for the SCTG group that carries the item as
--   the U.S. imports it (lithium chemicals 20; unwrought cobalt and nickel 32; manganese ore 14;
--   batteries and semiconductors 35; vehicles 36). It is null, with logistics_note saying why, for an
--   item no one group of freight_exposure stands for (graphite: SCTG 13 and 23; rare earths: ores,
--   compounds and magnets in 13, 20 and 35), and when the dominant mode is not one mode (multiple
--   modes and mail, other and unknown, no domestic mode) or cannot carry the group (pipeline carries
--   only fluids, SCTG 16-19): such a figure describes the data, not the chain (the demo's FAF5 flows
--   are constructed with modes drawn regardless of commodity). A pillar without inputs is null; the
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
-- column: manufacturing_basis: Input: the HS codes the manufacturing pillar is computed over (headings, or chapters as a proxy), or why it is null.
-- column: workforce_employment: Input: employment in the item's industries, published states.
-- column: workforce_states: Input: states with published employment.
-- column: workforce_hhi: Input: HHI of employment across states.
-- column: sctg2: Input: SCTG freight group that carries the item (null when no one group does).
-- column: dominant_mode: Input: the group's largest domestic mode by value.
-- column: dominant_mode_share_pct: Input: that mode's share of the group's freight value.
-- column: logistics_note: Input: the freight group the logistics pillar reads, or why the pillar is null.
-- check: SELECT item FROM marts.supply_chain_scorecard WHERE greatest(raw_materials_score, manufacturing_score, workforce_score, logistics_score) > 100.0001 OR least(raw_materials_score, manufacturing_score, workforce_score, logistics_score) < 0
CREATE OR REPLACE TABLE marts.supply_chain_scorecard AS
WITH items(item, item_kind, hs_categories, ev_chain_role, sctg2, no_sctg_reason, ord) AS (
    VALUES ('Lithium', 'mineral', ['lithium'], 'batteries', '20', NULL, 1),
           ('Cobalt', 'mineral', ['cobalt'], 'batteries', '32', NULL, 2),
           ('Nickel', 'mineral', ['nickel'], 'batteries', '32', NULL, 3),
           ('Manganese', 'mineral', ['manganese'], 'batteries', '14', NULL, 4),
           ('Graphite', 'mineral', ['graphite'], 'batteries', NULL,
            'natural and artificial graphite travel in SCTG 13 and 23, which freight_exposure does not cover', 5),
           ('Rare earths', 'mineral', ['rare_earths', 'magnets'], 'vehicle_parts', NULL,
            'rare-earth ores, compounds and magnets travel in SCTG 13, 20 and 35; no one group stands for them', 6),
           ('Lithium-ion batteries', 'product', ['batteries'], 'batteries', '35', NULL, 7),
           ('Semiconductors', 'product', ['semiconductors'], 'semiconductors', '35', NULL, 8),
           ('Electric vehicles', 'product', ['electric_vehicles'], 'vehicles', '36', NULL, 9)
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
known AS (  -- the latest year's headings and chapters whose supplier concentration is known
    SELECT c.* FROM marts.import_concentration c JOIN import_year y USING (period)
    WHERE c.period_grain = 'year' AND c.hhi IS NOT NULL
),
item_codes AS (
    SELECT DISTINCT i.item, h.hs4 FROM items i
    JOIN curated.ref_ev_basket_hs h ON list_contains(i.hs_categories, h.category)
),
headings AS (
    SELECT DISTINCT d.item, c.* FROM item_codes d JOIN known c ON c.hs_level = 'HS4' AND c.hs_code = d.hs4
),
chapters AS (  -- a proxy, only for an item without a heading of known concentration
    SELECT DISTINCT d.item, c.* FROM item_codes d JOIN known c ON c.hs_level = 'HS2' AND c.hs_code = left(d.hs4, 2)
    WHERE d.item NOT IN (SELECT item FROM headings)
),
manufacturing AS (
    SELECT item, any_value(year(period)) AS import_year, sum(total_import_value_usd) AS import_value_usd,
           sum(hhi * total_import_value_usd) / nullif(sum(total_import_value_usd), 0) AS import_hhi,
           sum(feoc_share_pct * total_import_value_usd) / nullif(sum(total_import_value_usd), 0) AS import_feoc_share_pct,
           CASE WHEN any_value(hs_level) = 'HS4' THEN 'HS4 headings ' ELSE 'HS2 chapters (proxy: no heading has a known supplier concentration) ' END
             || string_agg(hs_code, ', ' ORDER BY hs_code) AS manufacturing_basis
    FROM (SELECT * FROM headings UNION ALL BY NAME SELECT * FROM chapters)
    GROUP BY item
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
    SELECT sctg2, top.mode AS dominant_mode, top.code AS mode_code, dominant_mode_share_pct, commodity
    FROM (SELECT sctg2, first({'mode': mode, 'code': domestic_mode} ORDER BY value_share_pct DESC, domestic_mode) AS top,
                 max(value_share_pct) AS dominant_mode_share_pct, any_value(commodity) AS commodity
          FROM marts.freight_exposure GROUP BY sctg2)
),
logistics_judged AS (
    SELECT i.item, l.*,
           CASE WHEN i.sctg2 IS NULL THEN i.no_sctg_reason
                WHEN l.sctg2 IS NULL THEN 'no FAF5 flows of SCTG ' || i.sctg2 || ' published'
                WHEN l.mode_code IN ('5', '7', '8') THEN 'the largest mode of SCTG ' || i.sctg2 || ' is "' || l.dominant_mode
                     || '", not one mode: no mode dependence to score'
                WHEN l.mode_code = '6' AND i.sctg2 NOT IN ('16', '17', '18', '19') THEN 'FAF5 shows pipeline as the largest mode of SCTG '
                     || i.sctg2 || ', which pipelines cannot carry (they carry fluids, SCTG 16-19): the flows are not credible'
           END AS not_scored_because
    FROM items i LEFT JOIN logistics l ON l.sctg2 = i.sctg2
),
scored AS (
    SELECT i.item, i.item_kind, i.ord,
           round(r.score, 1) AS raw_materials_score,
           round((m.import_hhi / 100 + m.import_feoc_share_pct) / 2, 1) AS manufacturing_score,
           round(w.hhi / 100, 1) AS workforce_score,
           CASE WHEN l.not_scored_because IS NULL THEN round(l.dominant_mode_share_pct, 1) END AS logistics_score,
           r.net_import_reliance_pct, r.production_hhi, r.feoc_production_share_pct,
           m.import_year, m.import_value_usd, round(m.import_hhi, 1) AS import_hhi,
           round(m.import_feoc_share_pct, 2) AS import_feoc_share_pct,
           coalesce(m.manufacturing_basis, 'no heading or chapter of the item has a known supplier concentration')
             AS manufacturing_basis,
           w.employment AS workforce_employment, w.states AS workforce_states, round(w.hhi, 1) AS workforce_hhi,
           i.sctg2, l.dominant_mode, l.dominant_mode_share_pct,
           coalesce('not scored: ' || l.not_scored_because, 'SCTG ' || i.sctg2 || ' ' || l.commodity
                    || ', the group that carries the item (FAF5 has no finer commodity)') AS logistics_note
    FROM items i
    LEFT JOIN raw_materials r USING (item)
    LEFT JOIN manufacturing m USING (item)
    LEFT JOIN workforce w USING (item)
    LEFT JOIN logistics_judged l USING (item)
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
