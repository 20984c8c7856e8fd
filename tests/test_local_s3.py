"""The local S3 API the object-store tests stand on behaves as S3 does where scdx relies on it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import boto3
import pyarrow.fs as pafs
import pytest
from botocore.exceptions import ClientError

from devtools.local_s3 import S3Endpoint


def _client(endpoint: S3Endpoint):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=endpoint.url,
        region_name=endpoint.region,
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
    )


def test_local_s3_listens_on_loopback_only(s3_endpoint: S3Endpoint) -> None:
    assert s3_endpoint.url.startswith("http://127.0.0.1:")


def test_create_only_put_refuses_to_overwrite_an_object(s3_endpoint: S3Endpoint, s3_bucket: str) -> None:
    client = _client(s3_endpoint)
    client.put_object(Bucket=s3_bucket, Key="raw/abc", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=s3_bucket, Key="raw/abc", Body=b"second", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert client.get_object(Bucket=s3_bucket, Key="raw/abc")["Body"].read() == b"first"


def test_pyarrow_s3_filesystem_reads_and_writes_through_the_endpoint(
    s3_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    fs = pafs.S3FileSystem(
        endpoint_override=s3_endpoint.url,
        access_key=s3_endpoint.access_key,
        secret_key=s3_endpoint.secret_key,
        region=s3_endpoint.region,
    )
    with fs.open_output_stream(f"{s3_bucket}/staged/part-0.bin") as out:
        out.write(b"staged bytes")
    with fs.open_input_stream(f"{s3_bucket}/staged/part-0.bin") as stream:
        assert stream.read() == b"staged bytes"
    listed = fs.get_file_info(pafs.FileSelector(f"{s3_bucket}/staged"))
    assert [info.base_name for info in listed] == ["part-0.bin"]


def test_local_s3_runs_as_a_process_and_announces_its_url(tmp_path: Path) -> None:
    port_file = tmp_path / "s3.url"
    server = subprocess.Popen([sys.executable, "-m", "devtools.local_s3", str(port_file)])
    try:
        # The file appears (renamed into place) once the server listens: poll the event, not a clock.
        while not port_file.exists():
            assert server.poll() is None, "the local S3 server exited before listening"
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=0.05)
        endpoint = S3Endpoint(port_file.read_text())
        assert endpoint.url.startswith("http://127.0.0.1:")
        bucket = endpoint.create_bucket()
        assert bucket in [b["Name"] for b in _client(endpoint).list_buckets()["Buckets"]]
    finally:
        server.terminate()
        server.wait(timeout=30)
