-- mart: import_concentration
-- reads: census_trade_imports
-- title: Import concentration per HS heading and chapter of the EV basket, by year and by month
-- method: For each HS code and period (calendar year, and month), supplier shares are each
--   country's general-import value divided by the total for all countries (the Census "-" row;
--   the sum of country rows when no total was fetched, as in USA Trade Online reports). HHI =
--   10,000 x sum of squared shares over the countries present (0-10,000; a lower bound when not
--   every partner was fetched, see country_coverage_pct). Codes are the basket's HS4 headings (the
--   trade API) and the HS2 chapters that hold them (USA Trade Online reports of many partners).
--   Top supplier = largest share. FEOC share = share of the covered nations in ref_feoc_countries
--   (China, Russia, Iran, North Korea). Change = total value against the same period a year
--   earlier, in percent. Groups and continents are never counted as suppliers. Shares, top
--   supplier, HHI and FEOC share are given only when the partner coverage is known (the
--   all-countries total was fetched) or, without a total, when at least 5 partner countries are
--   present (a report of many partners); otherwise they are null and concentration_note says why:
--   the shares of one partner over itself (100 %, HHI 10,000) say nothing about concentration.
-- column: period_grain: year or month.
-- column: period: First day of the year or month.
-- column: months_covered: Months with data in the period (a year in progress covers fewer than 12).
-- column: hs_level: HS4 (a heading of the basket) or HS2 (a chapter holding basket headings).
-- column: hs_code: HS heading (4 digits) or chapter (2 digits).
-- column: hs_description: Heading description (the basket's) or the chapter's description as published.
-- column: category: EV supply-chain category of the heading (ref_ev_basket_hs); for a chapter, every category of its basket headings.
-- column: total_import_value_usd: General imports from all countries (or from the countries present when no total was fetched), USD.
-- column: supplier_countries: Countries with a positive import value.
-- column: top_supplier: Country with the largest share (Census name); null when coverage is unknown (concentration_note).
-- column: top_supplier_code: Census Schedule C code of the top supplier.
-- column: top_supplier_share_pct: Share of the top supplier in the total, percent.
-- column: hhi: Herfindahl-Hirschman index over supplier shares, 0 to 10,000 (lower bound when coverage < 100%).
-- column: feoc_share_pct: Share from foreign-entity-of-concern countries, percent.
-- column: country_coverage_pct: Share of the all-countries total carried by the country rows present, percent (null when no total was fetched: coverage unknown).
-- column: total_is_reported: Whether the total is the Census all-countries row (true) or the sum of the countries present (false).
-- column: concentration_note: What the shares are taken of, or why they are null (one partner, or too few, and no all-countries total).
-- column: change_on_prior_year_pct: Total import value against the same period a year earlier, percent (null when the two cover different months).
-- check: SELECT hs_code, period, hhi FROM marts.import_concentration WHERE hhi < 0 OR hhi > 10000
-- check: SELECT hs_code, period, top_supplier_share_pct FROM marts.import_concentration WHERE top_supplier_share_pct > 100.0001 OR feoc_share_pct > 100.0001
-- check: SELECT hs_code, period, hhi FROM marts.import_concentration WHERE hhi IS NOT NULL AND NOT total_is_reported AND supplier_countries < 5
CREATE OR REPLACE TABLE marts.import_concentration AS
WITH basket AS (
    SELECT 'HS4' AS hs_level, hs4 AS hs_code, description, category FROM curated.ref_ev_basket_hs
    UNION ALL
    SELECT 'HS2', left(hs4, 2), NULL, string_agg(DISTINCT category, ', ' ORDER BY category)
    FROM curated.ref_ev_basket_hs GROUP BY left(hs4, 2)
),
imports AS (
    SELECT i.* FROM curated.census_trade_imports i JOIN basket b USING (hs_level, hs_code)
),
periods AS (
    SELECT 'year' AS period_grain, date_trunc('year', period)::DATE AS period, hs_level, hs_code, country_code,
           any_value(country_name) AS country_name, partner_kind, sum(general_value_usd) AS value_usd,
           count(DISTINCT period) AS months, any_value(hs_description) AS hs_description
    FROM imports
    GROUP BY period_grain, 2, hs_level, hs_code, country_code, partner_kind
    UNION ALL
    SELECT 'month', period, hs_level, hs_code, country_code, any_value(country_name), partner_kind,
           sum(general_value_usd), 1, any_value(hs_description)
    FROM imports
    GROUP BY period, hs_level, hs_code, country_code, partner_kind
),
totals AS (
    SELECT period_grain, period, hs_level, hs_code, max(months) AS months_covered,
           any_value(hs_description) AS hs_description,
           max(value_usd) FILTER (WHERE partner_kind = 'total') AS reported_total_usd,
           sum(value_usd) FILTER (WHERE partner_kind = 'country') AS country_total_usd
    FROM periods
    GROUP BY ALL
),
shares AS (
    SELECT p.period_grain, p.period, p.hs_level, p.hs_code, p.country_code, p.country_name, p.value_usd,
           p.value_usd / nullif(coalesce(t.reported_total_usd, t.country_total_usd), 0) AS share,
           coalesce(t.reported_total_usd, t.country_total_usd) AS total_usd, t.months_covered, t.hs_description,
           t.reported_total_usd IS NOT NULL AS total_is_reported,
           p.country_code IN (SELECT schedule_c_code FROM curated.ref_feoc_countries) AS is_feoc
    FROM periods p JOIN totals t USING (period_grain, period, hs_level, hs_code)
    WHERE p.partner_kind = 'country'
),
summary AS (
    SELECT period_grain, period, hs_level, hs_code,
           any_value(total_usd) AS total_import_value_usd, any_value(months_covered) AS months_covered,
           any_value(hs_description) AS hs_description,
           bool_and(total_is_reported) AS total_is_reported,
           count(*) FILTER (WHERE value_usd > 0) AS supplier_countries,
           -- a tie in value goes to the first country code: the same answer whatever the row order
           first(country_name ORDER BY value_usd DESC, country_code) AS top_supplier,
           first(country_code ORDER BY value_usd DESC, country_code) AS top_supplier_code,
           max(share) * 100 AS top_supplier_share_pct,
           round(sum(share * share) * 10000, 1) AS hhi,
           coalesce(sum(share) FILTER (WHERE is_feoc), 0) * 100 AS feoc_share_pct,
           sum(share) * 100 AS country_coverage_pct,
           -- Coverage known (the all-countries total), or enough partners to speak of concentration.
           bool_and(total_is_reported) OR count(*) FILTER (WHERE value_usd > 0) >= 5 AS known
    FROM shares
    GROUP BY ALL
)
SELECT s.period_grain, s.period, s.months_covered, s.hs_level, s.hs_code,
       coalesce(b.description, s.hs_description) AS hs_description, b.category,
       s.total_import_value_usd, s.supplier_countries,
       CASE WHEN s.known THEN s.top_supplier END AS top_supplier,
       CASE WHEN s.known THEN s.top_supplier_code END AS top_supplier_code,
       CASE WHEN s.known THEN round(s.top_supplier_share_pct, 2) END AS top_supplier_share_pct,
       CASE WHEN s.known THEN s.hhi END AS hhi,
       CASE WHEN s.known THEN round(s.feoc_share_pct, 2) END AS feoc_share_pct,
       CASE WHEN s.total_is_reported THEN round(s.country_coverage_pct, 2) END AS country_coverage_pct,
       s.total_is_reported,
       CASE WHEN s.total_is_reported THEN 'shares of the all-countries total'
            WHEN s.known THEN 'shares of the ' || s.supplier_countries
                              || ' partner countries present; no all-countries total, so partners not fetched are left out'
            ELSE 'not computed: ' || s.supplier_countries || ' partner ' || CASE WHEN s.supplier_countries = 1 THEN 'country' ELSE 'countries' END
                 || ' and no all-countries total, so the partner coverage is unknown (at least 5 partners are needed)'
       END AS concentration_note,
       round(100.0 * (s.total_import_value_usd - prior.total_import_value_usd)
             / nullif(prior.total_import_value_usd, 0), 2) AS change_on_prior_year_pct
FROM summary s
JOIN basket b USING (hs_level, hs_code)
LEFT JOIN summary prior
       ON prior.period_grain = s.period_grain AND prior.hs_level = s.hs_level AND prior.hs_code = s.hs_code
      AND prior.period = s.period - INTERVAL 1 YEAR
      AND prior.months_covered = s.months_covered  -- a year in progress is not compared with a full one
ORDER BY s.period_grain, s.hs_level, s.hs_code, s.period;
