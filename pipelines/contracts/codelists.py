"""Reference code lists (``schemas/codelists/``): loading, values for referential checks, and
the ``curated.ref_<name>`` tables published beside the datasets."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from pipelines.common.sql import quote_identifier, quote_literal
from pipelines.contracts.models import ContractError, check_identifier
from pipelines.contracts.reading import load_yaml


class CodelistSpec(BaseModel):
    """One list as described in codelists.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    description: str
    key: list[str]
    columns: dict[str, str]

    @field_validator("columns")
    @classmethod
    def _safe_columns(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            check_identifier(name, "code list column")
        return value


class CodelistFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    lists: dict[str, CodelistSpec]


@dataclass(frozen=True)
class Codelists:
    """Every code list of a schemas directory; rows are read on first use."""

    directory: Path
    specs: dict[str, CodelistSpec]

    def spec(self, name: str) -> CodelistSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise ContractError(
                f"unknown code list {name!r} (known: {', '.join(sorted(self.specs))})"
            ) from None

    def path(self, name: str) -> Path:
        return self.directory / self.spec(name).file

    def rows(self, name: str) -> list[dict[str, str]]:
        return _read_rows(self.path(name))

    def values(self, name: str, column: str) -> list[str]:
        """Distinct values of ``column`` in list ``name``, sorted."""
        if column not in self.spec(name).columns:
            raise ContractError(f"code list {name!r} has no column {column!r}")
        return sorted({row[column] for row in self.rows(name)})

    @property
    def names(self) -> list[str]:
        return sorted(self.specs)


@functools.lru_cache(maxsize=64)
def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def load_codelists(directory: Path) -> Codelists:
    """Load codelists.yaml and check each file's header and key against it."""
    index = directory / "codelists.yaml"
    if not index.exists():
        return Codelists(directory=directory, specs={})
    try:
        parsed = CodelistFile.model_validate(load_yaml(index.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ContractError(f"{index}: {exc}") from None
    for name, spec in parsed.lists.items():
        check_identifier(name, "code list name")
        path = directory / spec.file
        if not path.exists():
            raise ContractError(f"{index}: list {name!r} names missing file {path}")
        rows = _read_rows(path)
        header = list(rows[0]) if rows else []
        if header != list(spec.columns):
            raise ContractError(
                f"{path}: header {header} differs from codelists.yaml columns {list(spec.columns)}"
            )
        for line, row in enumerate(rows, start=2):
            # csv.DictReader files surplus values under None and leaves short rows' values None.
            if None in row or None in row.values():
                raise ContractError(
                    f"{path}, line {line}: {len(spec.columns)} values expected (quote values with commas)"
                )
        keys = [tuple(row[k] for k in spec.key) for row in rows]
        if len(keys) != len(set(keys)):
            duplicated = sorted({k for k in keys if keys.count(k) > 1})[:5]
            raise ContractError(f"{path}: key {spec.key} is not unique: {duplicated}")
    return Codelists(directory=directory, specs=dict(parsed.lists))


def ref_table_statements(codelists: Codelists, name: str) -> list[str]:
    """SQL that (re)creates ``curated.ref_<name>`` from the list's CSV, with comments."""
    spec = codelists.spec(name)
    table = f"curated.{quote_identifier('ref_' + name)}"
    columns = ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in spec.columns)
    path = quote_literal(str(codelists.path(name)))
    statements = [
        f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM read_csv({path}, header = true, "
        f"columns = {{{columns}}}, auto_detect = false, quote = '\"', escape = '\"')",
        f"COMMENT ON TABLE {table} IS {quote_literal(spec.description + ' Source: schemas/codelists/' + spec.file)}",
    ]
    for column, description in spec.columns.items():
        statements.append(
            f"COMMENT ON COLUMN {table}.{quote_identifier(column)} IS {quote_literal(description)}"
        )
    return statements
