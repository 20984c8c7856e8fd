"""The fault catalogue runs in the test suite: every case must hold, and docs/reliability.md must
be what `python -m devtools reliability --write docs/reliability.md` writes today."""

from __future__ import annotations

import re
from pathlib import Path

from devtools import PROJECT_ROOT
from devtools.reliability import render_report, run_catalogue


def _rows_without_notes(report: str) -> list[list[str]]:
    rows = [line.split(" | ") for line in report.splitlines() if line.startswith("| ") and "---" not in line]
    return [row[:-1] for row in rows]


def test_every_fault_case_holds_and_the_published_report_is_current(tmp_path: Path) -> None:
    outcomes = run_catalogue(tmp_path)
    not_holding = [(o.case, o.notes, o.leftovers) for o in outcomes if not o.passed]
    assert not_holding == []
    assert {o.category for o in outcomes} == {
        "HTTP",
        "crash",
        "retry",
        "bad input",
        "concurrency",
        "input format",
        "hostile input",
    }
    assert sum(o.rows_lost for o in outcomes) == 0 and not any(o.partial_publish for o in outcomes)
    fresh = render_report(outcomes)
    committed = (PROJECT_ROOT / "docs" / "reliability.md").read_text()
    assert _rows_without_notes(committed) == _rows_without_notes(fresh), (
        "run: python -m devtools reliability --write docs/reliability.md"
    )
    assert re.search(
        r"\*\*(\d+) of \1 cases hold; .*rows lost: 0; partial publishes: 0; keys leaked: 0\.\*\*", committed
    )
