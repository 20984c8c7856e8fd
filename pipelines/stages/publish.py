"""Publish: a validated batch becomes part of the next release of its tier, with the marts built
from it, and its run joins the history in the operational catalog.

Public datasets go to the public tier (``scdx.duckdb``); restricted ones to the restricted tier
(``restricted/scdx_restricted.duckdb``, owner-only files), which the public release never
references. Each tier is a release store (pipelines.store): a publish is one change applied to a
draft of the current release (the curated table, the reference code lists when they changed, the
marts that read the table) and becomes the next release at once, or not at all.

How a batch changes its table (docs/architecture.md, "Untrusted input"): a complete batch replaces
the partitions it holds (``replace_partitions``) or the whole table (``replace``); a partial one is
merged by primary key or refused; a change that would shrink the table by more than the
contract's ``max_shrink_pct`` is blocked unless the run allows it.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pipelines.common.errors import ScdxError
from pipelines.common.sql import literal_list, quote_identifier, quote_literal
from pipelines.contracts import DUCKDB_TYPES, Contract, Registry, column_comment, table_comment
from pipelines.contracts.codelists import ref_table_statements
from pipelines.stages.land import open_landed
from pipelines.stages.root_files import landed_manifest, raw_key, run_prefix
from pipelines.stages.stage import StagedBatch
from pipelines.store import Column, Draft, StoreError, TableSchema
from pipelines.store.data_root import DataRoot
from pipelines.store.history import record_contract, record_run, run_details, run_values
from pipelines.store.layout import Layout
from pipelines.store.runs import RunRecord
from pipelines.store.segments import drop_relation
from pipelines.store.tiers import open_store, tier_of

log = logging.getLogger("scdx.publish")


class PublishError(ScdxError, RuntimeError):
    """The curated database could not be changed; what is published is untouched."""


class PublishBlocked(PublishError):
    """The audit before publishing refused the change (too many rows removed, or a partial batch
    the contract refuses); nothing published, the message gives the numbers."""

    run_status = "blocked"


@dataclass(frozen=True)
class PublishResult:
    version: int
    rows_published: int


def _raw_pages(run: RunRecord, layout: Layout, root: DataRoot | None) -> list[tuple[str, dict[str, Any]]]:
    """(where, manifest) of each raw response: its key on the data root, or its path in the data dir."""
    if root is not None:
        return [
            (raw_key(run.dataset, p["sha256"]), p) for p in landed_manifest(run.dataset, run.run_id, root)
        ]
    pages = open_landed(run.dataset, run.run_id, layout).pages
    return [(str(p.body_path.relative_to(layout.root)), p.manifest) for p in pages]


def _file_records(
    run: RunRecord, staged: StagedBatch, layout: Layout, root: DataRoot | None
) -> list[dict[str, Any]]:
    """The run's raw responses (from their manifests) and staged Parquet, for lineage (located
    on the data ``root`` when there is one: the files in hand may be a task's temporary copies)."""
    import pyarrow.parquet as pq

    records: list[dict[str, Any]] = []
    for where, manifest in _raw_pages(run, layout, root):
        records.append(
            {
                "kind": "raw",
                "path": where,
                "sha256": manifest["sha256"],
                "bytes": manifest["bytes"],
                "url": manifest["url"],
                "fetched_at": manifest["fetched_at"],
                "rows": None,
            }
        )
    for path in staged.files:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        records.append(
            {
                "kind": "staged",
                "path": (
                    f"{run_prefix('staged', run.dataset, run.run_id)}/{path.name}"
                    if root is not None
                    else str(path.relative_to(layout.root))
                ),
                "sha256": digest,
                "bytes": path.stat().st_size,
                "url": None,
                "fetched_at": None,
                "rows": pq.ParquetFile(path).metadata.num_rows,
            }
        )
    return records


# --- what a batch does to its table ---------------------------------------------------------------


def table_schema(contract: Contract, registry: Registry) -> TableSchema:
    """The curated table as analysts see it: columns with DuckDB types and comments."""
    return TableSchema(
        tuple(
            Column(
                f.name,
                DUCKDB_TYPES[registry.types.types[f.type].arrow],
                column_comment(contract, registry, f),
            )
            for f in contract.fields
        ),
        table_comment(contract),
    )


def refresh_reference_tables(draft: Draft, registry: Registry) -> None:
    """``curated.ref_<list>`` for every code list, rewritten only when its file changed."""
    tables = draft.tables()
    for name in registry.codelists.names:
        table = f"curated.ref_{name}"
        path = registry.codelists.path(name)
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if table in tables and tables[table].source_sha256 == digest:
            continue
        con = draft.connection()
        drop_relation(con, f"curated.ref_{name}")
        for statement in ref_table_statements(registry.codelists, name):
            con.execute(statement)
        target = draft.scratch() / f"ref_{name}-{uuid.uuid4().hex[:8]}.parquet"
        con.execute(
            f"COPY curated.{quote_identifier('ref_' + name)} TO {quote_literal(str(target))} (FORMAT parquet)"
        )
        spec = registry.codelists.spec(name)
        schema = TableSchema(
            tuple(Column(column, "VARCHAR", text) for column, text in spec.columns.items()),
            f"{spec.description} Source: schemas/codelists/{spec.file}",
        )
        draft.replace_table(table, [target], schema, None, kind="reference", source_sha256=digest)


def _keys(names: Sequence[str]) -> str:
    return ", ".join(quote_identifier(k) for k in names)


def _refuse_uncovered(
    con: duckdb.DuckDBPyConnection, contract: Contract, table: str, files: str, note: str | None
) -> None:
    """Refuse a partial batch when published rows of the partitions it touches are missing from it,
    naming each such partition, how many rows it lacks there and the first of them."""
    key = _keys(contract.primary_key)
    partition = contract.publish.partition_by if contract.publish.mode == "replace_partitions" else []
    scope = (
        f"WHERE ({_keys(partition)}) IN (SELECT {_keys(partition)} FROM read_parquet({files}))"
        if partition
        else ""
    )

    def as_json(names: Sequence[str]) -> str:
        return (
            "to_json(struct_pack("
            + ", ".join(f"{quote_identifier(k)} := {quote_identifier(k)}" for k in names)
            + "))::VARCHAR"
        )

    group = as_json(partition) if partition else "'the whole table'"
    missing = con.execute(
        f"SELECT {group} AS part, count(*), min({as_json(contract.primary_key)}) FROM "
        f"(SELECT * FROM {table} {scope}) AS t WHERE ({key}) NOT IN (SELECT {key} FROM read_parquet({files})) "
        "GROUP BY part ORDER BY part"
    ).fetchall()
    if missing:
        total = sum(int(count) for _, count, _ in missing)
        shown = "; ".join(f"{part}: {count:,} row(s), e.g. {example}" for part, count, example in missing[:5])
        more = f" and {len(missing) - 5} more partition(s)" if len(missing) > 5 else ""
        raise PublishBlocked(
            f"{contract.dataset}: a partial batch ({note or 'partial'}) lacks {total:,} published "
            f"row(s) of the partitions it would replace: {shown}{more}; nothing published "
            "(the contract's publish.partial is refuse)"
        )


def _uncarried_fields(run: RunRecord) -> set[str]:
    """Fields the batch did not carry (a column its format lacks, left null): a merge keeps their
    published values. A field derived from an older one (action ``derived``) is carried."""
    return {
        e["field"] for e in run.drift if e["kind"] == "missing_field" and e["action"] in ("allowed", "warned")
    }


def _merged(
    draft: Draft, contract: Contract, table: str, files: str, uncarried: set[str]
) -> tuple[Path, dict[str, tuple[str, ...]]]:
    """A partial batch merged by primary key with what its partitions (or the table) hold now.

    The batch's rows replace the rows with the same key, field by field for the fields it carries;
    every other row of those partitions stays. Returns the merged file (every row of the partitions
    the batch touches) and the earlier runs whose rows it carries on.
    """
    con = draft.connection()
    partition = contract.publish.partition_by if contract.publish.mode == "replace_partitions" else []
    scope = (
        f"WHERE ({_keys(partition)}) IN (SELECT {_keys(partition)} FROM read_parquet({files}))"
        if partition
        else ""
    )
    matches = " AND ".join(f"o.{quote_identifier(k)} = b.{quote_identifier(k)}" for k in contract.primary_key)
    first_key = quote_identifier(contract.primary_key[0])
    kept = ", ".join(f"o.{quote_identifier(n)}" for n in contract.field_names)
    chosen = ", ".join(
        f"CASE WHEN o.{first_key} IS NOT NULL THEN o.{quote_identifier(n)} ELSE b.{quote_identifier(n)} END"
        if n in uncarried
        else f"b.{quote_identifier(n)}"
        for n in contract.field_names
    )
    target = draft.scratch() / f"merge-{uuid.uuid4().hex[:8]}.parquet"
    con.execute(
        f"COPY (WITH b AS (SELECT * FROM read_parquet({files})), o AS (SELECT * FROM {table} {scope}) "
        f"SELECT {kept} FROM o WHERE NOT EXISTS (SELECT 1 FROM b WHERE {matches}) "
        f"UNION ALL SELECT {chosen} FROM b LEFT JOIN o ON {matches}) "
        f"TO {quote_literal(str(target))} (FORMAT parquet, COMPRESSION zstd)"
    )
    current = draft.tables().get(f"curated.{contract.dataset}")
    return target, dict(current.runs) if current is not None else {}


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


@dataclass(frozen=True)
class _Batch:
    """What one publish applies to the draft: the staged batch as its contract and run describe it."""

    staged: StagedBatch
    contract: Contract
    registry: Registry
    run: RunRecord
    allow_shrink: bool

    @property
    def name(self) -> str:
        return f"curated.{self.contract.dataset}"

    @property
    def table(self) -> str:
        return f"curated.{quote_identifier(self.contract.dataset)}"

    @property
    def files(self) -> str:
        return literal_list(str(p) for p in self.staged.files)


def _replace_rows(draft: Draft, batch: _Batch) -> tuple[int, int]:
    """The batch's rows into its table (replacing its partitions, merged or refused when partial);
    returns the table's rows before and after."""
    contract, run = batch.contract, batch.run
    current = draft.tables().get(batch.name)
    before = current.rows if current is not None else 0
    merge = run.coverage == "partial" and contract.publish.partial == "merge" and current is not None
    if run.coverage == "partial" and not merge and current is not None:
        _refuse_uncovered(draft.connection(), contract, batch.table, batch.files, run.coverage_note)
    if merge:
        merged, earlier = _merged(draft, contract, batch.table, batch.files, _uncarried_fields(run))
        sources, carried_runs = [merged], earlier
    else:
        sources, carried_runs = list(batch.staged.files), {}
    schema = table_schema(contract, batch.registry)
    if contract.publish.mode == "replace_partitions":
        partition_by = contract.publish.partition_by
        draft.replace_partitions(
            batch.name, sources, schema, partition_by, run.run_id, also_from=carried_runs
        )
    else:
        draft.replace_table(batch.name, sources, schema, run.run_id, also_from=carried_runs)
    return before, draft.tables()[batch.name].rows


def _apply(draft: Draft, batch: _Batch, file_records: list[dict[str, Any]]) -> None:
    """The change a publish makes to the draft: reference lists, the table (audited), its marts,
    and the run's record with its lineage."""
    from pipelines.marts import build_marts

    contract, run = batch.contract, batch.run
    refresh_reference_tables(draft, batch.registry)
    before, after = _replace_rows(draft, batch)
    run.table_rows_before, run.table_rows_after = before, after
    _audit_shrink(contract, batch.table, before, after, batch.allow_shrink)
    if tier_of(contract) == "public":
        marts = build_marts(draft, changed={batch.name})
        run.warnings.extend(
            f"marts.{mart} left out of the release: {reason}" for mart, reason in marts.failed.items()
        )
    run.rows_published = batch.staged.rows
    run.publish_version = draft.number
    run.finish("published")
    draft.record_run(run_values(run, tier_of(contract)), {**run_details(run), "files": file_records})


def publish(
    staged: StagedBatch,
    contract: Contract,
    registry: Registry,
    layout: Layout,
    run: RunRecord,
    keep_versions: int = 10,
    allow_shrink: bool = False,
    root: DataRoot | None = None,
) -> PublishResult:
    """The batch's rows, the reference lists and the marts built from them, as the tier's next release.

    A complete batch replaces its partitions (or the whole table); a partial one (``run.coverage``)
    is merged by primary key or refused, as the contract's ``publish.partial`` says. A change that
    removes more than ``publish.max_shrink_pct`` of the rows is blocked unless ``allow_shrink``.
    ``root``: the data root the run's files are on (SCDX_DATA_URL), named in the lineage records.
    """
    store = open_store(layout, tier_of(contract), keep_versions)
    record_contract(store.catalog, contract, registry)
    batch = _Batch(staged, contract, registry, run, allow_shrink)
    file_records = _file_records(run, staged, layout, root)
    try:
        release = store.publish(
            lambda draft: _apply(draft, batch, file_records), "data", run_ids=[run.run_id]
        )
    except StoreError as exc:
        raise PublishError(str(exc)) from None
    if release is not None:
        return PublishResult(version=release.number, rows_published=staged.rows)
    # Every partition it holds already holds exactly these rows: nothing changes, no release.
    current = store.current()
    run.rows_published = 0
    run.publish_version = current.number if current else None
    run.finish("unchanged")
    record_run(run, contract, registry, layout)
    log.info("%s run %s: the batch's rows are the published ones; no release", contract.dataset, run.run_id)
    return PublishResult(version=run.publish_version or 0, rows_published=0)
