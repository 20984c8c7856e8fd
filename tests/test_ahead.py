"""read_ahead and read_ahead_each: iterators run ahead in threads behave like the iterators themselves."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from pipelines.common.ahead import read_ahead, read_ahead_each


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


def test_sources_read_ahead_each_arrive_in_order_while_the_next_one_runs_on_another_thread() -> None:
    second_started = threading.Event()
    threads: set[str] = set()

    def page(number: int) -> Iterator[tuple[int, int]]:
        threads.add(threading.current_thread().name)
        if number == 1:
            second_started.set()
        for part in range(3):
            yield number, part

    seen = []
    for item in read_ahead_each((page(n) for n in range(6)), 2, 1, "test-each"):
        if item == (0, 0):
            # Page 1 parses while page 0 is still being consumed.
            assert second_started.wait(5)
        seen.append(item)
    assert seen == [(n, part) for n in range(6) for part in range(3)]
    assert len(threads) == 2  # a fixed pool: six pages, two threads


def test_a_thread_done_with_its_source_starts_the_next_before_the_consumer_reaches_it() -> None:
    started = [threading.Event() for _ in range(4)]

    def page(number: int) -> Iterator[int]:
        started[number].set()
        yield number

    seen = []
    for n in read_ahead_each((page(n) for n in range(4)), 2, 1, "test-next"):
        if n == 0:
            # Page 0's thread finished it while its one item is still being consumed: page 2,
            # two ahead of the consumer, is already running on that thread.
            assert started[2].wait(5)
            assert not started[3].is_set()  # one source beyond the threads, no more
        seen.append(n)
    assert seen == [0, 1, 2, 3]


def test_an_error_in_a_later_source_is_raised_after_every_item_before_it() -> None:
    def page(number: int) -> Iterator[int]:
        yield number * 10
        if number == 2:
            raise ValueError("page 2 is not JSON")
        yield number * 10 + 1

    seen = []
    with pytest.raises(ValueError, match="page 2 is not JSON"):
        for n in read_ahead_each((page(n) for n in range(4)), 2, 1, "test-each"):
            seen.append(n)
    assert seen == [0, 1, 10, 11, 20]


def test_a_consumer_that_stops_early_stops_every_running_source() -> None:
    closed: list[int] = []

    def endless(number: int) -> Iterator[int]:
        try:
            while True:
                yield number
        finally:
            closed.append(number)

    each = read_ahead_each((endless(n) for n in range(5)), 2, 1, "test-stop")
    assert [next(each), next(each)] == [0, 0]
    each.close()
    assert sorted(closed) == [0, 1]  # the two running sources; the rest never started
    assert not any(t.name.startswith("test-stop") and t.is_alive() for t in threading.enumerate())
