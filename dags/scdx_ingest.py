"""Ingest DAGs, one per contract in schemas/ (``ingest_<dataset>``), generated here, never hand-written.

Parse time only reads the small contract YAML files; every pipeline import (pyarrow, DuckDB, GX)
happens inside the task bodies. Each DAG: extract_and_land -> normalize_and_stage -> validate ->
publish -> check_freshness. The extract task runs in the agency's pool (sized to its documented
limits), publish in the one-slot publish pool, and only publish emits the dataset's Asset. The
run's data interval decides the months fetched, so a backfilled date fetches what a run on that
date fetches.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task

from pipelines.common.settings import DEFAULT_SCHEMAS_DIR
from pipelines.contracts import Contract, load_registry
from pipelines.orchestration.dag_support import PUBLISH_POOL, asset_uri, dag_owner, doc_md, house_default_args

SCHEMAS_DIR = Path(os.environ.get("SCDX_SCHEMAS_DIR") or DEFAULT_SCHEMAS_DIR)
START_DATE = pendulum.datetime(2024, 1, 1, tz="UTC")


def _connection_password(conn_id: str) -> str | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id).password or None
    except AirflowNotFoundException:
        return None


def _fail_quarantined(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a task body; a quarantine or a blocked publish fails the task at once (retrying cannot
    change the data; an operator re-runs with allow_shrink when the agency really removed rows)."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.stages.publish import PublishBlocked
    from pipelines.stages.quarantine import QuarantinedError

    try:
        return call(*args, **kwargs)
    except (QuarantinedError, PublishBlocked) as exc:
        raise AirflowFailException(str(exc)) from None


def _run_dates() -> tuple[date, date]:
    """The run's (start, end) day: its logical date ends it (a manual run "for 2026-04-20" means
    that day, while Airflow sets a manual run's data interval to the trigger time); a scheduled or
    backfilled run's data interval starts it."""
    context = get_current_context()
    logical = context.get("logical_date")
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    last = (logical or end or pendulum.now("UTC")).date()
    first = start.date() if start is not None and start.date() <= last else last
    return first, last


def build_ingest_dag(contract: Contract) -> Any:
    """The ingest DAG of one contract."""
    dataset = contract.dataset

    @dag(
        dag_id=f"ingest_{dataset}",
        schedule=contract.schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["scdx", "ingest", contract.provider.agency, contract.classification],
        doc_md=doc_md(contract),
        # Trigger with {"allow_shrink": true} to publish a batch that removes more rows than the
        # contract's publish.max_shrink_pct (the agency really withdrew them).
        params={"allow_shrink": False},
        default_args=house_default_args(
            dag_owner(contract), timedelta(hours=2), max_retry_delay=timedelta(minutes=30)
        ),
    )
    def ingest() -> None:
        @task(pool=contract.source.pool_name)
        def extract_and_land() -> dict[str, Any]:
            from airflow.sdk.log import mask_secret

            from pipelines.common.settings import load_settings
            from pipelines.orchestration import tasks
            from pipelines.replay.endpoints import source_endpoints

            # Connection passwords are masked by Airflow already; a key from the environment too.
            if contract.source.auth and os.environ.get(contract.source.auth.env):
                mask_secret(os.environ[contract.source.auth.env])
            start, end = _run_dates()
            # The agency when live, else the recorded responses served here for the task.
            with source_endpoints(load_settings()) as endpoint:
                return tasks.extract_and_land(
                    dataset,
                    endpoint(contract),
                    interval_start=start,
                    interval_end=end,
                    connection_lookup=_connection_password,
                )

        @task
        def normalize_and_stage(run_state: dict[str, Any]) -> dict[str, Any]:
            from pipelines.orchestration import tasks

            return _fail_quarantined(tasks.normalize_and_stage, run_state)

        @task
        def validate(run_state: dict[str, Any]) -> dict[str, Any]:
            from airflow.sdk.exceptions import AirflowSkipException

            from pipelines.orchestration import tasks

            if not tasks.has_data(run_state):
                # Every month of the window answered "no data yet", or the agency sent the bytes
                # already published: nothing to check or publish.
                raise AirflowSkipException(f"{dataset}: {run_state.get('status')}; nothing to publish")
            return _fail_quarantined(tasks.validate, run_state)

        # The log says which tables the release changed and by how many rows (the store logs it),
        # not the run record it hands on.
        @task(
            pool=PUBLISH_POOL,
            outlets=[Asset(name=f"curated.{dataset}", uri=asset_uri(dataset), group="scdx")],
            show_return_value_in_logs=False,
        )
        def publish(run_state: dict[str, Any]) -> dict[str, Any]:
            from pipelines.orchestration import tasks

            allow_shrink = bool(get_current_context()["params"].get("allow_shrink"))
            return _fail_quarantined(tasks.publish, run_state, allow_shrink=allow_shrink)

        @task(retries=0, trigger_rule="all_done")
        def check_freshness() -> dict[str, Any]:
            from airflow.sdk.exceptions import AirflowFailException

            from pipelines.orchestration import tasks

            _, as_of = _run_dates()
            report = tasks.check_freshness(dataset, as_of)
            if report["late"]:
                raise AirflowFailException(report["message"])
            return report

        published = publish(validate(normalize_and_stage(extract_and_land())))
        published >> check_freshness()

    return ingest()


for _contract in load_registry(SCHEMAS_DIR, with_codelists=False).contracts.values():
    if _contract.source.inbox:  # partner data arrives through the inbox, not a fetch
        continue
    globals()[f"ingest_{_contract.dataset}"] = build_ingest_dag(_contract)
