"""The pipeline on the Iceberg store (issue 24): ``scdx refresh`` with its data root on the local S3
API (moto on 127.0.0.1) and its releases as Iceberg snapshots in a PostgreSQL catalog publishes the
same tables and marts, row for row, as the single-machine default from the same recordings; analysts
read any kept release through pyiceberg's files into DuckDB (``scdx query --release N``) with the
``meta.*`` tables and every comment they have on one machine; rollback pins an older release.

One round (module fixture) runs both refreshes; the tests below each check one thing it must show.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from devtools.airflow_cluster import SCDX
from devtools.local_s3 import S3Endpoint
from devtools.release_checks import CROSS_STORE_DIGITS, checksums
from pipelines.replay.server import ReplayServer
from pipelines.store.iceberg import IcebergStore
from pipelines.store.tiers import open_current

from .conftest import RECORDINGS, SCHEMAS, postgres_database, store_environment

# Two datasets, run one after the other: the second refresh makes a second release, so there is
# an earlier release to pin and to roll back to.
DATASETS = ("usgs_mineral_production", "afdc_charging_stations")


@dataclass
class Round:
    local: dict[str, str]  # the environment of each store's refreshes
    iceberg: dict[str, str]


def _refresh(env: dict[str, str], replay: ReplayServer, dataset: str) -> None:
    result = subprocess.run(
        [SCDX, "refresh", dataset, "--replay-url", replay.url],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"scdx refresh {dataset}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )


def scdx(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCDX, *args],
        env={**os.environ, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def iceberg_round(s3_endpoint: S3Endpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Round]:
    root = tmp_path_factory.mktemp("iceberg-pipeline")
    databases = postgres_database()
    catalog_url = next(databases)
    local = {"SCDX_DATA_DIR": str(root / "one-machine"), "SCDX_SCHEMAS_DIR": str(SCHEMAS)}
    iceberg = {
        **s3_endpoint.environment(),
        "SCDX_DATA_DIR": str(root / "iceberg"),  # this host's scratch space only
        "SCDX_SCHEMAS_DIR": str(SCHEMAS),
        "SCDX_STORE_KIND": "iceberg",
        "SCDX_DATA_URL": f"s3://{s3_endpoint.create_bucket()}/scdx",
        "SCDX_CATALOG_URL": catalog_url,
    }
    try:
        with ReplayServer(RECORDINGS) as replay:
            for dataset in DATASETS:
                _refresh(local, replay, dataset)
                _refresh(iceberg, replay, dataset)
        yield Round(local, iceberg)
    finally:
        next(databases, None)


def _checksums(env: dict[str, str], release: int | None = None) -> dict[str, tuple[int, int]]:
    with store_environment(env) as layout, open_current(layout, "public", release) as con:
        return checksums(con, significant=CROSS_STORE_DIGITS)


def test_refresh_on_iceberg_publishes_the_tables_and_marts_one_machine_publishes(
    iceberg_round: Round,
) -> None:
    on_iceberg, on_one_machine = _checksums(iceberg_round.iceberg), _checksums(iceberg_round.local)
    assert {f"curated.{d}" for d in DATASETS} <= set(on_iceberg)
    assert any(name.startswith("marts.") for name in on_iceberg)
    assert on_iceberg == on_one_machine


def test_raw_staged_and_table_data_are_on_the_object_store_not_on_the_host(iceberg_round: Round) -> None:
    import boto3

    env = iceberg_round.iceberg
    bucket, _, prefix = env["SCDX_DATA_URL"].removeprefix("s3://").partition("/")
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"])
    keys = [
        item["Key"].removeprefix(prefix + "/")
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        for item in page.get("Contents", [])
    ]
    for dataset in DATASETS:
        assert any(k.startswith(f"raw/{dataset}/sha256/") for k in keys), dataset
        assert any(k.startswith(f"staged/{dataset}/") and k.endswith(".parquet") for k in keys), dataset
        assert any(k.startswith(f"warehouse/scdx_public_curated/{dataset}/data/") for k in keys), dataset
    # The host keeps its tasks' scratch copies only: no release file, no table data, no catalog.
    data_dir = Path(env["SCDX_DATA_DIR"])
    top = {p.relative_to(data_dir).parts[0] for p in data_dir.rglob("*") if p.is_file()}
    assert not top & {"versions", "tables", "scdx.duckdb", "catalog.sqlite", "restricted"}, top


def test_an_iceberg_release_has_the_meta_tables_and_every_comment(iceberg_round: Round) -> None:
    with store_environment(iceberg_round.iceberg) as layout, open_current(layout) as con:
        runs = con.execute("SELECT dataset, status FROM meta.runs ORDER BY dataset").fetchall()
        publishes = con.execute("SELECT version, kind FROM meta.publishes ORDER BY version").fetchall()
        lineage = con.execute(
            "SELECT DISTINCT table_name FROM meta.lineage WHERE kind = 'raw' ORDER BY 1"
        ).fetchall()
        versions = con.execute(
            "SELECT contract_versions FROM meta.publishes ORDER BY version DESC"
        ).fetchone()
        uncommented = con.execute(
            "SELECT schema_name || '.' || table_name || '.' || column_name FROM duckdb_columns() "
            "WHERE schema_name IN ('curated', 'marts', 'meta') AND coalesce(comment, '') = ''"
        ).fetchall()
    assert runs == [(d, "published") for d in sorted(DATASETS)]
    assert [kind for _, kind in publishes] == ["data"] * len(DATASETS)
    assert {f"curated.{d}" for d in DATASETS} <= {name for (name,) in lineage}
    assert versions is not None and set(json.loads(versions[0])) == set(DATASETS)
    assert uncommented == []


def test_scdx_query_release_reads_an_earlier_kept_release_on_iceberg(iceberg_round: Round) -> None:
    sql = "SELECT count(*) AS afdc_views FROM duckdb_views() WHERE view_name = 'afdc_charging_stations'"
    first = scdx(iceberg_round.iceberg, "query", sql, "--release", "1", "--format", "csv")
    current = scdx(iceberg_round.iceberg, "query", sql, "--format", "csv")
    assert first.returncode == 0, first.stderr
    assert current.returncode == 0, current.stderr
    # Release 1 holds only the first dataset's refresh; the current one both.
    assert first.stdout.split() == ["afdc_views", "0"]
    assert current.stdout.split() == ["afdc_views", "1"]


def test_scdx_query_release_names_a_release_that_does_not_exist(iceberg_round: Round) -> None:
    result = scdx(iceberg_round.iceberg, "query", "SELECT 1", "--release", "99")
    assert result.returncode == 2
    assert "release 99 of the public tier is no longer kept" in " ".join(result.stderr.split())


def test_scdx_query_release_on_the_local_store(iceberg_round: Round) -> None:
    sql = "SELECT count(*) AS n FROM curated.usgs_mineral_production"
    first = scdx(iceberg_round.local, "query", sql, "--release", "1", "--format", "csv")
    assert first.returncode == 0, first.stderr
    with duckdb.connect(
        str(Path(iceberg_round.local["SCDX_DATA_DIR"]) / "scdx.duckdb"), read_only=True
    ) as con:
        (rows,) = con.execute(sql).fetchone() or (0,)
    assert first.stdout.split() == ["n", str(rows)]


def test_rollback_on_iceberg_pins_the_earlier_release_without_copying(iceberg_round: Round) -> None:
    env = iceberg_round.iceberg
    before = _checksums(env, 1)
    with store_environment(env) as layout:
        files_before = {
            f.path for t in IcebergStore.from_environment(layout.root).tables_of(1).values() for f in t.files
        }
    result = scdx(env, "publish", "rollback", "1")
    assert result.returncode == 0, result.stderr
    assert _checksums(env) == before
    with store_environment(env) as layout:
        store = IcebergStore.from_environment(layout.root)
        current = store.current()
        assert current is not None and (current.kind, current.restored) == ("rollback", 1)
        files_now = {f.path for t in store.tables_of(current.number).values() for f in t.files}
    assert files_now == files_before  # the same data files: nothing copied
