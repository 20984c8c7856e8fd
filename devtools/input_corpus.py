"""The malformed-file and hostile-input corpus: for every dataset, files made from its own recorded
payload that are not its format, or that carry hostile header cells and values, each with the outcome
``scdx ingest-file`` must reach (issue 19).

Every case starts from the bytes the agency sent (``recordings/``; FAF5 from the file the replay
server builds to the recorded layout) and changes one thing:

- *input format*: an empty file, a directory, binary data (the recording gzipped), the other format
  (JSON for a CSV-only dataset, CSV for a JSON-only one; for a dataset that reads both, the other
  form of the same rows), the file cut mid-record, UTF-16 and Windows-1252 / Latin-1 text (read when
  the layout is otherwise right, refused when it is not), a UTF-8 byte-order mark and CRLF line ends;
- *hostile input*: values and header cells carrying quotes, ``;``, ``--``, ``COPY ... TO``,
  ``ATTACH``, ``read_text(...)``, ``../``, NUL and 10 kB names, and a file name carrying SQL.

Each case says what must happen: ``refused`` (exit 1; the message names the file and the ``names``
given: what was expected and what was found, or the field refused), ``read`` (published or
unchanged, the ``values`` given found verbatim in ``column``) or ``stored_verbatim`` (the hostile
``values`` found byte for byte in ``column``; ``column`` ``drift`` means the run's drift record).
Hostile paths point into ``outside``, a directory beside the data directory that must stay empty.

The tests (tests/test_input_corpus.py) and the fault catalogue (devtools/reliability.py) run the
same cases; pipelines never imports this module.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devtools import PROJECT_ROOT

RECORDINGS = PROJECT_ROOT / "recordings"
FORMAT = "input format"
HOSTILE = "hostile input"
FAF_RECORDS = 300  # the smallest FAF5 file the contract's min_rows (1,000 rows: 13 years a record) takes
ACCENTED = "Peñitas – Ñandú"  # Latin-1 / Windows-1252 characters, so a wrong decoding shows
# Text of another layout in another encoding: refused, as its UTF-8 form is (for a dataset reading
# CSV and JSON, an HTML error page in UTF-16; else the other format in Windows-1252).
OTHER_LAYOUT = "other layout in another encoding"
FORMAT_CASES = (
    "empty file",
    "directory",
    "binary data",
    "truncated mid-record",
    "UTF-16 text",
    "Latin-1 text",
    "UTF-8 byte-order mark",
    "CRLF line ends",
    "the other format",
    OTHER_LAYOUT,
)
HOSTILE_CASES = (
    "hostile values",
    "NUL in a value",
    "hostile header cell",
    "hostile extra columns",
    "hostile file name",
)
HTML_PAGE = "<!DOCTYPE html><html><body><h1>Service unavailable</h1></body></html>\n"


@dataclass(frozen=True)
class Recorded:
    """Where a dataset's recorded payload is and which of its fields the cases alter."""

    dataset: str
    recording: str  # relative to recordings/; "" for FAF5 (built to recordings/faf5's layout)
    form: str  # csv, census_json (array of arrays), records_json (objects under records_at), faf_zip
    formats: tuple[str, ...]  # what the dataset's source reads (pipelines.sources.<module>.FORMATS)
    # A source column of free text and the curated column it lands in (None: codes and numbers only).
    text_field: str | None
    text_column: str | None
    # A required source column: renamed to a hostile header, the contract refuses the batch.
    required_field: str
    required_column: str  # its contract field, named in the refusal
    records_at: tuple[str, ...] = ()


DATASETS: tuple[Recorded, ...] = (
    Recorded(
        "census_trade_imports",
        "census_intltrade/imports_hs/2024-01.json",
        "census_json",
        ("json", "csv"),
        "CTY_NAME",
        "country_name",
        "CTY_NAME",
        "country_name",
    ),
    Recorded(
        "census_trade_exports",
        "census_intltrade/exports_hs/2024-01.json",
        "census_json",
        ("json", "csv"),
        "CTY_NAME",
        "country_name",
        "CTY_NAME",
        "country_name",
    ),
    Recorded(
        "usgs_mineral_production",
        "usgs_mcs/mcs2024-lithi_world.csv",
        "csv",
        ("csv",),
        "Country",
        "country_name",
        "Country",
        "country_name",
    ),
    Recorded(
        "usgs_mineral_salient",
        "usgs_mcs/mcs2024-lithi_salient.csv",
        "csv",
        ("csv",),
        None,
        None,
        "Year",
        "year",
    ),
    Recorded(
        "bts_border_crossings",
        "bts_border_crossing/border_crossing_entry_data_socrata_export_head40.csv",
        "csv",
        ("csv", "json"),
        "Port Name",
        "port_name",
        "Port Code",
        "port_code",
    ),
    Recorded(
        "eia_electricity",
        "eia_v2/eia_v2_electricity_facility-fuel_CO_2022_monthly_offset0.json",
        "records_json",
        ("json",),
        "plantName",
        "plant_name",
        "plantCode",
        "plant_code",
        records_at=("response", "data"),
    ),
    Recorded(
        "afdc_charging_stations",
        "nrel_afdc/afdc_nearest_elec_lpg_80203_2018-05-18.json",
        "records_json",
        ("json",),
        "station_name",
        "station_name",
        "id",
        "station_id",
        records_at=("fuel_stations",),
    ),
    Recorded(
        "bls_qcew_industry",
        "bls_qcew/2021/3/industry/3361.csv",
        "csv",
        ("csv",),
        None,
        None,
        "area_fips",
        "area_fips",
    ),
    Recorded("faf5_regional_flows", "", "faf_zip", ("zip", "csv"), None, None, "dms_orig", "dms_orig"),
)
BY_NAME = {d.dataset: d for d in DATASETS}


@dataclass(frozen=True)
class InputCase:
    """One file and the outcome ``scdx ingest-file`` must reach with it."""

    dataset: str
    category: str  # FORMAT or HOSTILE
    name: str
    injected: str  # what the file is, for the report
    file_name: str
    content: bytes | None  # None: a directory
    outcome: str  # refused, read or stored_verbatim
    names: tuple[str, ...] = ()  # what a refusal must name, besides the file
    column: str | None = None  # where read or stored values are (a curated column, or "drift")
    values: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.dataset}-{self.name.replace(' ', '_')}"

    def write(self, directory: Path) -> Path:
        """The case's file (or directory) under ``directory``, as a user would hand it over."""
        path = directory / self.file_name
        directory.mkdir(parents=True, exist_ok=True)
        if self.content is None:
            path.mkdir(parents=True)
            (path / "export.csv").write_bytes(b"")  # a folder of downloads, not a download
        else:
            path.write_bytes(self.content)
        return path


def hostile_values(outside: Path) -> tuple[str, ...]:
    """Values that, pasted into SQL or a path, would end a literal, run a statement or leave the data dir."""
    return (
        "O'Brien\"; DROP TABLE meta.runs; --",
        f"x'); COPY (SELECT 1) TO '{outside / 'copied.csv'}'; --",
        f"'; ATTACH '{outside / 'attached.duckdb'}' AS pwned; --",
        "read_text('/etc/passwd')",
        "../../../../outside/escaped",
        "N" * 10_000,
    )


def hostile_header(outside: Path) -> str:
    """A header cell that, pasted into SQL as an identifier, ends its quotes and writes a file."""
    return (
        f"x\" FROM (SELECT '1' AS c0); COPY (SELECT 'injected' AS v) TO '{outside / 'header.csv'}'; "
        'SELECT c0 AS "y -- ../../outside'
    )


# --- the recorded payload, as rows ----------------------------------------------------------------


@dataclass
class Payload:
    """A dataset's recorded payload: its text (for encodings, line ends and cuts) and its rows."""

    recorded: Recorded
    raw: bytes  # the bytes as recorded (FAF5: the CSV member)
    text: str  # decoded, byte-order mark dropped
    header: list[str]
    rows: list[list[Any]]  # records_json: dicts; else lists of cells
    document: Any = None  # records_json: the whole document

    @property
    def line_end(self) -> str:
        return "\r\n" if "\r\n" in self.text else "\n"

    def with_rows(self, header: list[str], rows: list[list[Any]]) -> bytes:
        """The payload's form, written with another header and rows."""
        form = self.recorded.form
        if form == "census_json":
            return ("[" + ",\n".join(json.dumps(r) for r in [header, *rows]) + "]").encode()
        if form == "records_json":
            document = json.loads(json.dumps(self.document))
            _set_at(document, self.recorded.records_at, rows)
            return json.dumps(document).encode()
        text = io.StringIO()
        csv.writer(text, lineterminator=self.line_end).writerows([header, *rows])
        body = text.getvalue().encode()
        return _zipped(body) if form == "faf_zip" else body

    def other_form(self) -> bytes:
        """The same rows in the format the dataset does not read (or, reading both, the other one)."""
        if self.recorded.form == "records_json":
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=self.header, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(
                {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in r.items()}
                for r in self.rows
            )
            return text.getvalue().encode()
        if self.recorded.form == "census_json":
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows([self.header, *self.rows])
            return text.getvalue().encode()
        if self.recorded.dataset == "bts_border_crossings":
            from pipelines.replay.socrata import bts_rows_from_export, render

            return render(bts_rows_from_export(_recording(self.recorded)))
        return json.dumps([dict(zip(self.header, r, strict=False)) for r in self.rows]).encode()

    def encoded_text(self, text: str) -> bytes:
        """``text`` as a file (FAF5: the CSV member unzipped, which the source reads as well)."""
        return text.encode()

    def accented_text(self) -> tuple[str, str | None]:
        """The payload's text with one free-text value non-ASCII (ACCENTED), and that value."""
        field = self.recorded.text_field
        if field is None:
            return self.text, None
        rows = [list(r) if not isinstance(r, dict) else dict(r) for r in self.rows]
        _put(self, rows, field, [ACCENTED])
        body = self.with_rows(self.header, rows)
        return (_unzipped(body) if self.recorded.form == "faf_zip" else body).decode(), ACCENTED


def _recording(recorded: Recorded) -> Path:
    return RECORDINGS / recorded.recording


def _zipped(csv_bytes: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("FAF5.7.1.csv", csv_bytes)
    return out.getvalue()


def _unzipped(zip_bytes: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        return archive.read("FAF5.7.1.csv")


def _get_at(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def _set_at(document: Any, path: tuple[str, ...], value: Any) -> None:
    _get_at(document, path[:-1])[path[-1]] = value
    if path == ("response", "data"):  # EIA: a whole answer says it holds every record it has
        document["response"]["total"] = str(len(value))


def base_file(recorded: Recorded, work: Path) -> Path:
    """The file a person would hand over for the dataset: the recording itself where it is a whole
    answer; EIA's saved page with its total set to the records it holds (the recorded page is the
    first of a longer answer, which the contract refuses as short); FAF5's zip as the replay builds it."""
    if recorded.form == "faf_zip":
        from pipelines.replay import faf5_generate

        return faf5_generate.cached_faf5_zip(FAF_RECORDS, directory=work / "faf5-cache")
    if recorded.dataset == "eia_electricity":
        document = json.loads(_recording(recorded).read_bytes())
        _set_at(document, recorded.records_at, _get_at(document, recorded.records_at))
        path = work / "eia_whole_answer.json"
        work.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))
        return path
    return _recording(recorded)


def load_payload(recorded: Recorded, work: Path) -> Payload:
    raw = base_file(recorded, work).read_bytes()
    if recorded.form == "faf_zip":
        raw = _unzipped(raw)
    text = raw.decode("utf-8-sig")
    if recorded.form == "census_json":
        header, *rows = json.loads(text)
        return Payload(recorded, raw, text, header, rows)
    if recorded.form == "records_json":
        document = json.loads(text)
        records = _get_at(document, recorded.records_at)
        header = list(dict.fromkeys(k for r in records for k in r))
        return Payload(recorded, raw, text, header, records, document)
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))
    return Payload(recorded, raw, text, header, rows)


def _put(payload: Payload, rows: list[Any], field: str, values: list[str]) -> None:
    """``values`` in ``field`` of the first rows, one each."""
    at = None if payload.recorded.form == "records_json" else payload.header.index(field)
    for row, value in zip(rows, values, strict=False):
        if at is None:
            row[field] = value
        else:
            row[at] = value


def _renamed(payload: Payload, field: str, name: str) -> tuple[list[str], list[Any]]:
    header = [name if h == field else h for h in payload.header]
    if payload.recorded.form != "records_json":
        return header, payload.rows
    return header, [{(name if k == field else k): v for k, v in r.items()} for r in payload.rows]


def _with_column(payload: Payload, names: list[str], value: str) -> tuple[list[str], list[Any]]:
    header = [*payload.header, *names]
    if payload.recorded.form == "records_json":
        return header, [{**r, **dict.fromkeys(names, value)} for r in payload.rows]
    return header, [[*r, *([value] * len(names))] for r in payload.rows]


# --- the cases -------------------------------------------------------------------------------------


def _suffix(recorded: Recorded, text: bool = False) -> str:
    if text and recorded.form == "faf_zip":
        return ".csv"
    return {"census_json": ".json", "records_json": ".json", "csv": ".csv", "faf_zip": ".zip"}[recorded.form]


def _expected(recorded: Recorded) -> str:
    names = {"json": "JSON", "csv": "CSV", "zip": "a zip archive"}
    return "expected " + " or ".join(names[f] for f in recorded.formats)


def format_cases(payload: Payload) -> list[InputCase]:
    r, ds = payload.recorded, payload.recorded.dataset
    suffix, text_suffix, expected = _suffix(r), _suffix(r, text=True), _expected(r)
    text_form = payload.encoded_text
    accented, value = payload.accented_text()
    read_values = (value,) if value else ()
    read_column = r.text_column if value else None
    if r.form == "faf_zip":  # a zip cut in half: the download stopped before the archive's directory
        whole = _zipped(payload.raw)
        truncated = whole[: len(whole) // 2]
    else:  # cut at a field separator halfway: the last row is short of fields (JSON: mid-object)
        half = payload.raw[: len(payload.raw) // 2]
        truncated = half[: half.rindex(b",")]
    other = payload.other_form()
    reads_both = len(set(r.formats) & {"csv", "json"}) == 2
    other_found = "found JSON text" if other.lstrip()[:1] in (b"[", b"{") else "found delimited text"
    cases = [
        InputCase(ds, FORMAT, "empty file", "a file of 0 bytes", "empty" + suffix, b"", "refused",
                  (expected, "found an empty file (0 bytes)")),
        InputCase(ds, FORMAT, "directory", "a directory in place of a file", "downloads", None, "refused",
                  (expected, "found a directory")),
        InputCase(ds, FORMAT, "binary data", "the recording gzipped", "download" + suffix + ".gz",
                  gzip.compress(payload.raw, mtime=0), "refused", (expected, "found binary data (gzip)")),
        InputCase(ds, FORMAT, "truncated mid-record", "the recording cut in the middle of a record",
                  "truncated" + suffix, truncated, "refused", ("truncated" + suffix,)),
        InputCase(ds, FORMAT, "UTF-16 text", "the recording as UTF-16 with byte-order mark",
                  "utf16" + text_suffix, accented.encode("utf-16"), "read", (), read_column, read_values),
        InputCase(ds, FORMAT, "Latin-1 text", "the recording as Windows-1252 / Latin-1",
                  "latin1" + text_suffix, accented.encode("cp1252"), "read", (), read_column, read_values),
        InputCase(ds, FORMAT, "UTF-8 byte-order mark", "the recording with a UTF-8 byte-order mark",
                  "bom" + text_suffix, text_form("\ufeff" + payload.text), "read"),
        InputCase(ds, FORMAT, "CRLF line ends", "the recording with CRLF line ends", "crlf" + text_suffix,
                  text_form(payload.text.replace("\r\n", "\n").replace("\n", "\r\n")), "read"),
    ]  # fmt: skip
    if reads_both:
        cases.append(
            InputCase(ds, FORMAT, "the other format", "the same rows in the agency's other format",
                      "other-form" + (".csv" if other_found == "found delimited text" else ".json"), other,
                      "read")
        )  # fmt: skip
        cases.append(
            InputCase(ds, FORMAT, OTHER_LAYOUT, "an HTML error page in UTF-16", "page" + suffix,
                      HTML_PAGE.encode("utf-16"), "refused", (expected, "found an HTML or XML document (UTF-16 LE)"))
        )  # fmt: skip
    else:
        found = other_found + " (UTF-8)"
        cases.append(
            InputCase(ds, FORMAT, "the other format", "the same rows as " + found.split("found ")[1],
                      "other-form" + suffix, other, "refused", (expected, found))
        )  # fmt: skip
        latin = other_found + " (Windows-1252 / Latin-1)"
        cases.append(
            InputCase(ds, FORMAT, OTHER_LAYOUT, "the other format in Windows-1252 / Latin-1",
                      "other-latin1" + suffix, (other.decode() + ACCENTED).encode("cp1252"), "refused",
                      (expected, latin))
        )  # fmt: skip
    return cases


def hostile_cases(payload: Payload, outside: Path) -> list[InputCase]:
    r, ds = payload.recorded, payload.recorded.dataset
    suffix = _suffix(r)
    values = hostile_values(outside)
    cases: list[InputCase] = []
    rows = [dict(x) if isinstance(x, dict) else list(x) for x in payload.rows]
    if r.text_field is not None:
        _put(payload, rows, r.text_field, list(values))
        cases.append(
            InputCase(ds, HOSTILE, "hostile values", "quotes, ;, --, COPY ... TO, ATTACH, read_text(), ../, "
                      "a 10 kB value in " + r.text_field, "hostile-values" + suffix,
                      payload.with_rows(payload.header, rows), "stored_verbatim", (), r.text_column, values)
        )  # fmt: skip
    else:  # codes and numbers only: a hostile value is not a code, and the contract says so
        _put(payload, rows, r.required_field, list(values))
        cases.append(
            InputCase(ds, HOSTILE, "hostile values", "quotes, ;, --, COPY ... TO, ATTACH, read_text(), ../, "
                      "a 10 kB value in the code column " + r.required_field, "hostile-values" + suffix,
                      payload.with_rows(payload.header, rows), "refused", (r.required_column,))
        )  # fmt: skip
    rows = [dict(x) if isinstance(x, dict) else list(x) for x in payload.rows]
    nul_field = r.text_field or r.required_field
    _put(payload, rows, nul_field, ["before\x00after"])
    nul = payload.with_rows(payload.header, rows)
    if r.form in ("census_json", "records_json") and r.text_field is not None:
        # JSON writes NUL as \u0000: text, so the value is read; it is stored as sent.
        nul_case = InputCase(ds, HOSTILE, "NUL in a value", "a value holding NUL (\\u0000 in JSON)",
                             "nul" + suffix, nul, "stored_verbatim", (), r.text_column, ("before\x00after",))  # fmt: skip
    elif r.form in ("census_json", "records_json"):
        nul_case = InputCase(ds, HOSTILE, "NUL in a value", "a code holding NUL (\\u0000 in JSON)",
                             "nul" + suffix, nul, "refused", (r.required_column,))  # fmt: skip
    elif r.form == "faf_zip":
        nul_case = InputCase(ds, HOSTILE, "NUL in a value", "a NUL byte inside a code of the zipped CSV",
                             "nul" + suffix, nul, "refused", (r.required_column,))  # fmt: skip
    else:  # a NUL byte is not text: the file is binary data
        nul_case = InputCase(ds, HOSTILE, "NUL in a value", "a NUL byte inside a value", "nul" + suffix, nul,
                             "refused", (_expected(r), "found binary data"))  # fmt: skip
    cases.append(nul_case)
    header, renamed = _renamed(payload, r.required_field, hostile_header(outside))
    cases.append(
        InputCase(ds, HOSTILE, "hostile header cell", f"the header {r.required_field} replaced by SQL "
                  "that ends its quotes and copies to a file", "hostile-header" + suffix,
                  payload.with_rows(header, renamed), "refused", ("missing_field", r.required_column))
    )  # fmt: skip
    long_name = "H" * 10_000
    header, extended = _with_column(payload, [hostile_header(outside), long_name], "'; --")
    cases.append(
        InputCase(ds, HOSTILE, "hostile extra columns", "two more header cells: SQL that copies to a file, "
                  "and a 10 kB name", "hostile-columns" + suffix, payload.with_rows(header, extended),
                  "read", (), "drift", (hostile_header(outside), long_name))
    )  # fmt: skip
    name = f"x'; COPY (SELECT 1) TO 'pwned'; -- ..{suffix}"
    cases.append(
        InputCase(ds, HOSTILE, "hostile file name", "the recording under a file name holding SQL and ..",
                  name, payload.with_rows(payload.header, payload.rows) if r.form == "records_json"
                  else (_zipped(payload.raw) if r.form == "faf_zip" else payload.raw), "read")
    )  # fmt: skip
    return cases


# Where a dataset's own rules refuse a case before the generic expectation applies: (outcome, what
# the message names). Codes-only layouts refuse hostile values by the code's rule; FAF5's source
# reads exactly its documented header; USGS world tables refuse figures on a row without a country
# (the extra columns put a value on every row, note rows included).
OVERRIDES: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("usgs_mineral_salient", "hostile values"): ("refused", ("field 'year'", "type_change")),
    ("usgs_mineral_salient", "hostile header cell"): ("refused", ("the file is not loaded",)),
    ("bls_qcew_industry", "hostile values"): ("refused", ("field 'area_fips'", "has no known QCEW shape")),
    ("bls_qcew_industry", "hostile header cell"): ("refused", ("field 'area_fips'", "the column is missing")),
    ("faf5_regional_flows", "hostile values"): ("refused", ("flow_id is a well-formed faf_flow_id",)),
    ("faf5_regional_flows", "NUL in a value"): ("refused", ("flow_id is a well-formed faf_flow_id",)),
    ("faf5_regional_flows", "hostile header cell"): ("refused", ("CSV header",)),
    ("faf5_regional_flows", "hostile extra columns"): ("refused", ("CSV header",)),
    ("usgs_mineral_production", "hostile extra columns"): ("refused", ("a row with figures has no country",)),
}


def _judged(case: InputCase) -> InputCase:
    override = OVERRIDES.get((case.dataset, case.name))
    if override is None:
        return case
    outcome, names = override
    return replace(case, outcome=outcome, names=names, column=None, values=())


def corpus(outside: Path, work: Path, datasets: tuple[str, ...] | None = None) -> list[InputCase]:
    """Every case of every dataset (or of ``datasets``); FAF5's file is built under ``work``."""
    cases: list[InputCase] = []
    for recorded in DATASETS:
        if datasets is not None and recorded.dataset not in datasets:
            continue
        payload = load_payload(recorded, work)
        cases += [_judged(c) for c in format_cases(payload) + hostile_cases(payload, outside)]
    return cases


def case_names() -> tuple[str, ...]:
    """The name of every case a dataset has (the same for all), without building any file."""
    return FORMAT_CASES + HOSTILE_CASES
