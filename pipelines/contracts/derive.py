"""What a contract's tables look like elsewhere: its Arrow schema (normalize, stage) and its
curated table's DuckDB DDL and comments (the data dictionary, the releases).

pyarrow is imported inside the functions that build Arrow types: DAG files read contracts at
parse time and never need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.common.sql import quote_identifier, quote_literal
from pipelines.contracts.loading import Registry
from pipelines.contracts.models import Contract, ContractField

if TYPE_CHECKING:
    import pyarrow as pa

# Arrow type name -> DuckDB column type. One table, so the two never disagree.
DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "bool": "BOOLEAN",
    "date32": "DATE",
    "timestamp_utc": "TIMESTAMPTZ",
    "list_string": "VARCHAR[]",
}


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type for a shared type's ``arrow`` name."""
    import pyarrow as pa

    mapping: dict[str, pa.DataType] = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date32": pa.date32(),
        "timestamp_utc": pa.timestamp("us", tz="UTC"),
        "list_string": pa.list_(pa.string()),
    }
    return mapping[name]


def arrow_schema(contract: Contract, registry: Registry) -> pa.Schema:
    """Arrow schema of the dataset, with description, unit and nullability kept as field metadata.

    Every Arrow field is physically nullable: a null where the contract forbids one is a data
    quality failure that validation reports (and quarantines), not a crash while staging.
    """
    import pyarrow as pa

    fields = []
    for f in contract.fields:
        shared = registry.types.types[f.type]
        metadata = {"description": f.description, "shared_type": f.type, "nullable": str(f.nullable).lower()}
        unit = f.unit or shared.unit
        if unit:
            metadata["unit"] = unit
        fields.append(pa.field(f.name, arrow_type(shared.arrow), nullable=True, metadata=metadata))
    return pa.schema(fields, metadata={"dataset": contract.dataset, "contract_version": contract.version})


def column_comment(contract: Contract, registry: Registry, field: ContractField) -> str:
    """The COMMENT text of a curated column: description, shared type and unit."""
    shared = registry.types.types[field.type]
    unit = field.unit or shared.unit
    parts = [field.description, f"[type {field.type}"]
    if unit:
        parts[-1] += f", unit {unit}"
    if field.source:
        parts[-1] += f", source {field.source}"
    parts[-1] += "]"
    return " ".join(parts)


def table_comment(contract: Contract) -> str:
    """The COMMENT text of a curated table: title, provider, classification and contract version."""
    return (
        f"{contract.title}. Provider: {contract.provider.agency}. "
        f"Classification: {contract.classification}. Contract {contract.dataset} v{contract.version}. "
        f"Key: ({', '.join(contract.primary_key)})."
    )


def duckdb_ddl(contract: Contract, registry: Registry, schema: str = "curated") -> list[str]:
    """CREATE TABLE and COMMENT ON statements for the curated table of ``contract``."""
    table = f"{quote_identifier(schema)}.{quote_identifier(contract.dataset)}"
    columns = []
    for f in contract.fields:
        column_type = DUCKDB_TYPES[registry.types.types[f.type].arrow]
        null = "" if f.nullable else " NOT NULL"
        columns.append(f"    {quote_identifier(f.name)} {column_type}{null}")
    statements = [f"CREATE TABLE IF NOT EXISTS {table} (\n" + ",\n".join(columns) + "\n)"]
    statements.append(f"COMMENT ON TABLE {table} IS {quote_literal(table_comment(contract))}")
    for f in contract.fields:
        comment = column_comment(contract, registry, f)
        statements.append(f"COMMENT ON COLUMN {table}.{quote_identifier(f.name)} IS {quote_literal(comment)}")
    return statements
