"""Publish: curated DuckDB tables in versions, with lineage, per access tier.

Public datasets go to the public tier (``scdx.duckdb``); restricted ones to the restricted tier
(``restricted/scdx_restricted.duckdb``, owner-only files), which the public database never
references: no table, comment, run or lineage row of a restricted dataset reaches the public
file. Each tier is a store of immutable versions swapped in atomically (pipelines.versions).

Lineage: every published run records the raw files it landed (agency URL without secrets,
sha256) and the staged Parquet it published (``meta.run_files``); ``meta.partition_runs`` says
which run's rows each partition of a table holds now; ``meta.lineage`` materializes, for every
version that changed a table, the runs and files its rows came from.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.codelists import ref_table_statements
from pipelines.contracts import Contract, Registry, duckdb_ddl
from pipelines.land import open_landed
from pipelines.layout import Layout
from pipelines.runs import CONVERSIONS_DDL, DRIFT_DDL, RUNS_DDL, RUNS_MIGRATIONS, RunRecord
from pipelines.sql import literal_list, quote_identifier, quote_literal
from pipelines.stage import StagedBatch
from pipelines.versions import (
    LOCK_TIMEOUT_S,
    VersionError,
    current_version,
    new_version,
    open_current,
    store_lock,
    version_files,
)

log = logging.getLogger("scdx.publish")

BATCH_PARTITIONS = "temp.batch_partitions"  # the partitions a publishing batch replaces
META_TABLES = (
    "runs",
    "schema_drift",
    "unit_conversions",
    "publishes",
    "contracts",
    "run_files",
    "partition_runs",
    "lineage",
)

META_DDL = [
    "CREATE SCHEMA IF NOT EXISTS curated",
    "CREATE SCHEMA IF NOT EXISTS meta",
    RUNS_DDL,
    *RUNS_MIGRATIONS,
    DRIFT_DDL,
    CONVERSIONS_DDL,
    """
    CREATE TABLE IF NOT EXISTS meta.publishes (
        version INTEGER NOT NULL,
        published_at TIMESTAMPTZ NOT NULL,
        kind VARCHAR NOT NULL,
        run_ids VARCHAR[],
        table_rows JSON,
        contract_versions JSON,
        previous_version INTEGER,
        restored_version INTEGER
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS meta.contracts (
        dataset VARCHAR NOT NULL,
        version VARCHAR NOT NULL,
        sha256 VARCHAR NOT NULL,
        title VARCHAR,
        agency VARCHAR,
        steward VARCHAR,
        classification VARCHAR,
        recorded_at TIMESTAMPTZ NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS meta.run_files (
        run_id VARCHAR NOT NULL,
        dataset VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        path VARCHAR NOT NULL,
        sha256 VARCHAR NOT NULL,
        bytes BIGINT,
        url VARCHAR,
        fetched_at VARCHAR,
        rows BIGINT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS meta.partition_runs (
        table_name VARCHAR NOT NULL,
        partition_key VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS meta.lineage (
        version INTEGER NOT NULL,
        table_name VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        path VARCHAR NOT NULL,
        sha256 VARCHAR NOT NULL,
        url VARCHAR,
        fetched_at VARCHAR
    )
    """,
    "COMMENT ON TABLE meta.runs IS 'One row per pipeline run: counts per stage, raw checksums, outcome, error.'",
    "COMMENT ON TABLE meta.publishes IS 'One row per database version: kind (data, run_record, rollback), runs, row counts, contracts.'",
    "COMMENT ON TABLE meta.contracts IS 'Every contract version (and file checksum) a run was made under.'",
    "COMMENT ON TABLE meta.schema_drift IS 'Where a source differed from its contract, per run: field, kind, action taken.'",
    "COMMENT ON TABLE meta.unit_conversions IS 'Values converted to a type''s canonical unit in normalize, per run and file.'",
    "COMMENT ON TABLE meta.run_files IS 'Files of each published run: raw responses (agency URL without secrets, sha256) and staged Parquet.'",
    "COMMENT ON TABLE meta.partition_runs IS 'Which run published the rows each partition of a curated table holds now.'",
    "COMMENT ON TABLE meta.lineage IS 'For each version that changed a table: the runs and raw/staged files its rows came from.'",
]


class PublishError(RuntimeError):
    """The curated database could not be changed; the published version is untouched."""


class PublishBlocked(PublishError):
    """The audit before publishing refused the change (too many rows removed, or a partial batch
    the contract refuses); nothing published, the message gives the numbers."""

    run_status = "blocked"


@dataclass(frozen=True)
class PublishResult:
    version: int
    path: Path
    rows_published: int


def tier_of(contract: Contract) -> str:
    """The access tier a dataset publishes to: its classification."""
    return contract.classification


def publish_lock(
    layout: Layout, timeout_s: float = LOCK_TIMEOUT_S, tier: str = "public"
) -> AbstractContextManager[None]:
    """The tier's publish lock (one writer at a time)."""
    return store_lock(layout.store(tier), timeout_s)


def _table_rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    tables = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN ('curated', 'marts') ORDER BY 1, 2"
    ).fetchall()
    counts = {}
    for schema, table in tables:
        (count,) = con.execute(
            f"SELECT count(*) FROM {quote_identifier(schema)}.{quote_identifier(table)}"
        ).fetchone() or (0,)
        counts[f"{schema}.{table}"] = int(count)
    return counts


def _insert_run(con: duckdb.DuckDBPyConnection, run: RunRecord) -> None:
    """Write (or rewrite) a run's row in meta.runs and its drift and unit conversions."""
    columns = RunRecord.columns()
    key = [run.run_id, run.dataset]
    for table in ("meta.runs", "meta.schema_drift", "meta.unit_conversions"):
        con.execute(f"DELETE FROM {table} WHERE run_id = ? AND dataset = ?", key)
    con.execute(
        f"INSERT INTO meta.runs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        run.values(),
    )
    now = datetime.now(UTC)
    for event in run.drift:
        con.execute(
            "INSERT INTO meta.schema_drift VALUES (?, ?, ?, ?, ?, ?, ?)",
            [*key, event["field"], event["kind"], event["action"], event["detail"], now],
        )
    for c in run.unit_conversions:
        con.execute(
            "INSERT INTO meta.unit_conversions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [*key, c["field"], c["from_unit"], c["to_unit"], c["factor"], c["rows"], c["file"]],
        )


def _record_contract(con: duckdb.DuckDBPyConnection, contract: Contract, sha256: str) -> None:
    exists = con.execute(
        "SELECT 1 FROM meta.contracts WHERE dataset = ? AND version = ? AND sha256 = ?",
        [contract.dataset, contract.version, sha256],
    ).fetchone()
    if not exists:
        con.execute(
            "INSERT INTO meta.contracts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                contract.dataset,
                contract.version,
                sha256,
                contract.title,
                contract.provider.agency,
                contract.provider.steward,
                contract.classification,
                datetime.now(UTC),
            ],
        )


def _new_version(
    layout: Layout,
    tier: str,
    keep_versions: int,
    kind: str,
    change: Callable[[duckdb.DuckDBPyConnection, int], list[str]],
    base: int | None = None,
    restored: int | None = None,
) -> tuple[int, Path]:
    """A new version of the tier: meta DDL, the change, and its meta.publishes row, in one transaction."""

    def apply(con: duckdb.DuckDBPyConnection, version: int, previous: int | None) -> list[str]:
        for statement in META_DDL:
            con.execute(statement)
        run_ids = change(con, version)
        con.execute(
            "INSERT INTO meta.publishes (version, published_at, kind, run_ids, table_rows, contract_versions, "
            "previous_version, restored_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                version,
                datetime.now(UTC),
                kind,
                run_ids,
                json.dumps(_table_rows(con)),
                json.dumps(_contract_versions(con)),
                previous,
                restored,
            ],
        )
        return run_ids

    try:
        return new_version(layout.store(tier), keep_versions, apply, base=base)
    except VersionError as exc:
        raise PublishError(str(exc)) from None


def _contract_versions(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute(
        "SELECT dataset, arg_max(version, recorded_at) FROM meta.contracts GROUP BY dataset ORDER BY dataset"
    ).fetchall()
    return {dataset: version for dataset, version in rows}


def _curated_columns(con: duckdb.DuckDBPyConnection, dataset: str) -> list[tuple[str, str]]:
    return [
        (name, str(data_type))
        for name, data_type in con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE schema_name = 'curated' AND table_name = ? ORDER BY column_index",
            [dataset],
        ).fetchall()
    ]


def _record_files(
    con: duckdb.DuckDBPyConnection, run: RunRecord, staged: StagedBatch, layout: Layout
) -> None:
    """meta.run_files for a published run: its raw responses (from their manifests) and staged Parquet."""
    con.execute("DELETE FROM meta.run_files WHERE run_id = ? AND dataset = ?", [run.run_id, run.dataset])
    pages = open_landed(run.dataset, run.run_id, layout).pages
    # One statement for every response, each column a list: a statement per response cost
    # 0.7 ms apiece (0.14 s for a 200-month refresh), this one 5 ms in all.
    con.execute(
        "INSERT INTO meta.run_files SELECT ?, ?, 'raw', unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
        "unnest(?::BIGINT[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), NULL",
        [
            run.run_id,
            run.dataset,
            [str(page.body_path.relative_to(layout.root)) for page in pages],
            [page.manifest["sha256"] for page in pages],
            [page.manifest["bytes"] for page in pages],
            [page.manifest["url"] for page in pages],
            [page.manifest["fetched_at"] for page in pages],
        ],
    )
    for path in staged.files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        (rows,) = con.execute(
            f"SELECT count(*) FROM read_parquet({quote_literal(str(path))})"
        ).fetchone() or (0,)
        con.execute(
            "INSERT INTO meta.run_files VALUES (?, ?, 'staged', ?, ?, ?, NULL, NULL, ?)",
            [run.run_id, run.dataset, str(path.relative_to(layout.root)), digest, path.stat().st_size, rows],
        )


def _record_lineage(
    con: duckdb.DuckDBPyConnection, contract: Contract, run: RunRecord, version: int, merged: bool = False
) -> None:
    """Which runs now hold each partition of the table, and the table version's lineage rows.

    A replacing batch becomes the only run of its partitions; a merged one joins the runs there.
    """
    table_name = f"curated.{contract.dataset}"
    if contract.publish.mode == "replace_partitions":
        key = (
            "to_json(struct_pack("
            + ", ".join(quote_identifier(k) for k in contract.publish.partition_by)
            + "))::VARCHAR"
        )
        batch_keys = f"SELECT {key} FROM {BATCH_PARTITIONS}"
    else:
        batch_keys = "SELECT '*'"
    if merged:
        con.execute(
            f"DELETE FROM meta.partition_runs WHERE table_name = ? AND run_id = ? AND partition_key IN ({batch_keys})",
            [table_name, run.run_id],
        )
    else:
        con.execute(
            f"DELETE FROM meta.partition_runs WHERE table_name = ? AND partition_key IN ({batch_keys})",
            [table_name],
        )
    con.execute(
        f"INSERT INTO meta.partition_runs SELECT ?, k, ? FROM ({batch_keys}) AS batch(k)",
        [table_name, run.run_id],
    )
    con.execute(
        "INSERT INTO meta.lineage SELECT ?, ?, f.run_id, f.kind, f.path, f.sha256, f.url, f.fetched_at "
        "FROM meta.run_files f WHERE f.dataset = ? AND f.run_id IN "
        "(SELECT DISTINCT run_id FROM meta.partition_runs WHERE table_name = ?)",
        [version, table_name, contract.dataset, table_name],
    )


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    (rows,) = con.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
    return int(rows)


def _refuse_uncovered(
    con: duckdb.DuckDBPyConnection, contract: Contract, table: str, files: str, coverage_note: str | None
) -> None:
    """Refuse a partial batch when published rows of the partitions it touches are missing from it,
    naming each such partition, how many rows it lacks there and the first of them."""
    key = ", ".join(quote_identifier(k) for k in contract.primary_key)
    partition = contract.publish.partition_by if contract.publish.mode == "replace_partitions" else []
    by = ", ".join(quote_identifier(k) for k in partition)
    scope = f"WHERE ({by}) IN (SELECT {by} FROM read_parquet({files}))" if partition else ""
    group = (
        f"to_json(struct_pack({', '.join(f'{quote_identifier(k)} := {quote_identifier(k)}' for k in partition)}))::VARCHAR"
        if partition
        else "'the whole table'"
    )
    first_key = f"to_json(struct_pack({', '.join(f'{quote_identifier(k)} := {quote_identifier(k)}' for k in contract.primary_key)}))::VARCHAR"
    missing = con.execute(
        f"SELECT {group} AS part, count(*), min({first_key}) FROM "
        f"(SELECT * FROM {table} {scope}) AS t WHERE ({key}) NOT IN (SELECT {key} FROM read_parquet({files})) "
        "GROUP BY part ORDER BY part"
    ).fetchall()
    if missing:
        total = sum(int(count) for _, count, _ in missing)
        shown = "; ".join(f"{part}: {count:,} row(s), e.g. {example}" for part, count, example in missing[:5])
        more = f" and {len(missing) - 5} more partition(s)" if len(missing) > 5 else ""
        raise PublishBlocked(
            f"{contract.dataset}: a partial batch ({coverage_note or 'partial'}) lacks {total:,} published "
            f"row(s) of the partitions it would replace: {shown}{more}; nothing published "
            "(the contract's publish.partial is refuse)"
        )


def _uncarried_fields(run: RunRecord) -> set[str]:
    """Fields the batch did not carry (a column its format lacks, left null): a merge keeps their
    published values. A field derived from an older one (action ``derived``) is carried."""
    return {
        e["field"] for e in run.drift if e["kind"] == "missing_field" and e["action"] in ("allowed", "warned")
    }


def _merge(
    con: duckdb.DuckDBPyConnection, contract: Contract, table: str, files: str, uncarried: set[str]
) -> int:
    """Merge a partial batch by primary key: its rows replace the published rows with the same key,
    field by field for the fields it carries; rows it does not hold, and what it does not carry,
    stay as published. Returns the batch's rows."""
    batch = "temp.scdx_merge_batch"
    con.execute(f"CREATE TEMP TABLE {batch} AS SELECT * FROM read_parquet({files})")
    matches = " AND ".join(f"t.{quote_identifier(k)} = b.{quote_identifier(k)}" for k in contract.primary_key)
    carried = [n for n in contract.field_names if n not in contract.primary_key and n not in uncarried]
    if carried:
        assignments = ", ".join(f"{quote_identifier(n)} = b.{quote_identifier(n)}" for n in carried)
        con.execute(f"UPDATE {table} AS t SET {assignments} FROM {batch} AS b WHERE {matches}")
    columns = ", ".join(quote_identifier(n) for n in contract.field_names)
    con.execute(
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {batch} AS b "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE {matches})"
    )
    (rows,) = con.execute(f"SELECT count(*) FROM {batch}").fetchone() or (0,)
    con.execute(f"DROP TABLE {batch}")
    return int(rows)


def _audit_shrink(contract: Contract, table: str, before: int, after: int, allow_shrink: bool) -> None:
    """Block a publish that would remove more than the contract's max_shrink_pct of the table's rows."""
    if before == 0 or after >= before:
        return
    removed_pct = 100.0 * (before - after) / before
    if removed_pct > contract.publish.max_shrink_pct and not allow_shrink:
        raise PublishBlocked(
            f"{contract.dataset}: publishing would shrink {table} from {before:,} to {after:,} rows "
            f"(-{before - after:,}, {removed_pct:.1f} % > max_shrink_pct {contract.publish.max_shrink_pct:g} %); "
            "nothing published. If the agency really removed those rows, re-run with --allow-shrink."
        )


def publish(
    staged: StagedBatch,
    contract: Contract,
    registry: Registry,
    layout: Layout,
    run: RunRecord,
    keep_versions: int = 10,
    allow_shrink: bool = False,
) -> PublishResult:
    """Change ``curated.<dataset>`` in its tier by the batch, audited before it is swapped in.

    A complete batch replaces its partitions (or the whole table); a partial one (``run.coverage``)
    is merged by primary key or refused, as the contract's ``publish.partial`` says. A change that
    removes more than ``publish.max_shrink_pct`` of the rows is blocked unless ``allow_shrink``.
    """
    table = f"curated.{quote_identifier(contract.dataset)}"
    files = literal_list(str(p) for p in staged.files)
    columns = ", ".join(quote_identifier(n) for n in contract.field_names)
    published_rows = 0
    merge = run.coverage == "partial" and contract.publish.partial == "merge"

    def change(con: duckdb.DuckDBPyConnection, version: int) -> list[str]:
        nonlocal published_rows
        for statement in duckdb_ddl(contract, registry):
            con.execute(statement)
        for name in registry.codelists.names:
            for statement in ref_table_statements(registry.codelists, name):
                con.execute(statement)
        expected = [
            (f.name, t)
            for f, t in zip(contract.fields, _contract_duckdb_types(con, contract, registry), strict=True)
        ]
        actual = _curated_columns(con, contract.dataset)
        if actual != expected:
            raise PublishError(
                f"{contract.dataset}: {table} has columns {actual}, contract v{contract.version} says {expected}; "
                "a schema change needs a migration"
            )
        before = _count(con, table)
        if run.coverage == "partial" and not merge:
            _refuse_uncovered(con, contract, table, files, run.coverage_note)
        partition_keys = (
            contract.publish.partition_by if contract.publish.mode == "replace_partitions" else []
        )
        if partition_keys:
            keys = ", ".join(quote_identifier(k) for k in partition_keys)
            # The batch's partitions, read once: the table's change and the lineage both use them.
            con.execute(
                f"CREATE TEMP TABLE {BATCH_PARTITIONS} AS SELECT DISTINCT {keys} FROM read_parquet({files})"
            )
        if merge:
            published_rows = _merge(con, contract, table, files, _uncarried_fields(run))
        else:
            if partition_keys:
                keys = ", ".join(quote_identifier(k) for k in partition_keys)
                con.execute(f"DELETE FROM {table} WHERE ({keys}) IN (SELECT {keys} FROM {BATCH_PARTITIONS})")
            else:
                con.execute(f"DELETE FROM {table}")
            # Row order in a table means nothing to SQL; not keeping the files' order lets DuckDB
            # load them on every thread at once (a third less time at 10M rows).
            con.execute("SET preserve_insertion_order = false")
            (published_rows,) = con.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM read_parquet({files})"
            ).fetchone() or (0,)
            con.execute("RESET preserve_insertion_order")
        after = _count(con, table)
        run.table_rows_before, run.table_rows_after = before, after
        _audit_shrink(contract, table, before, after, allow_shrink)
        run.rows_published = int(published_rows)
        run.publish_version = version
        run.finish("published")
        _insert_run(con, run)
        _record_contract(con, contract, registry.contract_sha256(contract.dataset))
        _record_files(con, run, staged, layout)
        _record_lineage(con, contract, run, version, merged=merge)
        return [run.run_id]

    version, path = _new_version(layout, tier_of(contract), keep_versions, "data", change)
    return PublishResult(version=version, path=path, rows_published=int(published_rows))


def _contract_duckdb_types(
    con: duckdb.DuckDBPyConnection, contract: Contract, registry: Registry
) -> list[str]:
    # DuckDB's own spelling of each declared type (e.g. VARCHAR[] -> VARCHAR[]), so comparisons are exact.
    from pipelines.contracts import DUCKDB_TYPES

    out = []
    for f in contract.fields:
        declared = DUCKDB_TYPES[registry.types.types[f.type].arrow]
        (spelled,) = con.execute(f"SELECT typeof(CAST(NULL AS {declared}))").fetchone() or (declared,)
        out.append(str(spelled))
    return out


def new_public_version(
    layout: Layout,
    keep_versions: int,
    kind: str,
    change: Callable[[duckdb.DuckDBPyConnection, int], list[str]],
) -> int:
    """A new public version made by ``change`` (used by the marts build)."""
    version, _ = _new_version(layout, "public", keep_versions, kind, change)
    return version


def record_run(
    run: RunRecord, contract: Contract, registry: Registry, layout: Layout, keep_versions: int = 10
) -> int:
    """Record a run that published nothing (quarantined or failed) in its tier's ``meta.runs``."""

    def change(con: duckdb.DuckDBPyConnection, version: int) -> list[str]:
        _insert_run(con, run)
        _record_contract(con, contract, registry.contract_sha256(contract.dataset))
        return [run.run_id]

    version, _ = _new_version(layout, tier_of(contract), keep_versions, "run_record", change)
    return version


def rollback(
    layout: Layout, to_version: int | None = None, tier: str = "public", keep_versions: int = 10
) -> tuple[int, int]:
    """Restore an earlier version's curated tables as a new version; returns (new, restored).

    Meta history is kept whole.

    Default target: the data version before the current one. The restored version must still
    be kept (``SCDX_KEEP_VERSIONS``).
    """
    store = layout.store(tier)
    current = current_version(store)
    if current is None:
        raise PublishError(f"nothing published in the {tier} tier; nothing to roll back")
    with open_current(store) as con:
        data_versions = [
            v
            for (v,) in con.execute(
                "SELECT version FROM meta.publishes WHERE kind IN ('data', 'rollback') ORDER BY version"
            ).fetchall()
        ]
    if to_version is None:
        older = [v for v in data_versions if v < (data_versions[-1] if data_versions else current)]
        if not older:
            raise PublishError(f"no earlier data version than {current} in the {tier} tier")
        to_version = older[-1]
    if to_version == current:
        raise PublishError(f"version {to_version} is already the current one")
    current_path = store.version_path(current)

    def change(con: duckdb.DuckDBPyConnection, version: int) -> list[str]:
        # The restored file carries its own (older) meta tables: take today's, so history only grows.
        con.execute(f"ATTACH {quote_literal(str(current_path))} AS latest (READ_ONLY)")
        for name in META_TABLES:
            con.execute(f"CREATE OR REPLACE TABLE meta.{name} AS SELECT * FROM latest.meta.{name}")
        for statement in META_DDL:
            con.execute(statement)
        return []

    version, _ = _new_version(
        layout, tier, keep_versions, "rollback", change, base=to_version, restored=to_version
    )
    log.info("%s tier: version %d restores version %d", tier, version, to_version)
    return version, to_version


def list_publishes(layout: Layout, tier: str = "public") -> list[dict[str, Any]]:
    """Every version of the tier, newest first, with whether its file is still kept."""
    store = layout.store(tier)
    kept = version_files(store)
    current = current_version(store)
    with open_current(store) as con:
        rows = con.execute(
            "SELECT version, published_at, kind, run_ids, table_rows, previous_version, restored_version "
            "FROM meta.publishes ORDER BY version DESC"
        ).fetchall()
    columns = [
        "version",
        "published_at",
        "kind",
        "run_ids",
        "table_rows",
        "previous_version",
        "restored_version",
    ]
    out = []
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        record["table_rows"] = json.loads(record["table_rows"] or "{}")
        record["kept"] = record["version"] in kept
        record["current"] = record["version"] == current
        out.append(record)
    return out


def table_lineage(layout: Layout, table: str, tier: str = "public") -> list[dict[str, Any]]:
    """The runs and files the current version of ``table`` (``curated.x`` or ``x``) came from."""
    name = table if "." in table else f"curated.{table}"
    with open_current(layout.store(tier)) as con:
        rows = con.execute(
            "SELECT l.version, l.run_id, l.kind, l.path, l.sha256, l.url, l.fetched_at, r.started_at, r.status "
            "FROM meta.lineage l LEFT JOIN meta.runs r USING (run_id) "
            "WHERE l.table_name = ? AND l.version = (SELECT max(version) FROM meta.lineage WHERE table_name = ?) "
            "ORDER BY l.run_id, l.kind DESC, l.path",
            [name, name],
        ).fetchall()
    columns = [
        "version",
        "run_id",
        "kind",
        "path",
        "sha256",
        "url",
        "fetched_at",
        "run_started_at",
        "run_status",
    ]
    return [dict(zip(columns, row, strict=True)) for row in rows]


@contextmanager
def open_public(layout: Layout) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the current public version (what an analyst gets)."""
    try:
        with open_current(layout.store("public")) as con:
            yield con
    except VersionError as exc:
        raise PublishError(str(exc)) from None


@dataclass(frozen=True)
class PublishedRun:
    """The dataset's latest published run: what it fetched and under which contract."""

    run_id: str
    window_start: date | None
    window_end: date | None
    raw_sha256: tuple[str, ...]
    contract_version: str
    contract_sha256: str | None
    publish_version: int
    rolled_back_since: bool


def latest_published_run(layout: Layout, contract: Contract) -> PublishedRun | None:
    """The dataset's most recent published run in its tier (None before the first publish)."""
    store = layout.store(tier_of(contract))
    if not store.link.exists():
        return None
    with open_current(store) as con:
        row = con.execute(
            "SELECT run_id, window_start, window_end, raw_sha256, contract_version, publish_version "
            "FROM meta.runs WHERE dataset = ? AND status = 'published' AND publish_version IS NOT NULL "
            "ORDER BY publish_version DESC LIMIT 1",
            [contract.dataset],
        ).fetchone()
        if row is None:
            return None
        sha = con.execute(
            "SELECT sha256 FROM meta.contracts WHERE dataset = ? AND version = ? "
            "ORDER BY recorded_at DESC LIMIT 1",
            [contract.dataset, row[4]],
        ).fetchone()
        (rollbacks,) = con.execute(
            "SELECT count(*) FROM meta.publishes WHERE kind = 'rollback' AND version > ?", [row[5]]
        ).fetchone() or (0,)
    return PublishedRun(
        run_id=row[0],
        window_start=row[1],
        window_end=row[2],
        raw_sha256=tuple(row[3] or ()),
        contract_version=row[4],
        contract_sha256=sha[0] if sha else None,
        publish_version=int(row[5]),
        rolled_back_since=bool(rollbacks),
    )


def last_published(layout: Layout, contract: Contract, field_name: str) -> date | None:
    """The greatest value of ``field_name`` in the dataset's curated table, or None."""
    store = layout.store(tier_of(contract))
    if not store.link.exists():
        return None
    with open_current(store) as con:
        exists = con.execute(
            "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'curated' AND table_name = ?",
            [contract.dataset],
        ).fetchone()
        if not exists:
            return None
        row = con.execute(
            f"SELECT max({quote_identifier(field_name)}) FROM curated.{quote_identifier(contract.dataset)}"
        ).fetchone()
    value: Any = row[0] if row else None
    return value if isinstance(value, date) else None
