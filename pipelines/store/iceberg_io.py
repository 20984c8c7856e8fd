"""What the Iceberg store needs from the world around it: the pyiceberg SQL catalog on PostgreSQL,
the object store holding the warehouse, a lock every publisher on every host sees, and DuckDB
views over the data files of a pinned snapshot.

Endpoint, region and credentials come from the environment (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``), as every AWS client reads them;
they are handed to clients, never written anywhere.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import duckdb
import sqlalchemy as sa

from pipelines.common.sql import quote_name
from pipelines.store import StoreError, TableSchema
from pipelines.store.iceberg_tables import DataFile

if TYPE_CHECKING:
    from pyarrow.fs import S3FileSystem
    from pyiceberg.catalog.sql import SqlCatalog

# The SQL catalog's name in its tables (several deployments may share one PostgreSQL database).
CATALOG_NAME = "scdx"


def _aws(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def _iceberg_url(catalog_url: str) -> str:
    """SQLAlchemy URL for pyiceberg: the psycopg (3) driver, which the project installs."""
    url = sa.engine.make_url(catalog_url)
    if url.get_backend_name() != "postgresql":
        raise StoreError(
            "the Iceberg store needs its catalog on PostgreSQL: set SCDX_CATALOG_URL=postgresql://user@host/db "
            f"(now {url.get_backend_name()})"
        )
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def open_iceberg_catalog(catalog_url: str, warehouse: str) -> SqlCatalog:
    """The pyiceberg SQL catalog on the PostgreSQL database at ``catalog_url``, warehouse on the object store."""
    from pyiceberg.catalog.sql import SqlCatalog

    properties = {"uri": _iceberg_url(catalog_url), "warehouse": warehouse, "pool_pre_ping": "true"}
    for key, variable in (
        ("s3.endpoint", "AWS_ENDPOINT_URL"),
        ("s3.access-key-id", "AWS_ACCESS_KEY_ID"),
        ("s3.secret-access-key", "AWS_SECRET_ACCESS_KEY"),
        ("s3.region", "AWS_REGION"),
    ):
        value = _aws(variable)
        if value:
            properties[key] = value
    try:
        return SqlCatalog(CATALOG_NAME, **properties)
    except sa.exc.OperationalError as exc:
        raise StoreError(
            f"the Iceberg catalog on {sa.engine.make_url(catalog_url).render_as_string(hide_password=True)} "
            f"cannot be reached: {exc.orig}. Start that PostgreSQL server or point SCDX_CATALOG_URL at one "
            "(docs/scaling.md)"
        ) from None


@dataclass(frozen=True)
class ObjectInfo:
    """An object of the store: its size and the checksum the store keeps for it (S3's ETag)."""

    bytes: int
    etag: str


class ObjectStore:
    """The bucket holding the warehouse: object facts, whole reads, listings and deletes (boto3)."""

    def __init__(self) -> None:
        import boto3

        self.client = boto3.client(
            "s3", endpoint_url=_aws("AWS_ENDPOINT_URL"), region_name=_aws("AWS_REGION", "us-east-1")
        )

    @staticmethod
    def split(uri: str) -> tuple[str, str]:
        parsed = urlparse(uri)
        return parsed.netloc, parsed.path.lstrip("/")

    def info(self, uri: str) -> ObjectInfo | None:
        """Size and ETag of an object, or None when it is missing."""
        from botocore.exceptions import ClientError

        bucket, key = self.split(uri)
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(int(head["ContentLength"]), str(head["ETag"]).strip('"'))

    def sha256(self, uri: str) -> str | None:
        """The sha256 of an object's bytes (read in full), or None when it is missing."""
        from botocore.exceptions import ClientError

        bucket, key = self.split(uri)
        digest = hashlib.sha256()
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError:
            return None
        for chunk in body.iter_chunks(1 << 20):
            digest.update(chunk)
        return digest.hexdigest()

    def infos(self, prefix_uri: str) -> dict[str, ObjectInfo]:
        """Size and ETag of every object under a prefix (a listing: a thousand objects a request)."""
        bucket, prefix = self.split(prefix_uri)
        found: dict[str, ObjectInfo] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found[f"s3://{bucket}/{item['Key']}"] = ObjectInfo(
                    int(item["Size"]), str(item["ETag"]).strip('"')
                )
        return found

    def list(self, prefix_uri: str) -> list[str]:
        """Every object under a prefix, as URIs."""
        bucket, prefix = self.split(prefix_uri)
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend(f"s3://{bucket}/{item['Key']}" for item in page.get("Contents", []))
        return found

    def delete(self, uris: Sequence[str]) -> None:
        for start in range(0, len(uris), 1000):
            batch = uris[start : start + 1000]
            by_bucket: dict[str, list[dict[str, str]]] = {}
            for uri in batch:
                bucket, key = self.split(uri)
                by_bucket.setdefault(bucket, []).append({"Key": key})
            for bucket, keys in by_bucket.items():
                self.client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def arrow_filesystem() -> S3FileSystem:
    """pyarrow's S3 file system on the configured endpoint: DuckDB scans data files through it."""
    from pyarrow.fs import S3FileSystem

    endpoint = _aws("AWS_ENDPOINT_URL")
    parsed = urlparse(endpoint) if endpoint else None
    return S3FileSystem(
        access_key=_aws("AWS_ACCESS_KEY_ID"),
        secret_key=_aws("AWS_SECRET_ACCESS_KEY"),
        region=_aws("AWS_REGION", "us-east-1"),
        endpoint_override=parsed.netloc if parsed else None,
        scheme=parsed.scheme if parsed else "https",
    )


class DataFileReader:
    """Scans of a store's data files through pyarrow's S3 file system. A data file never changes
    under its name (publishes check each one's ETag before building on it), so its Parquet footer
    is read once per process and kept: a reader that opens release after release fetches only
    the row groups its queries read."""

    MAX_FOOTERS = 20_000

    def __init__(self, filesystem: Any) -> None:
        import pyarrow.dataset as ds

        self.filesystem = filesystem
        self.format = ds.ParquetFileFormat()
        self._fragments: dict[str, Any] = {}

    def dataset(self, files: Sequence[DataFile]) -> Any:
        """A pyarrow dataset of ``files`` (at least one), their sizes as recorded (no HEAD request)."""
        import pyarrow.dataset as ds

        if len(self._fragments) > self.MAX_FOOTERS:
            self._fragments.clear()
        fragments = []
        for data_file in files:
            fragment = self._fragments.get(data_file.path)
            if fragment is None:
                fragment = self.format.make_fragment(
                    data_file.path.removeprefix("s3://"),
                    filesystem=self.filesystem,
                    file_size=data_file.bytes,
                )
                fragment.ensure_complete_metadata()
                self._fragments[data_file.path] = fragment
            fragments.append(fragment)
        return ds.FileSystemDataset(fragments, fragments[0].physical_schema, self.format, self.filesystem)


def register_files(
    con: duckdb.DuckDBPyConnection,
    name: str,
    files: Sequence[DataFile],
    schema: TableSchema,
    reader: DataFileReader,
) -> None:
    """``name`` (schema.table) becomes a view over the Parquet data files ``files`` (a snapshot's),
    scanned lazily through pyarrow: only what a query reads is fetched."""
    schema_name, table = name.split(".", 1)
    view = f"{quote_name(schema_name)}.{quote_name(table)}"
    if not files:  # an empty snapshot: no file to scan, the columns still typed
        columns = ", ".join(f"NULL::{c.type} AS {quote_name(c.name)}" for c in schema.columns)
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT {columns} WHERE false")
        return
    handle = f"_files_{schema_name}_{table}"
    con.register(handle, reader.dataset(files))
    # Iceberg has no 8- or 16-bit integers and keeps its own decimal and time types: the view
    # gives analysts the published table's types, as the local store's release file does.
    columns = ", ".join(
        f"CAST({quote_name(c.name)} AS {c.type}) AS {quote_name(c.name)}" for c in schema.columns
    )
    con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT {columns} FROM {quote_name(handle)}")


@contextmanager
def try_publish_lock(engine: sa.Engine, tier: str, namespace: str) -> Iterator[bool]:
    """The publish lock of :func:`publish_lock` if it is free now; yields whether it was taken."""
    key = _lock_key(tier, namespace)
    with engine.connect() as session:
        taken = bool(session.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
        try:
            yield taken
        finally:
            if taken:
                session.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            session.commit()


def _lock_key(tier: str, namespace: str) -> int:
    return zlib.crc32(f"scdx-iceberg:{namespace}:{tier}".encode())


@contextmanager
def publish_lock(engine: sa.Engine, tier: str, namespace: str) -> Iterator[None]:
    """One publisher at a time per tier and namespace, across hosts: a PostgreSQL advisory lock,
    held by a session (a killed publisher's session ends, and its lock with it)."""
    key = _lock_key(tier, namespace)
    with engine.connect() as session:
        session.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            session.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            session.commit()
