"""USGS world mine production and reserves (usgs_mineral_production): how the files are asked for,
how the MCS tables' quirks are undone, and the whole refresh, on the recorded MCS 2024 files
(recordings/usgs_mcs/, see recordings/PROVENANCE.md); how each edition marks estimates, on files of
MCS 2022, 2023 and 2024 (recordings/usgs_mcs/editions/)."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import requests

from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.orchestration.refresh import ingest_file, refresh_dataset
from pipelines.replay.server import ReplayServer
from pipelines.sources import RawPage
from pipelines.sources.http import FetchedPage, PageRequest
from pipelines.sources.paging import PageContext
from pipelines.sources.usgs_mcs import EXPECT, parse_batches
from pipelines.sources.window import Window
from pipelines.stages.normalize import DriftRejected, NormalizeError, NormalizeStats, build_page
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

from .conftest import AS_OF, RECORDINGS, catalog_runs

USGS_FILES = RECORDINGS / "usgs_mcs"
WORLD_FILES = {
    "Lithium": "mcs2024-lithi_world.csv",
    "Cobalt": "mcs2024-cobal_world.csv",
    "Graphite": "mcs2024-graph_world.csv",
    "Nickel": "mcs2024-nicke_world.csv",
    "Manganese": "mcs2024-manga_world.csv",
    "Rare earths": "mcs2024-raree_world.csv",
}


@pytest.fixture(scope="module")
def production(registry: Registry) -> Contract:
    return registry.get("usgs_mineral_production")


def context(contract: Contract, registry: Registry, base_url: str) -> PageContext:
    """A paging context that builds requests but must not fetch (fetching is the refresh's job)."""

    def no_fetch(request: PageRequest) -> FetchedPage:
        raise AssertionError("building requests must not fetch")

    return PageContext(contract, registry, Window(AS_OF, AS_OF), base_url, None, no_fetch)


def download(replay: ReplayServer, contract: Contract, name: str) -> requests.Response:
    """GET one recorded file from the replay server at the contract's ScienceBase URL."""
    response = requests.get(
        replay.url + contract.source.path, params={contract.source.paging.param or "": name}, timeout=5
    )
    response.raise_for_status()
    return response


def landed(body: bytes, name: str, directory: Path) -> RawPage:
    """A file as land writes it: the bytes under a sequence-numbered name, the USGS name in the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"00001-{name}"
    path.write_bytes(body)
    manifest = {"status": 200, "partition": name, "bytes": len(body), "content_type": "text/csv"}
    return RawPage(dataset="usgs", path=path, manifest=manifest)


def normalized(
    page: RawPage, contract: Contract, registry: Registry, stats: NormalizeStats | None = None
) -> pa.Table:
    """The source's parse step, then the common build, for every unit batch of one file."""
    stats = stats if stats is not None else NormalizeStats()
    return pa.concat_tables(
        [
            build_page(rows, contract, registry, page, stats)
            for rows in parse_batches(page, contract, registry)
        ]
    )


def world(
    name: str, contract: Contract, registry: Registry, tmp_path: Path, stats: NormalizeStats | None = None
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = normalized(
        landed((USGS_FILES / name).read_bytes(), name, tmp_path), contract, registry, stats
    ).to_pylist()
    return rows


def figure(rows: list[dict[str, Any]], country: str, measure: str, year: int) -> dict[str, Any]:
    (row,) = [
        r for r in rows if r["country_name"] == country and r["measure"] == measure and r["year"] == year
    ]
    return row


# --- requests ------------------------------------------------------------------------------------


def test_usgs_asks_sciencebase_for_each_listed_world_file_by_name(
    production: Contract, registry: Registry
) -> None:
    from pipelines.sources.paging import file_requests

    built = list(file_requests(context(production, registry, "https://www.sciencebase.gov"), expect=EXPECT))
    assert [r.partition for r in built] == list(WORLD_FILES.values())
    assert {r.url for r in built} == {"https://www.sciencebase.gov/catalog/file/get/65a6e45fd34e5af967a46749"}
    assert built[0].params == (("name", "mcs2024-lithi_world.csv"),)
    assert "text/csv" in built[0].expect


def test_usgs_replay_serves_the_recorded_bytes_and_404s_an_unknown_file(
    production: Contract, replay: ReplayServer
) -> None:
    response = download(replay, production, "mcs2024-lithi_world.csv")
    assert response.content == (USGS_FILES / "mcs2024-lithi_world.csv").read_bytes()
    assert (
        response.content.startswith(b"\xef\xbb\xbfSource,Country,Type,Prod_t_2022")
        and b"\r\n" in response.content
    )
    assert response.headers["Content-Type"] == "text/csv"
    missing = requests.get(
        replay.url + production.source.path, params={"name": "mcs2024-zzzzz_world.csv"}, timeout=5
    )
    assert missing.status_code == 404


# --- normalize on the real files -----------------------------------------------------------------


def test_usgs_world_table_becomes_long_form_with_the_published_values(
    production: Contract, registry: Registry, replay: ReplayServer, tmp_path: Path
) -> None:
    body = download(replay, production, "mcs2024-lithi_world.csv").content
    table = normalized(landed(body, "mcs2024-lithi_world.csv", tmp_path), production, registry)
    assert (
        table.schema.field("value_t").type == pa.float64() and table.schema.field("year").type == pa.int64()
    )
    rows = table.to_pylist()
    # 11 countries and aggregates (the 15 all-comma padding rows dropped) x 2 production years + reserves.
    assert len(rows) == 33
    # MCS 2024, lithium: Chile mined 38,000 t (2022) and an estimated 44,000 t (2023); reserves 9,300,000 t.
    chile = {
        (r["measure"], r["year"]): (r["value_t"], r["estimated"])
        for r in rows
        if r["country_name"] == "Chile"
    }
    assert chile == {
        ("production", 2022): (38_000.0, False),
        ("production", 2023): (44_000.0, True),
        ("reserves", 2023): (9_300_000.0, False),
    }
    reserve = figure(rows, "Chile", "reserves", 2023)
    assert (
        reserve["edition"] == "MCS2024" and reserve["mineral"] == "Lithium" and reserve["country_iso"] == "CL"
    )
    assert reserve["basis"] == "Mine production, lithium content"
    assert reserve["note"].startswith("Reserves for Argentina, Australia, Brazil, China, the United States")


def test_usgs_reserves_are_dated_to_the_editions_latest_production_year(
    production: Contract, registry: Registry, tmp_path: Path
) -> None:
    for mineral, name in WORLD_FILES.items():
        rows = world(name, production, registry, tmp_path / mineral)
        assert {r["year"] for r in rows if r["measure"] == "reserves"} == {2023}, name
        assert {r["year"] for r in rows if r["measure"] == "production"} == {2022, 2023}, name


def test_usgs_footnote_digits_are_stripped_from_country_names_and_aggregates_are_flagged(
    production: Contract, registry: Registry, tmp_path: Path
) -> None:
    lithium = world("mcs2024-lithi_world.csv", production, registry, tmp_path)
    other = figure(lithium, "Other countries", "reserves", 2023)  # published as "Other countries6"
    assert other["is_aggregate"] is True and other["country_iso"] is None and other["value_t"] == 2_800_000.0
    total = figure(lithium, "World total (rounded)", "production", 2023)
    assert (
        total["is_aggregate"] is True
        and total["value_t"] == 180_000.0
        and total["note"] == "Excludes U.S. production."
    )
    cobalt = world("mcs2024-cobal_world.csv", production, registry, tmp_path / "cobalt")
    caledonia = figure(cobalt, "New Caledonia", "production", 2023)  # published as "New Caledonia11"
    assert caledonia["country_iso"] == "NC" and caledonia["is_aggregate"] is False
    assert caledonia["note"] == "Overseas territory of France."
    assert not [r["country_name"] for r in cobalt if r["country_name"][-1].isdigit()]


def test_usgs_manganese_kilotons_in_the_header_are_converted_to_metric_tons(
    production: Contract, registry: Registry, tmp_path: Path
) -> None:
    stats = NormalizeStats()
    rows = world("mcs2024-manga_world.csv", production, registry, tmp_path, stats)
    # Published: South Africa 7300 kt (2022), reserves 600000 kt.
    assert figure(rows, "South Africa", "production", 2022)["value_t"] == 7_300_000.0
    assert figure(rows, "South Africa", "reserves", 2023)["value_t"] == 600_000_000.0
    assert figure(rows, "South Africa", "production", 2022)["published_value"] == "7300"
    # "Other countries\u00a0" with "\u00a0\u00a0\u00a0\u00a0 325": non-breaking spaces around name and number.
    assert figure(rows, "Other countries", "production", 2022)["value_t"] == 325_000.0
    (conversion,) = stats.conversions
    assert (conversion.field, conversion.from_unit, conversion.to_unit, conversion.factor) == (
        "value_t",
        "kt",
        "t",
        1000.0,
    )
    assert conversion.file == "00001-mcs2024-manga_world.csv"


def test_usgs_withheld_W_becomes_null_with_the_withheld_flag(
    production: Contract, registry: Registry, tmp_path: Path
) -> None:
    rows = world("mcs2024-lithi_world.csv", production, registry, tmp_path)
    us = [r for r in rows if r["country_name"] == "United States" and r["measure"] == "production"]
    assert [(r["year"], r["value_t"], r["withheld"], r["published_value"]) for r in us] == [
        (2022, None, True, "W"),
        (2023, None, True, "W"),
    ]
    assert figure(rows, "United States", "reserves", 2023)["value_t"] == 1_100_000.0
    assert sum(r["withheld"] for r in rows) == 2


def test_usgs_bounds_separators_and_special_values_are_read_as_usgs_means_them(
    production: Contract, registry: Registry, tmp_path: Path
) -> None:
    nickel = world("mcs2024-nicke_world.csv", production, registry, tmp_path / "nickel")
    other = figure(nickel, "Other countries", "reserves", 2023)  # published "    >9,100,000"
    assert (other["value_t"], other["value_qualifier"], other["published_value"]) == (
        9_100_000.0,
        "more_than",
        ">9,100,000",
    )
    assert figure(nickel, "World total (rounded)", "reserves", 2023)["value_t"] == 130_000_000.0
    graphite = world("mcs2024-graph_world.csv", production, registry, tmp_path / "graphite")
    brazil = figure(graphite, "Brazil", "production", 2022)  # "72,000" with note "Also estimated in 2022"
    assert (brazil["value_t"], brazil["estimated"], brazil["value_qualifier"]) == (72_000.0, True, None)
    assert figure(graphite, "India", "production", 2022)["estimated"] is False
    austria = figure(graphite, "Austria", "reserves", 2023)
    assert (austria["value_t"], austria["published_value"]) == (None, "Included in World total.")
    manganese = world("mcs2024-manga_world.csv", production, registry, tmp_path / "manganese")
    burma = figure(manganese, "Burma", "reserves", 2023)
    assert (burma["value_t"], burma["published_value"], burma["withheld"]) == (None, "NA", False)


def test_usgs_country_names_map_to_iso_codes_through_the_census_list_and_the_crosswalk(
    production: Contract, registry: Registry, tmp_path: Path
) -> None:
    codes: dict[str, str | None] = {}
    for mineral, name in WORLD_FILES.items():
        for row in world(name, production, registry, tmp_path / mineral):
            codes[row["country_name"]] = row["country_iso"]
    assert {
        name: codes[name]
        for name in (
            "United States",  # "United\u00a0States" in the graphite file; crosswalk
            "Korea, Republic of",  # crosswalk
            "Korea, North",
            "Congo (Kinshasa)",
            "Burma",  # Census "Burma (Myanmar)"
            "Côte d’Ivoire",  # Census "Cote d'Ivoire"
            "Tanzania",
            "Kazakhstan, concentrate",  # the qualifier after the comma is not part of the name
            "Vietnam",  # "Vietnam\u00a0" in the manganese file
        )
    } == {
        "United States": "US",
        "Korea, Republic of": "KR",
        "Korea, North": "KP",
        "Congo (Kinshasa)": "CD",
        "Burma": "MM",
        "Côte d’Ivoire": "CI",
        "Tanzania": "TZ",
        "Kazakhstan, concentrate": "KZ",
        "Vietnam": "VN",
    }
    unmapped = sorted(name for name, code in codes.items() if code is None)
    assert unmapped == ["Other countries", "World total (rounded)"]
    known = set(registry.codelists.values("countries", "iso_alpha2"))
    assert set(registry.codelists.values("usgs_country_names", "iso_alpha2")) <= known


def test_usgs_headers_of_another_edition_are_read_by_their_names_not_a_fixed_list(
    production: Contract, registry: Registry, tmp_path: Path
) -> None:
    # The next edition shifts the years, marks another estimate and may publish in kt.
    body = (USGS_FILES / "mcs2024-lithi_world.csv").read_bytes()
    shifted = body.replace(
        b"Prod_t_2022,Prod_t_est_2023,Prod_notes,Reserves_t",
        b"Prod_kt_est_2023,Prod_kt_est_2024,Prod_notes,Reserves_kt",
    ).replace(b"MCS2024,", b"MCS2025,")
    rows = normalized(landed(shifted, "mcs2025-lithi_world.csv", tmp_path), production, registry).to_pylist()
    chile = {
        (r["measure"], r["year"]): (r["value_t"], r["estimated"])
        for r in rows
        if r["country_name"] == "Chile"
    }
    assert chile == {
        ("production", 2023): (38_000_000.0, True),
        ("production", 2024): (44_000_000.0, True),
        ("reserves", 2024): (9_300_000_000.0, False),
    }
    assert {r["edition"] for r in rows} == {"MCS2025"}


def test_usgs_unknown_unit_in_a_header_is_rejected_naming_the_file_and_column(
    production: Contract, registry: Registry, tmp_path: Path
) -> None:
    body = (USGS_FILES / "mcs2024-lithi_world.csv").read_bytes().replace(b"Prod_t_2022", b"Prod_Mt_2022")
    with pytest.raises(DriftRejected) as caught:
        normalized(landed(body, "mcs2024-lithi_world.csv", tmp_path), production, registry)
    assert "mcs2024-lithi_world.csv: column 'Prod_Mt_2022' gives unit 'mt'" in str(caught.value)


def test_usgs_text_that_is_no_figure_is_rejected_naming_the_row_and_column(
    production: Contract, registry: Registry, tmp_path: Path
) -> None:
    body = (
        (USGS_FILES / "mcs2024-lithi_world.csv")
        .read_bytes()
        .replace(
            b'Chile,"Mine production, lithium content",38000',
            b'Chile,"Mine production, lithium content",about 38000',
        )
    )
    with pytest.raises(DriftRejected) as caught:
        normalized(landed(body, "mcs2024-lithi_world.csv", tmp_path), production, registry)
    message = str(caught.value)
    assert "usgs_mineral_production" in message and "00001-mcs2024-lithi_world.csv" in message
    assert "row 7" in message and "column 'Prod_t_2022': 'about 38000' is not a number" in message
    assert caught.value.event.kind == "type_change"


def test_usgs_a_salient_file_given_to_the_production_contract_is_rejected_naming_it(
    production: Contract, registry: Registry, tmp_path: Path
) -> None:
    page = landed(
        (USGS_FILES / "mcs2024-lithi_salient.csv").read_bytes(), "mcs2024-lithi_salient.csv", tmp_path
    )
    with pytest.raises(
        DriftRejected,
        match=r"mcs2024-lithi_salient.csv holds U.S. salient statistics .*not world mine production",
    ):
        normalized(page, production, registry)


def test_usgs_a_file_that_is_not_utf8_text_is_a_clear_error(
    production: Contract, registry: Registry, tmp_path: Path
) -> None:
    page = landed(b"PK\x03\x04\xff\xfe zipped", "world.zip", tmp_path)
    with pytest.raises(NormalizeError, match=r"usgs_mineral_production: .*world.zip is not UTF-8 text"):
        normalized(page, production, registry)


# --- estimates, edition by edition ---------------------------------------------------------------

EDITIONS = USGS_FILES / "editions"  # other editions' files and more MCS2024 ones (recordings/PROVENANCE.md)

# How each edition says "this year's figure is an estimate too", quoted as USGS published it, in
# real files: the year the header leaves unmarked, and the rows whose note (or "e" marker) says it.
# The data release documentation defines the header's own marker: "Prod_t_Est_2022: Estimated
# production in 2022" (MCS2023 mcs2023-lithi_meta.xml).
ESTIMATE_FOOTNOTES = [
    pytest.param(
        "mcs2022/mcs2022-graph_world.csv",
        "Prod_t_Est_2021",  # no notes at all: the header alone marks the estimate
        2020,
        set(),
        id="MCS2022-graphite-header-only",
    ),
    pytest.param(
        "mcs2023/mcs2023-lithi_world.csv",
        "Production in 2021 is also estimated.",
        2021,
        {"Brazil", "China", "Portugal", "Zimbabwe"},
        id="MCS2023-lithium",
    ),
    pytest.param(
        "mcs2023/mcs2023-cobal_world.csv",
        "Production in 2021 is also estimated,",  # no final period in this file
        2021,
        {
            "United States",
            "China",
            "Congo (Kinshasa)",
            "Cuba",
            "Indonesia",
            "Madagascar",
            "Morocco",
            "Philippines",
            "Russia",
            "Turkey",
        },
        id="MCS2023-cobalt",
    ),
    pytest.param(
        "mcs2023/mcs2023-raree_world.csv",
        "Estimated in 2021 also.",  # China's note "Production quota; ..." is no estimate
        2021,
        {"Australia", "Brazil", "Burma", "Burundi", "India", "Madagascar", "Russia", "Thailand"},
        id="MCS2023-rare-earths",
    ),
    pytest.param(
        "mcs2023/mcs2023-beryl_world.csv",
        # A second sentence follows; the world total's "...inadequate to make reliable estimates of
        # output" is no estimate of a figure.
        "Production in 2021 is also estimated. Metric tons contained beryllium",
        2021,
        {"Brazil", "China", "Madagascar", "Mozambique", "Nigeria", "Rwanda", "Uganda"},
        id="MCS2023-beryllium",
    ),
    pytest.param(
        "../mcs2024-lithi_world.csv",
        "Also estimated in 2022",
        2022,
        {"Brazil", "Canada", "China", "Portugal", "Zimbabwe"},
        id="MCS2024-lithium",
    ),
    pytest.param(
        "mcs2024/mcs2024-antim_world.csv",
        "Also estimated in 2022",  # in a column named Prod_note in this file, not Prod_notes
        2022,
        {"Burma", "Canada", "China", "Iran", "Kazakhstan", "Laos", "Mexico", "Pakistan", "Turkey"},
        id="MCS2024-antimony-Prod_note",
    ),
    pytest.param(
        "mcs2024/mcs2024-alumi_world.csv",
        "Production in 2022 is also estimated.",
        2022,
        {"Iceland", "India", "Malaysia", "Norway"},
        id="MCS2024-aluminum",
    ),
    pytest.param(
        "mcs2024/mcs2024-galli_world.csv",
        # Japan, Korea and Russia are published "Japane", "Korea, Republic ofe", "Russiae": the
        # footnote marker e (estimated). The world total's "Other countries estimated to still have
        # primary low-purity gallium production capacity ..." is no estimate of a figure.
        "estimated in 2022 also",
        2022,
        {"China", "Japan", "Korea, Republic of", "Russia"},
        id="MCS2024-gallium-e-marker",
    ),
    pytest.param(
        "mcs2024/mcs2024-beryl_world.csv",
        # Carried over from MCS2023: 2021 is not a year of this table, so no figure is flagged by it.
        "Production in 2021 is also estimated.",
        2022,
        set(),
        id="MCS2024-beryllium-stale-year",
    ),
]


@pytest.mark.parametrize(("name", "published", "unmarked_year", "estimated_there"), ESTIMATE_FOOTNOTES)
def test_usgs_each_editions_estimate_footnotes_keep_the_estimated_flag(
    name: str,
    published: str,
    unmarked_year: int,
    estimated_there: set[str],
    production: Contract,
    registry: Registry,
    tmp_path: Path,
) -> None:
    body = (EDITIONS / name).read_bytes()
    assert published.encode() in body  # the wording is the file's own
    rows = normalized(landed(body, Path(name).name, tmp_path), production, registry).to_pylist()
    figures = [r for r in rows if r["measure"] == "production"]
    assert all(r["estimated"] for r in figures if r["year"] != unmarked_year)  # the header's year
    assert {r["country_name"] for r in figures if r["year"] == unmarked_year and r["estimated"]} == (
        estimated_there
    )
    assert not any(r["estimated"] for r in rows if r["measure"] == "reserves")


def test_usgs_mcs2025_wording_estimated_year_marks_that_year(
    production: Contract, registry: Registry, tmp_path: Path
) -> None:
    # MCS2025 words it "Estimated 2023." (as Our World in Data's lithium, manganese and vanadium data
    # packages quote the MCS2025 release, doi:10.5066/P13XCP3R; no MCS2025 file was available). Put
    # in the MCS2024 lithium file moved to MCS2025's years, in place of "Also estimated in 2022".
    body = (USGS_FILES / "mcs2024-lithi_world.csv").read_bytes()
    shifted = (
        body.replace(b"Prod_t_2022,Prod_t_est_2023", b"Prod_t_2023,Prod_t_est_2024")
        .replace(b"MCS2024,", b"MCS2025,")
        .replace(b"Also estimated in 2022", b"Estimated 2023.")
    )
    rows = normalized(landed(shifted, "mcs2025-lithi_world.csv", tmp_path), production, registry).to_pylist()
    estimated_2023 = {
        r["country_name"]
        for r in rows
        if r["year"] == 2023 and r["measure"] == "production" and r["estimated"]
    }
    assert estimated_2023 == {"Brazil", "Canada", "China", "Portugal", "Zimbabwe"}


def test_usgs_estimate_note_in_unknown_wording_is_drift_never_a_silent_false(
    production: Contract, registry: Registry, tmp_path: Path
) -> None:
    # A next edition's rewording of MCS2023's "Production in 2021 is also estimated." (Brazil, file row 5).
    body = (EDITIONS / "mcs2023" / "mcs2023-lithi_world.csv").read_bytes()
    reworded = body.replace(b"Production in 2021 is also estimated.", b"2021 output was estimated as well.")
    with pytest.raises(DriftRejected) as caught:
        normalized(landed(reworded, "mcs2023-lithi_world.csv", tmp_path / "reject"), production, registry)
    message = str(caught.value)
    assert "usgs_mineral_production" in message and "row 5, field 'estimated'" in message
    assert "column 'Prod_notes': the note '2021 output was estimated as well'" in message
    assert caught.value.event.kind == "type_change"
    # Under a lenient policy the figure keeps what the header says, and the drift is recorded.
    lenient = production.model_copy(
        update={"evolution": production.evolution.model_copy(update={"type_change": "warn"})}
    )
    stats = NormalizeStats()
    rows = normalized(
        landed(reworded, "mcs2023-lithi_world.csv", tmp_path / "warn"), lenient, registry, stats
    )
    assert not any(r["estimated"] for r in rows.to_pylist() if r["year"] == 2021)
    (event,) = [e for e in stats.drift.values() if e.field == "estimated"]
    assert (event.kind, event.action) == ("type_change", "warned") and "2021 output" in event.detail


# --- the refresh ---------------------------------------------------------------------------------


def published(layout: Layout, dataset: str) -> list[tuple[object, ...]]:
    with open_public(layout) as con:
        return con.execute(f"SELECT * FROM curated.{dataset} ORDER BY ALL").fetchall()


def test_usgs_refresh_publishes_all_six_minerals_with_comments_and_a_run_record(
    production: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    run = refresh_dataset(production, registry, settings, replay.url, as_of=AS_OF)
    assert run.status == "published" and run.raw_files == 6
    assert run.rows_landed == 11 + 14 + 20 + 11 + 18 + 16  # data rows of the six files
    assert run.rows_published == 3 * run.rows_landed
    assert [(c["field"], c["from_unit"], c["file"]) for c in run.unit_conversions] == [
        ("value_t", "kt", "00005-mcs2024-manga_world.csv")
    ]
    with open_public(layout) as con:
        chile = con.execute(
            "SELECT value_t FROM curated.usgs_mineral_production WHERE mineral = 'Lithium' "
            "AND country_iso = 'CL' AND measure = 'reserves' AND year = 2023"
        ).fetchone()
        assert chile == (9_300_000.0,)
        world_2023 = dict(
            con.execute(
                "SELECT mineral, value_t FROM curated.usgs_mineral_production "
                "WHERE country_name = 'World total (rounded)' AND measure = 'production' AND year = 2023"
            ).fetchall()
        )
        assert world_2023 == {
            "Lithium": 180_000.0,
            "Cobalt": 230_000.0,
            "Graphite": 1_600_000.0,
            "Nickel": 3_600_000.0,
            "Manganese": 20_000_000.0,
            "Rare earths": 350_000.0,
        }
        comments = dict(
            con.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'usgs_mineral_production'"
            ).fetchall()
        )
        assert set(comments) == set(production.field_names) and all(comments.values())
        assert "unit t" in comments["value_t"] and "reference year" in comments["year"]
        assert con.execute(
            "SELECT status, rows_landed, rows_published, len(raw_sha256) FROM meta.runs"
        ).fetchall() == [("published", run.rows_landed, run.rows_published, 6)]
    manifest = json.loads(
        (
            layout.raw_dir(production.dataset, run.run_id) / "00001-mcs2024-lithi_world.manifest.json"
        ).read_text()
    )
    assert (
        manifest["url"]
        == replay.url + "/catalog/file/get/65a6e45fd34e5af967a46749?name=mcs2024-lithi_world.csv"
    )
    assert (
        manifest["sha256"]
        == hashlib.sha256((USGS_FILES / "mcs2024-lithi_world.csv").read_bytes()).hexdigest()
    )


def test_usgs_second_refresh_of_unchanged_files_publishes_identical_rows(
    production: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    first = refresh_dataset(production, registry, settings, replay.url, as_of=AS_OF)
    before = published(layout, production.dataset)
    second = refresh_dataset(production, registry, settings, replay.url, as_of=AS_OF)
    forced = refresh_dataset(production, registry, settings, replay.url, as_of=AS_OF, force=True)
    assert second.raw_sha256 == first.raw_sha256 == forced.raw_sha256
    assert published(layout, production.dataset) == before and len(before) == first.rows_published
    # Same bytes: the second run stops at "unchanged"; forced, the same rows are normalized again and,
    # being exactly the published ones, change nothing: no release either.
    assert [r["status"] for r in catalog_runs(layout)] == ["published", "unchanged", "unchanged"]
    assert forced.rows_staged == len(before)


def test_usgs_ingest_file_replaces_only_the_mineral_of_a_hand_downloaded_file_and_records_it(
    production: Contract,
    registry: Registry,
    settings: Settings,
    layout: Layout,
    replay: ReplayServer,
    tmp_path: Path,
) -> None:
    refresh_dataset(production, registry, settings, replay.url, as_of=AS_OF)
    before = published(layout, production.dataset)
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    in_hand = downloads / "mcs2024-manga_world.csv"
    shutil.copyfile(USGS_FILES / "mcs2024-manga_world.csv", in_hand)
    run = ingest_file(production, registry, settings, in_hand)
    # Same bytes, same rows: merged, nothing changes, so no release; other minerals kept.
    assert run.status == "unchanged" and run.rows_staged == 18 * 3
    assert published(layout, production.dataset) == before
    (manifest_path,) = layout.raw_dir(production.dataset, run.run_id).glob("*.manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["source"] == "file" and manifest["file_name"] == "mcs2024-manga_world.csv"
    assert manifest["sha256"] == hashlib.sha256(in_hand.read_bytes()).hexdigest()
    assert [
        (r["run_id"], r["status"], r["rows_staged"], json.loads(r["raw_sha256"]))
        for r in catalog_runs(layout)
        if r["run_id"] == run.run_id
    ] == [(run.run_id, "unchanged", 54, [manifest["sha256"]])]
    with open_public(layout) as con:
        assert con.execute(
            "SELECT value_t FROM curated.usgs_mineral_production WHERE mineral = 'Manganese' "
            "AND country_iso = 'ZA' AND measure = 'production' AND year = 2022"
        ).fetchone() == (7_300_000.0,)


def test_usgs_three_editions_ingested_side_by_side_publish_the_same_meaning_of_estimated(
    production: Contract, registry: Registry, settings: Settings, layout: Layout
) -> None:
    # MCS2022 marks estimates only in the header; MCS2023 adds "Production in 2021 is also
    # estimated." (the four lithium rows); MCS2024 says "Also estimated in 2022".
    for name in (
        "mcs2022/mcs2022-graph_world.csv",
        "mcs2023/mcs2023-lithi_world.csv",
        "../mcs2024-lithi_world.csv",
    ):
        run = ingest_file(production, registry, settings, EDITIONS / name)
        assert run.status == "published", (name, run.error)
    with open_public(layout) as con:
        flagged = con.execute(
            "SELECT edition, mineral, year, count(*) FILTER (WHERE estimated), count(*) "
            "FROM curated.usgs_mineral_production WHERE measure = 'production' GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        assert flagged == [
            ("MCS2022", "Graphite", 2020, 0, 20),
            ("MCS2022", "Graphite", 2021, 20, 20),
            ("MCS2023", "Lithium", 2021, 4, 11),
            ("MCS2023", "Lithium", 2022, 11, 11),
            ("MCS2024", "Lithium", 2022, 5, 11),
            ("MCS2024", "Lithium", 2023, 11, 11),
        ]
        assert con.execute(
            "SELECT country_name FROM curated.usgs_mineral_production WHERE edition = 'MCS2023' "
            "AND year = 2021 AND estimated ORDER BY 1"
        ).fetchall() == [("Brazil",), ("China",), ("Portugal",), ("Zimbabwe",)]


def test_usgs_refresh_ignores_the_window_every_run_asks_for_every_listed_file(
    production: Contract, registry: Registry, settings: Settings, replay: ReplayServer
) -> None:
    run = refresh_dataset(
        production, registry, settings, replay.url, window=Window(date(2024, 1, 1), date(2024, 1, 1))
    )
    assert run.status == "published"
    assert [dict(r.query)["name"] for r in replay.requests] == list(WORLD_FILES.values())
