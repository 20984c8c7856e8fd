"""Contracts are the single source of truth: what is derived from them, and what they refuse."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from pipelines.contracts import (
    Contract,
    ContractError,
    Registry,
    arrow_schema,
    check_specs,
    duckdb_ddl,
    load_contract,
    load_registry,
    load_yaml,
    provenance_notes,
)

from .conftest import RECORDINGS, SCHEMAS


def test_every_contract_in_schemas_loads_against_the_shared_types(registry: Registry) -> None:
    assert "census_trade_imports" in registry.contracts
    for contract in registry.contracts.values():
        for field in contract.fields:
            assert field.type in registry.types.types


def test_arrow_schema_is_derived_from_fields_and_shared_types(census: Contract, registry: Registry) -> None:
    schema = arrow_schema(census, registry)
    assert schema.names == census.field_names
    assert schema.field("period").type == pa.date32()
    assert schema.field("country_code").type == pa.string()
    assert schema.field("general_value_usd").type == pa.int64()
    assert schema.field("general_value_usd").metadata[b"nullable"] == b"false"
    assert schema.field("hs_description").metadata[b"nullable"] == b"true"
    assert schema.field("general_value_usd").metadata[b"unit"] == b"USD"
    assert schema.metadata[b"contract_version"] == census.version.encode()


def test_duckdb_ddl_declares_every_column_and_comments_each_one(census: Contract, registry: Registry) -> None:
    create, table_comment, *column_comments = duckdb_ddl(census, registry)
    assert create.startswith('CREATE TABLE IF NOT EXISTS "curated"."census_trade_imports" (')
    assert '"general_value_usd" BIGINT NOT NULL' in create and '"period" DATE NOT NULL' in create
    assert table_comment.startswith('COMMENT ON TABLE "curated"."census_trade_imports" IS')
    assert len(column_comments) == len(census.fields)
    assert all(c.startswith('COMMENT ON COLUMN "curated"."census_trade_imports".') for c in column_comments)


def test_checks_are_compiled_from_key_types_and_listed_expectations(
    census: Contract, registry: Registry
) -> None:
    specs = {(s.expectation, s.kwargs.get("column")): s for s in check_specs(census, registry)}
    (key_check,) = [s for s in check_specs(census, registry) if s.description.startswith("primary key")]
    assert key_check.expectation == "UnexpectedRowsExpectation" and key_check.severity == "blocking"
    key = '"period", "hs_code", "country_code"'
    assert key_check.kwargs["unexpected_rows_query"] == (
        f"SELECT {key}, count(*) AS copies FROM {{batch}} WHERE hash({key}) IN "
        f"(SELECT hash({key}) FROM {{batch}} GROUP BY 1 HAVING count(*) > 1) "
        f"GROUP BY {key} HAVING count(*) > 1"
    )
    assert specs[("ExpectColumnValuesToMatchRegex", "hs_code")].kwargs["regex"] == (
        "^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{10})$"
    )
    # Headings (the API's HS4) must be the basket's; chapters from a report are checked by pattern.
    basket = specs[("ExpectColumnValuesToBeInSet", "hs_code")]
    assert basket.row_condition == {"hs_level": "HS4"} and "8507" in basket.kwargs["value_set"]
    assert specs[("ExpectColumnValuesToMatchRegex", "country_code")].severity == "blocking"
    assert specs[("ExpectColumnValuesToBeBetween", "general_value_usd")].kwargs["min_value"] == 0
    assert specs[("ExpectColumnValuesToBeInSet", "partner_kind")].kwargs["value_set"] == [
        "country",
        "group",
        "total",
    ]
    assert specs[("ExpectTableRowCountToBeBetween", None)].kwargs["min_value"] == 50
    assert specs[("UnexpectedRowsExpectation", None)].severity == "warning"
    assert ("ExpectColumnValuesToNotBeNull", "hs_description") not in specs


def _write_variant(tmp_path: Path, change: dict[str, object] | None = None, text: str | None = None) -> Path:
    raw = yaml.safe_load((SCHEMAS / "census_trade_imports.yaml").read_text())
    if change:
        raw.update(change)
    path = tmp_path / "census_trade_imports.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(raw))
    return path


def _fields_with(extra: dict[str, object]) -> list[dict[str, object]]:
    raw = yaml.safe_load((SCHEMAS / "census_trade_imports.yaml").read_text())
    fields: list[dict[str, object]] = raw["fields"]
    return [*fields, extra]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"fields": _fields_with({"name": "period", "type": "month", "description": "again"})},
            "duplicate field names: period",
        ),
        (
            {"fields": _fields_with({"name": "x; DROP TABLE t", "type": "usd", "description": "injection"})},
            "not a safe identifier",
        ),
        (
            {"fields": _fields_with({"name": "tonnes", "type": "megatons", "description": "?"})},
            "field 'tonnes' has unknown shared type 'megatons'",
        ),
        ({"primary_key": ["period", "hs6"]}, "primary_key names fields that do not exist: hs6"),
        ({"dataset": "../../etc/passwd"}, "dataset name '../../etc/passwd' is not a safe identifier"),
        ({"version": "1.0"}, "version '1.0' is not MAJOR.MINOR.PATCH"),
        ({"classification": "secret"}, "classification"),
    ],
)
def test_invalid_contract_is_refused_with_a_message_naming_file_and_field(
    tmp_path: Path, registry: Registry, change: dict[str, object], message: str
) -> None:
    path = _write_variant(tmp_path, change)
    with pytest.raises(ContractError) as caught:
        load_contract(path, registry.types)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def _source_with(recordings: dict[str, object]) -> dict[str, object]:
    raw = yaml.safe_load((SCHEMAS / "census_trade_imports.yaml").read_text())
    source: dict[str, object] = raw["source"]
    return {**source, "offline_recordings": recordings}


def test_every_contract_says_whether_its_recordings_are_real_or_constructed_and_links_their_provenance(
    registry: Registry,
) -> None:
    sections = {note.folder for note in provenance_notes(RECORDINGS)}
    kinds = {}
    for contract in registry.contracts.values():
        recordings = contract.source.offline_recordings
        assert recordings is not None, contract.dataset
        assert recordings.folder in sections, f"{contract.dataset}: {recordings.provenance} is no section"
        assert (RECORDINGS / recordings.folder).is_dir()
        kinds[contract.dataset] = recordings.kind
    constructed = {
        "census_trade_imports",
        "census_trade_exports",
        "bls_qcew_industry",
        "faf5_regional_flows",
        "flow_port_throughput",
        "flow_shipper_forecasts",
    }
    assert {d for d, kind in kinds.items() if kind == "constructed"} == constructed


@pytest.mark.parametrize(
    ("recordings", "message"),
    [
        (
            {"kind": "invented", "note": "x", "provenance": "recordings/PROVENANCE.md#x"},
            "offline_recordings.kind",
        ),
        ({"kind": "constructed", "note": "x", "provenance": "https://example.org"}, "PROVENANCE.md#<folder>"),
        ({"kind": "constructed", "provenance": "recordings/PROVENANCE.md#x"}, "offline_recordings.note"),
    ],
)
def test_a_bad_offline_recordings_entry_is_refused_naming_the_field(
    tmp_path: Path, registry: Registry, recordings: dict[str, object], message: str
) -> None:
    path = _write_variant(tmp_path, {"source": _source_with(recordings)})
    with pytest.raises(ContractError, match=re.escape(message)):
        load_contract(path, registry.types)


def test_schema_files_read_the_same_with_libyaml_as_with_the_pure_python_safe_loader() -> None:
    files = sorted(SCHEMAS.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert load_yaml(text) == yaml.safe_load(text), path


def test_yaml_loader_refuses_python_object_tags() -> None:
    with pytest.raises(yaml.YAMLError):
        load_yaml("cmd: !!python/object/apply:os.system ['true']\n")


def test_contract_with_invalid_yaml_is_refused_naming_the_file(tmp_path: Path, registry: Registry) -> None:
    path = _write_variant(tmp_path, text="dataset: census_trade_imports\nfields: [unclosed\n")
    with pytest.raises(ContractError, match=rf"{path}: invalid YAML"):
        load_contract(path, registry.types)


def test_contract_file_name_must_match_its_dataset(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "other_name.yaml"
    path.write_text((SCHEMAS / "census_trade_imports.yaml").read_text())
    with pytest.raises(ContractError, match="must match the file name 'other_name'"):
        load_contract(path, registry.types)


def test_unknown_dataset_is_a_clear_error(registry: Registry) -> None:
    with pytest.raises(
        ContractError,
        match=r"unknown dataset 'nope': no contract schemas/nope.yaml \(known: .*census_trade_imports",
    ):
        registry.get("nope")


def test_registry_of_a_directory_without_types_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"types\.yaml: cannot read"):
        load_registry(tmp_path)


def test_the_contracts_modules_never_import_the_package_that_re_exports_them() -> None:
    # The package's __init__ imports every module for its re-exports; a module importing the
    # package back would be the cycle contracts <-> codelists once was (import-linter's
    # layers and acyclic contracts look at the modules, not at their parent package).
    import ast

    import pipelines.contracts

    package = Path(pipelines.contracts.__file__).parent
    for path in sorted(package.glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "pipelines.contracts", f"{path.name} imports pipelines.contracts"
            elif isinstance(node, ast.Import):
                assert all(a.name != "pipelines.contracts" for a in node.names), path.name
