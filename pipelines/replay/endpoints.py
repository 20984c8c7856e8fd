"""Where a run reaches each agency: live, a replay server already running, or one started here.

Offline is the default (these machines have no internet): without ``--live`` or a replay URL the
recorded responses are served on 127.0.0.1 for the duration, so every run exercises the real HTTP
code. The command line and the Airflow task bodies choose here and hand the stages a URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pipelines.common.settings import Settings
from pipelines.contracts import Contract
from pipelines.replay.server import ReplayServer
from pipelines.sources.transport import check_transport


@contextmanager
def source_endpoints(settings: Settings) -> Iterator[Callable[[Contract], str]]:
    """Where each contract's source is reached: the agency (live), a given replay server, or a
    replay server started here for the duration (offline by default)."""
    if settings.live:
        yield lambda contract: check_transport(contract.source.base_url)
    elif settings.replay_url:
        url = check_transport(settings.replay_url)
        yield lambda contract: url
    else:
        with ReplayServer(settings.recordings_dir) as server:
            yield lambda contract: server.url
