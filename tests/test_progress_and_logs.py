"""What an operator sees while a refresh runs: a live progress display on a terminal (datasets,
stages, pages, bytes, rows), plain lines through a pipe, one JSON object per log line with
SCDX_LOG_FORMAT=json, and release log lines that say which tables changed and by how many rows."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from datetime import datetime
from pathlib import Path

from pipelines.common.progress import LogProgress
from pipelines.store.changes import describe_changes

SCDX = str(Path(sys.executable).parent / "scdx")
# Three recorded months, whatever today's date: the window does not follow the clock.
REFRESH = [SCDX, "refresh", "census_trade_imports", "--start", "2026-01", "--end", "2026-03"]
ANSI = re.compile(r"\x1b\[")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "SCDX_LOG_FORMAT")}
    return {**env, "SCDX_DATA_DIR": str(tmp_path / "data"), **extra}


def run_in_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run a command with a pseudo-terminal (120 x 40) as its stdin, stdout and stderr; all it wrote."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        args, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    output = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: every holder of the terminal's other end has closed it
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return process.wait(timeout=300), output.decode(errors="replace")


def test_in_a_terminal_a_refresh_shows_a_live_display_of_datasets_stages_pages_bytes_and_rows(
    tmp_path: Path,
) -> None:
    code, output = run_in_terminal(REFRESH, _env(tmp_path, TERM="xterm-256color"))
    assert code == 0, output[-3000:]
    # A display redrawn in place (cursor movements), ending with the dataset done and its figures.
    assert ANSI.search(output) and "\x1b[2K" in output
    assert "datasets 1/1" in output
    final = re.findall(
        r"census_trade_imports\s+\S+\s+published\s+3 pages\s+([\d.]+ kB) landed\s+([\d,]+) rows", output
    )
    assert final, output[-3000:]
    assert final[-1][1] == "208"


def test_through_a_pipe_a_refresh_prints_plain_progress_lines_only(tmp_path: Path) -> None:
    result = subprocess.run(REFRESH, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    everything = result.stdout + result.stderr
    assert not ANSI.search(everything) and "\r" not in everything
    lines = result.stderr.splitlines()
    stages = [line.split("scdx.progress: ")[1] for line in lines if "scdx.progress: " in line]
    assert stages[:4] == [
        "census_trade_imports: extract and land",
        "census_trade_imports: normalize and stage (3 pages, "
        + stages[1].split(", ")[1]
        + ", 0 rows so far)",
        stages[2],
        stages[3],
    ]
    assert stages[2].startswith("census_trade_imports: validate (3 pages, ") and stages[2].endswith(
        ", 208 rows so far)"
    )
    assert re.fullmatch(
        r"census_trade_imports: published, 3 pages, [\d,]+ bytes, 208 rows \(1 of 1 datasets\)", stages[-1]
    )


def test_with_scdx_log_format_json_every_log_line_of_a_refresh_is_one_json_object(tmp_path: Path) -> None:
    result = subprocess.run(
        REFRESH, env=_env(tmp_path, SCDX_LOG_FORMAT="json"), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    for entry in entries:
        moment = datetime.fromisoformat(entry["time"])
        assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0, entry["time"]
    windows = [e for e in entries if "window 2026-01..2026-03" in e["message"]]
    assert windows and windows[0]["dataset"] == "census_trade_imports" and windows[0]["run_id"]
    assert {"extract and land", "normalize and stage", "validate", "publish"} <= {
        e.get("stage") for e in entries if e["logger"] == "scdx.progress"
    }


def test_a_release_line_names_each_changed_table_with_its_rows_and_the_difference() -> None:
    before = {"curated.census_trade_imports": 2285, "marts.import_concentration": 528, "marts.old": 9}
    after = {
        "curated.census_trade_imports": 2405,
        "marts.import_concentration": 540,
        "curated.ref_states": 56,
    }
    changed = [
        "curated.census_trade_imports",
        "curated.ref_states",
        "marts.import_concentration",
        "marts.old",
    ]
    assert describe_changes("public", 13, changed, before, after) == (
        "public release 13: published curated.census_trade_imports 2,405 rows (+120); marts rebuilt: "
        "import_concentration 540 rows (+12), old dropped (9 rows); reference lists refreshed: ref_states"
    )
    assert describe_changes(
        "public", 14, ["curated.census_trade_imports"], after, {**after, "curated.census_trade_imports": 2400}
    ) == ("public release 14: published curated.census_trade_imports 2,400 rows (-5)")


def test_log_progress_tells_stages_and_a_closing_line_with_pages_bytes_and_rows(caplog) -> None:  # type: ignore[no-untyped-def]
    progress = LogProgress(total=2)
    with caplog.at_level("INFO", logger="scdx.progress"):
        progress.stage("eia_electricity", "extract and land")
        progress.page("eia_electricity", 1500)
        progress.page("eia_electricity", 500)
        progress.stage("eia_electricity", "normalize and stage")
        progress.rows("eia_electricity", 70)
        progress.finished("eia_electricity", "published")
    assert [r.getMessage() for r in caplog.records] == [
        "eia_electricity: extract and land",
        "eia_electricity: normalize and stage (2 pages, 2,000 bytes, 0 rows so far)",
        "eia_electricity: published, 2 pages, 2,000 bytes, 70 rows (1 of 2 datasets)",
    ]
    assert caplog.records[-1].dataset == "eia_electricity"  # type: ignore[attr-defined]
