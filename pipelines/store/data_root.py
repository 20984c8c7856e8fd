"""Where run files live when the data root is a URL: a local directory or an object store.

``SCDX_DATA_URL`` names the root (``s3://bucket/prefix`` or ``file:///path``); keys below it are
the layout's relative paths (``raw/<dataset>/...``, ``staged/<dataset>/<run_id>/...``). One small
interface, two implementations:

- :class:`LocalRoot`: a directory, through the same calls (create-only is ``open(..., "xb")``).
- :class:`ObjectStoreRoot`: an S3 API through ``pyarrow.fs.S3FileSystem`` (reads, writes, listing;
  the same file system the Parquet writer and a release step use). pyarrow has no conditional
  put, so the one create-only write goes through boto3's ``put_object(IfNoneMatch="*")``: the
  store itself refuses to replace an existing key, also against a writer on another host.

Endpoint, region and credentials come from the standard AWS environment variables
(``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ...), never from the URL: a data URL
with credentials in it is refused, so the URL is safe to print in errors and manifests.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from pipelines.common.errors import ScdxError, UsageError
from pipelines.common.redact import redact_text, register_secret

if TYPE_CHECKING:
    import pyarrow.fs as pafs

# Attempts of each object-store request before the run fails (the AWS SDKs' standard retry mode:
# exponential backoff with jitter); a connection that does not open in CONNECT_TIMEOUT_S is one attempt.
MAX_ATTEMPTS = 5
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 60.0


class DataRootError(ScdxError, RuntimeError):
    """The data root could not be read or written (after retries); names the URL, never a key."""


class DataRoot(Protocol):
    """A tree of run files addressed by relative keys (``staged/<dataset>/<run_id>/part-00000.parquet``)."""

    @property
    def url(self) -> str:
        """The root as a URL, safe to show (no credentials)."""
        ...

    def uri(self, key: str) -> str:
        """The full URI of ``key`` (what a reader on another host opens)."""
        ...

    def arrow_location(self, key: str) -> tuple[pafs.FileSystem, str]:
        """The pyarrow file system and path of ``key``, for Parquet readers and writers."""
        ...

    def open_input(self, key: str) -> IO[bytes]:
        """A readable stream of the object at ``key``."""
        ...

    def write(self, key: str, source: Path | bytes) -> None:
        """Put ``source`` at ``key``, replacing it (derived files only: staged, reports)."""
        ...

    def write_create_only(self, key: str, source: Path | bytes) -> bool:
        """Put ``source`` at ``key`` unless the key exists; False (and nothing written) if it does."""
        ...

    def list(self, prefix: str) -> list[str]:
        """The keys under ``prefix`` (recursively), sorted; empty when there are none."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is at ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object at ``key`` if there is one (derived files only: never raw)."""
        ...


def _write_to(writer: IO[bytes], source: Path | bytes) -> None:
    """Write bytes, or a file's content in chunks (memory holds one chunk, whatever the size)."""
    if isinstance(source, bytes):
        writer.write(source)
        return
    with open(source, "rb") as reader:
        while chunk := reader.read(8 << 20):
            writer.write(chunk)


def _check_key(key: str) -> str:
    if not key or key.startswith("/") or any(part in {"", ".", ".."} for part in key.split("/")):
        raise DataRootError(f"invalid key {key!r} under the data root")
    return key


@dataclass(frozen=True)
class LocalRoot:
    """A data root that is a local directory (``file:///path``)."""

    root: Path

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def uri(self, key: str) -> str:
        return (self.root / _check_key(key)).as_uri()

    def arrow_location(self, key: str) -> tuple[pafs.FileSystem, str]:
        import pyarrow.fs as pafs

        return pafs.LocalFileSystem(), str(self.root / _check_key(key))

    def open_input(self, key: str) -> IO[bytes]:
        try:
            return open(self.root / _check_key(key), "rb")
        except OSError as exc:
            raise DataRootError(f"{self.url}: cannot read {key}: {exc.strerror}") from None

    def write(self, key: str, source: Path | bytes) -> None:
        target = self.root / _check_key(key)
        partial = target.with_name(target.name + ".partial")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._copy(source, partial, "wb")
            partial.replace(target)  # whole or not at all
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise DataRootError(f"{self.url}: cannot write {key}: {exc.strerror}") from None

    def write_create_only(self, key: str, source: Path | bytes) -> bool:
        target = self.root / _check_key(key)
        # A name of this call's own: a leftover of a killed writer is never mistaken for the key.
        partial = target.with_name(f"{target.name}.{secrets.token_hex(6)}.partial")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._copy(source, partial, "wb")
            # A hard link fails when the target exists: the local create-only rename.
            os.link(partial, target)
        except FileExistsError:
            return False
        except OSError as exc:
            raise DataRootError(f"{self.url}: cannot write {key}: {exc.strerror}") from None
        finally:
            partial.unlink(missing_ok=True)
        return True

    @staticmethod
    def _copy(source: Path | bytes, target: Path, mode: str) -> None:
        with open(target, mode) as writer:
            _write_to(writer, source)
            writer.flush()
            os.fsync(writer.fileno())

    def list(self, prefix: str) -> list[str]:
        base = self.root / _check_key(prefix)
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.endswith(".partial")
        )

    def exists(self, key: str) -> bool:
        return (self.root / _check_key(key)).is_file()

    def delete(self, key: str) -> None:
        try:
            (self.root / _check_key(key)).unlink(missing_ok=True)
        except OSError as exc:
            raise DataRootError(f"{self.url}: cannot remove {key}: {exc.strerror}") from None


def _endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


@dataclass(frozen=True)
class ObjectStoreRoot:
    """A data root on an S3 API: ``s3://bucket/prefix``, endpoint and credentials from the environment."""

    bucket: str
    prefix: str
    max_attempts: int = MAX_ATTEMPTS
    _clients: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _where(self) -> str:
        """The root and its endpoint (scheme, host and port only: never user information)."""
        endpoint = _endpoint()
        if not endpoint:
            return self.url
        parts = urlsplit(endpoint)
        port = f":{parts.port}" if parts.port else ""
        return f"{self.url} (endpoint {parts.scheme}://{parts.hostname}{port})"

    def _path(self, key: str) -> str:
        return "/".join(p for p in (self.bucket, self.prefix, _check_key(key)) if p)

    def _object_key(self, key: str) -> str:
        return "/".join(p for p in (self.prefix, _check_key(key)) if p)

    def uri(self, key: str) -> str:
        return f"s3://{self._path(key)}"

    @property
    def filesystem(self) -> pafs.S3FileSystem:
        """One pyarrow S3 file system per root (it holds a connection pool)."""
        cached = self._clients.get("arrow")
        if cached is None:
            import pyarrow.fs as pafs

            endpoint = _endpoint()
            options: dict[str, object] = {}
            if endpoint:
                # pyarrow does not read AWS_ENDPOINT_URL itself; an endpoint means path-style.
                parts = urlsplit(endpoint)
                port = f":{parts.port}" if parts.port else ""
                options = {"endpoint_override": f"{parts.hostname}{port}", "scheme": parts.scheme or "https"}
            cached = pafs.S3FileSystem(
                region=_region(),
                connect_timeout=CONNECT_TIMEOUT_S,
                request_timeout=REQUEST_TIMEOUT_S,
                retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=self.max_attempts),
                **options,
            )
            self._clients["arrow"] = cached
        arrow: pafs.S3FileSystem = cached
        return arrow

    def _boto3(self) -> object:
        cached = self._clients.get("boto3")
        if cached is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise UsageError(
                    f"{self.url}: an object-store data root needs boto3: pip install 'scdx[scale]'"
                ) from None

            cached = boto3.client(
                "s3",
                endpoint_url=_endpoint(),
                region_name=_region(),
                config=Config(
                    retries={"max_attempts": self.max_attempts, "mode": "standard"},
                    connect_timeout=CONNECT_TIMEOUT_S,
                    read_timeout=REQUEST_TIMEOUT_S,
                ),
            )
            self._clients["boto3"] = cached
        return cached

    def _failure(self, doing: str, key: str, error: BaseException) -> DataRootError:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            register_secret(os.environ.get(name))  # the SDKs' messages never carry them; be sure
        detail = redact_text(str(error).splitlines()[0] if str(error) else type(error).__name__)
        return DataRootError(
            f"{self._where()}: cannot {doing} {key} (tried up to {self.max_attempts} times): {detail}"
        )

    def arrow_location(self, key: str) -> tuple[pafs.FileSystem, str]:
        return self.filesystem, self._path(key)

    def open_input(self, key: str) -> IO[bytes]:
        try:
            stream: IO[bytes] = self.filesystem.open_input_stream(self._path(key))
        except OSError as exc:
            raise self._failure("read", key, exc) from None
        return stream

    def write(self, key: str, source: Path | bytes) -> None:
        # pyarrow's S3 output stream is a multipart upload: the object appears when it completes,
        # and an upload that fails is aborted, so a reader never sees part of it.
        try:
            with self.filesystem.open_output_stream(self._path(key)) as writer:
                _write_to(writer, source)
        except OSError as exc:
            raise self._failure("write", key, exc) from None

    def write_create_only(self, key: str, source: Path | bytes) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._boto3()
        try:
            with _body(source) as body:
                client.put_object(  # type: ignore[attr-defined]
                    Bucket=self.bucket, Key=self._object_key(key), Body=body, IfNoneMatch="*"
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"PreconditionFailed", "412"}:
                return False
            raise self._failure("write", key, exc) from None
        except (BotoCoreError, OSError) as exc:
            raise self._failure("write", key, exc) from None
        return True

    def list(self, prefix: str) -> list[str]:
        import pyarrow.fs as pafs

        base = self._path(prefix)
        try:
            infos = self.filesystem.get_file_info(
                pafs.FileSelector(base, recursive=True, allow_not_found=True)
            )
        except OSError as exc:
            raise self._failure("list", prefix, exc) from None
        start = len(self._path("x")) - 1  # bucket/prefix/ stripped
        return sorted(i.path[start:] for i in infos if i.type == pafs.FileType.File)

    def exists(self, key: str) -> bool:
        import pyarrow.fs as pafs

        try:
            return bool(self.filesystem.get_file_info(self._path(key)).type == pafs.FileType.File)
        except OSError as exc:
            raise self._failure("look up", key, exc) from None

    def delete(self, key: str) -> None:
        # boto3, not pyarrow: pyarrow leaves an empty "directory" object behind the last file.
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._boto3().delete_object(Bucket=self.bucket, Key=self._object_key(key))  # type: ignore[attr-defined]
        except (BotoCoreError, ClientError) as exc:
            raise self._failure("remove", key, exc) from None


@contextmanager
def _body(source: Path | bytes) -> Iterator[IO[bytes] | bytes]:
    if isinstance(source, bytes):
        yield source
        return
    with open(source, "rb") as handle:
        yield handle


def open_data_root(url: str, max_attempts: int = MAX_ATTEMPTS) -> DataRoot:
    """The data root a URL names: ``s3://bucket[/prefix]`` or ``file:///absolute/path``
    (``max_attempts``: of each object-store request, retries included)."""
    parts = urlsplit(url)
    if parts.username or parts.password or parts.query:
        # Credentials in the URL would end up in run records and error messages.
        raise UsageError(
            "SCDX_DATA_URL must not carry credentials or options: set AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL in the environment instead"
        )
    if parts.scheme == "s3" and parts.hostname:
        return ObjectStoreRoot(bucket=parts.netloc, prefix=parts.path.strip("/"), max_attempts=max_attempts)
    if parts.scheme == "file" and parts.path.startswith("/"):
        return LocalRoot(Path(parts.path))
    raise UsageError(f"SCDX_DATA_URL {url!r}: expected s3://bucket/prefix or file:///absolute/path")
