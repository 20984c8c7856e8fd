"""Keeping API keys out of URLs on disk, logs, manifests and error messages."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pipelines.contracts import Auth

# Query parameters that carry credentials at the agencies we talk to (Census "key", EIA and
# NREL "api_key", Socrata "$$app_token") and the usual generic names.
SENSITIVE_PARAMS = frozenset(
    {"key", "api_key", "apikey", "token", "access_token", "$$app_token", "app_token"}
)
MASK = "REDACTED"

_known_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that :func:`redact_text` removes it wherever it appears."""
    if value and len(value) >= 4:
        with _lock:
            _known_secrets.add(value)


def redact_text(text: str) -> str:
    """``text`` with every registered secret and every sensitive query parameter masked."""
    with _lock:
        secrets = sorted(_known_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    pattern = "|".join(re.escape(p) for p in sorted(SENSITIVE_PARAMS))
    return re.sub(rf"(?i)([?&](?:{pattern})=)[^&#\s\"']*", rf"\1{MASK}", text)


def redact_params(params: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Query parameters with credential values masked."""
    return [(k, MASK if k.lower() in SENSITIVE_PARAMS else v) for k, v in params]


def redact_url(url: str) -> str:
    """``url`` with credential query parameters and userinfo masked."""
    parts = urlsplit(url)
    query = urlencode(redact_params(parse_qsl(parts.query, keep_blank_values=True)), safe=",*$: ")
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.split('@', 1)[1]}"
    return redact_text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


class RedactingFilter(logging.Filter):
    """Logging filter that rewrites records so no registered secret reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def install_log_redaction() -> None:
    """Attach the redacting filter to the root handlers and to urllib3's logger (it logs URLs)."""
    flt = RedactingFilter()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)
    for name in ("urllib3.connectionpool", "scdx"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(flt)


def resolve_api_key(
    auth: Auth | None,
    connection_lookup: Callable[[str], str | None] | None = None,
    live: bool = True,
) -> str | None:
    """The API key for a source: its environment variable first, then the Airflow connection.

    ``connection_lookup`` is supplied by Airflow task code (it reads the connection's password);
    the CLI has none. The key is registered for redaction before it is returned. A key the
    contract marks required is demanded only for ``live`` calls: the offline replay server serves
    recordings to a run without one (and sends it on when there is one).
    """
    if auth is None:
        return None
    key = os.environ.get(auth.env) or None
    if key is None and connection_lookup is not None and auth.airflow_conn_id:
        key = connection_lookup(auth.airflow_conn_id) or None
    if key is None and auth.required and live:
        raise PermissionError(
            f"no API key: set {auth.env}"
            + (f" or the Airflow connection {auth.airflow_conn_id!r}" if auth.airflow_conn_id else "")
        )
    register_secret(key)
    if key is not None:
        install_log_redaction()
    return key
