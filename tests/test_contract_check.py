"""``scdx contracts check``: lint, and no breaking change without a major version bump."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools import PROJECT_ROOT
from pipelines.contracts.compatibility import check, lint

from .conftest import SCHEMAS

SCDX = str(Path(sys.executable).parent / "scdx")
CONTRACT = "census_trade_imports.yaml"


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose HEAD holds today's schemas/."""
    root = tmp_path / "repo"
    shutil.copytree(SCHEMAS, root / "schemas")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "schemas")
    return root


def _edit(repo: Path, change: Callable[[dict[str, Any]], None], version: str | None = None) -> None:
    path = repo / "schemas" / CONTRACT
    raw = yaml.safe_load(path.read_text())
    change(raw)
    if version:
        raw["version"] = version
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def _bumped(part: str) -> str:
    """The contract's committed version with its ``minor`` or ``major`` part raised (or ``lower``ed)."""
    major, minor, _ = (int(n) for n in yaml.safe_load((SCHEMAS / CONTRACT).read_text())["version"].split("."))
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    if part == "major":
        return f"{major + 1}.0.0"
    return f"{major - 1}.9.0" if major else "0.0.1"


def _field(raw: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in raw["fields"] if f["name"] == name)
    return found


def test_the_project_schemas_pass_lint_and_are_compatible_with_head() -> None:
    assert lint(SCHEMAS) == []
    result = subprocess.run(
        [SCDX, "contracts", "check", "--against", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "compatible with HEAD" in result.stdout


def test_unchanged_contracts_are_compatible(repo: Path) -> None:
    assert check(repo / "schemas", "HEAD") == []


BREAKING = [
    (
        "field-removed",
        "consumption_value_usd",
        lambda raw: raw["fields"].remove(_field(raw, "consumption_value_usd")),
    ),
    (
        "field-retyped",
        "general_value_usd",
        lambda raw: _field(raw, "general_value_usd").update(type="metric_tons"),
    ),
    ("field-narrowed", "hs_description", lambda raw: _field(raw, "hs_description").update(nullable=False)),
    ("field-narrowed", "hs_level", lambda raw: _field(raw, "hs_level").update(type="hs4")),
    ("key-changed", None, lambda raw: raw.update(primary_key=["period", "hs_code"])),
]


@pytest.mark.parametrize(("rule", "field", "change"), BREAKING, ids=[f"{r}-{f}" for r, f, _ in BREAKING])
def test_breaking_change_without_a_major_bump_fails_naming_contract_field_and_rule(
    repo: Path, rule: str, field: str | None, change: Callable[[dict[str, Any]], None]
) -> None:
    _edit(repo, change, version=_bumped("minor"))
    problems = check(repo / "schemas", "HEAD")
    assert [(p.contract, p.field, p.rule) for p in problems if p.rule == rule] == [
        ("census_trade_imports", field, rule)
    ]
    assert "needs a major version bump" in str(problems[0])


@pytest.mark.parametrize(("rule", "field", "change"), BREAKING, ids=[f"{r}-{f}" for r, f, _ in BREAKING])
def test_the_same_change_with_a_major_bump_passes(
    repo: Path, rule: str, field: str | None, change: Callable[[dict[str, Any]], None]
) -> None:
    _edit(repo, change, version=_bumped("major"))
    assert check(repo / "schemas", "HEAD") == []


def test_narrowing_a_shared_type_breaks_every_contract_using_it(repo: Path) -> None:
    types = repo / "schemas" / "types.yaml"
    types.write_text(types.read_text().replace("allowed: [HS2, HS4, HS6, HS10]", "allowed: [HS4, HS6]"))
    problems = check(repo / "schemas", "HEAD")
    using_hs_level = {
        path.stem for path in (repo / "schemas").glob("*.yaml") if "type: hs_level" in path.read_text()
    }
    assert len(using_hs_level) >= 2  # imports and exports both use it
    assert {p.contract for p in problems} == using_hs_level
    for problem in problems:
        assert (problem.field, problem.rule) == ("hs_level", "field-narrowed")
        assert "no longer: ['HS10', 'HS2']" in problem.message


def test_adding_a_nullable_field_is_not_breaking(repo: Path) -> None:
    _edit(
        repo,
        lambda raw: raw["fields"].append(
            {"name": "general_quantity_1", "type": "count", "description": "Quantity"}
        ),
    )
    assert check(repo / "schemas", "HEAD") == []


def test_removing_a_contract_and_lowering_a_version_are_refused(repo: Path) -> None:
    _edit(repo, lambda raw: None, version=_bumped("lower"))
    assert [p.rule for p in check(repo / "schemas", "HEAD")] == ["version-decreased"]
    (repo / "schemas" / CONTRACT).unlink()
    assert [p.rule for p in check(repo / "schemas", "HEAD")] == ["contract-removed"]


def test_lint_names_an_invalid_contract_and_the_cli_exits_non_zero(repo: Path) -> None:
    _edit(repo, lambda raw: _field(raw, "hs_code").update(type="hs5"))
    problems = lint(repo / "schemas")
    assert [(p.contract, p.rule) for p in problems] == [("census_trade_imports", "invalid")]
    assert "field 'hs_code' has unknown shared type 'hs5'" in problems[0].message
    result = subprocess.run(
        [SCDX, "contracts", "check", "--schemas", str(repo / "schemas")], capture_output=True, text=True
    )
    assert result.returncode == 1 and "unknown shared type 'hs5'" in result.stderr


def test_lint_requires_field_descriptions(repo: Path) -> None:
    _edit(repo, lambda raw: _field(raw, "country_name").update(description="  "))
    assert [(p.field, p.rule) for p in lint(repo / "schemas")] == [("country_name", "missing-description")]
