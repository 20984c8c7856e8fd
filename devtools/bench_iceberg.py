"""Bench of the Iceberg release store (``python -m devtools bench iceberg``): what publishing a
one-month batch costs into an Iceberg table already holding many rows, against the same batch into
an empty one. The store runs as it would beyond one machine: its catalog on the local PostgreSQL
(a fresh database, dropped afterwards), its warehouse on the local S3 API (moto, on a thread).

The table is census-shaped (period, hs_code, country_code, general_value_usd), partitioned by
month like the curated Census table; the batch is the last month of it, with changed values, so
the publish replaces one partition and keeps every other by reference.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from devtools.local_pg import PostgresMissing, fresh_database
from devtools.local_s3 import local_s3

SCHEMA_COLUMNS = (
    ("period", "DATE", "First day of the month."),
    ("hs_code", "VARCHAR", "Harmonized System heading."),
    ("country_code", "VARCHAR", "Census country code."),
    ("general_value_usd", "DOUBLE", "General imports, US dollars."),
)


@contextmanager
def _bench_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the bench's catalogs, dropped afterwards."""
    try:
        with fresh_database("scdx_bench") as url:
            yield url
    except PostgresMissing as exc:
        raise SystemExit(f"the Iceberg bench: {exc}") from None


def _write_months(path: Path, months: int, rows_per_month: int, first_month: int, salt: int) -> None:
    """A census-shaped Parquet file: ``months`` months from month ``first_month`` (0 = 2000-01)."""
    import duckdb

    with duckdb.connect() as con:
        con.execute(
            f"""COPY (
                SELECT (DATE '2000-01-01' + to_months(({first_month} + i // {rows_per_month})::INTEGER))::DATE AS period,
                       lpad(((i * 7919) % 9999)::VARCHAR, 4, '0') AS hs_code,
                       lpad(((i * 31) % 240)::VARCHAR, 4, '0') AS country_code,
                       ((i * 2654435761 + {salt}) % 1000003)::DOUBLE AS general_value_usd
                FROM range({months * rows_per_month}) AS r(i)
            ) TO '{path}' (FORMAT parquet, COMPRESSION zstd)"""
        )


def _publish_month(store: Any, batch: Path, tag: str) -> float:
    from pipelines.store import Column, TableSchema

    schema = TableSchema(tuple(Column(*c) for c in SCHEMA_COLUMNS), "Census-shaped bench table.")

    def change(draft: Any) -> None:
        draft.replace_partitions("curated.census_bench", [batch], schema, ["period"], f"run-{tag}")

    started = time.perf_counter()
    store.publish(change, "data", run_ids=[f"run-{tag}"])
    return time.perf_counter() - started


def run_iceberg_bench(rows: int, months: int = 120, repeats: int = 3) -> dict[str, Any]:
    """Seconds to publish a one-month batch into a table of ``rows`` rows and into an empty one
    (each store with its own catalog database and warehouse prefix)."""
    rows_per_month = rows // months
    with local_s3() as endpoint, ExitStack() as stack:
        os.environ.update(endpoint.environment())
        from pipelines.store.catalog import open_catalog
        from pipelines.store.iceberg import IcebergStore

        bucket = endpoint.create_bucket("scdx-bench")
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))

        def new_store(name: str, keep: int) -> IcebergStore:
            catalog = open_catalog(work, stack.enter_context(_bench_database()))
            return IcebergStore(work / name, "public", catalog, f"s3://{bucket}/{name}", keep=keep)

        history = work / "history.parquet"
        _write_months(history, months, rows_per_month, 0, 0)
        batches = []
        for attempt in range(repeats):
            batch = work / f"batch-{attempt}.parquet"
            _write_months(batch, 1, rows_per_month, months - 1, attempt + 1)
            batches.append(batch)
        full = new_store("full", repeats + 2)
        started = time.perf_counter()
        _publish_month(full, history, "history")
        load_s = time.perf_counter() - started
        into_full = [_publish_month(full, b, f"full-{i}") for i, b in enumerate(batches)]
        into_empty = [
            _publish_month(new_store(f"empty{i}", 2), b, f"empty-{i}") for i, b in enumerate(batches)
        ]
    full_s, empty_s = statistics.median(into_full), statistics.median(into_empty)
    return {
        "table_rows": rows_per_month * months,
        "batch_rows": rows_per_month,
        "initial_load_s": round(load_s, 2),
        "publish_into_full_s": [round(t, 3) for t in into_full],
        "publish_into_empty_s": [round(t, 3) for t in into_empty],
        "median_full_s": full_s,
        "median_empty_s": empty_s,
        "ratio_full_to_empty": round(full_s / empty_s, 2),
    }
