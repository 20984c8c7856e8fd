"""The ``scdx`` command as a user runs it: exit codes, summary and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines.replay.server import ReplayServer

from .conftest import TEST_API_KEY

SCDX = str(Path(sys.executable).parent / "scdx")


def _scdx(
    *args: str, data_dir: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCDX_DATA_DIR": str(data_dir), "COLUMNS": "200", **(extra_env or {})}
    return subprocess.run([SCDX, *args], env=env, capture_output=True, text=True, timeout=600)


def test_refresh_against_a_running_replay_server_with_a_key_exits_zero_and_keeps_the_key_out(
    replay: ReplayServer, data_dir: Path
) -> None:
    result = _scdx(
        "refresh",
        "census_trade_imports",
        "--replay-url",
        replay.url,
        "--start",
        "2026-01",
        "--end",
        "2026-03",
        data_dir=data_dir,
        extra_env={"SCDX_CENSUS_API_KEY": TEST_API_KEY},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "208" in result.stdout
    assert TEST_API_KEY not in result.stdout + result.stderr
    assert all(("key", TEST_API_KEY) in r.query for r in replay.requests)


def test_quarantined_refresh_exits_non_zero_naming_dataset_checks_and_quarantine_path(
    recordings_copy: Path, data_dir: Path
) -> None:
    path = recordings_copy / "census_intltrade" / "imports_hs" / "2026-02.json"
    rows = json.loads(path.read_bytes())
    rows[1][4] = "-1"
    path.write_text(json.dumps(rows))
    with ReplayServer(recordings_copy) as server:
        result = _scdx(
            "refresh", "--replay-url", server.url, "--start", "2026-01", "--end", "2026-03", data_dir=data_dir
        )
    assert result.returncode == 1
    assert "census_trade_imports" in result.stderr
    assert "ExpectColumnValuesToBeBetween(general_value_usd)" in result.stderr
    assert str(data_dir / "quarantine" / "census_trade_imports") in result.stderr.replace("\n", "")
    assert "quarantined" in result.stdout


def test_unknown_dataset_is_refused_with_exit_code_2(data_dir: Path) -> None:
    result = _scdx("refresh", "no_such_dataset", data_dir=data_dir)
    assert result.returncode == 2
    assert "unknown dataset 'no_such_dataset'" in result.stderr


def test_plain_http_to_a_non_loopback_host_is_refused(data_dir: Path) -> None:
    result = _scdx("refresh", "--replay-url", "http://example.org:8765", data_dir=data_dir)
    assert result.returncode == 2
    assert "plain HTTP only to 127.0.0.1" in result.stderr


def test_replay_server_command_serves_the_recordings_on_loopback_until_terminated(data_dir: Path) -> None:
    import signal

    import requests

    env = {**os.environ, "COLUMNS": "200"}
    server = subprocess.Popen(
        [SCDX, "replay-server", "--port", "0"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert banner.startswith("replay server on http://127.0.0.1:")
        url = banner.split()[3]
        response = requests.get(
            url + "/data/timeseries/intltrade/imports/hs",
            params={"get": "GEN_VAL_MO", "CTY_CODE": "5700", "I_COMMODITY": "8507", "time": "2024-01"},
            timeout=5,
        )
        assert response.json() == [
            ["GEN_VAL_MO", "CTY_CODE", "I_COMMODITY", "time"],
            ["1420680833", "5700", "8507", "2024-01"],
        ]
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0


def test_ingest_file_runs_a_file_in_hand_through_the_same_path_and_records_its_name_and_checksum(
    data_dir: Path,
) -> None:
    import hashlib

    from .conftest import CENSUS_MONTHS

    source = CENSUS_MONTHS / "2025-06.json"
    result = _scdx("ingest-file", "census_trade_imports", str(source), data_dir=data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "published" in result.stdout and "68" in result.stdout
    (manifest_path,) = data_dir.glob("raw/census_trade_imports/*/00001-2025-06.manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["source"] == "file" and manifest["file_name"] == "2025-06.json"
    assert manifest["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    missing = _scdx("ingest-file", "census_trade_imports", str(data_dir / "nope.json"), data_dir=data_dir)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def _schemas_with(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the project's contracts with one edit to census_trade_imports.yaml."""
    import shutil

    from .conftest import SCHEMAS

    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    contract_file = schemas / "census_trade_imports.yaml"
    text = contract_file.read_text()
    assert old in text
    contract_file.write_text(text.replace(old, new, 1))
    return schemas


def test_a_contract_that_does_not_load_is_one_line_and_exit_code_2(tmp_path: Path, data_dir: Path) -> None:
    schemas = _schemas_with(tmp_path, "type: hs_code\n", "type: hs5\n")
    for command in (["datasets"], ["refresh", "census_trade_imports"]):
        result = _scdx(*command, data_dir=data_dir, extra_env={"SCDX_SCHEMAS_DIR": str(schemas)})
        assert result.returncode == 2, result.stderr[-3000:]
        assert result.stderr.splitlines() == [
            f"scdx: {schemas / 'census_trade_imports.yaml'}: field 'hs_code' has unknown shared type 'hs5'"
        ]


def test_a_check_that_cannot_run_ends_the_run_failed_with_exit_code_1_and_no_traceback(
    tmp_path: Path, data_dir: Path
) -> None:
    from .conftest import CENSUS_MONTHS

    broken = (
        "  expectations:\n"
        "    - expectation: unexpected_rows\n"
        "      severity: warning\n"
        "      description: A check whose SQL names a column the batch does not have.\n"
        "      query: SELECT no_such_column FROM {batch}\n"
    )
    schemas = _schemas_with(tmp_path, "  expectations:\n", broken)
    result = _scdx(
        "ingest-file",
        "census_trade_imports",
        str(CENSUS_MONTHS / "2024-01.json"),
        data_dir=data_dir,
        extra_env={"SCDX_SCHEMAS_DIR": str(schemas)},
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "check(s) could not run" in result.stdout + result.stderr
    assert "failed" in result.stdout


def test_errors_scdx_raises_on_purpose_carry_their_exit_code() -> None:
    from pipelines.common.errors import ScdxError
    from pipelines.contracts import ContractError
    from pipelines.stages.stage import StageError
    from pipelines.stages.validate import CheckCannotRun

    # A contract is configuration (2); a stage that cannot write or a check that cannot run is
    # a run that did not publish (1).
    assert [(issubclass(e, ScdxError), e.exit_code) for e in (ContractError, StageError, CheckCannotRun)] == [
        (True, 2),
        (True, 1),
        (True, 1),
    ]
    assert issubclass(ContractError, ValueError)  # pydantic validators and older callers catch it so
