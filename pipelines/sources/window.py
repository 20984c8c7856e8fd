"""Incremental windows: which months a run asks the agency for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pipelines.contracts import YEAR_MONTH, Contract


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def quarter_start(day: date) -> date:
    """The first day of ``day``'s calendar quarter."""
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def add_months(month: date, count: int) -> date:
    """``month`` moved by ``count`` months (negative goes back)."""
    index = month.year * 12 + (month.month - 1) + count
    return date(index // 12, index % 12 + 1, 1)


def parse_month(text: str) -> date:
    """``YYYY-MM`` -> the first day of that month."""
    if not YEAR_MONTH.match(text):
        raise ValueError(f"{text!r} is not a month (YYYY-MM)")
    return date(int(text[:4]), int(text[5:7]), 1)


@dataclass(frozen=True)
class Window:
    """An inclusive range of months."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"window starts {self.start:%Y-%m} after it ends {self.end:%Y-%m}")

    def months(self) -> list[date]:
        """Every month of the window, oldest first."""
        out, month = [], self.start
        while month <= self.end:
            out.append(month)
            month = add_months(month, 1)
        return out

    def quarters(self) -> list[date]:
        """First day of every calendar quarter the window touches, oldest first."""
        out: list[date] = []
        for month in self.months():
            first = quarter_start(month)
            if not out or out[-1] != first:
                out.append(first)
        return out

    def __str__(self) -> str:
        return f"{self.start:%Y-%m}..{self.end:%Y-%m}"


def incremental_window(contract: Contract, last_published: date | None, as_of: date) -> Window:
    """The months to fetch: from the cursor (last published month minus the lookback) to ``as_of``.

    The lookback re-fetches recent months because agencies revise them after first release.
    """
    return _looking_back(contract, last_published, last_published, as_of)


def interval_window(
    contract: Contract, last_published: date | None, interval_start: date, interval_end: date
) -> Window:
    """The months an Airflow run fetches: its data interval, widened back by the lookback.

    A run depends on its own interval only, so a backfilled date fetches what a run on that date
    fetches; the one exception is the first load of an empty table, which starts at the
    contract's start (the history a single run on that date would also load).
    """
    return _looking_back(contract, last_published, min(interval_start, interval_end), interval_end)


def _looking_back(
    contract: Contract, last_published: date | None, anchor: date | None, until: date
) -> Window:
    """From ``anchor``'s month minus the lookback (the contract's start for an empty table, and
    never before it) to ``until``'s month."""
    inc = contract.source.incremental
    end = month_start(until)
    if inc is None:
        return Window(end, end)
    floor = parse_month(inc.start)
    if last_published is None or anchor is None:
        start = floor
    else:
        start = max(floor, add_months(month_start(anchor), -inc.lookback_months))
    return Window(min(start, end), end)
