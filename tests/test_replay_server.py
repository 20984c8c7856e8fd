"""The replay server answers with the Census API's own query semantics, on loopback only."""

from __future__ import annotations

import requests

from pipelines.replay.server import Fault, ReplayServer

PATH = "/data/timeseries/intltrade/imports/hs"


def _get(server: ReplayServer, params: list[tuple[str, str]]) -> requests.Response:
    return requests.get(server.url + PATH, params=params, timeout=5)


def test_replay_server_binds_to_loopback_only(replay: ReplayServer) -> None:
    assert replay.url.startswith("http://127.0.0.1:")


def test_get_selects_and_orders_variables_and_predicates_are_appended(replay: ReplayServer) -> None:
    response = _get(replay, [("get", "GEN_VAL_MO,CTY_NAME"), ("CTY_CODE", "5700"), ("time", "2024-01")])
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    header, *rows = response.json()
    assert header == ["GEN_VAL_MO", "CTY_NAME", "CTY_CODE", "time"]
    assert all(row[1] == "CHINA" and row[2] == "5700" and row[3] == "2024-01" for row in rows)
    assert all(isinstance(value, str) for row in rows for value in row)
    assert len(rows) == 18


def test_body_is_one_array_per_line_like_the_api(replay: ReplayServer) -> None:
    body = _get(replay, [("get", "CTY_CODE"), ("time", "2024-01"), ("I_COMMODITY", "8507")]).text
    assert body.startswith('[["CTY_CODE","time","I_COMMODITY"],\n["0003","2024-01","8507"],\n')
    assert body.endswith("]]")


def test_repeated_predicate_values_are_ored_and_star_is_a_prefix_wildcard(replay: ReplayServer) -> None:
    both = _get(
        replay,
        [
            ("get", "I_COMMODITY"),
            ("CTY_CODE", "5700"),
            ("time", "2024-01"),
            ("I_COMMODITY", "8507"),
            ("I_COMMODITY", "2504"),
        ],
    ).json()
    assert sorted(row[0] for row in both[1:]) == ["2504", "8507"]
    chapter = _get(
        replay, [("get", "I_COMMODITY"), ("CTY_CODE", "5700"), ("time", "2024-01"), ("I_COMMODITY", "85*")]
    ).json()
    assert sorted(row[0] for row in chapter[1:]) == ["8505", "8506", "8507", "8541", "8542"]


def test_time_accepts_a_month_a_year_and_a_from_to_range(replay: ReplayServer) -> None:
    def months(time_value: str) -> set[str]:
        rows = _get(
            replay, [("get", "CTY_CODE"), ("CTY_CODE", "5700"), ("I_COMMODITY", "8507"), ("time", time_value)]
        ).json()
        return {row[-1] for row in rows[1:]}

    assert months("2025-06") == {"2025-06"}
    assert months("from 2025-11 to 2026-02") == {"2025-11", "2025-12", "2026-01", "2026-02"}
    assert len(months("2025")) == 12


def test_unknown_variable_is_http_400_like_the_api(replay: ReplayServer) -> None:
    response = _get(replay, [("get", "CTY_CODE,NOT_A_VAR"), ("time", "2024-01")])
    assert response.status_code == 400
    assert "unknown variable 'NOT_A_VAR'" in response.text


def test_month_without_data_is_204_with_empty_body(replay: ReplayServer) -> None:
    response = _get(replay, [("get", "CTY_CODE"), ("time", "2026-09")])
    assert response.status_code == 204 and response.content == b""


def test_fault_plan_answers_the_next_requests_then_recordings_resume(replay: ReplayServer) -> None:
    replay.faults.add(Fault(status=503, times=2, headers={"Retry-After": "1"}))
    statuses = [_get(replay, [("get", "CTY_CODE"), ("time", "2024-01")]).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert [r.status for r in replay.requests] == [503, 503, 200]


def test_faults_can_be_set_over_http_for_an_out_of_process_server(replay: ReplayServer) -> None:
    requests.post(replay.url + "/__replay__/faults", json=[{"status": 500, "times": 1}], timeout=5)
    assert _get(replay, [("get", "CTY_CODE"), ("time", "2024-01")]).status_code == 500
    logged = requests.get(replay.url + "/__replay__/requests", timeout=5).json()
    assert logged[-1]["status"] == 500


def test_request_log_served_over_http_masks_keys(replay: ReplayServer) -> None:
    _get(replay, [("get", "CTY_CODE"), ("time", "2024-01"), ("key", "secret-value-123")])
    logged = requests.get(replay.url + "/__replay__/requests", timeout=5).text
    assert "secret-value-123" not in logged and "REDACTED" in logged
