"""``scdx contracts check``: lint every contract, and refuse breaking changes without a major bump.

Lint loads each contract with the full loader (unknown shared type, duplicate or unsafe field
names, a key naming an absent field, unknown code lists and units all fail there) and adds the
rules the loader does not enforce (descriptions present, every numeric field has a unit).

Compatibility compares each contract with its version at a git ref. What consumers see of a
field is its *shape*: Arrow type, pattern, allowed values, range, unit and nullability, resolved
through the shared types of the same ref. Removing or retyping a field, changing its unit,
narrowing it (NOT NULL, a stricter pattern, fewer allowed values, a tighter range) or changing
the primary key is breaking and needs a new major version. Shapes are read from the raw YAML,
so older contract formats at the ref compare as well as the current one.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.contracts.codelists import load_codelists
from pipelines.contracts.loading import check_type_codelists, contract_paths, load_contract, load_types
from pipelines.contracts.models import SEMVER, ContractError
from pipelines.contracts.reading import load_yaml


@dataclass(frozen=True)
class Problem:
    """One finding: which contract, which field, which rule, and what to do."""

    contract: str
    field: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"{self.contract}, field {self.field!r}" if self.field else self.contract
        return f"{where}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class FieldShape:
    arrow: str | None
    pattern: str | None
    allowed: frozenset[str] | None
    minimum: float | None
    maximum: float | None
    unit: str | None
    nullable: bool


@dataclass(frozen=True)
class ContractShape:
    dataset: str
    version: str
    primary_key: tuple[str, ...]
    fields: dict[str, FieldShape]


def lint(schemas_dir: Path) -> list[Problem]:
    """Everything wrong with the contracts in ``schemas_dir``, one problem per finding."""
    problems: list[Problem] = []
    try:
        types = load_types(schemas_dir / "types.yaml")
        codelists = load_codelists(schemas_dir / "codelists")
        check_type_codelists(types, codelists, schemas_dir / "types.yaml")
    except ContractError as exc:
        return [Problem("types.yaml", None, "invalid", str(exc))]
    for path in contract_paths(schemas_dir):
        try:
            contract = load_contract(path, types, codelists)
        except ContractError as exc:
            problems.append(Problem(path.stem, None, "invalid", str(exc)))
            continue
        for f in contract.fields:
            if not f.description.strip():
                problems.append(
                    Problem(
                        contract.dataset, f.name, "missing-description", "every field needs a description"
                    )
                )
            shared = types.types[f.type]
            if shared.arrow in {"int64", "float64"} and not (f.unit or shared.unit) and not shared.allowed:
                problems.append(
                    Problem(
                        contract.dataset, f.name, "missing-unit", f"numeric type {f.type!r} resolves no unit"
                    )
                )
        if not contract.description.strip() or not contract.title.strip():
            problems.append(
                Problem(contract.dataset, None, "missing-description", "title and description are required")
            )
    return problems


def _shape(raw_contract: dict[str, Any], raw_types: dict[str, Any]) -> ContractShape:
    types = (raw_types or {}).get("types", {})
    fields: dict[str, FieldShape] = {}
    for f in raw_contract.get("fields") or []:
        shared = types.get(f.get("type"), {})
        allowed = shared.get("allowed")
        fields[f["name"]] = FieldShape(
            arrow=shared.get("arrow"),
            pattern=shared.get("pattern"),
            allowed=frozenset(str(v) for v in allowed) if allowed is not None else None,
            minimum=shared.get("min"),
            maximum=shared.get("max"),
            unit=f.get("unit") or shared.get("unit"),
            nullable=bool(f.get("nullable", True)),
        )
    return ContractShape(
        dataset=str(raw_contract.get("dataset")),
        version=str(raw_contract.get("version")),
        primary_key=tuple(raw_contract.get("primary_key") or ()),
        fields=fields,
    )


def _narrowing(old: FieldShape, new: FieldShape) -> list[str]:
    reasons = []
    if old.nullable and not new.nullable:
        reasons.append("now NOT NULL")
    if new.allowed is not None and (old.allowed is None or not new.allowed >= old.allowed):
        lost = sorted(old.allowed - new.allowed) if old.allowed is not None else "any value"
        reasons.append(f"allowed values narrowed (no longer: {lost})")
    if new.pattern is not None and new.pattern != old.pattern:
        reasons.append(f"pattern {old.pattern!r} -> {new.pattern!r}")
    if new.minimum is not None and (old.minimum is None or new.minimum > old.minimum):
        reasons.append(f"minimum {old.minimum} -> {new.minimum}")
    if new.maximum is not None and (old.maximum is None or new.maximum < old.maximum):
        reasons.append(f"maximum {old.maximum} -> {new.maximum}")
    return reasons


def _major(version: str) -> int:
    return int(version.split(".")[0]) if SEMVER.match(version) else -1


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")) if SEMVER.match(version) else (-1,)


def compare(old: ContractShape, new: ContractShape) -> list[Problem]:
    """Breaking changes from ``old`` to ``new`` that ``new``'s version does not announce."""
    breaking: list[tuple[str | None, str, str]] = []
    for name, before in old.fields.items():
        after = new.fields.get(name)
        if after is None:
            breaking.append((name, "field-removed", "field removed"))
        elif before.arrow != after.arrow:
            breaking.append((name, "field-retyped", f"type {before.arrow} -> {after.arrow}"))
        elif before.unit != after.unit:
            breaking.append((name, "field-unit-changed", f"unit {before.unit} -> {after.unit}"))
        else:
            for reason in _narrowing(before, after):
                breaking.append((name, "field-narrowed", reason))
    if old.primary_key != new.primary_key:
        breaking.append(
            (None, "key-changed", f"primary key {list(old.primary_key)} -> {list(new.primary_key)}")
        )
    problems = []
    if _version_key(new.version) < _version_key(old.version):
        problems.append(
            Problem(new.dataset, None, "version-decreased", f"version {old.version} -> {new.version}")
        )
    if breaking and _major(new.version) <= _major(old.version):
        bump = f"{_major(old.version) + 1}.0.0"
        for field, rule, what in breaking:
            problems.append(
                Problem(
                    new.dataset,
                    field,
                    rule,
                    f"{what}: breaks consumers; needs a major version bump ({old.version} -> {bump})",
                )
            )
    return problems


def _git(args: list[str], cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ContractError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def shapes_at(ref: str, schemas_dir: Path) -> dict[str, ContractShape]:
    """Every contract's shape as committed at git ``ref``."""
    root = Path(_git(["rev-parse", "--show-toplevel"], schemas_dir).strip())
    relative = schemas_dir.resolve().relative_to(root.resolve()).as_posix()
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root)
    except ContractError:
        raise ContractError(f"unknown git ref {ref!r} in {root}") from None
    names = _git(["ls-tree", "--name-only", f"{ref}:{relative}"], root).split()
    raw_types = (
        load_yaml(_git(["show", f"{ref}:{relative}/types.yaml"], root)) if "types.yaml" in names else {}
    )
    shapes = {}
    for name in names:
        if name.endswith(".yaml") and name not in {"types.yaml", "partners.yaml"}:
            raw = load_yaml(_git(["show", f"{ref}:{relative}/{name}"], root)) or {}
            shape = _shape(raw, raw_types)
            shapes[shape.dataset] = shape
    return shapes


def shapes_here(schemas_dir: Path) -> dict[str, ContractShape]:
    """Every contract's shape in the working tree."""
    raw_types = load_yaml((schemas_dir / "types.yaml").read_text(encoding="utf-8"))
    shapes = {}
    for path in contract_paths(schemas_dir):
        shape = _shape(load_yaml(path.read_text(encoding="utf-8")) or {}, raw_types)
        shapes[shape.dataset] = shape
    return shapes


def check(schemas_dir: Path, against: str | None = None) -> list[Problem]:
    """Lint, then (with ``against``) compare every contract with its version at that git ref."""
    problems = lint(schemas_dir)
    if against is None or problems:
        return problems
    before = shapes_at(against, schemas_dir)
    now = shapes_here(schemas_dir)
    for dataset, old in sorted(before.items()):
        if dataset not in now:
            problems.append(
                Problem(
                    dataset,
                    None,
                    "contract-removed",
                    f"contract existed at {against}; removing a dataset breaks consumers",
                )
            )
            continue
        problems.extend(compare(old, now[dataset]))
    return problems
