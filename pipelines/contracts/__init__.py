"""Dataset contracts ("shared schemas"): loading, linting and everything derived from them.

A contract (``schemas/<dataset>.yaml``) names its fields by shared type (``schemas/types.yaml``).
From the pair this module derives the Arrow schema, the DuckDB DDL with column comments and the
list of checks that validate.py compiles into a Great Expectations suite. Nothing here imports
pyarrow or GX at module level, so DAG files can read contracts cheaply at parse time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines.common.sql import IDENTIFIER, quote_identifier, quote_literal

if TYPE_CHECKING:
    import pyarrow as pa

    from pipelines.contracts.codelists import Codelists

SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
YEAR_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")

ArrowTypeName = Literal["string", "int64", "float64", "bool", "date32", "timestamp_utc", "list_string"]

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


class ContractError(ValueError):
    """A contract or the shared-type file is invalid; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_identifier(value: str, what: str) -> str:
    """``value`` if it is a safe SQL identifier and path segment; ValueError otherwise."""
    if not IDENTIFIER.match(value):
        raise ValueError(
            f"{what} {value!r} is not a safe identifier (lowercase letter, then lowercase letters, "
            "digits or underscores, at most 63 characters)"
        )
    return value


class CodelistRef(_Model):
    """Values must come from a column of a reference code list (optionally only on some rows)."""

    list: str
    column: str
    # Only rows where these fields have these values are checked (e.g. partner_kind: country).
    when: dict[str, str] | None = None


class Unit(_Model):
    """A unit of measure and its factor to the base unit of its dimension (mass: t)."""

    dimension: str
    factor: float = Field(gt=0)
    description: str


class SharedType(_Model):
    """One entry of the cross-agency vocabulary."""

    arrow: ArrowTypeName
    description: str
    pattern: str | None = None
    allowed: list[str] | None = None
    min: float | None = None
    max: float | None = None
    unit: str | None = None
    codelist: CodelistRef | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value


class TypeCatalog(_Model):
    """The shared types file: units of measure and types."""

    version: str
    units: dict[str, Unit] = Field(default_factory=dict)
    types: dict[str, SharedType]

    @model_validator(mode="after")
    def _units_known(self) -> TypeCatalog:
        for name, shared in self.types.items():
            if shared.unit is not None and shared.unit not in self.units:
                raise ValueError(f"type {name!r} has unknown unit {shared.unit!r}")
            if shared.arrow in {"int64", "float64"} and shared.unit is None and shared.allowed is None:
                raise ValueError(
                    f"numeric type {name!r} needs a unit (use 'count' or 'year' for plain numbers)"
                )
        return self

    def factor(self, from_unit: str, to_unit: str) -> float:
        """Multiply a value in ``from_unit`` by this to express it in ``to_unit`` (same dimension)."""
        try:
            source, target = self.units[from_unit], self.units[to_unit]
        except KeyError as exc:
            raise ContractError(
                f"unknown unit {exc.args[0]!r} (known: {', '.join(sorted(self.units))})"
            ) from None
        if source.dimension != target.dimension:
            raise ContractError(
                f"cannot convert {from_unit} ({source.dimension}) to {to_unit} ({target.dimension})"
            )
        return source.factor / target.factor


class Provider(_Model):
    agency: str
    office: str | None = None
    steward: str


class Auth(_Model):
    kind: Literal["query_param", "header"]
    param: str
    env: str
    airflow_conn_id: str | None = None
    required: bool = False


class Paging(_Model):
    """How a run's requests are split: per month, per quarter, by offset, per published file, or one request."""

    kind: Literal["per_month", "per_quarter", "offset", "files", "none"]
    param: str | None = None
    offset_param: str | None = None
    limit_param: str | None = None
    page_size: int | None = Field(default=None, gt=0)
    files: list[str] = Field(default_factory=list)


class Incremental(_Model):
    field: str
    lookback_months: int = Field(ge=0, le=120)
    start: str

    @field_validator("start")
    @classmethod
    def _start_is_month(cls, value: str) -> str:
        if not YEAR_MONTH.match(value):
            raise ValueError(f"start {value!r} must be YYYY-MM")
        return value


class RateLimit(_Model):
    """The agency's documented limits: request rate, and how many runs may call it at once."""

    requests_per_second: float = Field(gt=0)
    concurrent_requests: int = Field(default=1, ge=1)


class CodelistParam(_Model):
    """A request parameter repeated once per value of a code list column (e.g. the HS basket)."""

    codelist: str
    column: str


class Source(_Model):
    module: str
    base_url: str
    path: str
    params: dict[str, str | list[str] | CodelistParam] = Field(default_factory=dict)
    auth: Auth | None = None
    paging: Paging = Paging(kind="none")
    incremental: Incremental | None = None
    rate_limit: RateLimit | None = None
    # Airflow pool shared by every dataset of this agency API (default scdx_<module>).
    pool: str | None = None
    # Columns the agency always sends that the dataset deliberately leaves out (an API that returns
    # every attribute, e.g. other fuels' fields at the AFDC): not new_field drift, as an unknown one is.
    ignored_columns: list[str] = Field(default_factory=list)

    @property
    def pool_name(self) -> str:
        return self.pool or f"scdx_{self.module}"

    @field_validator("module")
    @classmethod
    def _module_identifier(cls, value: str) -> str:
        return check_identifier(value, "source module")


class ContractField(_Model):
    name: str
    type: str
    description: str
    source: str | None = None
    nullable: bool = True
    unit: str | None = None
    # The unit the agency publishes in, when it differs from the type's canonical unit.
    source_unit: str | None = None
    # Overrides the shared type's code list (e.g. to check only some rows).
    codelist: CodelistRef | None = None

    @field_validator("name")
    @classmethod
    def _name_identifier(cls, value: str) -> str:
        return check_identifier(value, "field name")


class PublishSpec(_Model):
    """How a validated batch changes its curated table.

    A complete batch (the contract's own requests, every record the agency declared) replaces the
    partitions it holds (``replace_partitions`` by ``partition_by``) or the whole table
    (``replace``). A partial one (a file in hand, a response short of its declared count) is
    ``merge``d by primary key, so rows it does not hold stay, or ``refuse``d naming the partition
    and the rows it lacks. ``short_batch``: what fewer records than the agency declares means:
    ``refuse`` the run, or publish it as ``partial`` with a warning. Whatever the batch, a publish
    that would remove more than ``max_shrink_pct`` of the table's rows is blocked (write, audit,
    publish) unless the run is told ``--allow-shrink``.
    """

    mode: Literal["replace_partitions", "replace"] = "replace"
    partition_by: list[str] = Field(default_factory=list)
    partial: Literal["merge", "refuse"] = "merge"
    short_batch: Literal["refuse", "partial"] = "refuse"
    max_shrink_pct: float = Field(default=10.0, ge=0, le=100)


class ExpectationCheck(_Model):
    """A check beyond those derived from field types: a GX expectation by name, or a SQL query."""

    expectation: str
    severity: Literal["blocking", "warning"] = "blocking"
    description: str
    column: str | None = None
    query: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _query_for_unexpected_rows(self) -> ExpectationCheck:
        if self.expectation == "unexpected_rows" and not self.query:
            raise ValueError("an unexpected_rows check needs a query")
        return self


class Checks(_Model):
    min_rows: int = Field(default=1, ge=0)
    expectations: list[ExpectationCheck] = Field(default_factory=list)


Policy = Literal["allow", "warn", "reject"]


class Evolution(_Model):
    """What a run does when the source drifts from the contract."""

    new_field: Policy = "warn"
    missing_field: Policy = "reject"
    type_change: Policy = "reject"
    new_code: Policy = "reject"

    def action(self, kind: str) -> Policy:
        return {
            "new_field": self.new_field,
            "missing_field": self.missing_field,
            "type_change": self.type_change,
            "new_code": self.new_code,
        }[kind]


class Retention(_Model):
    """How long each layer is kept."""

    raw: str
    curated: str


class Freshness(_Model):
    max_age_days: int = Field(gt=0)


class Contract(_Model):
    """A dataset contract as written in ``schemas/<dataset>.yaml``."""

    dataset: str
    version: str
    title: str
    description: str
    provider: Provider
    classification: Literal["public", "restricted"]
    allowed_use: str
    license: str
    retention: Retention
    schedule: str = "@daily"
    freshness: Freshness | None = None
    source: Source
    fields: list[ContractField]
    primary_key: list[str]
    publish: PublishSpec = PublishSpec()
    checks: Checks = Checks()
    evolution: Evolution = Evolution()

    @field_validator("dataset")
    @classmethod
    def _dataset_identifier(cls, value: str) -> str:
        return check_identifier(value, "dataset name")

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not SEMVER.match(value):
            raise ValueError(f"version {value!r} is not MAJOR.MINOR.PATCH")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Contract:
        names = [f.name for f in self.fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate field names: {', '.join(duplicates)}")
        if not self.fields:
            raise ValueError("a contract needs at least one field")
        for role, listed in (
            ("primary_key", self.primary_key),
            ("publish.partition_by", self.publish.partition_by),
        ):
            absent = [n for n in listed if n not in names]
            if absent:
                raise ValueError(f"{role} names fields that do not exist: {', '.join(absent)}")
        if self.publish.mode == "replace_partitions" and not self.publish.partition_by:
            raise ValueError("publish.mode replace_partitions needs publish.partition_by")
        if self.source.incremental and self.source.incremental.field not in names:
            raise ValueError(f"source.incremental.field {self.source.incremental.field!r} is not a field")
        for check in self.checks.expectations:
            if check.column and check.column not in names:
                raise ValueError(f"check {check.expectation!r} names unknown column {check.column!r}")
        return self

    def field(self, name: str) -> ContractField:
        """The field called ``name``."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.dataset}: no field {name!r}")

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def table(self) -> str:
        """Fully qualified curated table name."""
        return f"curated.{self.dataset}"


@dataclass(frozen=True)
class Registry:
    """All contracts of a schemas directory, with the shared types they are written in."""

    schemas_dir: Path
    types: TypeCatalog
    contracts: Mapping[str, Contract]
    sources: Mapping[str, Path]
    codelists: Codelists

    def get(self, dataset: str) -> Contract:
        """The contract of ``dataset``; a clear error if there is none."""
        try:
            return self.contracts[dataset]
        except KeyError:
            known = ", ".join(sorted(self.contracts)) or "none"
            raise ContractError(
                f"unknown dataset {dataset!r}: no contract schemas/{dataset}.yaml (known: {known})"
            ) from None

    def type_of(self, contract: Contract, field_name: str) -> SharedType:
        """The shared type of one field of ``contract``."""
        return self.types.types[contract.field(field_name).type]

    def codelist_of(self, contract: Contract, field_name: str) -> CodelistRef | None:
        """The code list a field's values must come from: the field's own, else its type's."""
        field = contract.field(field_name)
        return field.codelist or self.types.types[field.type].codelist

    def unit_of(self, contract: Contract, field_name: str) -> str | None:
        """The canonical unit of a field (the field's override, else its type's)."""
        field = contract.field(field_name)
        return field.unit or self.types.types[field.type].unit

    def contract_sha256(self, dataset: str) -> str:
        """Checksum of the contract file as it is on disk (recorded with every run)."""
        return hashlib.sha256(self.sources[dataset].read_bytes()).hexdigest()


# libyaml's parser (in PyYAML's wheels) reads the schemas ten times faster than the pure-Python
# one: 0.01 s instead of 0.1 s, paid by every CLI command and every Airflow task.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str | bytes) -> Any:
    """YAML text as Python values, with the safe loader (libyaml's when PyYAML has it)."""
    return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a safe loader, C or Python


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContractError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: invalid YAML: {exc}") from None


def _format_validation_error(path: Path, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{location}: {error['msg']}")
    return f"{path}: " + "; ".join(problems)


def load_types(path: Path) -> TypeCatalog:
    """Load and check the shared-type file."""
    raw = _read_yaml(path)
    try:
        return TypeCatalog.model_validate(raw)
    except ValidationError as exc:
        raise ContractError(_format_validation_error(path, exc)) from None


def parse_contract(
    text: str, where: str | Path, types: TypeCatalog, codelists: Codelists | None = None
) -> Contract:
    """A contract from YAML text, checked against the shared types (and code lists if given).

    ``where`` names the file (or ``ref:path``) in every error message.
    """
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"{where}: invalid YAML: {exc}") from None
    try:
        contract = Contract.model_validate(raw)
    except ValidationError as exc:
        raise ContractError(_format_validation_error(Path(str(where)), exc)) from None
    for f in contract.fields:
        if f.type not in types.types:
            raise ContractError(f"{where}: field {f.name!r} has unknown shared type {f.type!r}")
        unit = f.unit or types.types[f.type].unit
        if f.source_unit is not None:
            if unit is None:
                raise ContractError(
                    f"{where}: field {f.name!r} has a source_unit but its type {f.type!r} has no unit"
                )
            try:
                types.factor(f.source_unit, unit)
            except ContractError as exc:
                raise ContractError(f"{where}: field {f.name!r}: {exc}") from None
        ref = f.codelist or types.types[f.type].codelist
        if ref is not None:
            for name in ref.when or {}:
                if name not in contract.field_names:
                    raise ContractError(
                        f"{where}: field {f.name!r}: code list condition names unknown field {name!r}"
                    )
            if codelists is not None:
                try:
                    codelists.values(ref.list, ref.column)
                except ContractError as exc:
                    raise ContractError(f"{where}: field {f.name!r}: {exc}") from None
    for name, value in contract.source.params.items():
        if isinstance(value, CodelistParam) and codelists is not None:
            try:
                codelists.values(value.codelist, value.column)
            except ContractError as exc:
                raise ContractError(f"{where}: source.params.{name}: {exc}") from None
    return contract


def load_contract(path: Path, types: TypeCatalog, codelists: Codelists | None = None) -> Contract:
    """Load one contract and check it against the shared types; errors name file and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContractError(f"{path}: cannot read: {exc.strerror}") from None
    contract = parse_contract(text, path, types, codelists)
    if path.stem != contract.dataset:
        raise ContractError(f"{path}: dataset {contract.dataset!r} must match the file name {path.stem!r}")
    return contract


def contract_paths(schemas_dir: Path) -> list[Path]:
    """The contract files of a schemas directory (every *.yaml but the shared types)."""
    return [p for p in sorted(schemas_dir.glob("*.yaml")) if p.name != "types.yaml"]


def check_type_codelists(types: TypeCatalog, codelists: Codelists, where: Path) -> None:
    """Every code list a shared type names exists, with that column."""
    for name, shared in types.types.items():
        if shared.codelist is not None:
            try:
                codelists.values(shared.codelist.list, shared.codelist.column)
            except ContractError as exc:
                raise ContractError(f"{where}: type {name!r}: {exc}") from None


def load_registry(schemas_dir: Path, with_codelists: bool = True) -> Registry:
    """Load ``types.yaml``, the code lists and every contract in ``schemas_dir``.

    ``with_codelists=False`` skips reading the code lists (and the references to them): what DAG
    files use at parse time, where only names, schedules and metadata matter.
    """
    from pipelines.contracts.codelists import Codelists, load_codelists

    types = load_types(schemas_dir / "types.yaml")
    if with_codelists:
        codelists = load_codelists(schemas_dir / "codelists")
        check_type_codelists(types, codelists, schemas_dir / "types.yaml")
    else:
        codelists = Codelists(directory=schemas_dir / "codelists", specs={})
    contracts: dict[str, Contract] = {}
    sources: dict[str, Path] = {}
    for path in contract_paths(schemas_dir):
        contract = load_contract(path, types, codelists if with_codelists else None)
        contracts[contract.dataset] = contract
        sources[contract.dataset] = path
    return Registry(
        schemas_dir=schemas_dir, types=types, contracts=contracts, sources=sources, codelists=codelists
    )


# --- derived artefacts -------------------------------------------------------------------------


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


@dataclass(frozen=True)
class CheckSpec:
    """One check of the validation suite, independent of GX: compiled to an expectation later."""

    expectation: str  # GX expectation class name, e.g. ExpectColumnValuesToNotBeNull
    kwargs: Mapping[str, Any]
    severity: Literal["blocking", "warning"]
    description: str
    # Check only rows where these fields have these values.
    row_condition: Mapping[str, str] | None = None
    # A failure of this check is also schema drift of this kind (e.g. new_code), recorded as such.
    drift_kind: str | None = None


def check_specs(contract: Contract, registry: Registry) -> list[CheckSpec]:
    """Every check of the dataset: derived from fields, key and row floor, plus the listed ones."""
    # The columns, their order and their types are checked on the staged Parquet's schema before
    # GX runs (validate's arrow_schema_matches_contract), so the suite does not repeat it.
    specs = [
        CheckSpec(
            "ExpectTableRowCountToBeBetween",
            {"min_value": contract.checks.min_rows},
            "blocking",
            f"at least {contract.checks.min_rows} rows",
        ),
    ]
    # Key uniqueness as a GROUP BY over the key columns (GX's uniqueness expectations join every
    # row back to its group's count: three times slower at 10M rows), run only on the rows whose
    # key hash occurs twice: grouping one 64-bit hash is faster than grouping the key's text, and
    # the outer GROUP BY keeps a hash collision from counting as a duplicate. The check's
    # observed value is the number of duplicated keys.
    key_columns = ", ".join(quote_identifier(k) for k in contract.primary_key)
    key_description = f"primary key ({', '.join(contract.primary_key)}) is unique"
    specs.append(
        CheckSpec(
            "UnexpectedRowsExpectation",
            {
                "unexpected_rows_query": (
                    f"SELECT {key_columns}, count(*) AS copies FROM {{batch}} "
                    f"WHERE hash({key_columns}) IN (SELECT hash({key_columns}) FROM {{batch}} "
                    f"GROUP BY 1 HAVING count(*) > 1) "
                    f"GROUP BY {key_columns} HAVING count(*) > 1"
                ),
                "description": key_description,
            },
            "blocking",
            key_description,
        )
    )
    for f in contract.fields:
        shared = registry.types.types[f.type]
        if not f.nullable or f.name in contract.primary_key:
            specs.append(
                CheckSpec(
                    "ExpectColumnValuesToNotBeNull", {"column": f.name}, "blocking", f"{f.name} is never null"
                )
            )
        if shared.pattern:
            specs.append(
                CheckSpec(
                    "ExpectColumnValuesToMatchRegex",
                    {"column": f.name, "regex": shared.pattern},
                    "blocking",
                    f"{f.name} is a well-formed {f.type}",
                )
            )
        if shared.allowed:
            specs.append(
                CheckSpec(
                    "ExpectColumnValuesToBeInSet",
                    {"column": f.name, "value_set": list(shared.allowed)},
                    "blocking",
                    f"{f.name} is one of {', '.join(shared.allowed)}",
                )
            )
        ref = registry.codelist_of(contract, f.name)
        policy = contract.evolution.new_code
        if ref is not None and policy != "allow":
            values = registry.codelists.values(ref.list, ref.column)
            where = "" if not ref.when else " where " + ", ".join(f"{k} = {v}" for k, v in ref.when.items())
            specs.append(
                CheckSpec(
                    "ExpectColumnValuesToBeInSet",
                    {"column": f.name, "value_set": values},
                    "blocking" if policy == "reject" else "warning",
                    f"{f.name} is a known {ref.list}.{ref.column} ({len(values)} codes){where}",
                    row_condition=ref.when,
                    drift_kind="new_code",
                )
            )
        if shared.min is not None or shared.max is not None:
            specs.append(
                CheckSpec(
                    "ExpectColumnValuesToBeBetween",
                    {"column": f.name, "min_value": shared.min, "max_value": shared.max},
                    "blocking",
                    f"{f.name} within [{shared.min}, {shared.max}]",
                )
            )
    for check in contract.checks.expectations:
        if check.expectation == "unexpected_rows":
            kwargs: dict[str, Any] = {"unexpected_rows_query": check.query, "description": check.description}
            specs.append(CheckSpec("UnexpectedRowsExpectation", kwargs, check.severity, check.description))
            continue
        kwargs = dict(check.kwargs)
        if check.column:
            kwargs["column"] = check.column
        specs.append(
            CheckSpec(_expectation_class_name(check.expectation), kwargs, check.severity, check.description)
        )
    return specs


def _expectation_class_name(snake: str) -> str:
    """``column_values_to_be_between`` or ``expect_column_values_to_be_between`` -> GX class name."""
    name = snake if snake.startswith("expect_") else f"expect_{snake}"
    return "".join(part.capitalize() for part in name.split("_"))
