"""Run an iterator one step ahead of its consumer, in a background thread.

Stages that wait on different things overlap: the next response downloads while this one is
hashed and written (land), the next page parses in DuckDB while this one is cast and written to
Parquet (normalize). Socket reads, hashing, DuckDB and Arrow release the GIL, so both threads run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def read_ahead(items: Iterator[T], depth: int, name: str) -> Iterator[T]:
    """Yield what ``items`` yields, in order, with up to ``depth`` items produced ahead.

    An exception in ``items`` is raised here, after the items before it, as if iterated inline.
    A consumer that stops early (break, exception, close) stops the producer at its next item.
    """
    ahead: queue.Queue[object] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there in order
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = ahead.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
