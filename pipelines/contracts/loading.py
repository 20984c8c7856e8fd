"""Loading a schemas directory: the shared types, the code lists and every contract, checked
against each other, into a :class:`Registry`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from pipelines.contracts.codelists import Codelists, load_codelists
from pipelines.contracts.models import (
    CodelistParam,
    CodelistRef,
    Contract,
    ContractError,
    SharedType,
    TypeCatalog,
)
from pipelines.contracts.reading import format_validation_error, load_yaml, read_yaml


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


def load_types(path: Path) -> TypeCatalog:
    """Load and check the shared-type file."""
    raw = read_yaml(path)
    try:
        return TypeCatalog.model_validate(raw)
    except ValidationError as exc:
        raise ContractError(format_validation_error(path, exc)) from None


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
        raise ContractError(format_validation_error(Path(str(where)), exc)) from None
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
    """The contract files of a schemas directory (every *.yaml but the shared types and partners)."""
    return [p for p in sorted(schemas_dir.glob("*.yaml")) if p.name not in {"types.yaml", "partners.yaml"}]


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
