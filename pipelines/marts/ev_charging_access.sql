-- mart: ev_charging_access
-- reads: afdc_charging_stations
-- title: EV charging stations and ports by state, charging level and network (NREL AFDC)
-- method: Electric stations of the AFDC station locator that are open (status E). Each station's
--   EVSE counts per level (Level 1, Level 2, DC fast) are unpivoted: a station counts once at every
--   level where it has at least one port. Public stations are those with access code "public";
--   stations without a network are grouped as "Non-networked". Counts cover what the contract's
--   query fetched (see the contract), not necessarily the whole country.
-- column: state: USPS state code.
-- column: charging_level: level1, level2 or dc_fast.
-- column: network: Charging network, or Non-networked.
-- column: stations: Open stations with at least one port at this level.
-- column: public_stations: Of those, stations open to the public.
-- column: ports: EVSE ports at this level.
-- column: public_ports: Of those, ports at public stations.
-- check: SELECT state, charging_level, network FROM marts.ev_charging_access WHERE public_ports > ports OR public_stations > stations OR ports < stations
CREATE OR REPLACE TABLE marts.ev_charging_access AS
WITH open_stations AS (
    SELECT station_id, state, coalesce(ev_network, 'Non-networked') AS network, access_code = 'public' AS is_public,
           ev_level1_evse_num, ev_level2_evse_num, ev_dc_fast_num
    FROM curated.afdc_charging_stations
    WHERE fuel_type_code = 'ELEC' AND status_code = 'E'
),
by_level AS (
    SELECT station_id, state, network, is_public, 'level1' AS charging_level, ev_level1_evse_num AS ports FROM open_stations
    UNION ALL
    SELECT station_id, state, network, is_public, 'level2', ev_level2_evse_num FROM open_stations
    UNION ALL
    SELECT station_id, state, network, is_public, 'dc_fast', ev_dc_fast_num FROM open_stations
)
SELECT state, charging_level, network,
       count(DISTINCT station_id) AS stations,
       count(DISTINCT station_id) FILTER (WHERE is_public) AS public_stations,
       sum(ports)::BIGINT AS ports,
       coalesce(sum(ports) FILTER (WHERE is_public), 0)::BIGINT AS public_ports
FROM by_level
WHERE ports > 0
GROUP BY ALL
ORDER BY state, charging_level, network
