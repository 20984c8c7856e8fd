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
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.common.errors import ScdxError
from pipelines.common.sql import literal_list, quote_identifier, quote_literal
from pipelines.contracts import DUCKDB_TYPES, Contract, Registry, column_comment, table_comment
from pipelines.contracts.codelists import ref_table_statements
from pipelines.stages.land import open_landed
from pipelines.stages.stage import StagedBatch
from pipelines.store import Column, Draft, Release, StoreError, TableSchema
from pipelines.store.catalog import Catalog, dumps, open_catalog
from pipelines.store.layout import Layout
from pipelines.store.local import LocalStore, drop_relation
from pipelines.store.runs import RunRecord

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


def tier_of(contract: Contract) -> str:
    """The access tier a dataset publishes to: its classification."""
    return contract.classification


def catalog_of(layout: Layout) -> Catalog:
    """The operational catalog of a data directory (SCDX_CATALOG_URL, else its SQLite file)."""
    return open_catalog(layout.root)


def open_store(layout: Layout, tier: str = "public", keep_versions: int = 10) -> LocalStore:
    """The release store of a tier under the data directory."""
    return LocalStore(layout.root, layout.store(tier), catalog_of(layout), keep_versions)


# --- the run history -------------------------------------------------------------------------------


def run_values(run: RunRecord, tier: str) -> dict[str, Any]:
    """A run record as a row of the catalog's runs."""
    values: dict[str, Any] = {name: getattr(run, name) for name in RunRecord.columns()}
    values["raw_sha256"] = json.dumps(list(run.raw_sha256))
    values["warnings"] = json.dumps(list(run.warnings))
    values["tier"] = tier
    values["pid"] = os.getpid()
    values["host"] = socket.gethostname()
    return values


def run_details(run: RunRecord) -> dict[str, list[dict[str, Any]]]:
    """A run's drift and unit conversions, as the catalog keeps them."""
    now = datetime.now(UTC)
    return {
        "drift": [{**event, "detected_at": now} for event in run.drift],
        "unit_conversions": [dict(c) for c in run.unit_conversions],
    }


def record_contract(catalog: Catalog, contract: Contract, registry: Registry) -> None:
    catalog.record_contract(
        {
            "dataset": contract.dataset,
            "version": contract.version,
            "sha256": registry.contract_sha256(contract.dataset),
            "title": contract.title,
            "agency": contract.provider.agency,
            "steward": contract.provider.steward,
            "classification": contract.classification,
            "recorded_at": datetime.now(UTC),
        }
    )


def record_run(run: RunRecord, contract: Contract, registry: Registry, layout: Layout) -> None:
    """Record a run (at its start, and whenever it ends without a release) in the catalog only:
    a run that publishes nothing makes no release."""
    catalog = catalog_of(layout)
    record_contract(catalog, contract, registry)
    catalog.record_run(run_values(run, tier_of(contract)), run_details(run))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def begin_run(
    run: RunRecord, contract: Contract, registry: Registry, layout: Layout, owned_by_process: bool = True
) -> None:
    """Record a run as ``running`` when it starts; runs on this host whose process is gone (killed)
    become ``abandoned`` first, so every run ends in a terminal status.

    ``owned_by_process=False``: the run spans several processes (Airflow's tasks, each its own),
    so no process's end says it was abandoned: Airflow's retries and its failure handling end it.
    """
    catalog = catalog_of(layout)
    for run_id in catalog.abandon_dead_runs(_alive):
        log.warning("run %s was killed before it could record its outcome: marked abandoned", run_id)
    open_store(layout, tier_of(contract)).heal()
    record_contract(catalog, contract, registry)
    values = run_values(run, tier_of(contract))
    if not owned_by_process:
        values.update(pid=None, host="airflow")
    catalog.record_run(values, run_details(run))


def _file_records(run: RunRecord, staged: StagedBatch, layout: Layout) -> list[dict[str, Any]]:
    """The run's raw responses (from their manifests) and staged Parquet, for lineage."""
    import pyarrow.parquet as pq

    records: list[dict[str, Any]] = []
    for page in open_landed(run.dataset, run.run_id, layout).pages:
        records.append(
            {
                "kind": "raw",
                "path": str(page.body_path.relative_to(layout.root)),
                "sha256": page.manifest["sha256"],
                "bytes": page.manifest["bytes"],
                "url": page.manifest["url"],
                "fetched_at": page.manifest["fetched_at"],
                "rows": None,
            }
        )
    for path in staged.files:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        records.append(
            {
                "kind": "staged",
                "path": str(path.relative_to(layout.root)),
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


def publish(
    staged: StagedBatch,
    contract: Contract,
    registry: Registry,
    layout: Layout,
    run: RunRecord,
    keep_versions: int = 10,
    allow_shrink: bool = False,
) -> PublishResult:
    """The batch's rows, the reference lists and the marts built from them, as the tier's next release.

    A complete batch replaces its partitions (or the whole table); a partial one (``run.coverage``)
    is merged by primary key or refused, as the contract's ``publish.partial`` says. A change that
    removes more than ``publish.max_shrink_pct`` of the rows is blocked unless ``allow_shrink``.
    """
    from pipelines.marts import build_marts

    name = f"curated.{contract.dataset}"
    table = f"curated.{quote_identifier(contract.dataset)}"
    files = literal_list(str(p) for p in staged.files)
    schema = table_schema(contract, registry)
    partition_by = contract.publish.partition_by if contract.publish.mode == "replace_partitions" else []
    store = open_store(layout, tier_of(contract), keep_versions)
    record_contract(store.catalog, contract, registry)
    file_records = _file_records(run, staged, layout)

    def change(draft: Draft) -> None:
        refresh_reference_tables(draft, registry)
        current = draft.tables().get(name)
        before = current.rows if current is not None else 0
        merge = run.coverage == "partial" and contract.publish.partial == "merge" and current is not None
        if run.coverage == "partial" and not merge and current is not None:
            _refuse_uncovered(draft.connection(), contract, table, files, run.coverage_note)
        if merge:
            merged, earlier = _merged(draft, contract, table, files, _uncarried_fields(run))
            sources, carried_runs = [merged], earlier
        else:
            sources, carried_runs = list(staged.files), {}
        if partition_by:
            draft.replace_partitions(name, sources, schema, partition_by, run.run_id, also_from=carried_runs)
        else:
            draft.replace_table(name, sources, schema, run.run_id, also_from=carried_runs)
        after = draft.tables()[name].rows
        run.table_rows_before, run.table_rows_after = before, after
        _audit_shrink(contract, table, before, after, allow_shrink)
        if tier_of(contract) == "public":
            marts = build_marts(draft, changed={name})
            run.warnings.extend(
                f"marts.{mart} left out of the release: {reason}" for mart, reason in marts.failed.items()
            )
        run.rows_published = staged.rows
        run.publish_version = draft.number
        run.finish("published")
        draft.record_run(run_values(run, tier_of(contract)), {**run_details(run), "files": file_records})

    try:
        release = store.publish(change, "data", run_ids=[run.run_id])
    except StoreError as exc:
        raise PublishError(str(exc)) from None
    if release is None:
        # Every partition it holds already holds exactly these rows: nothing changes, no release.
        current = store.current()
        run.rows_published = 0
        run.publish_version = current.number if current else None
        run.finish("unchanged")
        record_run(run, contract, registry, layout)
        log.info(
            "%s run %s: the batch's rows are the published ones; no release", contract.dataset, run.run_id
        )
        return PublishResult(version=run.publish_version or 0, rows_published=0)
    return PublishResult(version=release.number, rows_published=staged.rows)


# --- reading what is published ---------------------------------------------------------------------


def rollback(
    layout: Layout, to_version: int | None = None, tier: str = "public", keep_versions: int = 10
) -> tuple[int, int]:
    """A new release restoring release ``to_version``'s tables (default: the one before the current);
    returns (new release, restored release). Works from the catalog alone: the current release's
    file may be damaged or gone."""
    try:
        release = open_store(layout, tier, keep_versions).rollback(to_version)
    except StoreError as exc:
        raise PublishError(str(exc)) from None
    log.info("%s tier: release %d restores release %s", tier, release.number, release.restored)
    return release.number, int(release.restored or 0)


def list_publishes(layout: Layout, tier: str = "public") -> list[Release]:
    """Every release of the tier, newest first."""
    return list(reversed(open_store(layout, tier).releases()))


def table_lineage(layout: Layout, table: str, tier: str = "public") -> list[dict[str, Any]]:
    """The runs and files the current release of ``table`` (``curated.x``, ``marts.y`` or ``x``)
    came from; for a mart, those of the curated tables it was built from."""
    from pipelines.marts import load_marts

    name = table if "." in table else f"curated.{table}"
    sources = [name]
    if name.startswith("marts."):
        by_name = {m.name: m for m in load_marts()}
        pending, sources = [name.removeprefix("marts.")], []
        while pending:
            mart = by_name.get(pending.pop())
            if mart is None:
                continue
            sources += [f"curated.{d}" for d in mart.datasets]
            pending += list(mart.marts)
    with open_current(layout, tier) as con:
        rows = con.execute(
            "SELECT l.version, l.table_name, l.run_id, l.kind, l.path, l.sha256, l.url, l.fetched_at, "
            "r.started_at, r.status FROM meta.lineage l LEFT JOIN meta.runs r USING (run_id) "
            "WHERE l.table_name IN (SELECT unnest(?::VARCHAR[])) ORDER BY l.table_name, l.run_id, l.kind DESC, l.path",
            [sorted(set(sources))],
        ).fetchall()
    columns = [
        "version",
        "table_name",
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
def open_current(layout: Layout, tier: str = "public") -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the tier's current release (what an analyst gets)."""
    link = layout.store(tier).link
    if not link.exists():
        raise PublishError(f"nothing published yet in the {tier} tier ({link})")
    con = duckdb.connect(str(link), read_only=True)
    try:
        yield con
    finally:
        con.close()


def open_public(layout: Layout) -> Any:
    """A read-only connection to the current public release (a context manager)."""
    return open_current(layout, "public")


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
    """The dataset's most recent published run (None before the first publish), from the catalog."""
    catalog = catalog_of(layout)
    published = [r for r in catalog.runs(contract.dataset, "published") if r["publish_version"] is not None]
    if not published:
        return None
    row = max(published, key=lambda r: (r["publish_version"], r["started_at"]))
    sha = catalog.contract_sha256(contract.dataset, row["contract_version"])
    rolled_back = any(
        r["kind"] == "rollback" and r["number"] > row["publish_version"]
        for r in catalog.releases(tier_of(contract))
    )
    return PublishedRun(
        run_id=row["run_id"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        raw_sha256=tuple(json.loads(row["raw_sha256"] or "[]")),
        contract_version=row["contract_version"],
        contract_sha256=sha,
        publish_version=int(row["publish_version"]),
        rolled_back_since=rolled_back,
    )


def last_published(layout: Layout, contract: Contract, field_name: str) -> date | None:
    """The greatest value of ``field_name`` in the dataset's current curated table, or None."""
    link = layout.store(tier_of(contract)).link
    if not link.exists():
        return None
    with open_current(layout, tier_of(contract)) as con:
        exists = con.execute(
            "SELECT 1 FROM duckdb_views() WHERE schema_name = 'curated' AND view_name = ?", [contract.dataset]
        ).fetchone()
        if not exists:
            return None
        row = con.execute(
            f"SELECT max({quote_identifier(field_name)}) FROM curated.{quote_identifier(contract.dataset)}"
        ).fetchone()
    value: Any = row[0] if row else None
    return value if isinstance(value, date) else None


__all__ = [
    "PublishBlocked",
    "PublishError",
    "PublishResult",
    "begin_run",
    "dumps",
    "last_published",
    "latest_published_run",
    "list_publishes",
    "open_current",
    "open_public",
    "open_store",
    "publish",
    "record_run",
    "rollback",
    "table_lineage",
    "tier_of",
]
