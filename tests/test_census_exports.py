"""Census exports: a second contract on the same source module, no second copy of the code."""

from __future__ import annotations

import json
from datetime import date

from pipelines.common.settings import Settings
from pipelines.contracts import Registry
from pipelines.orchestration.refresh import refresh_dataset
from pipelines.replay.server import ReplayServer
from pipelines.sources.window import Window
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

from .conftest import RECORDINGS


def test_exports_publish_through_the_census_module_with_the_recorded_values(
    registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    exports = registry.get("census_trade_exports")
    assert exports.source.module == registry.get("census_trade_imports").source.module
    run = refresh_dataset(
        exports, registry, settings, replay.url, window=Window(date(2024, 1, 1), date(2024, 3, 1))
    )
    recorded = json.loads((RECORDINGS / "census_intltrade" / "exports_hs" / "2024-01.json").read_bytes())
    canada_batteries = next(r for r in recorded if r[0] == "1220" and r[2] == "8507")
    assert run.status == "published" and run.rows_published == 3 * (len(recorded) - 1)
    with open_public(layout) as con:
        value = con.execute(
            "SELECT exports_value_usd, partner_kind FROM curated.census_trade_exports "
            "WHERE period = DATE '2024-01-01' AND hs_code = '8507' AND country_code = '1220'"
        ).fetchone()
        kinds = con.execute(
            "SELECT DISTINCT partner_kind FROM curated.census_trade_exports ORDER BY 1"
        ).fetchall()
    assert value == (int(canada_batteries[4]), "country")
    assert kinds == [("country",), ("group",), ("total",)]


def test_exports_request_names_the_export_variables_and_repeats_the_basket(
    registry: Registry, replay: ReplayServer, settings: Settings, layout: Layout
) -> None:
    exports = registry.get("census_trade_exports")
    refresh_dataset(
        exports, registry, settings, replay.url, window=Window(date(2024, 1, 1), date(2024, 1, 1))
    )
    (request,) = replay.requests
    query = dict(request.query)
    assert query["get"] == "E_COMMODITY,COMM_LVL,E_COMMODITY_SDESC,CTY_CODE,CTY_NAME,ALL_VAL_MO"
    assert [v for k, v in request.query if k == "E_COMMODITY"] == registry.codelists.values(
        "ev_basket_hs", "hs4"
    )
    assert request.path == "/data/timeseries/intltrade/exports/hs"
