"""The common HTTP client: bounded retries, Retry-After honoured, keys kept out of errors."""

from __future__ import annotations

import socket
import traceback
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pipelines.common.settings import HttpPolicy
from pipelines.replay.server import Fault, ReplayServer
from pipelines.sources.http import FetchError, PageRequest, fetch, open_session, parse_retry_after

PATH = "/data/timeseries/intltrade/imports/hs"
SECRET = "do-not-leak-0123456789"


def _request(base_url: str, key: str | None = None) -> PageRequest:
    params: tuple[tuple[str, str], ...] = (("get", "CTY_CODE,GEN_VAL_MO"), ("time", "2024-01"))
    if key:
        params += (("key", key),)
    return PageRequest(
        dataset="census_trade_imports", url=base_url + PATH, params=params, partition="2024-01"
    )


def test_429_with_retry_after_seconds_waits_that_long_then_succeeds(
    replay: ReplayServer, fast_http: HttpPolicy
) -> None:
    replay.faults.add(Fault(status=429, headers={"Retry-After": "1"}))
    with open_session() as session:
        page = fetch(session, _request(replay.url), fast_http)
    assert page.status == 200 and page.attempts == 2
    first, second = replay.requests
    assert (first.status, second.status) == (429, 200)
    # fast_http's own backoff is at most 0.05 s: a gap of a second can only come from Retry-After.
    assert second.at_monotonic - first.at_monotonic >= 0.95


def test_429_without_retry_after_backs_off_exponentially_and_succeeds(
    replay: ReplayServer, fast_http: HttpPolicy
) -> None:
    replay.faults.add(Fault(status=429, times=2))
    with open_session() as session:
        page = fetch(session, _request(replay.url), fast_http)
    assert page.attempts == 3
    assert [r.status for r in replay.requests] == [429, 429, 200]


def test_retry_after_as_http_date_is_understood() -> None:
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=42), usegmt=True), now=now) == 42.0
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_burst_of_server_errors_is_retried_until_success(replay: ReplayServer, fast_http: HttpPolicy) -> None:
    replay.faults.add(Fault(status=500), Fault(status=502), Fault(status=503))
    with open_session() as session:
        page = fetch(session, _request(replay.url), fast_http)
    assert page.status == 200 and page.attempts == 4
    assert [r.status for r in replay.requests] == [500, 502, 503, 200]


def test_gives_up_after_the_attempt_bound_naming_dataset_and_url_without_the_key(
    replay: ReplayServer, fast_http: HttpPolicy
) -> None:
    replay.faults.add(Fault(status=503, times=50))
    with open_session() as session, pytest.raises(FetchError) as caught:
        fetch(session, _request(replay.url, key=SECRET), fast_http)
    message = str(caught.value)
    assert message.startswith("census_trade_imports: GET http://127.0.0.1:")
    assert "HTTP 503" in message and "gave up after 4 attempts" in message
    assert SECRET not in message and "key=REDACTED" in message
    assert len(replay.requests) == fast_http.max_attempts
    printed = "".join(traceback.format_exception(caught.value))
    assert SECRET not in printed


def test_retry_after_longer_than_allowed_fails_at_once(replay: ReplayServer, fast_http: HttpPolicy) -> None:
    replay.faults.add(Fault(status=503, headers={"Retry-After": "3600"}))
    with (
        open_session() as session,
        pytest.raises(FetchError, match="retry after 3600 s, more than the 30 s allowed"),
    ):
        fetch(session, _request(replay.url), fast_http)
    assert len(replay.requests) == 1


def test_client_error_fails_without_retry_and_quotes_the_agency_message(
    replay: ReplayServer, fast_http: HttpPolicy
) -> None:
    request = PageRequest(
        dataset="census_trade_imports",
        url=replay.url + PATH,
        params=(("get", "NOPE"), ("time", "2024-01")),
        partition="2024-01",
    )
    with (
        open_session() as session,
        pytest.raises(FetchError, match="HTTP 400: error: unknown variable 'NOPE'"),
    ):
        fetch(session, request, fast_http)
    assert len(replay.requests) == 1


def test_redirect_is_never_followed_so_the_key_cannot_travel(
    replay: ReplayServer, fast_http: HttpPolicy
) -> None:
    replay.faults.add(Fault(status=302, headers={"Location": f"http://elsewhere.example/steal?key={SECRET}"}))
    with open_session() as session, pytest.raises(FetchError) as caught:
        fetch(session, _request(replay.url, key=SECRET), fast_http)
    assert "redirect to http://elsewhere.example/steal?key=REDACTED not followed" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_connection_refused_is_retried_then_reported(fast_http: HttpPolicy) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with (
        open_session() as session,
        pytest.raises(FetchError, match=r"ConnectionError.*gave up after 4 attempts"),
    ):
        fetch(session, _request(f"http://127.0.0.1:{closed_port}", key=SECRET), fast_http)


def test_response_larger_than_the_limit_is_refused(replay: ReplayServer) -> None:
    small = HttpPolicy(max_response_bytes=1000, backoff_initial_s=0.01, backoff_max_s=0.05)
    with open_session() as session, pytest.raises(FetchError, match="larger than the 1000 byte limit"):
        fetch(session, _request(replay.url), small)
