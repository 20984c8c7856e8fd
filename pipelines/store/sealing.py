"""Sealed catalog values: the restricted tier's partition keys, encrypted in the operational catalog.

A restricted table partitioned by partner records, in ``scdx_release_tables``, which partitions
each segment holds (``state``) and which run wrote which partition (``runs``): the keys name
partners. The catalog is shared (one SQLite file next to the public tier, or a PostgreSQL database
other machines read), so those two values of a restricted row are stored as Fernet tokens
(``cryptography``: AES-128-CBC with an HMAC-SHA256, a well-kept scheme) and opened in memory when
read. The key is the tier's own file (``restricted/catalog.key``, 0400 in a 0700 directory), made
on the first write; a key that is missing or does not open a row fails naming the key file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import Connection

from pipelines.common.errors import ScdxError
from pipelines.store.catalog_tables import release_tables
from pipelines.store.layout import fsync_path

# What a sealed value starts with: a plain JSON document never does, so rows written before
# sealing (or by the public tier) read as they are.
PREFIX = "sealed:v1:"
SEALED_FIELDS = ("state", "runs")


class CatalogKeyError(ScdxError):
    """The key of a sealed tier is missing or does not open its catalog rows (names the file, never the key)."""


class TierKey:
    """The key file of a tier whose catalog rows are sealed; read (or made) once, on first use."""

    def __init__(self, tier: str, path: Path) -> None:
        self.tier = tier
        self.path = path
        self._fernet: Fernet | None = None

    def _load(self) -> Fernet:
        if self._fernet is None:
            try:
                self._fernet = Fernet(self.path.read_bytes().strip())
            except FileNotFoundError:
                raise CatalogKeyError(
                    f"the {self.tier} tier's catalog key {self.path} is missing: its catalog rows are "
                    "sealed with it and cannot be read without it (restore the file from a backup)"
                ) from None
            except ValueError:
                raise CatalogKeyError(
                    f"the {self.tier} tier's catalog key {self.path} is not a Fernet key (damaged?)"
                ) from None
        return self._fernet

    def create(self, rows_sealed: bool) -> None:
        """Make the key file if there is none (0400 in a 0700 directory). Two processes making it
        at once: the first link wins, the other reads that one. ``rows_sealed``: the catalog already
        holds rows sealed with a key, so a missing file is a lost key, never replaced by a new one."""
        if self.path.exists():
            return
        if rows_sealed:
            self._load()  # raises: the key those rows need is gone
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        temporary = directory / f".{self.path.name}.{secrets.token_hex(4)}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        try:
            os.write(descriptor, Fernet.generate_key())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        try:
            os.link(temporary, self.path)  # never replaces a key another process made meanwhile
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
        fsync_path(directory)

    def seal(self, text: str) -> str:
        """``text`` as a sealed value."""
        return PREFIX + self._load().encrypt(text.encode()).decode("ascii")

    def open(self, value: str, where: str) -> str:
        """A value as written: sealed ones decrypted (``where`` names the row in errors)."""
        if not value.startswith(PREFIX):
            return value
        try:
            return self._load().decrypt(value[len(PREFIX) :].encode("ascii")).decode()
        except InvalidToken:
            raise CatalogKeyError(
                f"the {self.tier} tier's catalog key {self.path} does not open {where}: the key was "
                "replaced or the row damaged (restore the key file the rows were sealed with)"
            ) from None


def has_sealed_rows(db: Connection, tier: str) -> bool:
    """Whether the catalog holds rows of ``tier`` sealed with a key (then a missing key is lost)."""
    found = db.execute(
        sa.select(release_tables.c.number)
        .where(release_tables.c.tier == tier, release_tables.c.state.startswith(PREFIX))
        .limit(1)
    ).first()
    return found is not None


def _map_fields(row: Mapping[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    return {name: change(value) if name in SEALED_FIELDS else value for name, value in row.items()}


def seal_row(key: TierKey | None, row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``scdx_release_tables`` row as stored: its partition keys sealed when the tier has a key."""
    return dict(row) if key is None else _map_fields(row, key.seal)


def open_row(key: TierKey | None, row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored ``scdx_release_tables`` row with its sealed values opened."""
    if key is None:
        return dict(row)
    where = f"release {row.get('number')}'s table {row.get('table_name')}"
    return _map_fields(row, lambda value: key.open(value, where))
