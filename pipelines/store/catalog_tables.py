"""The operational catalog's tables (SQLAlchemy Core; one schema for SQLite and PostgreSQL).
pipelines.store.catalog says what each holds and reads and writes them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


def _ts(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


runs = sa.Table(
    "scdx_runs",
    metadata,
    sa.Column("run_id", sa.String(160), primary_key=True),
    sa.Column("dataset", sa.String(64), nullable=False, index=True),
    sa.Column("tier", sa.String(32), nullable=False),
    sa.Column("contract_version", sa.String(32), nullable=False),
    _ts("started_at", nullable=False),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    _ts("finished_at"),
    sa.Column("window_start", sa.Date),
    sa.Column("window_end", sa.Date),
    sa.Column("rows_landed", sa.BigInteger),
    sa.Column("rows_staged", sa.BigInteger),
    sa.Column("rows_published", sa.BigInteger),
    sa.Column("rows_quarantined", sa.BigInteger),
    sa.Column("raw_files", sa.Integer),
    sa.Column("raw_bytes", sa.BigInteger),
    sa.Column("raw_sha256", sa.Text),  # JSON list
    sa.Column("validation", sa.Text),
    sa.Column("warnings", sa.Text),  # JSON list
    sa.Column("error", sa.Text),
    sa.Column("quarantine_path", sa.Text),
    sa.Column("publish_version", sa.Integer),
    sa.Column("coverage", sa.String(16)),
    sa.Column("coverage_note", sa.Text),
    sa.Column("table_rows_before", sa.BigInteger),
    sa.Column("table_rows_after", sa.BigInteger),
    sa.Column("pid", sa.Integer),
    sa.Column("host", sa.String(255)),
)

drift = sa.Table(
    "scdx_schema_drift",
    metadata,
    sa.Column("run_id", sa.String(160), nullable=False, index=True),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("field", sa.Text, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text),
    _ts("detected_at", nullable=False),
)

unit_conversions = sa.Table(
    "scdx_unit_conversions",
    metadata,
    sa.Column("run_id", sa.String(160), nullable=False, index=True),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("field", sa.Text, nullable=False),
    sa.Column("from_unit", sa.String(32), nullable=False),
    sa.Column("to_unit", sa.String(32), nullable=False),
    sa.Column("factor", sa.Float, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("file", sa.Text),
)

run_files = sa.Table(
    "scdx_run_files",
    metadata,
    sa.Column("run_id", sa.String(160), nullable=False, index=True),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("bytes", sa.BigInteger),
    sa.Column("url", sa.Text),
    sa.Column("fetched_at", sa.Text),
    sa.Column("rows", sa.BigInteger),
)

contracts = sa.Table(
    "scdx_contracts",
    metadata,
    sa.Column("dataset", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(32), primary_key=True),
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("title", sa.Text),
    sa.Column("agency", sa.Text),
    sa.Column("steward", sa.Text),
    sa.Column("classification", sa.String(32)),
    _ts("recorded_at", nullable=False),
)

releases = sa.Table(
    "scdx_releases",
    metadata,
    sa.Column("tier", sa.String(32), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    _ts("created_at", nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("run_ids", sa.Text, nullable=False),  # JSON list
    sa.Column("changed", sa.Text, nullable=False),  # JSON list of table names
    sa.Column("table_rows", sa.Text, nullable=False),  # JSON object
    sa.Column("contract_versions", sa.Text, nullable=False),  # JSON object
    sa.Column("previous", sa.Integer),
    sa.Column("restored", sa.Integer),
    sa.Column("file", sa.Text),  # the release's own file (the database analysts open), when it has one
    sa.Column("sha256", sa.String(64)),
    sa.Column("bytes", sa.BigInteger),
    sa.Column("kept", sa.Boolean, nullable=False, default=True),
)

release_tables = sa.Table(
    "scdx_release_tables",
    metadata,
    sa.Column("tier", sa.String(32), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("table_name", sa.String(160), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # curated, mart, reference
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # JSON: how the store finds the table's data
    sa.Column("schema", sa.Text, nullable=False),  # JSON: columns, types, comments, table comment
    sa.Column("runs", sa.Text, nullable=False),  # JSON: run id -> partitions it holds
)

data_files = sa.Table(
    "scdx_files",
    metadata,
    sa.Column("tier", sa.String(32), primary_key=True),
    sa.Column("path", sa.String(512), primary_key=True),
    sa.Column("table_name", sa.String(160)),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("rows", sa.BigInteger),
    sa.Column("run_id", sa.String(160)),
    _ts("created_at", nullable=False),
    sa.Column("removed", sa.Boolean, nullable=False, default=False),
)

# The materialized copy of a tier's current release (pipelines.store.materialize): at most one per
# release, removed when a newer release becomes current.
release_copies = sa.Table(
    "scdx_release_copies",
    metadata,
    sa.Column("tier", sa.String(32), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("file", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    _ts("created_at", nullable=False),
)
