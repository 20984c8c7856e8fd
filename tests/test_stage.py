"""Stage: contract-typed batches become the run's Parquet files, whole or not at all."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.contracts import Contract, Registry, arrow_schema
from pipelines.stages import stage as stage_module
from pipelines.stages.stage import StageError, stage
from pipelines.store.layout import Layout


def _batch(census: Contract, registry: Registry, first: int, rows: int) -> pa.RecordBatch:
    """Census-import rows numbered from ``first`` (the number is the general value)."""
    schema = arrow_schema(census, registry)
    records = [
        {
            "period": date(2024, 1, 1),
            "hs_code": "8507600020",
            "hs_level": "HS10",
            "hs_description": "LITHIUM-ION BATTERIES",
            "country_code": "5700",
            "country_name": "CHINA",
            "partner_kind": "country",
            "general_value_usd": first + n,
            "consumption_value_usd": first + n,
        }
        for n in range(rows)
    ]
    return pa.RecordBatch.from_pylist(records, schema=schema)


def _staged_values(files: tuple[object, ...]) -> list[int]:
    return [v for f in files for v in pq.read_table(f).column("general_value_usd").to_pylist()]


def test_batches_are_staged_in_their_order_rolling_to_a_new_file_past_rows_per_file(
    census: Contract, registry: Registry, layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stage_module, "ROWS_PER_FILE", 3)
    batches = [_batch(census, registry, first, 2) for first in (0, 2, 4, 6, 8)]
    staged = stage(iter(batches), census, registry, "run-1", layout)
    assert [f.name for f in staged.files] == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert staged.rows == 10
    assert _staged_values(staged.files) == list(range(10))
    assert pq.read_schema(staged.files[0]).names == census.field_names


def test_no_batches_stage_one_valid_empty_file(census: Contract, registry: Registry, layout: Layout) -> None:
    staged = stage(iter([]), census, registry, "run-1", layout)
    (only,) = staged.files
    assert staged.rows == 0 and pq.read_table(only).num_rows == 0


def test_normalize_failing_while_batches_are_still_being_written_leaves_nothing_staged(
    census: Contract, registry: Registry, layout: Layout
) -> None:
    def batches() -> Iterator[pa.RecordBatch]:
        for first in range(0, 40, 10):
            yield _batch(census, registry, first, 10)
        raise ValueError("page 5 is not JSON")

    with pytest.raises(ValueError, match="page 5 is not JSON"):
        stage(batches(), census, registry, "run-1", layout)
    staged_root = layout.staged_dir(census.dataset, "run-1").parent
    assert list(staged_root.iterdir()) == []


def test_a_write_failing_mid_run_is_a_stage_error_naming_the_directory(
    census: Contract, registry: Registry, layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stage_module, "ROWS_PER_FILE", 1)
    temporary = layout.staged_dir(census.dataset, "run-1").with_name("run-1.tmp")

    def batches() -> Iterator[pa.RecordBatch]:
        yield _batch(census, registry, 0, 1)
        deadline = time.monotonic() + 5
        while not (temporary / "part-00000.parquet").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        shutil.rmtree(temporary)  # the disk goes away under the writer: the next file cannot open
        yield _batch(census, registry, 1, 1)

    with pytest.raises(StageError, match=rf"{census.dataset}: cannot write {temporary}"):
        stage(batches(), census, registry, "run-1", layout)
    assert not temporary.exists() and not layout.staged_dir(census.dataset, "run-1").exists()


def test_a_run_is_staged_once_unless_its_retry_replaces_it(
    census: Contract, registry: Registry, layout: Layout
) -> None:
    stage(iter([_batch(census, registry, 0, 2)]), census, registry, "run-1", layout)
    with pytest.raises(StageError, match="already staged"):
        stage(iter([_batch(census, registry, 5, 1)]), census, registry, "run-1", layout)
    again = stage(iter([_batch(census, registry, 5, 1)]), census, registry, "run-1", layout, replace=True)
    assert _staged_values(again.files) == [5]
