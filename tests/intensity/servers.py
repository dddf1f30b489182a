"""Raw TCP servers on 127.0.0.1 that misbehave in the ways real APIs and proxies do."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

Handler = Callable[[socket.socket, threading.Event], None]
HOLD_S = 10.0
"""How long a misbehaving server keeps a connection open before it gives up and closes it. A client
that waited for that instead of its own timeouts would fail differently, and this late."""
TRICKLE_S = 0.05
"""Pause between the bytes of a trickling answer."""
ANSWER_TIMEOUT = (10.0, 10.0)
"""Connect and read timeouts for clients of a test server that answers at once: only a machine
starving the server's thread that long reaches them (the timeouts are tested in test_http)."""


@contextmanager
def raw_server(handler: Handler) -> Iterator[int]:
    """A one-connection TCP server on 127.0.0.1 running ``handler``; yields its port."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    port: int = listener.getsockname()[1]

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn, suppress(OSError):
                handler(conn, stop)
            return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accept the request and never answer."""
    conn.recv(65536)
    stop.wait(HOLD_S)


def trickle(conn: socket.socket, stop: threading.Event) -> None:
    """Answer headers, then one byte every TRICKLE_S: never idle long enough for a read timeout."""
    conn.recv(65536)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9999\r\n\r\n"
    )
    give_up = time.monotonic() + HOLD_S
    while not stop.wait(TRICKLE_S) and time.monotonic() < give_up:
        conn.sendall(b" ")


def stall(conn: socket.socket, stop: threading.Event) -> None:
    """Answer headers and half a body, then fall silent."""
    conn.recv(65536)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    conn.sendall(b'{"data": [')
    stop.wait(HOLD_S)


def declare_large(conn: socket.socket, stop: threading.Event) -> None:
    """Answer headers promising 3 MB, then send none of it: reading any of the body would wait."""
    conn.recv(65536)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n"
    )
    stop.wait(HOLD_S)


def cut_off(conn: socket.socket, stop: threading.Event) -> None:
    """Promise 1000 bytes, send 20, hang up."""
    conn.recv(65536)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    conn.sendall(b'{"data": [{"from": ')


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
