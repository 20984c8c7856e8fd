"""The one HTTP client every source uses: a requests Session, bounded retries, Retry-After.

Transient failures (429, 5xx, connection errors, timeouts, truncated bodies) are retried with
exponential backoff and jitter, or after the server's ``Retry-After`` when it sends one. Anything
else fails at once with a message naming the dataset and the URL with its secrets removed.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import requests
import urllib3
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from pipelines.common.errors import ScdxError
from pipelines.common.redact import RedactingFilter, redact_text, redact_url
from pipelines.common.settings import HttpPolicy

log = logging.getLogger("scdx.http")
# urllib3 logs every request line, query string (and so any key) included, at DEBUG.
logging.getLogger("urllib3.connectionpool").addFilter(RedactingFilter())

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "scdx/0.1 (cross-agency supply-chain data exchange; +https://github.com/scdx)"


DIAGNOSIS_BYTES = 64 * 1024


class FetchError(ScdxError, RuntimeError):
    """A request failed for good; the message names the dataset and the redacted URL.

    ``status`` and ``body`` (a bounded prefix) are kept for diagnosis when there was a response.
    """

    def __init__(self, message: str, status: int | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class TransientFetchError(FetchError):
    """A failure worth retrying; carries the server's Retry-After delay when it sent one."""

    def __init__(
        self, message: str, retry_after_s: float | None = None, status: int | None = None, body: bytes = b""
    ) -> None:
        super().__init__(message, status, body)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class PageRequest:
    """One HTTP GET of a source: URL, parameters (secrets included, never persisted) and label."""

    dataset: str
    url: str
    params: tuple[tuple[str, str], ...]
    partition: str
    headers: tuple[tuple[str, str], ...] = ()
    # Media types a good answer has; anything else (an HTML error page behind a 200) is retried.
    expect: tuple[str, ...] = ()
    # Statuses meaning "nothing is published here (yet)" (BLS QCEW: 404 for a quarter not released):
    # answered as a page like any other, not an error; the source reads the status as "no data".
    absent: tuple[int, ...] = ()

    @functools.cached_property
    def redacted_url(self) -> str:
        """The full URL with any key masked (for logs, errors and manifests).

        Cached: preparing a URL costs half a millisecond, and a response names its request in
        its error messages, its manifest and the comparison with the earlier run's.
        """
        prepared = requests.Request("GET", self.url, params=list(self.params)).prepare()
        return redact_url(prepared.url or self.url)


@dataclass(frozen=True)
class FetchedPage:
    """A response as received: status, headers of interest and the exact body bytes."""

    request: PageRequest
    status: int
    content_type: str | None
    body: bytes
    fetched_at: datetime
    attempts: int
    elapsed_s: float
    response_headers: dict[str, str] = field(default_factory=dict)
    # A body larger than HttpPolicy.spool_bytes is on disk here instead of in ``body`` (which is
    # then empty); land moves a temporary one into place and copies one that is not (a file in hand).
    body_file: Path | None = None
    body_file_is_temporary: bool = True

    @property
    def size(self) -> int:
        """Bytes of the body, wherever it is."""
        return self.body_file.stat().st_size if self.body_file is not None else len(self.body)


def open_session() -> requests.Session:
    """A Session with our User-Agent; TLS verification stays on (requests' default)."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept-Encoding"] = "gzip, deflate"
    return session


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header in either form (delta-seconds or HTTP-date)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _RetryAfterOrBackoff:
    """tenacity wait strategy: the server's Retry-After when given, else exponential backoff."""

    def __init__(self, policy: HttpPolicy) -> None:
        self._backoff = wait_random_exponential(multiplier=policy.backoff_initial_s, max=policy.backoff_max_s)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientFetchError) and error.retry_after_s is not None:
            return error.retry_after_s
        return float(self._backoff(state))


READ_CHUNK_BYTES = 8 << 20


def _body_chunks(response: requests.Response) -> Iterator[bytes]:
    """The body in chunks: straight from urllib3 when it is not content-encoded.

    requests' ``iter_content`` always goes through urllib3's decoding buffer, which copies every
    chunk: reading 950 MB over loopback takes 1.5 s that way and 0.75 s without. A compressed
    body still goes through it (it decodes, and the size limit applies to what it decodes to).
    Errors are requests' own, as ``iter_content`` raises them.
    """
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        yield from response.iter_content(chunk_size=1 << 20)
        return
    try:
        while chunk := response.raw.read(READ_CHUNK_BYTES, decode_content=False):
            yield chunk
    except urllib3.exceptions.ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ConnectionError(exc) from exc
    except urllib3.exceptions.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from exc


def _read_body(
    response: requests.Response, policy: HttpPolicy, where: str, dataset: str
) -> tuple[bytes, Path | None]:
    """The body in memory, or, past ``policy.spool_bytes``, in a temporary file (memory stays flat).

    Returns (body, None) or (b"", file). A failure removes the partial file.
    """
    chunks: list[bytes] = []
    size = 0
    spool: Path | None = None
    handle: IO[bytes] | None = None
    try:
        for chunk in _body_chunks(response):
            size += len(chunk)
            if size > policy.max_response_bytes:
                response.close()
                raise FetchError(
                    f"{where}: response larger than the {policy.max_response_bytes} byte limit; not landed"
                )
            if handle is None and size > policy.spool_bytes:
                if policy.spool_dir is not None:
                    Path(policy.spool_dir).mkdir(parents=True, exist_ok=True)
                handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below or on failure
                    prefix=f"download-{dataset}-", suffix=".part", dir=policy.spool_dir, delete=False
                )
                spool = Path(handle.name)
                handle.writelines(chunks)
                chunks = []
            if handle is not None:
                handle.write(chunk)
            else:
                chunks.append(chunk)
        if handle is not None and spool is not None:
            handle.close()
            return b"", spool
        return b"".join(chunks), None
    except BaseException:
        if handle is not None and spool is not None:
            handle.close()
            spool.unlink(missing_ok=True)
        raise


def _prefix(response: requests.Response) -> bytes:
    """Up to DIAGNOSIS_BYTES of a body we are about to reject, for the failed-attempt record."""
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(chunk_size=8192):
            chunks.append(chunk)
            size += len(chunk)
            if size >= DIAGNOSIS_BYTES:
                break
    except (requests.RequestException, OSError):
        pass
    return b"".join(chunks)[:DIAGNOSIS_BYTES]


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _refuse_retry_or_redirect(response: requests.Response, policy: HttpPolicy, where: str) -> None:
    """Raise for a status that decides the attempt before its body is read: retry later, or a redirect."""
    status = response.status_code
    if status in RETRY_STATUSES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None and retry_after > policy.retry_after_max_s:
            raise FetchError(
                f"{where}: HTTP {status} asks to retry after {retry_after:.0f} s, "
                f"more than the {policy.retry_after_max_s:.0f} s allowed"
            )
        raise TransientFetchError(f"{where}: HTTP {status}", retry_after, status, _prefix(response))
    if 300 <= status < 400:
        target = redact_url(response.headers.get("Location", "?"))
        raise FetchError(f"{where}: HTTP {status} redirect to {target} not followed", status)


def _received_body(
    response: requests.Response, policy: HttpPolicy, where: str, dataset: str
) -> tuple[bytes, Path | None]:
    """:func:`_read_body`, a body cut short being worth a retry and one that cannot be decoded not."""
    try:
        return _read_body(response, policy, where, dataset)
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
        raise TransientFetchError(
            f"{where}: body cut short: {redact_text(str(exc))}", status=response.status_code
        ) from None
    except requests.exceptions.ContentDecodingError as exc:
        raise FetchError(
            f"{where}: body cannot be decoded: {redact_text(str(exc))}", response.status_code
        ) from None


def _attempt(session: requests.Session, request: PageRequest, policy: HttpPolicy) -> FetchedPage:
    """One GET: the page, or the FetchError (TransientFetchError: worth retrying) it ends in."""
    where = f"{request.dataset}: GET {request.redacted_url}"
    started = time.monotonic()
    try:
        response = session.get(
            request.url,
            params=list(request.params),
            headers=dict(request.headers),
            timeout=(policy.connect_timeout_s, policy.read_timeout_s),
            stream=True,
            # A redirect would carry the query-string key to wherever it points: never follow.
            allow_redirects=False,
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientFetchError(f"{where}: {type(exc).__name__}: {redact_text(str(exc))}") from None
    with response:
        status = response.status_code
        _refuse_retry_or_redirect(response, policy, where)
        body, body_file = _received_body(response, policy, where, request.dataset)
        media = _media_type(response.headers.get("Content-Type"))
        absent = status in request.absent
        wrong_type = (
            bool(body or body_file) and bool(request.expect) and media not in request.expect and not absent
        )
        if body_file is not None and ((status >= 400 and not absent) or wrong_type):
            # A rejected answer is not landed: keep its first bytes for diagnosis, drop the file.
            with body_file.open("rb") as handle:
                body = handle.read(DIAGNOSIS_BYTES)
            body_file.unlink(missing_ok=True)
        if status >= 400 and not absent:
            snippet = redact_text(body[:300].decode("utf-8", "replace")).strip()
            raise FetchError(f"{where}: HTTP {status}: {snippet}", status, body[:DIAGNOSIS_BYTES])
        if wrong_type:
            raise TransientFetchError(
                f"{where}: HTTP {status} with content type {media or 'none'!r}, expected {' or '.join(request.expect)} "
                "(an error page?)",
                status=status,
                body=body[:DIAGNOSIS_BYTES],
            )
        headers = {
            k: v for k, v in response.headers.items() if k.lower() in {"etag", "last-modified", "date"}
        }
        return FetchedPage(
            request=request,
            status=status,
            content_type=response.headers.get("Content-Type"),
            body=body,
            fetched_at=datetime.now(UTC),
            attempts=1,
            elapsed_s=time.monotonic() - started,
            response_headers=headers,
            body_file=body_file,
        )


FailedAttemptHook = Callable[[PageRequest, int, FetchError], None]


def fetch(
    session: requests.Session,
    request: PageRequest,
    policy: HttpPolicy,
    on_failed_attempt: FailedAttemptHook | None = None,
) -> FetchedPage:
    """GET one page with bounded retries; returns the response or raises :class:`FetchError`.

    ``on_failed_attempt(request, attempt, error)`` sees every failed attempt (to keep its bytes).
    """

    def _log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s; attempt %d of %d, retrying in %.2f s", error, state.attempt_number, policy.max_attempts, wait
        )

    retrying = Retrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=_RetryAfterOrBackoff(policy),
        retry=retry_if_exception_type(TransientFetchError),
        before_sleep=_log_retry,
        reraise=True,
    )
    attempts = 0
    try:
        for attempt in retrying:
            with attempt:
                attempts += 1
                try:
                    page = _attempt(session, request, policy)
                except FetchError as exc:
                    if on_failed_attempt is not None:
                        on_failed_attempt(request, attempts, exc)
                    raise
    except TransientFetchError as exc:
        raise FetchError(f"{exc} (gave up after {attempts} attempts)", exc.status, exc.body) from None
    return replace(page, attempts=attempts)


class RateLimiter:
    """Spaces requests to at most ``per_second`` (the agency's documented limit)."""

    def __init__(self, per_second: float | None) -> None:
        self._interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0

    def wait(self) -> None:
        now = time.monotonic()
        if now < self._next:
            time.sleep(self._next - now)
        self._next = max(now, self._next) + self._interval
