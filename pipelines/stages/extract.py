"""Extract: ask the agency (or the replay server) for every page of a run's window."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from pipelines.common.settings import HttpPolicy
from pipelines.contracts import Contract, Registry
from pipelines.sources import source_module
from pipelines.sources.http import (
    FailedAttemptHook,
    FetchedPage,
    PageRequest,
    RateLimiter,
    fetch,
    open_session,
)
from pipelines.sources.paging import PageContext
from pipelines.sources.window import Window

log = logging.getLogger("scdx.extract")


def extract(
    contract: Contract,
    registry: Registry,
    window: Window,
    base_url: str,
    api_key: str | None,
    policy: HttpPolicy,
    rate_limited: bool = True,
    on_failed_attempt: FailedAttemptHook | None = None,
) -> Iterator[FetchedPage]:
    """Yield each response of the window in order, one at a time, through one Session.

    ``base_url`` is the agency's (live) or the replay server's; the path and the query semantics
    are the agency's either way. The agency's rate limit applies to live calls only.
    """
    source = source_module(contract.source.module)
    rate = contract.source.rate_limit
    limiter = RateLimiter(rate.requests_per_second if rate and rate_limited else None)
    with open_session() as session:

        def fetch_one(request: PageRequest) -> FetchedPage:
            limiter.wait()
            page = fetch(session, request, policy, on_failed_attempt)
            log.debug(
                "%s %s: HTTP %d, %d bytes, %d attempt(s)",
                contract.dataset,
                request.partition,
                page.status,
                page.size,
                page.attempts,
            )
            return page

        yield from source.fetch_pages(PageContext(contract, registry, window, base_url, api_key, fetch_one))
