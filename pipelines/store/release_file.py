"""A release's own file: the small DuckDB database analysts open (``scdx.duckdb`` points at it).

It holds no table data: each curated table, reference list and mart is a view over its immutable
Parquet files, with the table's and every column's comment; ``meta.*`` are small tables copied
from the operational catalog as of the release (runs, releases, contracts, files, lineage,
drift), each column commented too. Written once, read-only afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from pipelines.common.settings import duckdb_config
from pipelines.common.sql import quote_literal, quote_name
from pipelines.store.catalog import Catalog, dumps, loads
from pipelines.store.catalog_tables import contracts, drift, run_files, runs, unit_conversions

if TYPE_CHECKING:
    from pipelines.store import TableSchema
    from pipelines.store.segments import StoredTable

# meta.* as analysts query them: (DDL columns, comment per column), and the table's comment.
META: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "runs": (
        "One row per pipeline run of this tier: counts per stage, raw checksums, outcome, error.",
        [
            ("run_id", "VARCHAR", "Run identifier (UTC start time and a random suffix)."),
            ("dataset", "VARCHAR", "Dataset (contract) the run refreshed."),
            ("contract_version", "VARCHAR", "Contract version the run was made under."),
            ("started_at", "TIMESTAMPTZ", "When the run started."),
            (
                "status",
                "VARCHAR",
                "running, published, quarantined, blocked, failed, no_data, unchanged, interrupted or abandoned.",
            ),
            ("finished_at", "TIMESTAMPTZ", "When the run ended (null while running)."),
            ("window_start", "DATE", "First month (or period) the run asked the agency for."),
            ("window_end", "DATE", "Last month (or period) the run asked the agency for."),
            ("rows_landed", "BIGINT", "Rows the agency's responses (or the file in hand) held."),
            ("rows_staged", "BIGINT", "Rows normalized to the contract and staged as Parquet."),
            ("rows_published", "BIGINT", "Rows the run published."),
            ("rows_quarantined", "BIGINT", "Rows set aside in quarantine."),
            ("raw_files", "INTEGER", "Responses (or files) landed."),
            ("raw_bytes", "BIGINT", "Bytes landed."),
            ("raw_sha256", "VARCHAR[]", "SHA-256 of every landed response, in order."),
            ("validation", "VARCHAR", "Validation outcome (passed, with warnings, or failed checks)."),
            ("warnings", "VARCHAR[]", "Warnings: failed warning checks, partial batches."),
            ("error", "VARCHAR", "Why the run did not publish (secrets removed)."),
            ("quarantine_path", "VARCHAR", "Where a quarantined batch and its reports are."),
            ("publish_version", "INTEGER", "Release the run's rows first appeared in."),
            ("coverage", "VARCHAR", "complete (replaces what it covers) or partial (merged by key)."),
            (
                "coverage_note",
                "VARCHAR",
                "Why a batch was partial (a file in hand, fewer records than declared).",
            ),
            ("table_rows_before", "BIGINT", "Rows of the curated table before the run's publish."),
            ("table_rows_after", "BIGINT", "Rows of the curated table after it."),
        ],
    ),
    "schema_drift": (
        "Where a source differed from its contract, per run: field, kind, action taken.",
        [
            ("run_id", "VARCHAR", "Run that met the drift."),
            ("dataset", "VARCHAR", "Dataset of the run."),
            ("field", "VARCHAR", "Contract field (or the source column no field maps)."),
            ("kind", "VARCHAR", "new_field, missing_field, type_change or new_code."),
            (
                "action",
                "VARCHAR",
                "rejected, warned, allowed or derived, as the contract's evolution policy says.",
            ),
            ("detail", "VARCHAR", "What was found."),
            ("detected_at", "TIMESTAMPTZ", "When the run recorded it."),
        ],
    ),
    "unit_conversions": (
        "Values converted to a type's canonical unit in normalize, per run and file.",
        [
            ("run_id", "VARCHAR", "Run that converted them."),
            ("dataset", "VARCHAR", "Dataset of the run."),
            ("field", "VARCHAR", "Contract field converted."),
            ("from_unit", "VARCHAR", "Unit the agency published in."),
            ("to_unit", "VARCHAR", "Canonical unit of the field's shared type."),
            ("factor", "DOUBLE", "Multiplier applied."),
            ("rows", "BIGINT", "Values converted."),
            ("file", "VARCHAR", "Landed file the values came from."),
        ],
    ),
    "publishes": (
        "One row per release of this tier: kind (data, marts, rollback, compaction), runs, what changed, row counts.",
        [
            ("version", "INTEGER", "Release number."),
            ("published_at", "TIMESTAMPTZ", "When it became current."),
            (
                "kind",
                "VARCHAR",
                "data (a run's batch), marts (a rebuild), rollback (restores restored_version), compaction.",
            ),
            ("run_ids", "VARCHAR[]", "Runs whose batches it published."),
            ("changed", "VARCHAR[]", "Tables it changed."),
            ("table_rows", "JSON", "Rows of every table in it."),
            ("contract_versions", "JSON", "Contract version of every dataset in it."),
            ("previous_version", "INTEGER", "Release current before it."),
            ("restored_version", "INTEGER", "For a rollback: the release whose tables it restores."),
            (
                "kept",
                "BOOLEAN",
                "Whether the release is still kept (SCDX_KEEP_VERSIONS) and can be restored.",
            ),
        ],
    ),
    "contracts": (
        "Every contract version (and file checksum) a run of this tier was made under.",
        [
            ("dataset", "VARCHAR", "Dataset."),
            ("version", "VARCHAR", "Contract version (semantic)."),
            ("sha256", "VARCHAR", "SHA-256 of the contract file."),
            ("title", "VARCHAR", "Dataset title."),
            ("agency", "VARCHAR", "Providing agency."),
            ("steward", "VARCHAR", "Data steward role."),
            ("classification", "VARCHAR", "public or restricted."),
            ("recorded_at", "TIMESTAMPTZ", "When a run first used this contract file."),
        ],
    ),
    "run_files": (
        "Files of each run: raw responses (agency URL without secrets, sha256) and staged Parquet.",
        [
            ("run_id", "VARCHAR", "Run."),
            ("dataset", "VARCHAR", "Dataset."),
            ("kind", "VARCHAR", "raw (as received) or staged (contract-typed Parquet)."),
            ("path", "VARCHAR", "Path under the data directory."),
            ("sha256", "VARCHAR", "SHA-256 of the file."),
            ("bytes", "BIGINT", "Size in bytes."),
            ("url", "VARCHAR", "Agency URL, secrets removed (raw files)."),
            ("fetched_at", "VARCHAR", "When it was received (raw files)."),
            ("rows", "BIGINT", "Rows (staged files)."),
        ],
    ),
    "partition_runs": (
        "Which run published the rows each partition of a table holds in this release.",
        [
            ("table_name", "VARCHAR", "Table (curated.<dataset>)."),
            (
                "partition_key",
                "VARCHAR",
                "Partition as JSON of the contract's partition_by fields, or * for the whole table.",
            ),
            ("run_id", "VARCHAR", "Run whose rows the partition holds."),
        ],
    ),
    "lineage": (
        "For each table of this release: the runs and raw/staged files its rows came from.",
        [
            ("version", "INTEGER", "Release."),
            ("table_name", "VARCHAR", "Table."),
            ("run_id", "VARCHAR", "Run whose rows it holds."),
            ("kind", "VARCHAR", "raw or staged."),
            ("path", "VARCHAR", "File under the data directory."),
            ("sha256", "VARCHAR", "SHA-256 of the file."),
            ("url", "VARCHAR", "Agency URL, secrets removed."),
            ("fetched_at", "VARCHAR", "When it was received."),
        ],
    ),
}


def _list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return loads(value) if isinstance(value, str) else list(value)


def _insert(con: duckdb.DuckDBPyConnection, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
    import pyarrow as pa

    columns = [c for c, _, _ in META[name][1]]
    if not rows:
        return
    table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
    con.register("scdx_meta_rows", table)
    try:
        casts = ", ".join(f"CAST({quote_name(c)} AS {t})" for c, t, _ in META[name][1])
        con.execute(f"INSERT INTO meta.{quote_name(name)} SELECT {casts} FROM scdx_meta_rows")
    finally:
        con.unregister("scdx_meta_rows")


def meta_rows(
    catalog: Catalog,
    tier: str,
    held: Mapping[str, Mapping[str, Sequence[str]]],
    release: Mapping[str, Any],
    pending: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]] = (),
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Every meta.* table's rows for release ``release``, from the catalog as of that release and
    the runs being recorded with it (``pending``); and each dataset's contract version.

    ``held``: per table of the release, which runs' rows it holds (run -> partition keys). A
    release already committed (read back later, as the Iceberg store does) sees the releases
    before it and the runs that started before it, as its file would have shown them."""
    number = release["number"]
    tier_runs, details = _runs_as_of(catalog, tier, release["created_at"], pending)
    run_ids = set(tier_runs)
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in META}
    for row in tier_runs.values():
        out["runs"].append(
            {**row, "raw_sha256": _list(row.get("raw_sha256")), "warnings": _list(row.get("warnings"))}
        )
    for table, name in ((drift, "schema_drift"), (unit_conversions, "unit_conversions")):
        for row in catalog.rows_of(table):
            if row["run_id"] in run_ids and row["run_id"] not in details:
                out[name].append(row)
        for run_id, run_details in details.items():
            dataset = tier_runs[run_id]["dataset"]
            out[name].extend(
                {"run_id": run_id, "dataset": dataset, **item}
                for item in run_details.get(name if name != "schema_drift" else "drift", ())
            )
    datasets = {r["dataset"] for r in tier_runs.values()}
    out["contracts"] = [r for r in catalog.rows_of(contracts) if r["dataset"] in datasets]
    versions = _latest_versions(out["contracts"])
    files_by_run: dict[str, list[dict[str, Any]]] = {}
    for row in catalog.rows_of(run_files):
        if row["run_id"] in run_ids:
            out["run_files"].append(row)
            files_by_run.setdefault(row["run_id"], []).append(row)
    for values, run_details in pending:
        for row in run_details.get("files", ()):
            record = {"run_id": values["run_id"], "dataset": values["dataset"], **row}
            out["run_files"].append(record)
            files_by_run.setdefault(values["run_id"], []).append(record)
    for row in catalog.releases(tier):
        if row["number"] < number:
            out["publishes"].append(_publish_row(row))
    out["publishes"].append(_publish_row({"kept": True, **release, "contract_versions": dumps(versions)}))
    for name, table_runs in sorted(held.items()):
        for run_id, keys in table_runs.items():
            out["partition_runs"].extend(
                {"table_name": name, "partition_key": k, "run_id": run_id} for k in keys
            )
            for row in files_by_run.get(run_id, ()):
                out["lineage"].append({"version": number, "table_name": name, **row})
    return out, versions


def _runs_as_of(
    catalog: Catalog,
    tier: str,
    created_at: datetime,
    pending: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
) -> tuple[dict[str, dict[str, Any]], dict[str, Mapping[str, Any]]]:
    """The tier's runs that started by ``created_at`` with the runs recorded now (their values
    over the catalog's), and the details of those recorded now, by run id."""
    tier_runs = {
        r["run_id"]: r
        for r in catalog.rows_of(runs, runs.c.tier == tier)
        if _utc(r["started_at"]) <= _utc(created_at)
    }
    details: dict[str, Mapping[str, Any]] = {}
    for values, run_details in pending:
        tier_runs[values["run_id"]] = {**tier_runs.get(values["run_id"], {}), **values}
        details[values["run_id"]] = run_details
    return tier_runs, details


def _latest_versions(contract_rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Each dataset's contract version most recently recorded."""
    latest: dict[str, tuple[Any, str]] = {}
    for row in contract_rows:
        if row["dataset"] not in latest or row["recorded_at"] > latest[row["dataset"]][0]:
            latest[row["dataset"]] = (row["recorded_at"], row["version"])
    return {dataset: version for dataset, (_, version) in sorted(latest.items())}


def _utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; the catalog writes them in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _publish_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": row["number"],
        "published_at": row["created_at"],
        "kind": row["kind"],
        "run_ids": _list(row["run_ids"]),
        "changed": _list(row["changed"]),
        "table_rows": row["table_rows"],
        "contract_versions": row["contract_versions"],
        "previous_version": row["previous"],
        "restored_version": row["restored"],
        "kept": row["kept"],
    }


def comment_views(con: duckdb.DuckDBPyConnection, schemas: Mapping[str, TableSchema]) -> None:
    """The comment of each view (schema.table) and of each of its columns, as analysts read them."""
    for name, schema in sorted(schemas.items()):
        schema_name, _, local = name.partition(".")
        target = f"{quote_name(schema_name)}.{quote_name(local)}"
        con.execute(f"COMMENT ON VIEW {target} IS {quote_literal(schema.comment)}")
        for column in schema.columns:
            con.execute(
                f"COMMENT ON COLUMN {target}.{quote_name(column.name)} IS {quote_literal(column.comment)}"
            )


def create_meta(con: duckdb.DuckDBPyConnection, rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """The meta.* tables in ``con`` (schema meta exists), every table and column commented, with ``rows``."""
    for name, (comment, columns) in META.items():
        ddl = ", ".join(f"{quote_name(c)} {t}" for c, t, _ in columns)
        con.execute(f"CREATE TABLE meta.{quote_name(name)} ({ddl})")
        con.execute(f"COMMENT ON TABLE meta.{quote_name(name)} IS {quote_literal(comment)}")
        for column_name, _, text in columns:
            con.execute(
                f"COMMENT ON COLUMN meta.{quote_name(name)}.{quote_name(column_name)} IS {quote_literal(text)}"
            )
        _insert(con, name, rows[name])


def write_release_file(
    path: Path,
    catalog: Catalog,
    tier: str,
    tables: Mapping[str, tuple[StoredTable, str]],
    release: Mapping[str, Any],
    pending: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
) -> dict[str, str]:
    """Write release ``release`` of the ``tier`` at ``path``: views with comments and meta.*.

    ``tables``: name -> (table, the SELECT of its view). Returns each dataset's contract version.
    """
    held = {name: table.runs() for name, (table, _) in tables.items()}
    meta, contract_versions = meta_rows(catalog, tier, held, release, pending)
    with duckdb.connect(str(path), config=duckdb_config()) as con:
        con.execute("BEGIN TRANSACTION")
        for schema in ("curated", "marts", "meta"):
            con.execute(f"CREATE SCHEMA {quote_name(schema)}")
        for name, (_, select) in sorted(tables.items()):
            schema, _, local = name.partition(".")
            target = f"{quote_name(schema)}.{quote_name(local)}"
            con.execute(f"CREATE VIEW {target} AS {select}")
        comment_views(con, {name: table.schema for name, (table, _) in tables.items()})
        create_meta(con, meta)
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    return contract_versions
