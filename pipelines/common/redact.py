"""Keeping API keys out of URLs on disk, logs, manifests and error messages."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
