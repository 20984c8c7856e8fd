"""The partner registry (``schemas/partners.yaml``): who may submit which partner datasets.

Each partner has an id, its organisation, its role in the chain, the datasets it may submit and
where its signing key is found: an environment variable and, under Airflow, a connection (its
password). The key itself is never in the file, nor anywhere else the exchange writes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines.contracts.models import ContractError, check_identifier
from pipelines.contracts.reading import format_validation_error, read_yaml

PARTNERS_FILE = "partners.yaml"
ENV_NAME = re.compile(r"^SCDX_PARTNER_[A-Z0-9_]+_KEY$")
Role = Literal["shipper", "port_terminal", "carrier", "warehouse"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Model):
    """Where a partner's signing key is found (never the key itself)."""

    env: str
    airflow_conn_id: str | None = None

    @field_validator("env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not ENV_NAME.match(value):
            raise ValueError(f"env {value!r} must be SCDX_PARTNER_<NAME>_KEY")
        return value


class Partner(_Model):
    id: str
    organisation: str = Field(min_length=1)
    role: Role
    datasets: list[str] = Field(min_length=1)
    secret: SecretRef

    @field_validator("id")
    @classmethod
    def _id_identifier(cls, value: str) -> str:
        return check_identifier(value, "partner id")

    def key(self) -> bytes:
        """The partner's signing key from its environment variable; ContractError when unset."""
        value = os.environ.get(self.secret.env)
        if not value:
            raise ContractError(f"partner {self.id}: no key in ${self.secret.env}")
        return value.encode("utf-8")


class PartnerRegistry(_Model):
    version: str
    partners: list[Partner] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> PartnerRegistry:
        ids = [p.id for p in self.partners]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate partner ids: {', '.join(duplicates)}")
        return self

    def find(self, partner_id: str) -> Partner | None:
        return next((p for p in self.partners if p.id == partner_id), None)

    def get(self, partner_id: str) -> Partner:
        partner = self.find(partner_id)
        if partner is None:
            known = ", ".join(p.id for p in self.partners) or "none"
            raise ContractError(f"unknown partner {partner_id!r} (known: {known})")
        return partner


def load_partners(schemas_dir: Path, datasets: set[str] | None = None) -> PartnerRegistry:
    """The partner registry of a schemas directory (empty when it has none); with ``datasets``,
    every dataset a partner may submit must be one of them."""
    path = schemas_dir / PARTNERS_FILE
    if not path.is_file():
        return PartnerRegistry(version="1.0.0")
    try:
        registry = PartnerRegistry.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ContractError(format_validation_error(path, exc)) from None
    for partner in registry.partners:
        unknown = sorted(set(partner.datasets) - datasets) if datasets is not None else []
        if unknown:
            raise ContractError(f"{path}: partner {partner.id}: unknown datasets {', '.join(unknown)}")
    return registry


def save_partners(schemas_dir: Path, registry: PartnerRegistry) -> Path:
    """Write the registry back (written aside, then renamed over the file)."""
    path = schemas_dir / PARTNERS_FILE
    body = yaml.safe_dump(registry.model_dump(mode="json", exclude_none=True), sort_keys=False)
    header = "# Partners of the exchange (scdx partner add|list|rotate-key). Keys are never in this file.\n"
    temporary = path.with_suffix(".yaml.tmp")
    temporary.write_text(header + body, encoding="utf-8")
    temporary.replace(path)
    return path


def default_env(partner_id: str) -> str:
    """The environment variable a new partner's key is read from."""
    return f"SCDX_PARTNER_{partner_id.upper()}_KEY"
