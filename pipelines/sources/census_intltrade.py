"""Census Bureau International Trade API (``/data/timeseries/intltrade/...``).

Paging: the API does not page; a run asks for one month at a time (``time=YYYY-MM``).
Requested variables (``get=``) come from the contract's field sources, so the contract stays the
single place that says what is fetched.

Quirks handled here and nowhere else:
- the body is a JSON array of arrays whose first row is the header; every value is a string;
- predicate variables (``time``, ``COMM_LVL``, ``I_COMMODITY`` ...) are appended to the header, so
  a variable that is both requested and a predicate appears twice (the copies must agree);
- ``CTY_CODE`` is ``-`` on the all-countries total row; group codes (``0003`` European Union) and
  continent codes (``5XXX`` Asia) sit beside the countries, and numeric codes keep 4 digits;
- HTTP 204 with an empty body means "no data for that month", not an error.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb

from pipelines.contracts import Contract, Registry
from pipelines.http import FetchedPage, PageRequest
from pipelines.normalize import NormalizeError
from pipelines.paging import PageContext, per_month, static_params
from pipelines.sources import RawPage, SourceRows

TOTAL_CODE = "-"


def requested_variables(contract: Contract) -> list[str]:
    """The ``get=`` list: every field's source variable except the month, which the API echoes."""
    out: list[str] = []
    for f in contract.fields:
        if f.source and f.source != contract.source.paging.param and f.source not in out:
            out.append(f.source)
    return out


def page_requests(ctx: PageContext) -> Iterator[PageRequest]:
    """One request per month: ``get=<fields>&<contract params>&time=YYYY-MM[&key=...]``."""
    params = [
        ("get", ",".join(requested_variables(ctx.contract))),
        *static_params(ctx.contract, ctx.registry),
    ]
    return per_month(ctx, params, expect=("application/json",))


def fetch_pages(ctx: PageContext) -> Iterator[FetchedPage]:
    """The API does not page: each month of the window is one response (204 when empty)."""
    for request in page_requests(ctx):
        yield ctx.fetch(request)


def partner_kind(code: str) -> str:
    """country, group or total, from a Census CTY_CODE (the rule the SQL below applies)."""
    if code == TOTAL_CODE:
        return "total"
    if code.startswith("0") or "X" in code:
        return "group"
    return "country"


# The same rules in SQL, applied inside DuckDB to a whole page at once.
_PAD_CODE = "CASE WHEN regexp_matches({c}, '^[0-9]{{1,3}}$') THEN lpad({c}, 4, '0') ELSE {c} END"
_KIND = (
    "CASE WHEN {c} = '-' THEN 'total' WHEN {c} LIKE '0%' OR {c} LIKE '%X%' THEN 'group' ELSE 'country' END"
)
_MONTH_DAY = "CASE WHEN length({c}) = 7 THEN {c} || '-01' ELSE {c} END"


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_error_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _json_page(
    con: duckdb.DuckDBPyConnection, page: RawPage, contract: Contract
) -> tuple[list[str], str, str]:
    """(header, relation, column expression template) of an API page: an array of arrays, header first."""
    with page.path.open("rb") as handle:
        start = handle.read(64).lstrip()
    if not start.startswith(b"[") or not start[1:].lstrip().startswith(b"["):
        raise NormalizeError(
            contract.dataset, page.path, "expected a JSON array of arrays with a header row first"
        )
    source = f"read_json({_sql_literal(str(page.path))}, format='array', records=false, columns={{'json': 'VARCHAR[]'}})"
    try:
        first = next(iter(con.execute(f"SELECT json FROM {source} LIMIT 1").fetchall()), None)
    except duckdb.Error as exc:
        raise NormalizeError(
            contract.dataset, page.path, f"not a JSON array of arrays: {_first_error_line(exc)}"
        ) from None
    header = [str(h) for h in (first[0] if first else [])]
    width = len(header)
    bad = next(
        iter(
            con.execute(
                f"SELECT n, len(json) FROM (SELECT json, row_number() OVER () AS n FROM {source}) "
                f"WHERE len(json) <> {width} LIMIT 1"
            ).fetchall()
        ),
        None,
    )
    if bad:
        raise NormalizeError(
            contract.dataset, page.path, f"{bad[1]} values, header has {width}", row=int(bad[0])
        )
    return header, f"(SELECT json FROM {source} OFFSET 1)", "json[{position}]"


def _csv_page(
    con: duckdb.DuckDBPyConnection, page: RawPage, contract: Contract
) -> tuple[list[str], str, str]:
    """(header, relation, column expression template) of a CSV export with the API's variable names."""
    try:
        header_row = next(
            iter(
                con.execute(
                    f"SELECT * FROM read_csv({_sql_literal(str(page.path))}, header=false, all_varchar=true) LIMIT 1"
                ).fetchall()
            ),
            None,
        )
    except duckdb.Error as exc:
        raise NormalizeError(
            contract.dataset, page.path, f"not a CSV with a header row: {_first_error_line(exc)}"
        ) from None
    header = [str(h) for h in (header_row or ())]
    names = ", ".join(f"'c{i}'" for i in range(len(header)))
    source = (
        f"read_csv({_sql_literal(str(page.path))}, header=false, all_varchar=true, skip=1, names=[{names}])"
    )
    return header, source, "c{position_0}"


BATCH_ROWS = 250_000


def parse_batches(page: RawPage, contract: Contract, registry: Registry) -> Iterator[SourceRows]:
    """One response (or one file in hand) -> its columns by variable name, in batches.

    Parsed inside DuckDB: the JSON reader turns the array of arrays into lists (a CSV export is
    read as text), and the quirks (repeated predicate columns, the month's format, code padding,
    partner kinds) are SQL over the whole page, so no Python loop touches a row. Batches of
    BATCH_ROWS keep memory flat however large the file. Nothing for the API's 204 "no data".
    """
    if page.status == 204 or int(page.manifest.get("bytes", 1)) == 0 or page.path.stat().st_size == 0:
        return
    media = str(page.manifest.get("content_type") or "").split(";")[0].strip().lower()
    with duckdb.connect() as con:
        if media in ("text/csv", "application/csv") or page.path.suffix == ".csv":
            header, relation, template = _csv_page(con, page, contract)
        else:
            header, relation, template = _json_page(con, page, contract)

        def column(position: int) -> str:
            return template.format(position=position + 1, position_0=position)

        first: dict[str, int] = {}
        for position, name in enumerate(header):
            if name not in first:
                first[name] = position
                continue
            ((differs,),) = con.execute(
                f"SELECT count(*) FROM {relation} WHERE {column(first[name])} IS DISTINCT FROM {column(position)}"
            ).fetchall()
            if differs:
                raise NormalizeError(
                    contract.dataset,
                    page.path,
                    "repeated header column disagrees with its first copy",
                    field=name,
                )
        expressions = []
        month = contract.source.paging.param
        for name, position in first.items():
            expression = column(position)
            if name == month:
                expression = _MONTH_DAY.format(c=expression)
            elif name == "CTY_CODE":
                expression = _PAD_CODE.format(c=expression)
            expressions.append(f'{expression} AS "{name}"')
        if "CTY_CODE" in first:
            expressions.append(
                _KIND.format(c=_PAD_CODE.format(c=column(first["CTY_CODE"]))) + ' AS "scdx_partner_kind"'
            )
        reader = con.sql(f"SELECT {', '.join(expressions)} FROM {relation}").to_arrow_reader(BATCH_ROWS)
        row = 2  # the header is row 1
        for batch in reader:
            columns = {name: batch.column(name) for name in first}
            derived = {"partner_kind": batch.column("scdx_partner_kind")} if "CTY_CODE" in first else {}
            yield SourceRows(columns=columns, source_rows=batch.num_rows, derived=derived, first_row=row)
            row += batch.num_rows


def parse_page(page: RawPage, contract: Contract, registry: Registry) -> SourceRows | None:
    """The whole page as one SourceRows (None for 204): parse_batches, concatenated."""
    import pyarrow as pa

    batches = list(parse_batches(page, contract, registry))
    if not batches:
        return None
    columns = {name: pa.concat_arrays([b.columns[name] for b in batches]) for name in batches[0].columns}
    derived = {name: pa.concat_arrays([b.derived[name] for b in batches]) for name in batches[0].derived}
    return SourceRows(columns=columns, source_rows=sum(b.source_rows for b in batches), derived=derived)
