"""Paging strategies shared by every source, and where an API key goes in a request.

A source module's ``fetch_pages(ctx)`` picks one of these and adds its agency's parameters:

- ``per_month``: one request per month of the window (Census: ``time=YYYY-MM``);
- ``per_quarter``: one request per calendar quarter of the window and slice, the quarter in the
  path (BLS QCEW: ``/cew/data/api/{year}/{quarter}/industry/{industry}.csv``);
- ``offset_pages``: ``offset``/``limit`` style paging until the agency's total is reached or a
  short page arrives (EIA ``offset``/``length``, Socrata ``$offset``/``$limit``, NREL ``offset``/``limit``);
- ``file_requests``: one request per published file (USGS data releases).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from pipelines.contracts import CodelistParam, Contract, Registry
from pipelines.sources.http import FetchedPage, PageRequest
from pipelines.sources.window import Window

MAX_PAGES = 100_000  # a loop guard: no agency answer makes a run page forever
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def path_placeholders(contract: Contract) -> list[str]:
    """The ``{name}`` placeholders of the contract's source path, in order."""
    return _PLACEHOLDER.findall(contract.source.path)


@dataclass(frozen=True)
class PageContext:
    """What a source needs to ask for a run's pages: the contract, the window, where and how."""

    contract: Contract
    registry: Registry
    window: Window
    base_url: str
    api_key: str | None
    fetch: Callable[[PageRequest], FetchedPage]

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + self.contract.source.path

    def url_for(self, path_values: Mapping[str, str]) -> str:
        """The endpoint with the path's ``{name}`` placeholders filled (each value URL-quoted)."""

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in path_values:
                raise ValueError(
                    f"{self.contract.dataset}: no value for {{{name}}} in {self.contract.source.path}"
                )
            return quote(str(path_values[name]), safe="")

        return self.base_url.rstrip("/") + _PLACEHOLDER.sub(fill, self.contract.source.path)

    def request(
        self,
        params: Sequence[tuple[str, str]],
        partition: str,
        expect: Sequence[str] = (),
        path_values: Mapping[str, str] | None = None,
        absent: Sequence[int] = (),
    ) -> PageRequest:
        """A request to the contract's endpoint with ``params`` and the key where the agency wants it.

        ``expect``: the media types a good answer has (others, e.g. an HTML error page, are retried).
        ``path_values``: values of the path's placeholders. ``absent``: statuses meaning "nothing
        published there (yet)", answered as a page instead of an error.
        """
        key_params, headers = auth_params(self.contract, self.api_key)
        return PageRequest(
            dataset=self.contract.dataset,
            url=self.url if path_values is None else self.url_for(path_values),
            params=(*params, *key_params),
            partition=partition,
            headers=tuple(headers),
            expect=tuple(expect),
            absent=tuple(absent),
        )


def auth_params(
    contract: Contract, api_key: str | None
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(query parameters, headers) carrying the key as the contract's auth block says."""
    auth = contract.source.auth
    if auth is None or api_key is None:
        return [], []
    if auth.kind == "query_param":
        return [(auth.param, api_key)], []
    return [], [(auth.param, api_key)]


def param_values(contract: Contract, registry: Registry, name: str) -> list[str]:
    """The values of one contract parameter: a list's items, a code list column, or the one value."""
    value = contract.source.params[name]
    if isinstance(value, CodelistParam):
        return registry.codelists.values(value.codelist, value.column)
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def static_params(contract: Contract, registry: Registry) -> list[tuple[str, str]]:
    """The contract's fixed query parameters; a list (or a code list column) is repeated.

    A parameter named by a ``{placeholder}`` of the path goes into the path, not the query.
    """
    in_path = set(path_placeholders(contract))
    out: list[tuple[str, str]] = []
    for name in contract.source.params:
        if name not in in_path:
            out.extend((name, v) for v in param_values(contract, registry, name))
    return out


def per_month(
    ctx: PageContext,
    params: Sequence[tuple[str, str]],
    month_format: str = "%Y-%m",
    expect: Sequence[str] = (),
) -> Iterator[PageRequest]:
    """One request per month of the window, the month in the contract's paging parameter."""
    paging = ctx.contract.source.paging
    if paging.kind != "per_month" or not paging.param:
        raise ValueError(f"{ctx.contract.dataset}: per_month paging needs source.paging.param")
    for month in ctx.window.months():
        yield ctx.request(
            (*params, (paging.param, month.strftime(month_format))), month.strftime("%Y-%m"), expect
        )


def offset_pages(
    ctx: PageContext,
    params: Sequence[tuple[str, str]],
    count: Callable[[FetchedPage], tuple[int, int | None]],
    expect: Sequence[str] = (),
) -> Iterator[FetchedPage]:
    """Fetch pages at growing offsets until the agency's total is reached or a short page arrives.

    ``count(page)`` returns (rows in this page, total rows the agency reports or None); it is the
    source's reading of its agency's page format.
    """
    paging = ctx.contract.source.paging
    if paging.kind != "offset" or not (paging.offset_param and paging.limit_param and paging.page_size):
        raise ValueError(
            f"{ctx.contract.dataset}: offset paging needs offset_param, limit_param and page_size"
        )
    offset = 0
    for _ in range(MAX_PAGES):
        page_params = (
            *params,
            (paging.offset_param, str(offset)),
            (paging.limit_param, str(paging.page_size)),
        )
        page = ctx.fetch(ctx.request(page_params, f"offset-{offset:09d}", expect))
        rows, total = count(page)
        yield page
        offset += rows
        if (
            rows == 0
            or (total is not None and offset >= total)
            or (total is None and rows < paging.page_size)
        ):
            return
    raise RuntimeError(f"{ctx.contract.dataset}: more than {MAX_PAGES} pages; refusing to page further")


def file_requests(
    ctx: PageContext, params: Sequence[tuple[str, str]] = (), expect: Sequence[str] = ()
) -> Iterator[PageRequest]:
    """One request per file the contract lists (``paging.files``), the name in ``paging.param``."""
    paging = ctx.contract.source.paging
    if paging.kind != "files" or not paging.param or not paging.files:
        raise ValueError(f"{ctx.contract.dataset}: files paging needs source.paging.param and files")
    for name in paging.files:
        yield ctx.request((*params, (paging.param, name)), name, expect)


def per_quarter(
    ctx: PageContext,
    params: Sequence[tuple[str, str]] = (),
    slices: Sequence[Mapping[str, str]] = ({},),
    expect: Sequence[str] = (),
    absent: Sequence[int] = (),
) -> Iterator[PageRequest]:
    """One request per calendar quarter the window touches and per slice, oldest quarter first.

    The path's ``{year}`` and ``{quarter}`` (1 to 4) placeholders take the quarter; each slice
    gives the values of the other placeholders (e.g. ``{"industry": "335911"}``). The partition
    names both (``2021-Q1-335911``). ``absent``: statuses meaning the agency has not published that
    quarter (yet), answered as an empty page.
    """
    if ctx.contract.source.paging.kind != "per_quarter":
        raise ValueError(f"{ctx.contract.dataset}: per_quarter paging needs source.paging.kind per_quarter")
    names = set(path_placeholders(ctx.contract))
    if not {"year", "quarter"} <= names:
        raise ValueError(
            f"{ctx.contract.dataset}: per_quarter paging needs {{year}} and {{quarter}} in source.path"
        )
    for first_day in ctx.window.quarters():
        quarter = str((first_day.month - 1) // 3 + 1)
        for values in slices:
            path_values = {"year": str(first_day.year), "quarter": quarter, **values}
            partition = "-".join([f"{first_day.year}-Q{quarter}", *values.values()])
            yield ctx.request(params, partition, expect, path_values=path_values, absent=absent)
