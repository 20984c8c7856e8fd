"""The day the recordings stand for (``recordings/as_of.yaml``), by source module.

Replaying, a run's data can be no newer than its recordings: freshness is judged on the day they
stand for once the run's own day is past it (pipelines.orchestration.freshness).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from pipelines.common.errors import UsageError

AS_OF_FILE = "as_of.yaml"


def recordings_as_of(recordings_dir: Path, module: str) -> date | None:
    """The day the recordings of a source module stand for; None when they name none."""
    path = recordings_dir / AS_OF_FILE
    if not path.is_file():
        return None
    days = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    day = days.get(module)
    if day is None:
        return None
    if not isinstance(day, date):
        raise UsageError(f"{path}: {module}: {day!r} is not a day (YYYY-MM-DD)")
    return day
