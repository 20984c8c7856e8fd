"""Publish the partner aggregates: the current restricted release's partner tables, through
disclosure control, into the public tier as one release (issue 23).

Only the cells :mod:`pipelines.stages.flow_aggregates` returns leave the restricted tier: no
partner id, no partner row, no value of a suppressed cell. The public tables are rewritten whole
each time; the store compares their rows with the published ones, so unchanged partner data makes
no release. The marts that read them are rebuilt in the same release.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.common.sql import quote_identifier
from pipelines.contracts import Registry
from pipelines.stages.flow_aggregates import (
    FORECAST_COLUMNS,
    PORT_COLUMNS,
    disclosure_rule,
    forecast_weekly,
    port_weekly,
    table_schema,
)
from pipelines.store import Draft, Release
from pipelines.store.layout import Layout
from pipelines.store.tiers import is_published, open_current, open_store, release_tables

log = logging.getLogger("scdx.aggregates")

PUBLISHED = "published"


@dataclass(frozen=True)
class Aggregate:
    """A public aggregate table and the restricted dataset it is computed from."""

    table: str  # schema-qualified public name
    dataset: str  # the restricted partner dataset
    columns: dict[str, tuple[str, str]]
    build: Callable[[pa.Table, Registry], pa.Table]


def _ports(rows: pa.Table, registry: Registry) -> pa.Table:
    return port_weekly(rows, registry, disclosure_rule(registry.get("flow_port_throughput")))


def _forecasts(rows: pa.Table, registry: Registry) -> pa.Table:
    return forecast_weekly(rows, disclosure_rule(registry.get("flow_shipper_forecasts")))


AGGREGATES = (
    Aggregate("curated.flow_port_weekly", "flow_port_throughput", PORT_COLUMNS, _ports),
    Aggregate("curated.flow_forecast_weekly", "flow_shipper_forecasts", FORECAST_COLUMNS, _forecasts),
)
PARTNER_DATASETS = frozenset(a.dataset for a in AGGREGATES)


@dataclass(frozen=True)
class AggregatesPublished:
    """What a publish of the aggregates did: the public release (None when nothing changed) and,
    per public table, its cells counted as published or by suppression reason."""

    release: int | None
    cells: dict[str, dict[str, int]] = field(default_factory=dict)


def _restricted_rows(layout: Layout) -> dict[str, pa.Table]:
    """The partner tables of the current restricted release (those published so far)."""
    if not is_published(layout, "restricted"):
        return {}
    found = {}
    with open_current(layout, "restricted") as con:
        published = release_tables(con, ["curated"])
        for aggregate in AGGREGATES:
            if f"curated.{aggregate.dataset}" in published:
                found[aggregate.dataset] = con.sql(
                    f"SELECT * FROM curated.{quote_identifier(aggregate.dataset)}"
                ).to_arrow_table()
    return found


def cell_counts(table: pa.Table) -> dict[str, int]:
    """Cells published, and suppressed by reason."""
    counted = Counter(reason or PUBLISHED for reason in table.column("suppression_reason").to_pylist())
    return dict(sorted(counted.items()))


def publish_flow_aggregates(
    layout: Layout, registry: Registry, keep_versions: int = 10
) -> AggregatesPublished:
    """Compute every aggregate whose partner dataset the restricted tier holds and publish them,
    with the marts reading them, as one public release (none when nothing changed)."""
    from pipelines.marts import build_marts

    rows = _restricted_rows(layout)
    built = {a.table: (a, a.build(rows[a.dataset], registry)) for a in AGGREGATES if a.dataset in rows}
    if not built:
        log.info("no partner data in the restricted tier: no public aggregates")
        return AggregatesPublished(None)

    def change(draft: Draft) -> None:
        for name, (aggregate, table) in built.items():
            target = draft.scratch() / f"{name.removeprefix('curated.')}-{uuid.uuid4().hex[:8]}.parquet"
            pq.write_table(table, target, compression="zstd")
            comment = (
                f"Disclosure-controlled weekly aggregates of the partner dataset {aggregate.dataset} "
                "(restricted); a cell is published only when it passes the contract's disclosure rule "
                "and hides no suppressed one. Constructed partner data in the demo."
            )
            draft.replace_table(name, [target], table_schema(aggregate.columns, comment), None)
        failed = build_marts(draft, changed=set(built)).failed
        for mart, reason in failed.items():
            log.warning("marts.%s left out of the aggregates release: %s", mart, reason)

    release: Release | None = open_store(layout, "public", keep_versions).publish(change, "aggregates")
    counts = {name: cell_counts(table) for name, (_, table) in built.items()}
    log.info(
        "public aggregates: %s; %s",
        f"release {release.number}" if release else "unchanged, no release",
        "; ".join(f"{name} {counted}" for name, counted in counts.items()),
    )
    return AggregatesPublished(release.number if release else None, counts)
