"""Reading the schemas' YAML files, with errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipelines.contracts.models import ContractError

# libyaml's parser (in PyYAML's wheels) reads the schemas ten times faster than the pure-Python
# one: 0.01 s instead of 0.1 s, paid by every CLI command and every Airflow task.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str | bytes) -> Any:
    """YAML text as Python values, with the safe loader (libyaml's when PyYAML has it)."""
    return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a safe loader, C or Python


def read_yaml(path: Path) -> Any:
    """A YAML file's values; ContractError naming the file if it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContractError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: invalid YAML: {exc}") from None


def format_validation_error(path: Path, exc: ValidationError) -> str:
    """Pydantic's errors as one line: the file, then each problem's location and message."""
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{location}: {error['msg']}")
    return f"{path}: " + "; ".join(problems)
