"""An HTTP server on 127.0.0.1 that answers one byte at a time, to test deadlines against.

Every request gets ``HTTP/1.1 200`` with a long body, sent one byte every ``interval_s``
seconds: only the body (``headers_too=False``), or the status line and headers too. A client
whose read timeout is longer than the interval never times out on a single read. The server
notes when a client hangs up (``hung_up``), so a test can check that nothing was left running.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: 100000\r\n\r\n")


@dataclass
class Trickle:
    url: str
    requests: int = 0
    hung_up: threading.Event = field(default_factory=threading.Event)


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def _trickle(conn: socket.socket, state: Trickle, interval_s: float, headers_too: bool,
             stop: threading.Event) -> None:
    with conn:
        _read_request(conn)
        state.requests += 1
        if not headers_too:
            conn.sendall(HEAD)
        pending = (HEAD if headers_too else b"") + b" " * 100000
        for byte in pending:
            readable, _, _ = select.select([conn], [], [], interval_s)
            if stop.is_set():
                return
            if readable and not conn.recv(1, socket.MSG_PEEK):
                state.hung_up.set()
                return
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                state.hung_up.set()
                return


@contextmanager
def trickle_server(interval_s: float = 2.0, *, headers_too: bool = False) -> Iterator[Trickle]:
    listener = socket.create_server(("127.0.0.1", 0))
    state = Trickle(f"http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_trickle, args=(conn, state, interval_s, headers_too, stop),
                             daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield state
    finally:
        stop.set()
        with suppress(OSError):
            listener.close()
