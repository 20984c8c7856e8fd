"""Parquet partner submissions: the same signed envelope -> land -> normalize -> validate ->
publish path as CSV, the format told from the bytes, Parquet columns cast to the contract."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from pipelines.common.settings import Settings
from pipelines.contracts import PartnerRegistry, Registry, load_partners
from pipelines.orchestration.inbox import Outcome, inbox_dir, ingest_inbox, submit
from pipelines.replay.flow_generate import write_submissions
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_current

from .conftest import SCHEMAS

THROUGHPUT, FORECASTS = "flow_port_throughput", "flow_shipper_forecasts"
GARDEN, ALPHA = "sav_garden_terminal", "shipper_alpha_retail"
KEYS = {GARDEN: "garden-key-3c9a7e1f0b2d", ALPHA: "alpha-key-8d4e6f2a1c0b"}


@pytest.fixture
def partners(monkeypatch: pytest.MonkeyPatch, registry: Registry) -> PartnerRegistry:
    for partner, key in KEYS.items():
        monkeypatch.setenv(f"SCDX_PARTNER_{partner.upper()}_KEY", key)
    return load_partners(SCHEMAS, set(registry.contracts))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generator's CSV submissions (pipelines/replay/flow_generate.py)."""
    out = tmp_path_factory.mktemp("flow")
    write_submissions(out)
    return out


def _as_parquet(csv_path: Path, target: Path) -> Path:
    """The CSV as a partner's system would write it to Parquet: Arrow infers the types (integers
    for TEUs, doubles for dwell days), and the columns come in another order (mapped by name)."""
    table = pa_csv.read_csv(csv_path)
    pq.write_table(table.select(table.column_names[::-1]), target)
    return target


def _submit(settings: Settings, partner: str, dataset: str, path: Path) -> Path:
    return submit(inbox_dir(settings), partner, dataset, path, KEYS[partner].encode())


def _only(outcomes: list[Outcome]) -> Outcome:
    (outcome,) = outcomes
    return outcome


def _restricted(settings: Settings, dataset: str) -> list[tuple[object, ...]]:
    with open_current(Layout(settings.data_dir), "restricted") as con:
        return con.execute(f"SELECT * FROM curated.{dataset} ORDER BY ALL").fetchall()


def _publish_both_ways(
    tmp_path: Path,
    settings: Settings,
    registry: Registry,
    partners: PartnerRegistry,
    csv_path: Path,
    partner: str,
    dataset: str,
    parquet: Path,
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The restricted rows after the CSV submission, and in a fresh data dir after the Parquet one."""
    _submit(settings, partner, dataset, csv_path)
    assert _only(ingest_inbox(settings, registry, partners)).status == "published"
    from_csv = _restricted(settings, dataset)
    other = Settings(
        data_dir=tmp_path / "other", schemas_dir=settings.schemas_dir, recordings_dir=settings.recordings_dir
    )
    other.data_dir.mkdir()
    _submit(other, partner, dataset, parquet)
    assert _only(ingest_inbox(other, registry, partners)).status == "published"
    return from_csv, _restricted(other, dataset)


def test_a_parquet_submission_publishes_the_same_restricted_rows_as_the_same_data_in_csv(
    tmp_path: Path, settings: Settings, registry: Registry, partners: PartnerRegistry, generated: Path
) -> None:
    csv_path = generated / THROUGHPUT / f"{GARDEN}.csv"
    # Named .csv on purpose: the format is told from the bytes, not the name.
    parquet = _as_parquet(csv_path, tmp_path / "throughput.csv")
    assert pq.read_schema(parquet).field("loaded_teu_in").type == pa.int64()
    from_csv, from_parquet = _publish_both_ways(
        tmp_path, settings, registry, partners, csv_path, GARDEN, THROUGHPUT, parquet
    )
    assert len(from_csv) == 26
    assert from_parquet == from_csv
    assert {row[0] for row in from_parquet} == {GARDEN}


def test_parquet_forecasts_with_numeric_codes_publish_the_same_rows_as_csv(
    tmp_path: Path, settings: Settings, registry: Registry, partners: PartnerRegistry, generated: Path
) -> None:
    csv_path = generated / FORECASTS / f"{ALPHA}.csv"
    # Arrow reads the HS chapters 94, 95 as integers: written out as text they are the codes again.
    parquet = _as_parquet(csv_path, tmp_path / "forecasts.parquet")
    assert pq.read_schema(parquet).field("commodity_code").type == pa.int64()
    from_csv, from_parquet = _publish_both_ways(
        tmp_path, settings, registry, partners, csv_path, ALPHA, FORECASTS, parquet
    )
    assert len(from_csv) == 25 * 8 * 2 * 2  # issued weeks x horizons x ports x commodities
    assert from_parquet == from_csv


def test_a_partner_id_column_in_a_parquet_file_is_recorded_as_drift_and_ignored(
    tmp_path: Path, settings: Settings, registry: Registry, partners: PartnerRegistry, generated: Path
) -> None:
    table = pa_csv.read_csv(generated / THROUGHPUT / f"{GARDEN}.csv")
    forged = table.append_column("partner_id", pa.array(["sav_ocean_terminal"] * table.num_rows))
    pq.write_table(forged, tmp_path / "forged.parquet")
    _submit(settings, GARDEN, THROUGHPUT, tmp_path / "forged.parquet")
    assert _only(ingest_inbox(settings, registry, partners)).status == "published"
    assert {row[0] for row in _restricted(settings, THROUGHPUT)} == {GARDEN}
    with open_current(Layout(settings.data_dir), "restricted") as con:
        assert con.execute("SELECT field, action FROM meta.schema_drift").fetchall() == [
            ("partner_id", "ignored")
        ]


@pytest.mark.parametrize(
    ("field", "values", "said"),
    [
        # Text that is not a number, in a TEU column.
        ("loaded_teu_in", pa.array(["n/a"] * 26), "value 'n/a' is not a valid double"),
        # A flag is not a count, although Arrow would cast true to 1.
        ("vessel_arrivals", pa.array([True] * 26), "value True (a bool value) is not a valid int64"),
        # Half a vessel is not a count: the cast refuses to truncate.
        ("vessel_arrivals", pa.array([7.5] * 26), "value 7.5 (a double value) is not a valid int64"),
        # A timestamp is not a number of days.
        (
            "dwell_days",
            pa.array([0] * 26, pa.timestamp("ms")),
            "(a timestamp[ms] value) is not a valid double",
        ),
    ],
)
def test_a_parquet_column_of_the_wrong_type_is_refused_naming_dataset_file_field_and_row(
    tmp_path: Path,
    settings: Settings,
    registry: Registry,
    partners: PartnerRegistry,
    generated: Path,
    field: str,
    values: pa.Array,
    said: str,
) -> None:
    table = pa_csv.read_csv(generated / THROUGHPUT / f"{GARDEN}.csv")
    wrong = table.set_column(table.schema.get_field_index(field), field, values)
    pq.write_table(wrong, tmp_path / "wrong.parquet")
    envelope = _submit(settings, GARDEN, THROUGHPUT, tmp_path / "wrong.parquet")
    submission_id = envelope.name.removesuffix(".envelope.json")
    outcome = _only(ingest_inbox(settings, registry, partners))
    assert outcome.status == "failed"
    assert f"{THROUGHPUT}: " in outcome.reason and "quarantined" in outcome.reason
    # The landed copy of the submission, its first row (Parquet has no header row), the field.
    assert f"{submission_id}.bin, row 1, field {field!r}: type_change" in outcome.reason
    assert said in outcome.reason
    assert not Layout(settings.data_dir).store("restricted").link.exists()


def test_a_damaged_parquet_file_is_refused_naming_the_file(
    tmp_path: Path, settings: Settings, registry: Registry, partners: PartnerRegistry, generated: Path
) -> None:
    whole = _as_parquet(generated / THROUGHPUT / f"{GARDEN}.csv", tmp_path / "whole.parquet").read_bytes()
    # Cut short (an interrupted upload): still opens with PAR1, but has no footer.
    (tmp_path / "cut.parquet").write_bytes(whole[: len(whole) // 2])
    envelope = _submit(settings, GARDEN, THROUGHPUT, tmp_path / "cut.parquet")
    file_name = json.loads(envelope.read_text())["file_name"]
    outcome = _only(ingest_inbox(settings, registry, partners))
    assert outcome.status == "refused"
    assert outcome.reason == (
        f"{THROUGHPUT}: {file_name}: expected CSV or Parquet, "
        "found damaged Parquet data (no closing PAR1 footer: cut short or altered)"
    )
    refused = inbox_dir(settings) / "refused" / outcome.submission_id
    assert (refused / "reason.txt").read_text() == outcome.reason + "\n"
    assert (refused / file_name).read_bytes() == whole[: len(whole) // 2]
    assert not Layout(settings.data_dir).store("restricted").link.exists()


def test_a_parquet_file_damaged_inside_is_not_published_and_the_error_names_the_file(
    tmp_path: Path, settings: Settings, registry: Registry, partners: PartnerRegistry, generated: Path
) -> None:
    whole = bytearray(
        _as_parquet(generated / THROUGHPUT / f"{GARDEN}.csv", tmp_path / "p.parquet").read_bytes()
    )
    # Both magics and the footer intact, a column chunk's bytes overwritten.
    whole[200:400] = bytes(200)
    (tmp_path / "garbled.parquet").write_bytes(bytes(whole))
    envelope = _submit(settings, GARDEN, THROUGHPUT, tmp_path / "garbled.parquet")
    submission_id = envelope.name.removesuffix(".envelope.json")
    outcome = _only(ingest_inbox(settings, registry, partners))
    assert outcome.status == "failed"
    assert outcome.reason.startswith(f"{THROUGHPUT}: ")
    assert f"{submission_id}.bin: not a readable Parquet file: " in outcome.reason
    assert not Layout(settings.data_dir).store("restricted").link.exists()


def test_a_signed_parquet_file_altered_after_signing_is_refused(
    tmp_path: Path, settings: Settings, registry: Registry, partners: PartnerRegistry, generated: Path
) -> None:
    csv_path = generated / THROUGHPUT / f"{GARDEN}.csv"
    envelope = _submit(settings, GARDEN, THROUGHPUT, _as_parquet(csv_path, tmp_path / "signed.parquet"))
    file_name = json.loads(envelope.read_text())["file_name"]
    assert file_name.endswith(".parquet")
    # Someone on the way halves the first week's volume and rewrites the file, a valid Parquet file.
    table = pq.read_table(inbox_dir(settings) / file_name)
    halved = pa.array([table["loaded_teu_in"][0].as_py() // 2, *table["loaded_teu_in"].to_pylist()[1:]])
    pq.write_table(
        table.set_column(table.schema.get_field_index("loaded_teu_in"), "loaded_teu_in", halved),
        inbox_dir(settings) / file_name,
    )
    outcome = _only(ingest_inbox(settings, registry, partners))
    assert outcome.status == "refused"
    assert outcome.reason == "the file is not the one signed (sha256 differs or file missing)"
    assert not Layout(settings.data_dir).store("restricted").link.exists()
