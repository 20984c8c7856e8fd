-- mart: workforce_capacity
-- reads: bls_qcew_industry
-- title: Workforce capacity per state and EV-chain industry, latest quarter (BLS QCEW)
-- method: Private-ownership (own_code 5) QCEW cells of the latest quarter published. A state's
--   figures are its state-level cell (employment is the quarter's third month); when BLS
--   suppressed that cell (disclosure code N) its figures stay null and state_suppressed is true,
--   never zero. suppressed_county_cells counts the state's county cells BLS suppressed for the
--   industry (county_cells all of them), so an analyst sees how much is hidden. The location
--   quotient compares the industry's employment share in the state with its national share (above 1
--   means more specialised than the nation). Industries come from ref_naics_industries.
-- column: period: First day of the quarter.
-- column: state_fips: State FIPS code.
-- column: state_usps: USPS code of the state.
-- column: state_name: Name of the state.
-- column: industry_code: NAICS industry code.
-- column: industry_title: Title of the NAICS industry (ref_naics_industries).
-- column: ev_chain_role: The industry's role in the EV chain (ref_naics_industries).
-- column: establishments: Establishments in the quarter (published even when wages and employment are suppressed).
-- column: employment: Employment in the quarter's third month (null when suppressed).
-- column: avg_weekly_wage_usd: Average weekly wage, USD (null when suppressed).
-- column: location_quotient: Employment location quotient, third month (null when suppressed).
-- column: oty_employment_change: Employment change on the same quarter a year earlier (third month).
-- column: oty_employment_pct: That change in percent.
-- column: state_suppressed: True when BLS suppressed the state-level cell.
-- column: county_cells: County cells of the state for the industry in the quarter.
-- column: suppressed_county_cells: Of those, cells BLS suppressed (counted, not zero-filled).
-- check: SELECT state_fips, industry_code FROM marts.workforce_capacity WHERE suppressed_county_cells > county_cells
-- check: SELECT state_fips, industry_code FROM marts.workforce_capacity WHERE state_suppressed AND employment IS NOT NULL
CREATE OR REPLACE TABLE marts.workforce_capacity AS
WITH latest AS (
    SELECT * FROM curated.bls_qcew_industry
    WHERE own_code = '5' AND period = (SELECT max(period) FROM curated.bls_qcew_industry)
),
counties AS (
    SELECT state_fips, industry_code, count(*) AS county_cells,
           count(*) FILTER (WHERE suppressed) AS suppressed_county_cells
    FROM latest WHERE area_type IN ('county', 'county_unknown')
    GROUP BY ALL
)
SELECT s.period, s.state_fips, st.usps AS state_usps, st.name AS state_name,
       s.industry_code, n.title AS industry_title, n.ev_chain_role,
       s.establishments,
       s.month3_employment AS employment,
       s.avg_weekly_wage_usd,
       s.lq_month3_employment AS location_quotient,
       s.oty_month3_employment_chg AS oty_employment_change,
       s.oty_month3_employment_pct AS oty_employment_pct,
       s.suppressed AS state_suppressed,
       coalesce(c.county_cells, 0) AS county_cells,
       coalesce(c.suppressed_county_cells, 0) AS suppressed_county_cells
FROM latest s
LEFT JOIN counties c USING (state_fips, industry_code)
LEFT JOIN curated.ref_states st ON st.state_fips = s.state_fips
LEFT JOIN curated.ref_naics_industries n ON n.naics_code = s.industry_code
WHERE s.area_type = 'state'
ORDER BY s.state_fips, s.industry_code
