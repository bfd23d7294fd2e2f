"""A programmable HTTP server on 127.0.0.1 for fault injection.

Each request takes the next fault from the script (the last one repeats): a reply with a
status, headers and body; ``hang`` (no answer for N seconds); ``reset`` (close the socket
without a reply); ``malformed`` (200 with a body that is not JSON). Requests are counted and
kept, so tests can check what reached the server and with which headers.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Fault:
    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0
    reset: bool = False
    malformed: bool = False


def ok(body: Any = None) -> Fault:
    return Fault(body={"ok": True} if body is None else body)


def status(code: int, body: Any = None, **headers: str) -> Fault:
    return Fault(status=code, body=body or {"error": {"message": f"status {code}"}},
                 headers={k.replace("_", "-"): v for k, v in headers.items()})


def hang(seconds: float) -> Fault:
    return Fault(hang_s=seconds)


def reset() -> Fault:
    return Fault(reset=True)


def malformed() -> Fault:
    return Fault(malformed=True)


class FakeService:
    def __init__(self) -> None:
        self.script: list[Fault] = [ok()]
        #: When set, picks each reply instead of the script (random faults in benchmarks).
        self.chooser: Callable[[str], Fault] | None = None
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = service._next(self.command, self.path, dict(self.headers), body)
                if fault.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                    return
                if fault.hang_s:
                    time.sleep(fault.hang_s)
                payload = b"{not json" if fault.malformed else json.dumps(fault.body).encode()
                self.send_response(fault.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for key, value in fault.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                with suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(payload)

            do_GET = do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _next(self, method: str, path: str, headers: dict, body: bytes) -> Fault:
        with self._lock:
            self.requests.append({"method": method, "path": path, "headers": headers,
                                  "body": body})
            if self.chooser is not None:
                return self.chooser(path)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def program(self, *faults: Fault) -> None:
        with self._lock:
            self.script = list(faults) or [ok()]
            self.requests.clear()


@contextmanager
def fake_service() -> Iterator[FakeService]:
    service = FakeService()
    thread = threading.Thread(target=service.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.server.shutdown()
        service.server.server_close()
