"""A source's API key: from its environment variable or its Airflow connection, registered for
redaction before anything can log it."""

from __future__ import annotations

import os
from collections.abc import Callable

from pipelines.common.redact import install_log_redaction, register_secret
from pipelines.contracts import Auth


def resolve_api_key(
    auth: Auth | None,
    connection_lookup: Callable[[str], str | None] | None = None,
    live: bool = True,
) -> str | None:
    """The API key for a source: its environment variable first, then the Airflow connection.

    ``connection_lookup`` is supplied by Airflow task code (it reads the connection's password);
    the CLI has none. The key is registered for redaction before it is returned. A key the
    contract marks required is demanded only for ``live`` calls: the offline replay server serves
    recordings to a run without one (and sends it on when there is one).
    """
    if auth is None:
        return None
    key = os.environ.get(auth.env) or None
    if key is None and connection_lookup is not None and auth.airflow_conn_id:
        key = connection_lookup(auth.airflow_conn_id) or None
    if key is None and auth.required and live:
        raise PermissionError(
            f"no API key: set {auth.env}"
            + (f" or the Airflow connection {auth.airflow_conn_id!r}" if auth.airflow_conn_id else "")
        )
    register_secret(key)
    if key is not None:
        install_log_redaction()
    return key
