"""``scdx docs`` writes a browsable catalog; the tests open and read it like a browser would: on a
small refresh, before anything is published, and on the demo's data directory (every dataset, the
marts, GX Data Docs), where every page, figure and link is checked against the release."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.marts import load_marts
from pipelines.orchestration.refresh import refresh_dataset
from pipelines.replay.server import ReplayServer
from pipelines.sources.window import Window
from pipelines.store.tiers import release_tables

SCDX = str(Path(sys.executable).parent / "scdx")


class Tables(HTMLParser):
    """Collects every table (by id) as rows of cell texts, every link, every element's id and the
    attributes of every element (the SVG graph's nodes and edges among them)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))
        if tag == "table":
            self._table = self.tables.setdefault(attributes.get("id") or f"table{len(self.tables)}", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "a" and attributes.get("href"):
            self.links.append(str(attributes["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _read(path: Path) -> Tables:
    parser = Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_docs_writes_an_index_a_page_per_dataset_and_per_code_list_with_publish_state(
    census: Contract, registry: Registry, settings: Settings, replay: ReplayServer, data_dir: Path
) -> None:
    refresh_dataset(census, registry, settings, replay.url, window=Window(date(2026, 1, 1), date(2026, 3, 1)))
    env = {**os.environ, "SCDX_DATA_DIR": str(data_dir)}
    result = subprocess.run([SCDX, "docs"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    catalog = data_dir / "catalog"

    index = _read(catalog / "index.html")
    datasets = {row[0]: row for row in index.tables["datasets"][1:]}
    assert datasets["census_trade_imports"][3] == "public" and datasets["census_trade_imports"][5] == "208"
    assert "census_trade_imports.html" in index.links
    assert {f"ref_{name}.html" for name in registry.codelists.names} <= set(index.links)
    for link in index.links:
        assert (catalog / link.partition("#")[0]).exists(), link

    page = _read(catalog / "census_trade_imports.html")
    sharing = {row[0]: row[1] for row in page.tables["sharing"]}
    assert sharing["providing agency"].startswith("U.S. Census Bureau")
    assert sharing["steward (contact role)"] == census.provider.steward
    assert sharing["classification"] == "public" and sharing["freshness SLA"] == "75 days"
    assert "raw: 7 years" in sharing["retention"] and sharing["license / terms"] == census.license
    fields = {row[0]: row for row in page.tables["fields"][1:]}
    assert list(fields) == census.field_names
    assert fields["general_value_usd"][2:5] == ["BIGINT", "USD", "no"]
    assert fields["country_code"][6] == "countries.schedule_c_code"
    assert any("primary key" in row[2] for row in page.tables["checks"])
    runs = page.tables["runs"][1:]
    assert len(runs) == 1 and runs[0][1] == "published" and runs[0][4] == "208"

    countries = _read(catalog / "ref_countries.html")
    assert len(countries.tables["values"]) == 1 + 240


def test_docs_before_anything_is_published_says_so(data_dir: Path) -> None:
    env = {**os.environ, "SCDX_DATA_DIR": str(data_dir)}
    assert subprocess.run([SCDX, "docs"], env=env, capture_output=True, timeout=120).returncode == 0
    page = _read(data_dir / "catalog" / "census_trade_imports.html")
    assert {row[0]: row[1] for row in page.tables["state"]}["rows"] == "not published yet"


@pytest.fixture(scope="module")
def demo(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> tuple[Path, str]:
    """The demo's data dir (every dataset replayed offline, the marts, GX Data Docs) with its
    catalog written, and the demo's output (a fixed width, so table rows stay on one line).
    The session's one `scdx demo` (tests/conftest.py): `scdx docs` adds catalog/ to it, and
    these tests only read it."""
    data_dir, result = demo_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    env = {**os.environ, "SCDX_DATA_DIR": str(data_dir), "COLUMNS": "220"}
    docs = subprocess.run([SCDX, "docs"], env=env, capture_output=True, text=True, timeout=300)
    assert docs.returncode == 0, docs.stderr
    return data_dir, result.stdout


def _query(data_dir: Path, sql: str, params: list[object] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _published(data_dir: Path, schemas: list[str]) -> dict[str, str]:
    """The demo release's tables ("schema.name" -> comment): its last step materialized them."""
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        return release_tables(con, schemas)


def _rows(page: Tables, table: str) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in page.tables[table]}


def test_every_meta_and_mart_column_of_the_demo_release_has_a_comment(demo: tuple[Path, str]) -> None:
    data_dir, _ = demo
    [(columns, uncommented)] = _query(
        data_dir,
        "SELECT count(*), count(*) FILTER (WHERE comment IS NULL OR trim(comment) = '') "
        "FROM duckdb_columns() WHERE schema_name IN ('meta', 'marts')",
    )
    assert columns > 150 and uncommented == 0
    meta = _read(data_dir / "catalog" / "meta.html")
    for (table,) in _query(data_dir, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'meta'"):
        rows = meta.tables[f"meta-{table}"][1:]
        assert rows and all(row[2] for row in rows), table


def test_the_demo_summary_says_which_replayed_datasets_are_constructed_and_where_their_provenance_is(
    registry: Registry, demo: tuple[Path, str]
) -> None:
    _, out = demo
    lines = out.splitlines()
    header = next(line for line in lines if "rows published" in line)
    assert "recordings" in header
    for contract in (c for c in registry.contracts.values() if not c.source.inbox):
        recordings = contract.source.offline_recordings
        assert recordings is not None
        # The refresh's own run of each dataset is its first row; the census hand downloads
        # (real USA Trade Online reports) follow as recorded.
        row = next(line for line in lines if line.startswith(f"│ {contract.dataset} "))
        assert row.rstrip(" │").endswith(recordings.kind), row
        if recordings.kind == "constructed":
            assert f"constructed {contract.dataset}: " in out and recordings.provenance in out
    hand_downloads = [line for line in lines if line.startswith("│ census_trade_imports ")][1:]
    assert len(hand_downloads) == 3 and all(line.rstrip(" │").endswith("recorded") for line in hand_downloads)


def test_the_index_draws_the_lineage_from_every_dataset_to_the_marts_that_read_it(
    registry: Registry, demo: tuple[Path, str]
) -> None:
    data_dir, _ = demo
    index = _read(data_dir / "catalog" / "index.html")
    nodes = {
        str(a["data-table"]): str(a["href"])
        for tag, a in index.elements
        if tag == "a" and a.get("data-table")
    }
    marts = load_marts()
    assert nodes == {
        **{f"curated.{d}": f"{d}.html" for d in registry.contracts},
        **{f"marts.{m.name}": f"mart_{m.name}.html" for m in marts},
    }
    drawn = {(str(a["data-from"]), str(a["data-to"])) for tag, a in index.elements if tag == "path"}
    read = {
        (r if r.startswith("marts.") else f"curated.{r}", f"marts.{m.name}") for m in marts for r in m.reads
    }
    assert drawn == read and ("curated.faf5_regional_flows", "marts.freight_exposure") in drawn
    constructed = {
        str(a["data-table"])
        for tag, a in index.elements
        if tag == "a" and a.get("data-table") and "constructed" in str(a.get("class"))
    }
    assert constructed == {
        f"curated.{d}"
        for d in ("census_trade_imports", "census_trade_exports", "bls_qcew_industry", "faf5_regional_flows")
    }
    listed = _rows(index, "marts-table")
    built = {name.partition(".")[2] for name in _published(data_dir, ["marts"])}
    for mart in marts:
        if mart.name not in built:  # its inputs (the partner aggregates) are not in the demo
            assert listed[f"marts.{mart.name}"][2] == "not built", mart.name
            continue
        [(rows,)] = _query(data_dir, f"SELECT count(*) FROM marts.{mart.name}")
        assert listed[f"marts.{mart.name}"][2] == f"{rows:,}", mart.name
    # A table a mart reads without a contract (the partner aggregates disclosure control
    # publishes) has no page: it is drawn unlinked, with its edges.
    uncatalogued = {str(a["data-table"]) for tag, a in index.elements if tag == "g" and a.get("data-table")}
    assert uncatalogued == {f"curated.{d}" for m in marts for d in m.datasets if d not in registry.contracts}


def test_a_dataset_page_shows_rows_date_coverage_its_last_data_publish_samples_and_its_latest_data_docs(
    registry: Registry, demo: tuple[Path, str]
) -> None:
    data_dir, _ = demo
    [(current,)] = _query(data_dir, "SELECT max(version) FROM meta.publishes")
    for dataset, field in (("afdc_charging_stations", "open_date"), ("census_trade_imports", "period")):
        contract = registry.get(dataset)
        page = _read(data_dir / "catalog" / f"{dataset}.html")
        state = {key: value[0] for key, value in _rows(page, "state").items()}
        [(rows, low, high)] = _query(
            data_dir, f"SELECT count(*), min({field}), max({field}) FROM curated.{dataset}"
        )
        assert state["rows"] == f"{rows:,}"
        assert state["date coverage"] == f"{low} to {high} ({field})"
        [(run, version)] = _query(
            data_dir,
            "SELECT run_id, publish_version FROM meta.runs WHERE run_id IN "
            "(SELECT run_id FROM meta.partition_runs WHERE table_name = ?) ORDER BY finished_at DESC LIMIT 1",
            [f"curated.{dataset}"],
        )
        assert state["last data publish"].startswith(f"run {run}, release {version} at ")
        sample = page.tables["sample"]
        assert sample[0] == contract.field_names and len(sample) == 1 + 5
        docs = [link for link in page.links if "/gx/data_docs/validations/" in f"/{link}"]
        assert len(docs) == 1 and f"/{dataset}/" in docs[0]
        validated = sorted(
            p.parent.parent.name
            for p in (data_dir / "gx" / "data_docs" / "validations" / dataset).rglob("*.html")
        )
        assert (data_dir / "catalog" / docs[0]).resolve().is_file() and f"/{validated[-1]}/" in docs[0]
    # AFDC was published first: its last data publish is its own release, not the latest one.
    afdc = _rows(_read(data_dir / "catalog" / "index.html"), "datasets")["afdc_charging_stations"]
    assert afdc[5].startswith("release 1, ") and current > 1


def test_datasets_replayed_from_constructed_recordings_are_marked_and_linked_to_their_provenance_note(
    registry: Registry, demo: tuple[Path, str]
) -> None:
    data_dir, _ = demo
    provenance = _read(data_dir / "catalog" / "provenance.html")
    for contract in (c for c in registry.contracts.values() if not c.source.inbox):
        recordings = contract.source.offline_recordings
        assert recordings is not None
        page = _read(data_dir / "catalog" / f"{contract.dataset}.html")
        mark = _rows(page, "state")["recordings"][0]
        assert mark.startswith(recordings.kind) and recordings.note in mark
        assert f"provenance.html#provenance-{recordings.folder}" in page.links
        assert f"provenance-{recordings.folder}" in provenance.ids


def test_a_page_per_mart_gives_its_method_inputs_columns_with_comments_and_checks(
    demo: tuple[Path, str],
) -> None:
    data_dir, _ = demo
    published = set(_published(data_dir, ["curated", "marts"]))
    for mart in load_marts():
        page = _read(data_dir / "catalog" / f"mart_{mart.name}.html")
        html = (data_dir / "catalog" / f"mart_{mart.name}.html").read_text()
        inputs = [row[0] for row in page.tables["inputs"][1:]]
        assert inputs == [r if r.startswith("marts.") else f"curated.{r}" for r in mart.reads]
        if not published.issuperset(inputs):
            # A mart whose inputs the demo does not publish (the partner aggregates) is not built.
            assert f"marts.{mart.name}" not in published and "not built in the current release" in html
            continue
        method = _published(data_dir, ["marts"])[f"marts.{mart.name}"]
        assert f'<p id="method">{escape(method, quote=False)}</p>' in html.replace("&#39;", "'").replace(
            "&#34;", '"'
        )
        columns = _query(
            data_dir,
            "SELECT column_name, data_type, comment FROM duckdb_columns() WHERE schema_name = 'marts' "
            "AND table_name = ? ORDER BY column_index",
            [mart.name],
        )
        assert [tuple(row) for row in page.tables["columns"][1:]] == [
            (n, t, " ".join(c.split())) for n, t, c in columns
        ]
        checks = [row[0] for row in page.tables["checks"][1:]]
        assert checks == ([" ".join(c.split()) for c in mart.checks] or ["none"])
    scorecard = _read(data_dir / "catalog" / "mart_supply_chain_scorecard.html")
    assert (
        "mart_mineral_supply_risk.html" in scorecard.links and "usgs_mineral_salient.html" in scorecard.links
    )


def test_every_link_of_the_catalog_opens_a_file_of_the_data_dir_and_every_anchor_exists(
    demo: tuple[Path, str],
) -> None:
    data_dir, _ = demo
    catalog = data_dir / "catalog"
    pages = sorted(catalog.glob("*.html"))
    assert len(pages) > 30
    for page in pages:
        for link in _read(page).links:
            target, _, anchor = link.partition("#")
            assert "://" not in target and not target.startswith("/"), f"{page.name}: {link}"
            path = (catalog / target).resolve() if target else page
            assert path.is_file() and path.is_relative_to(data_dir.resolve()), f"{page.name}: {link}"
            if anchor:
                assert anchor in _read(path).ids, f"{page.name}: {link}"
    assert "<script" not in "".join(p.read_text() for p in pages)
