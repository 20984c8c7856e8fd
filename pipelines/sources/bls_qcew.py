"""BLS QCEW Open Data Access: CSV data slices (``/cew/data/api/{year}/{qtr}/industry/{naics}.csv``).

Paging: one file per quarter and industry (:func:`pipelines.sources.paging.per_quarter`), the industries
from the contract's ``industry`` parameter. No key. A quarter BLS has not released yet is HTTP
404: an empty page ("no data"), not an error.

Quirks handled here and nowhere else:
- the code fields are quoted text (``"01000"``, ``"5"``), numbers bare; an area code that lost its
  leading zero (a slice saved through a spreadsheet: ``1000``) gets it back;
- a cell BLS does not disclose has ``disclosure_code`` ``N`` and zeros in place of its employment
  and wage figures: those become null and ``suppressed`` true, never zero. Establishment counts
  stay (BLS publishes them for suppressed cells). The location quotients (``lq_disclosure_code``)
  and over-the-year changes (``oty_disclosure_code``) have their own code and are handled alike;
- the period is split in ``year`` and ``qtr`` (1 to 4; ``A`` in annual slices, another layout):
  they become ``period`` (the quarter's first day) and ``quarter`` (``2021-Q1``);
- the kind of area is only in the shape of ``area_fips``: ``US000`` the nation, ``USCMS``/``USMSA``/
  ``USNMS`` national subgroups, ``SS000`` a state, ``SS999`` a state's unknown or undefined county,
  ``SSCCC`` a county, ``C####`` a metropolitan (or micropolitan) area, ``CS###`` a combined
  statistical area: ``area_type``, ``state_fips`` and ``county_fips`` say it explicitly;
- NAICS codes with a hyphen (``31-33``) are written with an underscore in file names (``31_33.csv``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence

from pipelines.contracts import Contract, Registry
from pipelines.sources import NormalizeError, RawPage, SourceRows
from pipelines.sources.http import FetchedPage
from pipelines.sources.paging import PageContext, param_values, per_quarter, static_params

# What a file of this source can be (pipelines.sources.formats): a file in hand is checked against it.
FORMATS = ("csv",)

# What a QCEW file is answered with (BLS's CSV slices); a 404 is a quarter not released yet.
CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/octet-stream")
NOT_RELEASED = (404,)
SUPPRESSED = "N"

# The columns a disclosure code covers when it is N (establishment counts are always published).
DISCLOSURE_COVERS = {
    "disclosure_code": (
        "month1_emplvl",
        "month2_emplvl",
        "month3_emplvl",
        "total_qtrly_wages",
        "taxable_qtrly_wages",
        "qtrly_contributions",
        "avg_wkly_wage",
    ),
    "lq_disclosure_code": (
        "lq_month1_emplvl",
        "lq_month2_emplvl",
        "lq_month3_emplvl",
        "lq_total_qtrly_wages",
        "lq_taxable_qtrly_wages",
        "lq_qtrly_contributions",
        "lq_avg_wkly_wage",
    ),
    "oty_disclosure_code": tuple(
        f"oty_{measure}_{change}"
        for measure in (
            "month1_emplvl",
            "month2_emplvl",
            "month3_emplvl",
            "total_qtrly_wages",
            "taxable_qtrly_wages",
            "qtrly_contributions",
            "avg_wkly_wage",
        )
        for change in ("chg", "pct_chg")
    ),
}
# Derived flag (contract field) of each disclosure code.
FLAGS = {
    "disclosure_code": "suppressed",
    "lq_disclosure_code": "lq_suppressed",
    "oty_disclosure_code": "oty_suppressed",
}
PERIOD_COLUMNS = ("year", "qtr")

_AREA_KINDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^US000$"), "national"),
    (re.compile(r"^US(CMS|MSA|NMS)$"), "national_subgroup"),
    (re.compile(r"^[0-9]{2}000$"), "state"),
    (re.compile(r"^[0-9]{2}999$"), "county_unknown"),
    (re.compile(r"^[0-9]{5}$"), "county"),
    (re.compile(r"^CS[0-9]{3}$"), "csa"),
    (re.compile(r"^C[0-9]{4}$"), "msa"),
)


def industry_file(naics: str) -> str:
    """The file name stem BLS gives an industry slice: hyphens become underscores (31-33 -> 31_33)."""
    return naics.replace("-", "_")


def fetch_pages(ctx: PageContext) -> Iterator[FetchedPage]:
    """One slice per quarter of the window and industry of the contract; 404 is "not released"."""
    slices = [
        {"industry": industry_file(code)} for code in param_values(ctx.contract, ctx.registry, "industry")
    ]
    requests = per_quarter(
        ctx, static_params(ctx.contract, ctx.registry), slices, expect=CSV_TYPES, absent=NOT_RELEASED
    )
    for request in requests:
        yield ctx.fetch(request)


def area_type(area_fips: str) -> str | None:
    """The kind of area a QCEW area code stands for, None when the code has no known shape."""
    return next((kind for pattern, kind in _AREA_KINDS if pattern.match(area_fips)), None)


def _area_code(value: str) -> str:
    # A spreadsheet turns "01000" into 1000; QCEW numeric area codes have five digits.
    return value.zfill(5) if value.isdigit() and len(value) < 5 else value


def _quarter(year: str, qtr: str) -> tuple[str, str] | None:
    """(period YYYY-MM-DD, quarter YYYY-Qn) of a row, None when year or qtr is not a quarter."""
    if not (len(year) == 4 and year.isdigit() and qtr in {"1", "2", "3", "4"}):
        return None
    return f"{year}-{3 * int(qtr) - 2:02d}-01", f"{year}-Q{qtr}"


def _records(page: RawPage, contract: Contract) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows and their line numbers; blank lines (after the final CRLF) are skipped."""
    try:
        text = page.body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NormalizeError(contract.dataset, page.path, f"not UTF-8 text: {exc}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    if not header:
        return [], [], []
    rows: list[list[str]] = []
    lines: list[int] = []
    for line, values in enumerate(reader, start=2):
        if not values or values == [""]:
            continue
        if len(values) != len(header):
            raise NormalizeError(
                contract.dataset, page.path, f"{len(values)} values, header has {len(header)}", row=line
            )
        rows.append(values)
        lines.append(line)
    return header, rows, lines


def parse_page(page: RawPage, contract: Contract, registry: Registry) -> SourceRows | None:
    """One slice (or a slice downloaded by hand) -> its columns by BLS field name, quirks undone.

    None for a quarter not released (HTTP 404) or a slice without rows.
    """
    if page.status in NOT_RELEASED or not page.body.strip():
        return None
    header, rows, lines = _records(page, contract)
    for required in (*PERIOD_COLUMNS, *DISCLOSURE_COVERS, "area_fips"):
        if required not in header:
            hint = (
                " (an annual slice? this contract reads quarterly slices)"
                if "annual_avg_emplvl" in header
                else ""
            )
            raise NormalizeError(
                contract.dataset,
                page.path,
                f"not a QCEW quarterly slice: the column is missing{hint}",
                field=required,
            )
    if not rows:
        return None
    position = {name: i for i, name in enumerate(header)}
    columns: dict[str, list[str | None]] = {
        name: [values[i].strip() or None for values in rows]
        for name, i in position.items()
        if name not in PERIOD_COLUMNS and name not in DISCLOSURE_COVERS
    }
    derived: dict[str, list[str | None]] = {}
    for code_column, covered in DISCLOSURE_COVERS.items():
        codes = [values[position[code_column]].strip() for values in rows]
        for offset, code in enumerate(codes):
            if code not in {"", SUPPRESSED}:
                raise NormalizeError(
                    contract.dataset,
                    page.path,
                    f"disclosure code {code!r} is neither blank nor {SUPPRESSED!r}",
                    row=lines[offset],
                    field=code_column,
                )
        for name in covered:
            if name in columns:
                columns[name] = _suppress(columns[name], codes)
        derived[FLAGS[code_column]] = ["true" if code == SUPPRESSED else "false" for code in codes]
    areas = [_area_code(value or "") for value in columns["area_fips"]]
    columns["area_fips"] = list(areas)
    derived.update(_areas(areas, lines, contract, page))
    derived.update(_periods(rows, lines, position, contract, page))
    return SourceRows(columns=columns, source_rows=len(rows), derived=derived, first_row=2)


def _suppress(values: list[str | None], codes: Sequence[str]) -> list[str | None]:
    """Values with every cell of a suppressed row made null (BLS writes 0 there)."""
    return [None if code == SUPPRESSED else value for value, code in zip(values, codes, strict=True)]


def _areas(
    areas: list[str], lines: list[int], contract: Contract, page: RawPage
) -> dict[str, list[str | None]]:
    kinds: list[str | None] = []
    for offset, code in enumerate(areas):
        kind = area_type(code)
        if kind is None:
            raise NormalizeError(
                contract.dataset,
                page.path,
                f"area code {code!r} has no known QCEW shape",
                row=lines[offset],
                field="area_fips",
            )
        kinds.append(kind)
    return {
        "area_type": kinds,
        "state_fips": [
            code[:2] if kind in {"state", "county", "county_unknown"} else None
            for code, kind in zip(areas, kinds, strict=True)
        ],
        "county_fips": [code if kind == "county" else None for code, kind in zip(areas, kinds, strict=True)],
    }


def _periods(
    rows: list[list[str]], lines: list[int], position: dict[str, int], contract: Contract, page: RawPage
) -> dict[str, list[str | None]]:
    periods: list[str | None] = []
    quarters: list[str | None] = []
    for offset, values in enumerate(rows):
        year, qtr = (values[position[name]].strip() for name in PERIOD_COLUMNS)
        parsed = _quarter(year, qtr)
        if parsed is None:
            raise NormalizeError(
                contract.dataset,
                page.path,
                f"year {year!r} and qtr {qtr!r} are not a calendar quarter"
                + (" (A is an annual average)" if qtr.upper() == "A" else ""),
                row=lines[offset],
                field="qtr",
            )
        periods.append(parsed[0])
        quarters.append(parsed[1])
    return {"period": periods, "quarter": quarters}
