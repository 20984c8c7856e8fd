"""Security properties that hold by construction, checked on the code and the running objects."""

from __future__ import annotations

import re

from pipelines.http import open_session
from pipelines.settings import PROJECT_ROOT


def test_tls_verification_is_never_turned_off() -> None:
    sources = "\n".join(p.read_text() for p in (PROJECT_ROOT / "pipelines").rglob("*.py"))
    assert not re.search(r"verify\s*=\s*False", sources)
    assert "CURL_CA_BUNDLE" not in sources and "REQUESTS_CA_BUNDLE" not in sources
    with open_session() as session:
        assert session.verify is True


def test_no_code_path_disables_the_redirect_guard_or_logs_raw_urls() -> None:
    http = (PROJECT_ROOT / "pipelines" / "http.py").read_text()
    assert http.count("allow_redirects=False") == 1 and "allow_redirects=True" not in http
    # Every message built from a request URL goes through the redacting property.
    assert "request.url}" not in http and "{request.url" not in http
