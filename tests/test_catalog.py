"""``scdx docs`` writes a browsable data dictionary; a test opens and reads it like a browser would."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.orchestration.refresh import refresh_dataset
from pipelines.replay.server import ReplayServer
from pipelines.sources.window import Window

SCDX = str(Path(sys.executable).parent / "scdx")


class Tables(HTMLParser):
    """Collects every table (by id) as rows of cell texts, and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
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
        assert (catalog / link).exists(), link

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
