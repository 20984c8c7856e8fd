"""`scdx partner add | list | rotate-key`: registering a partner, its key, and its first submission."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from pipelines.cli import app
from pipelines.common.errors import UsageError
from pipelines.replay.flow_generate import write_submissions

from .conftest import SCHEMAS

NEW_PARTNER = "oak_seventh_street_ops"


@pytest.fixture
def schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the contracts whose partners.yaml the commands may rewrite."""
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, copy)
    monkeypatch.setenv("SCDX_SCHEMAS_DIR", str(copy))
    return copy


def _add_partner(partner_id: str, role: str, dataset: str, *extra: str) -> Result:
    """`scdx partner add` as an operator types it."""
    organisation = "Seventh Street Terminal Operations (constructed)"
    return CliRunner().invoke(
        app,
        [
            "partner",
            "add",
            partner_id,
            "--organisation",
            organisation,
            "--role",
            role,
            "--dataset",
            dataset,
            *extra,
        ],
    )


def _add(data_dir: Path) -> Result:
    return _add_partner(NEW_PARTNER, "port_terminal", "flow_port_throughput", "--data-dir", str(data_dir))


def test_partner_add_registers_the_partner_with_a_key_reference_and_no_key(
    schemas: Path, tmp_path: Path
) -> None:
    result = _add(tmp_path / "data")
    assert result.exit_code == 0, result.output
    registry = yaml.safe_load((schemas / "partners.yaml").read_text())
    added = [p for p in registry["partners"] if p["id"] == NEW_PARTNER]
    assert added == [
        {
            "id": NEW_PARTNER,
            "organisation": "Seventh Street Terminal Operations (constructed)",
            "role": "port_terminal",
            "datasets": ["flow_port_throughput"],
            "secret": {
                "env": f"SCDX_PARTNER_{NEW_PARTNER.upper()}_KEY",
                "airflow_conn_id": f"scdx_partner_{NEW_PARTNER}",
            },
        }
    ]
    listed = CliRunner().invoke(app, ["partner", "list", "--data-dir", str(tmp_path / "data")])
    assert (
        f"{NEW_PARTNER}  port_terminal  flow_port_throughput  key: $SCDX_PARTNER_{NEW_PARTNER.upper()}_KEY"
        in (listed.output)
    )


def test_partner_add_refuses_a_duplicate_an_unknown_role_and_an_unknown_dataset(
    schemas: Path, tmp_path: Path
) -> None:
    before = (schemas / "partners.yaml").read_bytes()
    duplicate = _add_partner("lax_pier_a_terminal", "port_terminal", "flow_port_throughput")
    assert isinstance(duplicate.exception, UsageError)
    assert "'lax_pier_a_terminal' is already registered" in str(duplicate.exception)
    role = _add_partner("x_ops", "railway", "flow_port_throughput")
    assert isinstance(role.exception, UsageError) and "role 'railway' is not one of" in str(role.exception)
    dataset = _add_partner("x_ops", "shipper", "flow_cargo_secrets")
    assert isinstance(dataset.exception, UsageError) and "unknown datasets: flow_cargo_secrets" in str(
        dataset.exception
    )
    assert (schemas / "partners.yaml").read_bytes() == before


def test_a_partner_added_and_keyed_by_the_cli_submits_and_is_ingested(
    schemas: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    assert _add(data_dir).exit_code == 0
    rotated = CliRunner().invoke(app, ["partner", "rotate-key", NEW_PARTNER, "--data-dir", str(data_dir)])
    assert rotated.exit_code == 0, rotated.output
    key = rotated.stdout.strip()
    assert len(key) >= 40 and key not in (schemas / "partners.yaml").read_text()
    monkeypatch.setenv(f"SCDX_PARTNER_{NEW_PARTNER.upper()}_KEY", key)
    # The new partner sends a terminal's weeks in the contract's layout (a generated file).
    write_submissions(tmp_path / "generated")
    submission = tmp_path / "generated" / "flow_port_throughput" / "lax_pier_a_terminal.csv"
    runner = CliRunner()
    submitted = runner.invoke(
        app,
        [
            "partner",
            "submit",
            NEW_PARTNER,
            "flow_port_throughput",
            str(submission),
            "--data-dir",
            str(data_dir),
        ],
    )
    assert submitted.exit_code == 0, submitted.output
    ingested = runner.invoke(app, ["partner", "ingest", "--data-dir", str(data_dir)])
    assert ingested.exit_code == 0, ingested.output
    assert "published" in ingested.output
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
