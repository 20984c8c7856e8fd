"""Dataset contracts ("shared schemas"): loading, linting and everything derived from them.

A contract (``schemas/<dataset>.yaml``) names its fields by shared type (``schemas/types.yaml``).
The package's modules, each by what it does:

- ``models``: the pydantic models of the two files and ``ContractError``;
- ``reading``: YAML with libyaml's safe loader, errors naming the file;
- ``codelists``: the reference code lists (``schemas/codelists/``);
- ``loading``: a schemas directory checked across its files, as a ``Registry``;
- ``derive``: the Arrow schema and the curated table's DuckDB DDL and comments;
- ``checks``: the checks that pipelines.stages.validate compiles into a Great Expectations suite;
- ``compatibility``: ``scdx contracts check`` (lint, and breaking changes against a git ref);
- ``provenance``: whether a dataset's rows are real agency values or constructed recordings.

Callers import the names below from ``pipelines.contracts``, not from the modules: which module
holds a model is this package's business. Nothing here imports pyarrow or GX at module level, so
DAG files can read contracts cheaply at parse time.
"""

from __future__ import annotations

from pipelines.contracts.checks import CheckSpec, check_specs
from pipelines.contracts.derive import (
    DUCKDB_TYPES,
    arrow_schema,
    arrow_type,
    column_comment,
    duckdb_ddl,
    table_comment,
)
from pipelines.contracts.loading import (
    Registry,
    check_type_codelists,
    contract_paths,
    load_contract,
    load_registry,
    load_types,
    parse_contract,
)
from pipelines.contracts.models import (
    SEMVER,
    YEAR_MONTH,
    ArrowTypeName,
    Auth,
    Checks,
    CodelistParam,
    CodelistRef,
    Contract,
    ContractError,
    ContractField,
    Evolution,
    ExpectationCheck,
    Freshness,
    Incremental,
    OfflineRecordings,
    Paging,
    Policy,
    Provider,
    PublishSpec,
    RateLimit,
    Retention,
    SharedType,
    Source,
    TypeCatalog,
    Unit,
    check_identifier,
)
from pipelines.contracts.partners import (
    PARTNERS_FILE,
    Partner,
    PartnerRegistry,
    SecretRef,
    default_env,
    load_partners,
    save_partners,
)
from pipelines.contracts.provenance import (
    Provenance,
    ProvenanceNote,
    from_recordings,
    provenance_notes,
    provenance_of,
)
from pipelines.contracts.reading import load_yaml

__all__ = [
    "DUCKDB_TYPES",
    "PARTNERS_FILE",
    "SEMVER",
    "YEAR_MONTH",
    "ArrowTypeName",
    "Auth",
    "CheckSpec",
    "Checks",
    "CodelistParam",
    "CodelistRef",
    "Contract",
    "ContractError",
    "ContractField",
    "Evolution",
    "ExpectationCheck",
    "Freshness",
    "Incremental",
    "OfflineRecordings",
    "Paging",
    "Partner",
    "PartnerRegistry",
    "Policy",
    "Provenance",
    "ProvenanceNote",
    "Provider",
    "PublishSpec",
    "RateLimit",
    "Registry",
    "Retention",
    "SecretRef",
    "SharedType",
    "Source",
    "TypeCatalog",
    "Unit",
    "arrow_schema",
    "arrow_type",
    "check_identifier",
    "check_specs",
    "check_type_codelists",
    "column_comment",
    "contract_paths",
    "default_env",
    "duckdb_ddl",
    "from_recordings",
    "load_contract",
    "load_partners",
    "load_registry",
    "load_types",
    "load_yaml",
    "parse_contract",
    "provenance_notes",
    "provenance_of",
    "save_partners",
    "table_comment",
]
