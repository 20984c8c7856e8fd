"""An S3 API on 127.0.0.1 for the object-store tests, the Celery cluster test and the bench.

No S3 server is packaged for Debian bookworm (MinIO, Garage, SeaweedFS) and nothing may leave the
machine, so the tests use moto's server: the real S3 wire protocol (path-style, SigV4, conditional
create-only puts with ``If-None-Match: *``), kept in memory. It runs on a thread of the calling
process (``local_s3()``) or as a process of its own (``python -m devtools.local_s3 PORT_FILE``) for
tests whose Airflow workers are other processes.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from uuid import uuid4

# moto signs nothing itself: any key pair is accepted, but clients refuse to sign without one.
ACCESS_KEY = "scdx-test-access-key"
SECRET_KEY = "scdx-test-secret-key"  # noqa: S105 (not a secret: moto accepts any pair)
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Endpoint:
    """Where the local S3 API listens, and the credentials clients present to it."""

    url: str  # http://127.0.0.1:PORT
    region: str = REGION
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    def environment(self) -> Mapping[str, str]:
        """The variables AWS clients (pyarrow.fs, boto3, pyiceberg) read to reach this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def create_bucket(self, prefix: str = "scdx") -> str:
        """A new empty bucket with a unique name (tests share one server, never a bucket)."""
        import boto3

        name = f"{prefix}-{uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )
        client.create_bucket(Bucket=name)
        return name


@contextmanager
def local_s3() -> Iterator[S3Endpoint]:
    """Run moto's S3 server on 127.0.0.1 (a free port) on a thread for the duration."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO (to stderr, when nothing else is configured): keep its
    # warnings and errors only, so a failing test's output or a bench's table is not buried.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Endpoint(f"http://{host}:{port}")
    finally:
        server.stop()


def serve(port_file: Path, stop: Event | None = None) -> None:
    """Serve until stopped (SIGTERM ends the process), writing the URL to ``port_file`` once
    listening: the file's appearance is the event a parent waits for."""
    with local_s3() as endpoint:
        partial = port_file.with_suffix(".partial")
        partial.write_text(endpoint.url)
        os.replace(partial, port_file)
        (stop or Event()).wait()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
