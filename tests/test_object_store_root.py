"""A data root on an object store (SCDX_DATA_URL=s3://...): raw, staged, quarantine and reports on
the local S3 API (moto on 127.0.0.1), raw bytes create-only under their sha256."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import socket
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devtools.local_s3 import S3Endpoint
from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.orchestration import tasks
from pipelines.orchestration.refresh import refresh_dataset
from pipelines.replay.server import ReplayServer
from pipelines.sources.window import Window
from pipelines.stages.land import LandError
from pipelines.stages.quarantine import QuarantinedError
from pipelines.stages.root_files import fetch_landed, raw_key, staged_keys
from pipelines.stages.stage import StageError
from pipelines.store.data_root import DataRootError, ObjectStoreRoot, open_data_root
from pipelines.store.layout import Layout
from pipelines.store.runs import RunRecord
from pipelines.store.tiers import open_public

from .conftest import RECORDINGS, SCHEMAS, TEST_API_KEY, catalog_runs
from .test_refresh import _poison
from .test_shared_schemas import _edit_month

DATASET = "census_trade_imports"
WINDOW = Window(date(2026, 1, 1), date(2026, 3, 1))


@dataclass(frozen=True)
class S3Root:
    """The test's data root on its own bucket of the local S3 API, and how to look at it."""

    census: Contract
    registry: Registry
    settings: Settings
    endpoint: S3Endpoint
    bucket: str

    def refresh(self, base_url: str, settings: Settings | None = None) -> RunRecord:
        """Refresh the Census imports of WINDOW from ``base_url`` with the data root on the bucket."""
        return refresh_dataset(self.census, self.registry, settings or self.settings, base_url, window=WINDOW)

    def objects(self, prefix: str) -> dict[str, str]:
        """Every object under ``prefix``: key -> ETag (what changes when an object is replaced)."""
        client = boto3.client("s3", endpoint_url=self.endpoint.url)
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        client = boto3.client("s3", endpoint_url=self.endpoint.url)
        body: bytes = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def manifest(self, run_id: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.read(f"scdx/raw/{DATASET}/{run_id}/_manifest.json"))
        return document


@pytest.fixture
def s3(
    census: Contract, registry: Registry, settings: Settings, s3_endpoint: S3Endpoint, s3_bucket: str
) -> S3Root:
    on_s3 = settings.with_overrides(data_url=f"s3://{s3_bucket}/scdx")
    return S3Root(census, registry, on_s3, s3_endpoint, s3_bucket)


def test_refresh_lands_each_response_on_s3_under_the_sha256_of_its_bytes(
    s3: S3Root,
    replay: ReplayServer,
) -> None:
    run = s3.refresh(replay.url)
    assert run.status == "published"
    manifest = s3.manifest(run.run_id)
    assert [p["partition"] for p in manifest["pages"]] == ["2026-01", "2026-02", "2026-03"]
    for page in manifest["pages"]:
        assert page["object"] == f"raw/{DATASET}/sha256/{page['sha256']}"
        body = s3.read(f"scdx/{page['object']}")
        assert hashlib.sha256(body).hexdigest() == page["sha256"] and len(body) == page["bytes"]
        # The manifest maps the request that fetched the bytes to their key.
        assert page["url"].startswith(replay.url + "/data/timeseries/intltrade/imports/hs?")
    raw = s3.objects(f"scdx/raw/{DATASET}/sha256/")
    assert len(raw) == len({p["sha256"] for p in manifest["pages"]})


def test_landing_identical_bytes_again_writes_no_new_object_and_replaces_none(
    s3: S3Root,
    replay: ReplayServer,
) -> None:
    first = s3.refresh(replay.url)
    before = s3.objects(f"scdx/raw/{DATASET}/sha256/")
    second = s3.refresh(replay.url)
    assert second.status == "unchanged"
    assert s3.objects(f"scdx/raw/{DATASET}/sha256/") == before
    # The second run's manifest points at the first run's objects.
    objects = [[p["object"] for p in s3.manifest(r.run_id)["pages"]] for r in (first, second)]
    assert objects[0] == objects[1]


def test_a_different_response_adds_a_key_and_never_overwrites_one(
    s3: S3Root,
    recordings_copy: Path,
) -> None:
    with ReplayServer(recordings_copy) as server:
        s3.refresh(server.url)
    before = s3.objects(f"scdx/raw/{DATASET}/sha256/")
    _poison(recordings_copy, "2026-03", "country_above_total")
    with ReplayServer(recordings_copy) as server:
        s3.refresh(server.url)
    after = s3.objects(f"scdx/raw/{DATASET}/sha256/")
    assert len(after) == len(before) + 1
    assert {key: after[key] for key in before} == before
    # The store itself refuses to replace a landed object, whoever asks.
    root = open_data_root(s3.settings.data_url or "")
    landed_key = next(iter(before)).removeprefix("scdx/")
    assert root.write_create_only(landed_key, b"other bytes") is False
    assert s3.objects(f"scdx/{landed_key}") == {f"scdx/{landed_key}": before[f"scdx/{landed_key}"]}


def _staged_table(tables: list[pa.Table]) -> list[dict[str, Any]]:
    rows = [row for table in tables for row in table.to_pylist()]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def test_staged_parquet_is_under_the_run_prefix_and_equals_a_local_run_of_the_same_recordings(
    s3: S3Root,
    tmp_path: Path,
    replay: ReplayServer,
) -> None:
    remote = s3.refresh(replay.url)
    local_dir = tmp_path / "local"
    local_dir.mkdir()
    local = s3.refresh(replay.url, s3.settings.with_overrides(data_dir=local_dir, data_url=None))
    root = open_data_root(s3.settings.data_url or "")
    keys, rows = staged_keys(DATASET, remote.run_id, root)
    assert keys == [f"staged/{DATASET}/{remote.run_id}/part-00000.parquet"] and rows == remote.rows_staged
    from_s3 = _staged_table(
        [pq.read_table(path, filesystem=fs) for fs, path in map(root.arrow_location, keys)]
    )
    local_files = sorted(Layout(local_dir).staged_dir(DATASET, local.run_id).glob("*.parquet"))
    assert from_s3 == _staged_table([pq.read_table(f) for f in local_files])
    assert len(from_s3) == local.rows_staged > 0


def test_a_quarantined_batch_is_put_in_the_quarantine_prefix_with_its_reason(
    s3: S3Root,
    layout: Layout,
    recordings_copy: Path,
) -> None:
    _poison(recordings_copy, "2026-03", "negative_value")
    with ReplayServer(recordings_copy) as bad, pytest.raises(QuarantinedError) as caught:
        s3.refresh(bad.url)
    run_id = caught.value.run_id
    prefix = f"scdx/quarantine/{DATASET}/{run_id}/"
    assert sorted(s3.objects(prefix)) == [
        prefix + "gx_result.json",
        prefix + "part-00000.parquet",
        prefix + "validation.json",
    ]
    report = json.loads(s3.read(prefix + "validation.json"))
    assert report["passed"] is False and report["outcome"] == "failed (1 blocking)"
    location = f"s3://{s3.bucket}/{prefix.rstrip('/')}"
    assert location in str(caught.value) and "ExpectColumnValuesToBeBetween(general_value_usd)" in str(
        caught.value
    )
    assert [r["quarantine_path"] for r in catalog_runs(layout)] == [location]
    # A refused batch is not left where a release step would take it from.
    assert s3.objects(f"scdx/staged/{DATASET}/{run_id}/") == {}


def test_a_batch_refused_for_drift_is_put_in_quarantine_pointing_at_its_raw_run_on_the_store(
    s3: S3Root, recordings_copy: Path
) -> None:
    _edit_month(recordings_copy, "2026-03", 4, "1.2e9 est.")
    with ReplayServer(recordings_copy) as server, pytest.raises(QuarantinedError) as caught:
        s3.refresh(server.url)
    prefix = f"scdx/quarantine/{DATASET}/{caught.value.run_id}"
    assert list(s3.objects(prefix + "/")) == [f"{prefix}/drift.json"]
    report = json.loads(s3.read(f"{prefix}/drift.json"))
    assert "field 'general_value_usd': type_change" in report["reason"]
    assert report["raw"] == f"s3://{s3.bucket}/scdx/raw/{DATASET}/{caught.value.run_id}"
    assert s3.objects(f"scdx/raw/{DATASET}/{caught.value.run_id}/_manifest.json")
    assert s3.objects(f"scdx/staged/{DATASET}/") == {}
    assert f"s3://{s3.bucket}/{prefix}" in str(caught.value)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_object_store_fails_the_run_naming_the_url_not_the_credentials(
    s3: S3Root,
    layout: Layout,
    replay: ReplayServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unreachable = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", unreachable)
    with pytest.raises(DataRootError) as caught:
        s3.refresh(replay.url, s3.settings.with_overrides(data_max_attempts=2))
    message = str(caught.value)
    assert message.startswith(
        f"s3://{s3.bucket}/scdx (endpoint {unreachable}): cannot look up raw/{DATASET}/sha256/"
    )
    assert "(tried up to 2 times): " in message and "Could not connect to server" in message
    assert s3.endpoint.access_key not in message and s3.endpoint.secret_key not in message
    (recorded,) = catalog_runs(layout)
    assert recorded["status"] == "failed" and f"s3://{s3.bucket}/scdx" in recorded["error"]
    # Nothing of the failed run is visible on the store once it is reachable again.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint.url)
    assert s3.objects("scdx/") == {}


def test_credentials_never_appear_in_objects_manifests_or_logs(
    s3: S3Root,
    recordings_copy: Path,
    api_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    _poison(recordings_copy, "2026-03", "negative_value")
    with ReplayServer(recordings_copy) as server, pytest.raises(QuarantinedError):
        s3.refresh(server.url)
    objects = s3.objects("scdx/")
    assert any("/_manifest.json" in key for key in objects) and any("/quarantine/" in key for key in objects)
    secrets = (s3.endpoint.access_key, s3.endpoint.secret_key, api_key, TEST_API_KEY)
    for key in objects:
        body = s3.read(key)
        assert not any(secret.encode() in body for secret in secrets), key
    assert f"s3://{s3.bucket}/scdx" in caplog.text
    assert not any(secret in caplog.text for secret in secrets)


def test_airflow_tasks_read_what_an_earlier_task_put_on_the_store_not_its_local_disk(
    s3: S3Root,
    tmp_path: Path,
    replay: ReplayServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_dir = tmp_path / "worker"
    for name, value in {
        "SCDX_DATA_DIR": str(data_dir),
        "SCDX_DATA_URL": f"s3://{s3.bucket}/scdx",
        "SCDX_SCHEMAS_DIR": str(SCHEMAS),
        "SCDX_RECORDINGS_DIR": str(RECORDINGS),
    }.items():
        monkeypatch.setenv(name, value)
    state = tasks.extract_and_land(DATASET, replay.url, date(2026, 3, 1), date(2026, 3, 31))
    # Each next task runs as if on another host: what the earlier one wrote locally is gone.
    shutil.rmtree(data_dir / "raw")
    state = tasks.normalize_and_stage(state)
    shutil.rmtree(data_dir / "staged")
    state = tasks.validate(state)
    assert state["validation"].startswith("passed")
    reports = s3.objects(f"scdx/reports/{DATASET}/{state['run_id']}/")
    assert sorted(Path(k).name for k in reports) == ["gx_result.json", "validation.json"]
    keys, rows = staged_keys(DATASET, state["run_id"], ObjectStoreRoot(s3.bucket, "scdx"))
    assert rows == state["rows_staged"] > 0 and len(keys) == 1
    shutil.rmtree(data_dir / "staged", ignore_errors=True)
    state = tasks.publish(state)
    assert state["status"] == "published" and state["rows_published"] == rows
    # The release's lineage names the files where every host finds them: their keys on the store.
    with open_public(Layout(data_dir)) as con:
        lineage = con.execute(
            "SELECT kind, path FROM meta.run_files WHERE run_id = ? ORDER BY ALL", [state["run_id"]]
        )
        raw = sorted(
            ("raw", f"raw/{DATASET}/sha256/{p['sha256']}") for p in s3.manifest(state["run_id"])["pages"]
        )
        assert lineage.fetchall() == [*raw, ("staged", keys[0])]


def test_a_run_manifest_naming_a_path_outside_its_run_is_refused_before_anything_is_read(
    tmp_path: Path,
) -> None:
    root = open_data_root((tmp_path / "root").as_uri())
    page = {"file": "../../outside.json", "sha256": hashlib.sha256(b"[]").hexdigest(), "bytes": 2}
    root.write_create_only(raw_key(DATASET, page["sha256"]), b"[]")
    root.write_create_only(f"raw/{DATASET}/run-1/_manifest.json", json.dumps({"pages": [page]}).encode())
    with pytest.raises(
        LandError, match=r"names a file '\.\./\.\./outside\.json' that is not a plain file name"
    ):
        fetch_landed(DATASET, "run-1", root, tmp_path / "task")
    assert not (tmp_path / "outside.json").exists()


def test_objects_without_their_run_marker_are_no_landed_or_staged_run(s3: S3Root, tmp_path: Path) -> None:
    # What a task killed between its uploads leaves: objects, but not the manifest or marker that
    # would make them a run. The next task refuses them instead of reading part of a run.
    root = open_data_root(s3.settings.data_url or "")
    assert root.write_create_only(raw_key(DATASET, hashlib.sha256(b"[]").hexdigest()), b"[]")
    root.write(f"staged/{DATASET}/run-1/part-00000.parquet", b"PAR1")
    with pytest.raises(
        LandError, match=rf"s3://{s3.bucket}/scdx/raw/{DATASET}/run-1/_manifest.json does not exist"
    ):
        fetch_landed(DATASET, "run-1", root, tmp_path)
    with pytest.raises(
        StageError, match=rf"no complete staged run run-1 under s3://{s3.bucket}/scdx/staged/"
    ):
        staged_keys(DATASET, "run-1", root)
