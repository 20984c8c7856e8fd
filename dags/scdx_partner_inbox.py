"""``partner_inbox``: ingest partners' signed submissions as they arrive, into the restricted tier.

Why an asset watcher and not a deferrable sensor: Airflow 3.3 schedules a DAG on an external event
natively (``AssetWatcher`` with a ``BaseEventTrigger``), so no DAG run sits open waiting, and the
waiting is one directory scan in the triggerer (``DirectoryFileDeleteTrigger``, whose scans of one
directory the triggerer shares), never a worker slot. ``scdx partner submit`` writes a flag file
after each complete envelope; the trigger deletes it and fires, and the run ingests every envelope
waiting, so a submission made during a run gets the next one. The trigger is the standard
provider's: the triggerer imports triggers by class path from installed packages, and
``pipelines`` may not import Airflow, so a trigger of our own would need a package of its own.

The run does what ``scdx partner ingest`` does (signature and the partner's right to the dataset
checked, refusals kept aside with their reason, valid files land -> validate -> publish into the
restricted tier), with keys resolved here: a partner's environment variable, else the password of
its Airflow connection, each registered with the secrets masker before use and handed to the
pipeline as a value. After a restricted publish it emits ``restricted.partner_data``, what the
disclosure-controlled public aggregates are scheduled on.

Parse time reads nothing: the inbox directory comes from ``SCDX_DATA_DIR`` (which the
dag-processor's environment must share with the workers'), every pipeline import is in a task.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.standard.triggers.file import DirectoryFileDeleteTrigger
from airflow.sdk import Asset, AssetWatcher, dag, get_current_context, task

from pipelines.common.settings import data_dir_from_env
from pipelines.orchestration.dag_support import (
    NEW_SUBMISSION_FLAG,
    PARTNER_INBOX_ASSET_URI,
    PUBLISH_POOL,
    RESTRICTED_PARTNER_DATA_ASSET_URI,
    house_default_args,
    partner_inbox_dir,
)

log = logging.getLogger(__name__)
# A listing of one small directory every 10 s in the triggerer: a submission waits at most that long.
POKE_INTERVAL_S = 10.0
NEW_SUBMISSION = Asset(
    name="partner_inbox",
    uri=PARTNER_INBOX_ASSET_URI,
    group="scdx",
    watchers=[
        AssetWatcher(
            name="partner_inbox_new_submission",
            trigger=DirectoryFileDeleteTrigger(
                directory=str(partner_inbox_dir(data_dir_from_env())),
                filename=NEW_SUBMISSION_FLAG,
                poke_interval=POKE_INTERVAL_S,
            ),
        )
    ],
)
RESTRICTED_PARTNER_DATA = Asset(
    name="restricted.partner_data", uri=RESTRICTED_PARTNER_DATA_ASSET_URI, group="scdx"
)


def _partner_keys() -> dict[str, bytes]:
    """The signing keys of the partners with submissions waiting: the environment variable first,
    then the password of the partner's Airflow connection (as agency API keys), each registered
    with Airflow's secrets masker before anything uses it."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.sdk.log import mask_secret

    from pipelines.orchestration import tasks

    keys = {}
    for partner_id, secret in tasks.waiting_partner_secrets().items():
        key = os.environ.get(secret.env) or None
        if key is None and secret.airflow_conn_id:
            try:
                key = BaseHook.get_connection(secret.airflow_conn_id).password or None
            except AirflowNotFoundException:
                key = None  # refused with "cannot verify", naming the variable
        if key is not None:
            mask_secret(key)
            keys[partner_id] = key.encode("utf-8")
    return keys


DOC_MD = (
    "### Partner submissions\n\nRuns when `scdx partner submit` leaves a submission in "
    "`$SCDX_DATA_DIR/inbox` (an asset watcher in the triggerer). Verifies each envelope's signature "
    "and the partner's right to the dataset; refusals go to `inbox/refused/<id>/` with `reason.txt`; "
    "valid files are landed, validated and published into the restricted tier, then "
    "`restricted.partner_data` is emitted. A submission that fails validation fails `check_submissions`."
)


@dag(
    dag_id="partner_inbox",
    tags=["scdx", "partners", "restricted"],
    schedule=[NEW_SUBMISSION],
    # One ingest of the inbox at a time: two would race for the same envelopes.
    max_active_runs=1,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=DOC_MD,
    default_args=house_default_args("scdx", execution_timeout=timedelta(hours=2)),
)
def partner_inbox() -> None:
    @task(pool=PUBLISH_POOL, show_return_value_in_logs=False)
    def ingest_submissions() -> dict[str, Any]:
        from pipelines.orchestration import tasks

        return tasks.ingest_partner_inbox(_partner_keys())

    @task(outlets=[RESTRICTED_PARTNER_DATA])
    def announce_restricted_publish(summary: dict[str, Any]) -> list[str]:
        from airflow.sdk.exceptions import AirflowSkipException

        if not summary["published"]:
            # A skipped task emits no asset event: nothing downstream runs for a run that published nothing.
            raise AirflowSkipException("no partner rows published into the restricted tier")
        get_current_context()["outlet_events"][RESTRICTED_PARTNER_DATA].extra = {
            "datasets": summary["published"]
        }
        return list(summary["published"])

    @task(retries=0)
    def check_submissions(summary: dict[str, Any]) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        submissions = summary["submissions"]
        refused = [s["submission_id"] for s in submissions if s["status"] == "refused"]
        failed = [f"{s['submission_id']} ({s['dataset']})" for s in submissions if s["status"] == "failed"]
        if refused:
            log.warning("refused, kept aside in inbox/refused/<id>/reason.txt: %s", ", ".join(refused))
        if failed:
            # Signed and allowed, but the file failed its contract: the partner must resubmit.
            raise AirflowFailException(f"submissions failed land/validate/publish: {', '.join(failed)}")

    summary = ingest_submissions()
    announce_restricted_publish(summary)
    check_submissions(summary)


partner_inbox_dag = partner_inbox()
