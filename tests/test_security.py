"""Security properties that hold by construction, checked on the code and the running objects."""

from __future__ import annotations

import inspect
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pipelines.sources.http
from devtools import PROJECT_ROOT
from pipelines.contracts import load_registry
from pipelines.replay.server import ReplayServer
from pipelines.sources.http import open_session

from .conftest import RECORDINGS, SCHEMAS

SCDX = str(Path(sys.executable).parent / "scdx")


def test_tls_verification_is_never_turned_off() -> None:
    sources = "\n".join(p.read_text() for p in (PROJECT_ROOT / "pipelines").rglob("*.py"))
    assert not re.search(r"verify\s*=\s*False", sources)
    assert "CURL_CA_BUNDLE" not in sources and "REQUESTS_CA_BUNDLE" not in sources
    with open_session() as session:
        assert session.verify is True


def test_no_code_path_disables_the_redirect_guard_or_logs_raw_urls() -> None:
    http = inspect.getsource(pipelines.sources.http)
    assert http.count("allow_redirects=False") == 1 and "allow_redirects=True" not in http
    # Every message built from a request URL goes through the redacting property.
    assert "request.url}" not in http and "{request.url" not in http


def test_with_a_key_for_every_keyed_source_a_full_refresh_leaves_no_key_on_disk_or_in_the_logs(
    tmp_path: Path,
) -> None:
    registry = load_registry(SCHEMAS)
    keyed = {c.dataset: c.source.auth for c in registry.contracts.values() if c.source.auth is not None}
    assert {
        "census_trade_imports",
        "eia_electricity",
        "afdc_charging_stations",
        "bts_border_crossings",
    } <= set(keyed)
    keys = {auth.env: f"scdx-{auth.env.lower()}-{secrets.token_hex(8)}" for auth in keyed.values()}
    data_dir = tmp_path / "data"
    with ReplayServer(RECORDINGS) as replay:
        result = subprocess.run(
            [SCDX, "refresh", "--replay-url", replay.url, "--verbose"],
            env={**os.environ, **keys, "SCDX_DATA_DIR": str(data_dir), "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=900,
        )
        seen = list(replay.requests)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    # The keys really were sent (so finding none on disk means something).
    for dataset, auth in keyed.items():
        if auth.kind == "query_param":
            path = registry.get(dataset).source.path.split("{")[0]
            assert any(r.path.startswith(path) and (auth.param, keys[auth.env]) in r.query for r in seen), (
                dataset
            )
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".manifest.json") for p in files)
    assert any("data_docs" in p.parts for p in files)
    for key in keys.values():
        assert key not in result.stdout + result.stderr
        leaking = [p for p in files if key.encode() in p.read_bytes()]
        assert leaking == [], f"key found in {leaking[:3]}"
