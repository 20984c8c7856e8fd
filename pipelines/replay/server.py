"""The replay server: recorded agency responses over HTTP on 127.0.0.1 only.

Each agency module answers its own endpoints with that agency's query and paging semantics.
Faults (HTTP error bursts, Retry-After) are injected by a fault plan, set in-process by tests or
over HTTP at ``/__replay__/faults`` when the server runs as ``scdx replay-server``.
"""

from __future__ import annotations

import gzip
import importlib
import json
import logging
import pkgutil
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from pipelines.common.redact import redact_params, redact_text
from pipelines.replay.reply import Reply

log = logging.getLogger("scdx.replay")

LOOPBACK = "127.0.0.1"
ADMIN = "/__replay__"

Handler = Callable[[str, list[tuple[str, str]]], Reply]


@dataclass
class Fault:
    """Answer the next ``times`` requests whose path starts with ``path`` with this fault instead.

    ``mode``:
      reply      the status, headers and body given (error bursts, 429, HTML error pages, redirects)
      reset      close the connection without answering
      stall      send the recorded answer's headers and half its body, then hang for ``delay_s``
      truncate   send the recorded answer with a Content-Length larger than its body, then close
      gzip_bomb  a 200 whose gzip body inflates to ``size`` zero bytes
      wrong_shape  the recorded answer's status and headers with ``body`` in place of its body
    """

    status: int = 200
    path: str = ""
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    mode: str = "reply"
    delay_s: float = 0.0
    size: int = 0


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server saw (kept in memory only; the query may hold a key)."""

    at_monotonic: float
    path: str
    query: list[tuple[str, str]]
    status: int


class FaultPlan:
    """Thread-safe queue of faults, consumed in order."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and path.startswith(fault.path):
                    fault.times -= 1
                    return fault
        return None


def build_routes(recordings_dir: Path) -> dict[str, Handler]:
    """Every recorded endpoint under ``recordings_dir`` and the agency semantics answering it.

    Each agency module in pipelines/replay/ with a ``routes(recordings_dir)`` function contributes
    the endpoints it has recordings for; adding an agency is adding a module.
    """
    if not recordings_dir.is_dir():
        raise FileNotFoundError(f"no recordings directory {recordings_dir}")
    import pipelines.replay as package

    routes: dict[str, Handler] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        contribute = getattr(module, "routes", None)
        if callable(contribute):
            routes.update(contribute(recordings_dir))
    return routes


class ReplayRequestHandler(BaseHTTPRequestHandler):
    """One request to the replay server: a recorded answer, an injected fault, or the admin API."""

    replay: ClassVar[ReplayServer]  # set per server by ReplayServer._handler_class
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server_version = "scdx-replay/1"

    def log_message(self, format: str, *args: Any) -> None:
        """The request line at DEBUG, keys removed (a query string may hold one)."""
        log.debug("%s", redact_text(format % args))

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(reply.length))
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.file is None:
            self.wfile.write(reply.body)
            return
        with reply.file.open("rb") as handle:
            shutil.copyfileobj(handle, self.wfile, 1 << 20)

    def do_GET(self) -> None:
        """A recorded endpoint's answer (or the fault planned for it), or an admin read."""
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if parts.path.startswith(ADMIN):
            self._send(self._admin_get(parts.path))
            return
        fault = self.replay.faults.take(parts.path)
        if parts.path in self.replay.routes:
            reply = self.replay.routes[parts.path](parts.path, query)
        else:
            reply = Reply(404, {"Content-Type": "text/plain"}, f"not recorded: {parts.path}".encode())
        if fault is not None:
            self.replay._log(
                parts.path,
                query,
                -1 if fault.mode in {"reset", "stall", "truncate"} else fault.status,
            )
            self._inject(fault, reply)
            return
        self.replay._log(parts.path, query, reply.status)
        self._send(reply)

    def _inject(self, fault: Fault, recorded: Reply) -> None:
        if fault.mode == "reply":
            self._send(Reply(fault.status, dict(fault.headers), fault.body.encode()))
        elif fault.mode == "wrong_shape":
            self._send(Reply(recorded.status, dict(recorded.headers), fault.body.encode()))
        elif fault.mode == "gzip_bomb":
            payload = gzip.compress(b"\0" * fault.size, compresslevel=9)
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            self._send(Reply(200, headers, payload))
        elif fault.mode == "reset":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif fault.mode in {"stall", "truncate"}:
            body = recorded.payload()
            self.send_response(recorded.status)
            for name, value in recorded.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body) + (0 if fault.mode == "stall" else 1000)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if fault.mode == "stall" else body)
            self.wfile.flush()
            if fault.mode == "stall":
                time.sleep(fault.delay_s)
            self.close_connection = True
        else:
            raise ValueError(f"unknown fault mode {fault.mode!r}")

    def do_POST(self) -> None:
        """Admin: add faults to the plan (a JSON list of Fault fields)."""
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"[]")
        if urlsplit(self.path).path == f"{ADMIN}/faults":
            self.replay.faults.add(*(Fault(**item) for item in payload))
            self._send(Reply(204))
        else:
            self._send(Reply(404))

    def do_DELETE(self) -> None:
        """Admin: clear the fault plan."""
        if urlsplit(self.path).path == f"{ADMIN}/faults":
            self.replay.faults.clear()
            self._send(Reply(204))
        else:
            self._send(Reply(404))

    def _admin_get(self, path: str) -> Reply:
        if path == f"{ADMIN}/requests":
            with self.replay._lock:
                logged = [
                    {"path": r.path, "query": redact_params(r.query), "status": r.status}
                    for r in self.replay.requests
                ]
            return Reply(200, {"Content-Type": "application/json"}, json.dumps(logged).encode())
        if path == f"{ADMIN}/health":
            return Reply(
                200, {"Content-Type": "application/json"}, json.dumps(sorted(self.replay.routes)).encode()
            )
        return Reply(404)


class ReplayServer:
    """A threaded HTTP server on 127.0.0.1 answering from recordings."""

    def __init__(self, recordings_dir: Path, port: int = 0, routes: dict[str, Handler] | None = None) -> None:
        self.routes = routes if routes is not None else build_routes(recordings_dir)
        self.faults = FaultPlan()
        self.requests: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._logged = threading.Condition(self._lock)
        self._httpd = ThreadingHTTPServer((LOOPBACK, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ReplayServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="scdx-replay", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _log(self, path: str, query: list[tuple[str, str]], status: int) -> None:
        with self._logged:
            self.requests.append(LoggedRequest(time.monotonic(), path, query, status))
            self._logged.notify_all()

    def wait_for_requests(self, count: int, timeout_s: float) -> None:
        """Block until ``count`` requests have arrived (an event to act on, rather than a sleep)."""
        with self._logged:
            if not self._logged.wait_for(lambda: len(self.requests) >= count, timeout_s):
                raise TimeoutError(f"{len(self.requests)} of {count} requests arrived in {timeout_s:.0f} s")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        # One handler class per server, so that a request reaches this server's routes and faults.
        class _Handler(ReplayRequestHandler):
            replay = server

        return _Handler
