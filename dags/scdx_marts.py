"""``publish_marts``: rebuild the risk marts whenever a dataset they read publishes a new version,
then refresh the risk report (``scdx report``) from the release that holds them and materialize
that release for analysts (``scdx publish materialize``).

Scheduled on the Assets of the datasets the marts read (data-aware scheduling: any of them
updating triggers a build); the build runs in the one-slot publish pool and emits ``scdx://marts``;
the report only reads the release, so it runs outside that pool.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Asset, AssetAny, dag, task

from pipelines.common.settings import DEFAULT_SCHEMAS_DIR
from pipelines.contracts import load_registry
from pipelines.marts import datasets_read, load_marts
from pipelines.orchestration.dag_support import MARTS_ASSET_URI, PUBLISH_POOL, asset_uri, house_default_args

SCHEMAS_DIR = Path(os.environ.get("SCDX_SCHEMAS_DIR") or DEFAULT_SCHEMAS_DIR)
_published = load_registry(SCHEMAS_DIR, with_codelists=False).contracts
_inputs = [
    d for d in datasets_read(load_marts()) if d in _published and _published[d].classification == "public"
]


@dag(
    dag_id="publish_marts",
    schedule=AssetAny(*(Asset(name=f"curated.{d}", uri=asset_uri(d), group="scdx") for d in _inputs)),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["scdx", "marts", "public"],
    doc_md=(
        "### Risk marts\n\nRebuilds every mart in `pipelines/marts/*.sql` whose inputs are published, as one new "
        f"public version, then refreshes the risk report (`$SCDX_DATA_DIR/report/index.html`) and materializes "
        "the release as DuckDB tables for analysts (`scdx publish materialize`). Inputs: "
        f"{', '.join(f'`curated.{d}`' for d in _inputs)}."
    ),
    default_args=house_default_args("scdx", timedelta(hours=1)),
)
def publish_marts() -> None:
    # The store logs which marts the release rebuilt and by how many rows.
    @task(
        pool=PUBLISH_POOL,
        outlets=[Asset(name="marts", uri=MARTS_ASSET_URI, group="scdx")],
        show_return_value_in_logs=False,
    )
    def build_marts() -> dict[str, Any]:
        from pipelines.common.settings import load_settings
        from pipelines.marts import publish_marts as build
        from pipelines.store.layout import Layout

        settings = load_settings()
        result = build(Layout(settings.data_dir), settings.keep_versions)
        return {"version": result.version, "built": result.built, "skipped": result.skipped}

    @task
    def refresh_report(built: dict[str, Any]) -> dict[str, Any]:
        from pipelines.orchestration import tasks

        return {**tasks.refresh_report(), "version": built["version"]}

    @task
    def materialize_release(built: dict[str, Any]) -> dict[str, Any]:
        # Outside the publish pool: it writes a copy, then takes the publish lock only to swap.
        from pipelines.orchestration import tasks

        return tasks.materialize_public()

    built = build_marts()
    refresh_report(built)
    materialize_release(built)


publish_marts()
