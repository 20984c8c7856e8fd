"""The Census source: how it asks for a month and how it normalizes the API's quirks,
on the recorded payloads (see recordings/PROVENANCE.md)."""

from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
import requests

from pipelines.contracts import Contract, Registry
from pipelines.replay.server import ReplayServer
from pipelines.sources import RawPage
from pipelines.sources.census_intltrade import page_requests, parse_page, requested_variables
from pipelines.sources.http import FetchedPage, PageRequest
from pipelines.sources.paging import PageContext
from pipelines.sources.window import Window
from pipelines.stages.normalize import DriftRejected, NormalizeError, NormalizeStats, build_page

from .conftest import CENSUS_MONTHS


def _fetch(replay: ReplayServer, census: Contract, month: date, registry: Registry) -> requests.Response:
    (request,) = list(page_requests(_context(census, registry, Window(month, month), replay.url, None)))
    return requests.get(request.url, params=list(request.params), timeout=5)


def _context(census: Contract, registry: Registry, window: Window, url: str, key: str | None) -> PageContext:
    def no_fetch(request: PageRequest) -> FetchedPage:
        raise AssertionError("building requests must not fetch")

    return PageContext(census, registry, window, url, key, no_fetch)


def _raw(body: bytes, status: int = 200, path: str = "raw/x/00001-2024-01.json") -> RawPage:
    """A landed page: the bytes written where land would write them (normalize reads the file)."""
    landed = Path(tempfile.mkdtemp(prefix="scdx-census-")) / path
    landed.parent.mkdir(parents=True, exist_ok=True)
    landed.write_bytes(body)
    manifest = {"status": status, "bytes": len(body), "content_type": "application/json" if body else None}
    return RawPage(dataset="census_trade_imports", path=landed, body=body, manifest=manifest)


def _rows(table: pa.Table) -> list[dict[str, object]]:
    return table.to_pylist()


def normalize_page(raw: RawPage, census: Contract, registry: Registry) -> pa.Table | None:
    """The source's parse step, then the common build: what normalize does to one page."""
    rows = parse_page(raw, census, registry)
    return None if rows is None else build_page(rows, census, registry, raw, NormalizeStats())


def test_census_requests_one_month_with_the_contract_fields_and_basket(
    census: Contract, registry: Registry
) -> None:
    window = Window(date(2024, 1, 1), date(2024, 3, 1))
    requests_ = list(page_requests(_context(census, registry, window, "https://api.census.gov", "k")))
    assert [r.partition for r in requests_] == ["2024-01", "2024-02", "2024-03"]
    params = requests_[0].params
    # In contract field order; time is not asked for, the API echoes its predicate.
    assert ("get", "I_COMMODITY,COMM_LVL,I_COMMODITY_SDESC,CTY_CODE,CTY_NAME,GEN_VAL_MO,CON_VAL_MO") in params
    assert ("COMM_LVL", "HS4") in params
    assert ("time", "2024-01") in params
    # The basket comes from the code list, one repeated predicate per heading.
    basket = registry.codelists.values("ev_basket_hs", "hs4")
    assert [v for k, v in params if k == "I_COMMODITY"] == basket and "8507" in basket
    assert ("key", "k") in params
    assert requests_[0].url == "https://api.census.gov/data/timeseries/intltrade/imports/hs"
    assert "time" not in requested_variables(census)


def test_census_month_normalizes_to_contract_types_with_real_values(
    census: Contract, registry: Registry, replay: ReplayServer
) -> None:
    response = _fetch(replay, census, date(2024, 1, 1), registry)
    table = normalize_page(_raw(response.content), census, registry)
    assert table is not None
    assert table.schema.field("period").type == pa.date32()
    assert table.schema.field("general_value_usd").type == pa.int64()
    batteries_from_china = [r for r in _rows(table) if r["hs_code"] == "8507" and r["country_code"] == "5700"]
    # USA Trade Online, "8507 Electric Storage Batteries", China, January 2024: $1,420,680,833.
    assert batteries_from_china == [
        {
            "period": date(2024, 1, 1),
            "hs_code": "8507",
            "hs_level": "HS4",
            "hs_description": "ELECTRIC STORAGE BATTERIES, INCL SEPARATORS, PARTS",
            "country_code": "5700",
            "country_name": "CHINA",
            "partner_kind": "country",
            "general_value_usd": 1_420_680_833,
            "consumption_value_usd": 1_420_680_833,
        }
    ]
    assert table.num_rows == 72


def test_census_predicate_echo_makes_a_column_appear_twice_and_it_is_read_once(
    census: Contract, registry: Registry, replay: ReplayServer
) -> None:
    header = _fetch(replay, census, date(2024, 1, 1), registry).json()[0]
    assert header.count("I_COMMODITY") == 2 and header.count("COMM_LVL") == 2 and header[-1] == "time"
    table = normalize_page(_raw(_fetch(replay, census, date(2024, 1, 1), registry).content), census, registry)
    assert table is not None and table.column_names.count("hs_code") == 1


def test_census_repeated_column_that_disagrees_is_an_error_naming_the_field(
    census: Contract, registry: Registry, replay: ReplayServer
) -> None:
    rows = _fetch(replay, census, date(2024, 1, 1), registry).json()
    second = len(rows[0]) - 1 - rows[0][::-1].index("I_COMMODITY")
    rows[3][second] = "9999"
    with pytest.raises(
        NormalizeError, match=r"census_trade_imports: .*row 4, field 'I_COMMODITY'.*disagrees"
    ):
        normalize_page(_raw(json.dumps(rows).encode()), census, registry)


def test_census_total_row_and_group_codes_keep_their_codes_and_kinds(
    census: Contract, registry: Registry
) -> None:
    rows = json.loads((CENSUS_MONTHS / "2024-01.json").read_bytes())
    # The recordings carry no all-countries total (no real one is available offline); the API's
    # "-" row is added here, its value made up for this test only.
    china = next(r for r in rows if r[0] == "5700" and r[2] == "2504")
    rows.append(["-", "TOTAL FOR ALL COUNTRIES", *china[2:4], "999999999", "999999999", *china[6:]])
    table = normalize_page(_raw(json.dumps(rows).encode()), census, registry)
    assert table is not None
    kinds = {(r["country_code"], r["partner_kind"]) for r in _rows(table) if r["hs_code"] == "2504"}
    assert kinds == {
        ("-", "total"),
        ("0003", "group"),
        ("0014", "group"),
        ("5XXX", "group"),
        ("5700", "country"),
    }


def test_census_group_code_that_lost_its_leading_zeros_gets_them_back(
    census: Contract, registry: Registry
) -> None:
    rows = json.loads((CENSUS_MONTHS / "2024-01.json").read_bytes())
    assert rows[1][0] == "0003"
    rows[1][0] = "3"  # as a spreadsheet or a numeric parse leaves it
    table = normalize_page(_raw(json.dumps(rows).encode()), census, registry)
    assert table is not None
    assert table.column("country_code")[0].as_py() == "0003"
    assert table.column("partner_kind")[0].as_py() == "group"


def test_census_http_204_with_empty_body_means_no_data_for_the_month(
    census: Contract, registry: Registry, replay: ReplayServer
) -> None:
    response = _fetch(replay, census, date(2026, 5, 1), registry)
    assert response.status_code == 204 and response.content == b""
    assert normalize_page(_raw(b"", status=204), census, registry) is None


def test_census_value_that_is_not_a_number_is_rejected_drift_naming_dataset_file_row_and_field(
    census: Contract, registry: Registry
) -> None:
    rows = json.loads((CENSUS_MONTHS / "2024-01.json").read_bytes())
    rows[5][4] = "412,487"  # thousands separator, as in the USA Trade Online CSV
    with pytest.raises(DriftRejected) as caught:
        normalize_page(_raw(json.dumps(rows).encode(), path="raw/x/00001-2024-01.json"), census, registry)
    message = str(caught.value)
    assert "census_trade_imports" in message
    assert "raw/x/00001-2024-01.json" in message
    assert "row 6" in message  # header is row 1
    assert "'general_value_usd'" in message and "'412,487'" in message
    assert "type_change" in message and caught.value.event.kind == "type_change"


def test_census_response_without_a_required_column_is_rejected_drift_naming_it(
    census: Contract, registry: Registry
) -> None:
    rows = json.loads((CENSUS_MONTHS / "2024-01.json").read_bytes())
    without_value = [row[:4] + row[5:] for row in rows]
    with pytest.raises(
        DriftRejected,
        match=r"field 'general_value_usd': missing_field: the source sent no column 'GEN_VAL_MO'",
    ):
        normalize_page(_raw(json.dumps(without_value).encode()), census, registry)


def test_census_body_that_is_not_an_array_of_arrays_is_rejected(census: Contract, registry: Registry) -> None:
    with pytest.raises(NormalizeError, match="array of arrays"):
        normalize_page(_raw(b'{"error": "unknown"}'), census, registry)
    with pytest.raises(NormalizeError, match="expected a JSON array of arrays"):
        normalize_page(_raw(b"<html>Service Unavailable</html>"), census, registry)


def test_census_row_with_fewer_values_than_the_header_is_rejected_naming_its_row(
    census: Contract, registry: Registry
) -> None:
    rows = json.loads((CENSUS_MONTHS / "2024-01.json").read_bytes())
    width = len(rows[0])
    rows[41] = rows[41][:-1]
    with pytest.raises(NormalizeError) as caught:
        normalize_page(_raw(json.dumps(rows).encode()), census, registry)
    assert "row 42" in str(caught.value)  # header is row 1
    assert f"{width - 1} values, header has {width}" in str(caught.value)


def test_census_page_with_a_broken_row_midway_is_rejected_not_half_read(
    census: Contract, registry: Registry
) -> None:
    body = (CENSUS_MONTHS / "2024-01.json").read_bytes()
    cut = body.index(b"],", len(body) // 2)
    with pytest.raises(NormalizeError, match=r"census_trade_imports: .*not readable as the API's format"):
        normalize_page(_raw(body[:cut] + b", oops " + body[cut:]), census, registry)


def test_census_csv_export_with_the_api_variable_names_parses_like_the_json_page(
    census: Contract, registry: Registry
) -> None:
    import csv
    import io

    rows = json.loads((CENSUS_MONTHS / "2024-01.json").read_bytes())
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    body = buffer.getvalue().encode()
    page = _raw(body, path="raw/x/00001-2024-01.csv")
    page.manifest["content_type"] = "text/csv"
    from_csv = normalize_page(page, census, registry)
    from_json = normalize_page(_raw((CENSUS_MONTHS / "2024-01.json").read_bytes()), census, registry)
    assert from_csv is not None and from_json is not None
    assert from_csv.to_pylist() == from_json.to_pylist()
    assert from_csv.num_rows == 72
