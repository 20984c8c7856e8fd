"""The contract models: what ``schemas/types.yaml`` and ``schemas/<dataset>.yaml`` may say.

Pydantic models, frozen and strict (an unknown key is an error), with the checks one file can
make on its own: identifiers, versions, a key naming fields that exist. Checks across files (a
field's shared type, its code list) are made when loading (``pipelines.contracts.loading``).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.common.errors import UsageError
from pipelines.common.sql import IDENTIFIER

SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
YEAR_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")

ArrowTypeName = Literal["string", "int64", "float64", "bool", "date32", "timestamp_utc", "list_string"]


class ContractError(UsageError, ValueError):
    """A contract, the shared-type file or a code list is invalid, or a name (a dataset, a list)
    is not in them; the message names the file and the field. Configuration: exit code 2."""


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


PROVENANCE_LINK = re.compile(r"^recordings/PROVENANCE\.md#([a-z0-9_]+)$")


class OfflineRecordings(_Model):
    """What the bundled recordings the offline replay serves for this dataset hold: real agency
    values (``recorded``) or values ``constructed`` in the agency's format, which are not
    statistics. The report, the catalog and ``scdx demo`` mark a dataset fetched from them as
    such and link ``provenance``: the section of recordings/PROVENANCE.md on its folder."""

    kind: Literal["recorded", "constructed"]
    note: str = Field(min_length=1)
    provenance: str

    @field_validator("provenance")
    @classmethod
    def _provenance_section(cls, value: str) -> str:
        if not PROVENANCE_LINK.match(value):
            raise ValueError(
                f"provenance {value!r} must be recordings/PROVENANCE.md#<folder> (the section of the "
                "recordings folder)"
            )
        return value

    @property
    def folder(self) -> str:
        """The recordings folder whose PROVENANCE.md section (``## <folder>/``) the link names."""
        return self.provenance.partition("#")[2]


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
    # What the bundled recordings hold for this dataset (real or constructed values).
    offline_recordings: OfflineRecordings | None = None
    # Submitted by partners into the inbox (scdx partner submit), never fetched: refresh, the demo
    # and the ingest DAGs leave it out; its rows' partner_id is the authenticated submitter.
    inbox: bool = False

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


class Disclosure(_Model):
    """When an aggregate of partner data may be shown: at least ``min_partners`` contribute and no
    one holds more than ``max_share_pct`` of it (the disclosure-control library applies the rule)."""

    min_partners: int = Field(ge=1)
    max_share_pct: float = Field(gt=0, le=100)


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
    disclosure: Disclosure | None = None

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
        if self.source.inbox and ("partner_id" not in names or self.classification != "restricted"):
            raise ValueError("an inbox dataset is restricted, with a partner_id field")
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
