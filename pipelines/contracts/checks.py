"""The checks of a contract, independent of Great Expectations: derived from its fields, key and
row floor, plus the ones it lists. pipelines.stages.gx_suite compiles them into a GX suite."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipelines.common.sql import quote_identifier
from pipelines.contracts.loading import Registry
from pipelines.contracts.models import Contract, ContractField, ExpectationCheck


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
    """Every check of the dataset: derived from fields, key and row floor, plus the listed ones.

    The order is the suite's: the row floor, the key, each field's checks in field order, then
    the contract's own (a check's index identifies its result).
    """
    # The columns, their order and their types are checked on the staged Parquet's schema before
    # GX runs (validate's arrow_schema_matches_contract), so the suite does not repeat it.
    specs = [row_floor(contract), key_unique(contract)]
    for f in contract.fields:
        specs.extend(field_checks(contract, registry, f))
    specs.extend(listed_check(check) for check in contract.checks.expectations)
    return specs


def row_floor(contract: Contract) -> CheckSpec:
    """The batch has at least the contract's ``checks.min_rows`` rows."""
    return CheckSpec(
        "ExpectTableRowCountToBeBetween",
        {"min_value": contract.checks.min_rows},
        "blocking",
        f"at least {contract.checks.min_rows} rows",
    )


def key_unique(contract: Contract) -> CheckSpec:
    """No two rows share the primary key; the observed value is the number of duplicated keys."""
    # A GROUP BY over the key columns (GX's uniqueness expectations join every row back to its
    # group's count: three times slower at 10M rows), run only on the rows whose key hash occurs
    # twice: grouping one 64-bit hash is faster than grouping the key's text, and the outer
    # GROUP BY keeps a hash collision from counting as a duplicate.
    key_columns = ", ".join(quote_identifier(k) for k in contract.primary_key)
    description = f"primary key ({', '.join(contract.primary_key)}) is unique"
    query = (
        f"SELECT {key_columns}, count(*) AS copies FROM {{batch}} "
        f"WHERE hash({key_columns}) IN (SELECT hash({key_columns}) FROM {{batch}} "
        f"GROUP BY 1 HAVING count(*) > 1) "
        f"GROUP BY {key_columns} HAVING count(*) > 1"
    )
    return CheckSpec(
        "UnexpectedRowsExpectation",
        {"unexpected_rows_query": query, "description": description},
        "blocking",
        description,
    )


def field_checks(contract: Contract, registry: Registry, f: ContractField) -> list[CheckSpec]:
    """What a field's contract and shared type require of its values: not null (a key field or
    a field declared so), the type's pattern, allowed values, code list and range."""
    shared = registry.types.types[f.type]
    specs = []
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
    known_code = known_code_check(contract, registry, f)
    if known_code is not None:
        specs.append(known_code)
    if shared.min is not None or shared.max is not None:
        specs.append(
            CheckSpec(
                "ExpectColumnValuesToBeBetween",
                {"column": f.name, "min_value": shared.min, "max_value": shared.max},
                "blocking",
                f"{f.name} within [{shared.min}, {shared.max}]",
            )
        )
    return specs


def known_code_check(contract: Contract, registry: Registry, f: ContractField) -> CheckSpec | None:
    """The field's values come from its code list (on the rows its condition names), unless the
    contract allows new codes; a failure is also ``new_code`` drift, blocking or a warning as the
    contract's evolution policy says."""
    ref = registry.codelist_of(contract, f.name)
    policy = contract.evolution.new_code
    if ref is None or policy == "allow":
        return None
    values = registry.codelists.values(ref.list, ref.column)
    where = "" if not ref.when else " where " + ", ".join(f"{k} = {v}" for k, v in ref.when.items())
    return CheckSpec(
        "ExpectColumnValuesToBeInSet",
        {"column": f.name, "value_set": values},
        "blocking" if policy == "reject" else "warning",
        f"{f.name} is a known {ref.list}.{ref.column} ({len(values)} codes){where}",
        row_condition=ref.when,
        drift_kind="new_code",
    )


def listed_check(check: ExpectationCheck) -> CheckSpec:
    """A check the contract lists: a GX expectation by its snake-case name, or a SQL query whose
    rows are the unexpected ones."""
    if check.expectation == "unexpected_rows":
        kwargs: dict[str, Any] = {"unexpected_rows_query": check.query, "description": check.description}
        return CheckSpec("UnexpectedRowsExpectation", kwargs, check.severity, check.description)
    kwargs = dict(check.kwargs)
    if check.column:
        kwargs["column"] = check.column
    return CheckSpec(_expectation_class_name(check.expectation), kwargs, check.severity, check.description)


def _expectation_class_name(snake: str) -> str:
    """``column_values_to_be_between`` or ``expect_column_values_to_be_between`` -> GX class name."""
    name = snake if snake.startswith("expect_") else f"expect_{snake}"
    return "".join(part.capitalize() for part in name.split("_"))
