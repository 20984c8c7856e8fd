"""What the DAG files need at parse time, and nothing heavier: names, asset URIs, documentation.

Imported by dags/*.py when the scheduler parses them, so it imports only the contract models
(pydantic, yaml) and never pyarrow, DuckDB or Great Expectations.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from pipelines.contracts import Contract

PUBLISH_POOL = "scdx_publish"
MARTS_ASSET_URI = "scdx://marts"
# ``scdx partner submit`` writes this file in the inbox after a complete envelope; the
# ``partner_inbox`` DAG's asset watcher deletes it and schedules a run that ingests the inbox.
NEW_SUBMISSION_FLAG = "new-submission.flag"
PARTNER_INBOX_ASSET_URI = "scdx://inbox/partners"
# Emitted when a run published partner rows into the restricted tier: what the disclosure-controlled
# public aggregates are scheduled on.
RESTRICTED_PARTNER_DATA_ASSET_URI = "scdx://restricted/partner_data"


def partner_inbox_dir(data_dir: Path) -> Path:
    """Where partners' signed submissions wait (``<data dir>/inbox``)."""
    return data_dir / "inbox"


def asset_uri(dataset: str) -> str:
    """The URI of the Asset a dataset's publish task emits (and the marts DAG schedules on)."""
    return f"scdx://curated/{dataset}"


def retry_delay() -> timedelta:
    """The delay before a failed task's first retry (it doubles after): a minute, or
    ``SCDX_RETRY_DELAY_S`` seconds where waiting a minute buys nothing (a test cluster whose worker
    is killed on purpose). Read when the DAG file is parsed: an environment lookup, no I/O."""
    return timedelta(seconds=float(os.environ.get("SCDX_RETRY_DELAY_S") or 60))


def house_default_args(owner: str, execution_timeout: timedelta, **extra: Any) -> dict[str, Any]:
    """A DAG's ``default_args`` by the house policy: an owner, retries with exponential backoff
    (sources and disks fail transiently), a time limit on every task, and the object store's
    credentials from an Airflow connection when the environment has none; ``extra``: more."""
    return {
        "owner": owner,
        "retries": 2,
        "retry_delay": retry_delay(),
        "retry_exponential_backoff": True,
        "execution_timeout": execution_timeout,
        "on_execute_callback": object_store_credentials,
        **extra,
    }


OBJECT_STORE_CONN_ID = "scdx_object_store"
# The connection's fields, as the environment variables every AWS client reads.
_FROM_CONNECTION = {
    "AWS_ACCESS_KEY_ID": ("login", None),
    "AWS_SECRET_ACCESS_KEY": ("password", None),
    "AWS_ENDPOINT_URL": ("extra", "endpoint_url"),
    "AWS_REGION": ("extra", "region_name"),
}


def object_store_credentials(context: Mapping[str, Any]) -> None:
    """Before a task runs (``on_execute_callback``): when the data root is on an object store
    (``SCDX_DATA_URL=s3://``) and the environment names no credentials, take the key, the secret,
    the endpoint (extra ``endpoint_url``) and the region (extra ``region_name``) from the Airflow
    connection ``scdx_object_store`` into this task's environment. Airflow masks the connection's
    password in task logs as it hands it over. Variables the environment sets win."""
    if not os.environ.get("SCDX_DATA_URL", "").startswith("s3://") or os.environ.get("AWS_ACCESS_KEY_ID"):
        return
    # The context's connection accessor: None when there is no such connection (no Airflow import).
    connection = context["conn"].get(OBJECT_STORE_CONN_ID)
    if connection is None:
        return  # the clients' own defaults (an instance role, ~/.aws) then apply
    extra = connection.extra_dejson
    for variable, (field, key) in _FROM_CONNECTION.items():
        value = extra.get(key) if key else getattr(connection, field)
        if value and not os.environ.get(variable):
            os.environ[variable] = str(value)


def dag_owner(contract: Contract) -> str:
    """One owner name for the DAG: Airflow reads a comma in ``owner`` as a list of owners, so an
    agency written "U.S. Department of Energy, National Renewable Energy Laboratory" is owned by
    its most specific part, the laboratory."""
    return contract.provider.agency.rsplit(",", 1)[-1].strip()


def doc_md(contract: Contract) -> str:
    """The DAG's documentation, from the contract."""
    rows = "\n".join(f"| `{f.name}` | {f.type} | {f.description} |" for f in contract.fields)
    freshness = f"{contract.freshness.max_age_days} days" if contract.freshness else "none"
    return (
        f"### {contract.title}\n\n{contract.description}\n\n"
        f"* Provider: {contract.provider.agency} (steward: {contract.provider.steward})\n"
        f"* Classification: **{contract.classification}**; contract v{contract.version}\n"
        f"* Source: `{contract.source.base_url}{contract.source.path}` (pool `{contract.source.pool_name}`)\n"
        f"* Freshness SLA: {freshness}; key: ({', '.join(contract.primary_key)})\n\n"
        "Tasks: extract_and_land -> normalize_and_stage -> validate -> publish (emits the Asset) -> check_freshness.\n"
        "A quarantined batch fails validate (or normalize_and_stage, for rejected drift) without retry; "
        "the log names the quarantine path.\n\n"
        f"| field | type | description |\n|---|---|---|\n{rows}\n"
    )
