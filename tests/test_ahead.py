"""read_ahead: an iterator run one step ahead in a thread behaves like the iterator itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from pipelines.ahead import read_ahead


def test_items_arrive_in_order_and_the_producer_runs_ahead_of_a_slow_consumer() -> None:
    produced: list[int] = []

    def numbers() -> Iterator[int]:
        for n in range(6):
            produced.append(n)
            yield n

    seen = []
    for n in read_ahead(numbers(), 2, "test"):
        if n == 0:
            deadline = time.monotonic() + 5
            while len(produced) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            # While item 0 is consumed, items 1 and 2 were produced (depth 2), and no more.
            assert produced == [0, 1, 2, 3] or produced == [0, 1, 2]
        seen.append(n)
    assert seen == list(range(6))


def test_an_error_is_raised_after_the_items_before_it_as_if_iterated_inline() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("page 3 is not JSON")

    seen = []
    with pytest.raises(ValueError, match="page 3 is not JSON"):
        for n in read_ahead(failing(), 1, "test"):
            seen.append(n)
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_stops_the_producer_and_closes_the_iterator() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    ahead = read_ahead(endless(), 1, "test")
    assert [next(ahead), next(ahead)] == [0, 1]
    ahead.close()
    assert closed.wait(5)
    assert not any(t.name == "test" and t.is_alive() for t in threading.enumerate())
