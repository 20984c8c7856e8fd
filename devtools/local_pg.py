"""Fresh databases on the local PostgreSQL (127.0.0.1:5432, user postgres, trust auth) for the tests'
and benches' catalogs: created empty, dropped afterwards (with whatever sessions still hold them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


class PostgresMissing(RuntimeError):
    """No PostgreSQL answers on 127.0.0.1:5432; the message says how to start it."""


@contextmanager
def fresh_database(prefix: str = "scdx_test") -> Iterator[str]:
    """A new empty database named ``<prefix>_<random>``; its SQLAlchemy URL (psycopg 3)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        raise PostgresMissing(
            f"PostgreSQL is needed on 127.0.0.1:5432 (user postgres, database test, trust auth): {exc}. "
            "Start it with 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'."
        ) from None
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
