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

import csv
import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import duckdb

from pipelines.common.sql import quote_literal
from pipelines.contracts import Contract, Registry
from pipelines.sources import NormalizeError, RawPage, SourceRows
from pipelines.sources.census_intltrade.usatradeonline import is_report, report_batches
from pipelines.sources.http import FetchedPage, PageRequest
from pipelines.sources.paging import PageContext, per_month, static_params

if TYPE_CHECKING:
    import pyarrow as pa

# What a file of this source can be (pipelines.sources.formats): a file in hand is checked against it.
FORMATS = ("json", "csv")

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


def partner_kinds(codes: pa.Array) -> pa.Array:
    """country, group or total for each (padded) Census CTY_CODE.

    ``-`` is the all-countries total; a code starting with 0 (0003 European Union) or holding an
    X (5XXX Asia) is a group; any other code is a country. In Arrow, over the batch DuckDB
    returns: the same rule as a SQL CASE cost three times as much at 10M rows.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    total = pc.fill_null(pc.equal(codes, TOTAL_CODE), False)
    group = pc.fill_null(pc.or_(pc.starts_with(codes, "0"), pc.match_substring(codes, "X")), False)
    return pc.if_else(total, "total", pc.if_else(group, "group", pa.scalar("country")))


# The code padding in SQL, applied inside DuckDB to a whole page at once.
# The length test first: DuckDB then runs the regex only on the few short codes (half the time).
_PAD_CODE = (
    "CASE WHEN length({c}) < 4 AND regexp_full_match({c}, '[0-9]+') THEN lpad({c}, 4, '0') ELSE {c} END"
)
_MONTH_DAY = "CASE WHEN length({c}) = 7 THEN {c} || '-01' ELSE {c} END"


def _first_error_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


HEADER_PROBE_BYTES = 1 << 16  # a header row of variable names is far shorter than this


def _opening(page: RawPage) -> str:
    """The page's first bytes as text (byte-order mark dropped), to tell its layout and read its header."""
    with page.path.open("rb") as handle:
        return handle.read(HEADER_PROBE_BYTES).decode("utf-8-sig", errors="replace")


def _json_header(page: RawPage, contract: Contract, opening: str) -> list[str]:
    """The header row of an API page (an array of arrays, header first), read from its first bytes.

    Parsed in Python from the opening bytes only, so the page itself is read once, by DuckDB.
    """
    opening = opening.lstrip()
    if not opening.startswith("[") or not opening[1:].lstrip().startswith("["):
        raise NormalizeError(
            contract.dataset, page.path, "expected a JSON array of arrays with a header row first"
        )
    try:
        header, _ = json.JSONDecoder().raw_decode(opening, opening.index("[", 1))
    except json.JSONDecodeError as exc:
        raise NormalizeError(
            contract.dataset, page.path, f"not a JSON array of arrays: header row unreadable ({exc.msg})"
        ) from None
    if not isinstance(header, list) or not header or not all(isinstance(h, str) for h in header):
        raise NormalizeError(contract.dataset, page.path, "the header row is not a list of variable names")
    return header


def _json_page(page: RawPage, contract: Contract, opening: str) -> tuple[list[str], str, str]:
    """(header, relation, column expression template) of an API page: an array of arrays, header first.

    The relation carries each row's width (``scdx_width``) so rows are checked against the header
    in the same pass that reads them.
    """
    header = _json_header(page, contract, opening)
    _refuse_unclosed_array(page, contract)
    source = f"read_json({quote_literal(str(page.path))}, format='array', records=false, columns={{'json': 'VARCHAR[]'}})"
    return header, f"(SELECT json, len(json) AS scdx_width FROM {source} OFFSET 1)", "json[{position}]"


def _refuse_unclosed_array(page: RawPage, contract: Contract) -> None:
    """A page whose outer array is never closed was cut short (DuckDB's reader takes the rows it
    got up to the end of the file, so a cut at a line end would pass as a smaller month)."""
    with page.path.open("rb") as handle:
        handle.seek(max(0, page.path.stat().st_size - 64))
        tail = handle.read().rstrip()
    if not tail.endswith(b"]"):
        raise NormalizeError(
            contract.dataset,
            page.path,
            "not readable as the API's format: the array of rows is never closed (a response cut short)",
        )


def _csv_page(page: RawPage, contract: Contract, opening: str) -> tuple[list[str], str, str]:
    """(header, relation, column expression template) of a CSV export with the API's variable names.

    The header is read in Python and the dialect is given, not sniffed: whatever a header cell
    holds (quotes, semicolons), it is a name, never a reason to read the file another way.
    """
    try:
        header = next(csv.reader(io.StringIO(opening, newline="")), [])
    except csv.Error as exc:
        raise NormalizeError(
            contract.dataset, page.path, f"not a CSV with a header row: {exc}", row=1
        ) from None
    if not header or not any(h.strip() for h in header):
        raise NormalizeError(
            contract.dataset, page.path, "not a CSV with a header row of variable names", row=1
        )
    names = ", ".join(f"'c{i}'" for i in range(len(header)))
    source = (
        f"read_csv({quote_literal(str(page.path))}, header=false, all_varchar=true, skip=1, "
        f"delim=',', quote='\"', escape='\"', names=[{names}])"
    )
    return header, source, "c{position_0}"


BATCH_ROWS = 250_000
_database = threading.local()


@contextmanager
def _cursor() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on this thread's in-memory DuckDB: opening a database per page costs ~15 ms."""
    base = getattr(_database, "connection", None)
    if base is None:
        base = _database.connection = duckdb.connect()
    cursor = base.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def parse_batches(page: RawPage, contract: Contract, registry: Registry) -> Iterator[SourceRows]:
    """One response (or one file in hand) -> its columns by variable name, in batches.

    Parsed inside DuckDB: the JSON reader turns the array of arrays into lists (a CSV export is
    read as text), and the quirks (repeated predicate columns, the month's format, code padding,
    partner kinds) are SQL over the whole page, so no Python loop touches a row. Batches of
    BATCH_ROWS keep memory flat however large the file. Nothing for the API's 204 "no data".
    """
    if page.status == 204 or int(page.manifest.get("bytes", 1)) == 0 or page.path.stat().st_size == 0:
        return
    opening = _opening(page)
    if is_report(opening):
        # A USA Trade Online report downloaded by hand: the second format of these datasets.
        yield from report_batches(page, contract, registry)
        return
    media = str(page.manifest.get("content_type") or "").split(";")[0].strip().lower()
    with _cursor() as con:
        # JSON by its opening, or by what the response says it is (an error object, an HTML page
        # sent as JSON: the JSON reader says why it is not an array of arrays); CSV otherwise.
        if opening.lstrip()[:1] in ("[", "{") or media.endswith("json"):
            header, relation, template = _json_page(page, contract, opening)
        else:
            header, relation, template = _csv_page(page, contract, opening)

        def column(position: int) -> str:
            return template.format(position=position + 1, position_0=position)

        first: dict[str, int] = {}
        repeats: list[tuple[str, int]] = []  # (name, position of a repeated copy)
        for position, name in enumerate(header):
            if name in first:
                repeats.append((name, position))
            else:
                first[name] = position
        # The agency's variable names stay in Python: each column is selected by its position and
        # named c<position> in SQL, so no header cell, however written, ever becomes SQL text.
        expressions = []
        month = contract.source.paging.param
        for name, position in first.items():
            expression = column(position)
            if name == month:
                expression = _MONTH_DAY.format(c=expression)
            elif name == "CTY_CODE":
                expression = _PAD_CODE.format(c=expression)
            expressions.append(f"{expression} AS c{position}")
        # Row checks ride along in the one pass: width against the header, and whether each
        # repeated predicate column agrees with its first copy.
        # (flag column, the repeated variable's name, or None for the width check)
        checks: list[tuple[str, str | None]] = []
        if template.startswith("json"):
            expressions.append("scdx_width")
            checks.append(("scdx_width", None))
        for index, (name, position) in enumerate(repeats):
            flag = f"scdx_repeat_{index}"
            expressions.append(f"{column(first[name])} IS DISTINCT FROM {column(position)} AS {flag}")
            checks.append((flag, name))
        yield from _batches(
            con, f"SELECT {', '.join(expressions)} FROM {relation}", page, contract, header, first, checks
        )


def _batches(
    con: duckdb.DuckDBPyConnection,
    query: str,
    page: RawPage,
    contract: Contract,
    header: list[str],
    first: dict[str, int],
    checks: list[tuple[str, str | None]],
) -> Iterator[SourceRows]:
    """Run the page's one query in Arrow batches, failing on the first row a check flags."""
    import pyarrow.compute as pc

    row = 2  # the header is row 1
    try:
        for batch in con.sql(query).to_arrow_reader(BATCH_ROWS):
            for flag, name in checks:
                values = batch.column(flag)
                bad = pc.not_equal(values, len(header)) if name is None else values
                if pc.any(bad).as_py():
                    at = pc.index(bad, True).as_py()
                    if name is None:
                        raise NormalizeError(
                            contract.dataset,
                            page.path,
                            f"{values[at].as_py()} values, header has {len(header)}",
                            row=row + at,
                        )
                    raise NormalizeError(
                        contract.dataset,
                        page.path,
                        "repeated header column disagrees with its first copy",
                        row=row + at,
                        field=name,
                    )
            columns = {name: batch.column(f"c{position}") for name, position in first.items()}
            derived = {"partner_kind": partner_kinds(columns["CTY_CODE"])} if "CTY_CODE" in first else {}
            yield SourceRows(columns=columns, source_rows=batch.num_rows, derived=derived, first_row=row)
            row += batch.num_rows
    except (duckdb.Error, OSError) as exc:
        # DuckDB's reader error (malformed JSON) may reach the Arrow stream as an OSError without
        # errno; one with an errno is the machine's (disk, file) and is not the page's.
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise NormalizeError(
            contract.dataset,
            page.path,
            f"not readable as the API's format: {_first_error_line(exc)}",
            row=row,
        ) from None


def parse_page(page: RawPage, contract: Contract, registry: Registry) -> SourceRows | None:
    """The whole page as one SourceRows (None for 204): parse_batches, concatenated."""
    import pyarrow as pa

    batches = list(parse_batches(page, contract, registry))
    if not batches:
        return None
    columns = {name: pa.concat_arrays([b.columns[name] for b in batches]) for name in batches[0].columns}
    derived = {name: pa.concat_arrays([b.derived[name] for b in batches]) for name in batches[0].derived}
    return SourceRows(columns=columns, source_rows=sum(b.source_rows for b in batches), derived=derived)
