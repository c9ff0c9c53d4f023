"""Slow and greedy clients against a real uvicorn server with `churn serve`'s protocol and limits.

The server runs in this process (a thread) so the deadlines can be shortened to a fraction
of a second; everything else is what `churn serve` runs: uvicorn, httptools, the bounded
protocol, the app and its middleware, real sockets.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from features.settings import Settings
from service import middleware
from service.app import create_app
from service.holder import ModelHolder, RegistrySource
from service.protocol import BoundedHttpToolsProtocol

from .conftest import KEY, FakeRegistry, free_port, snapshot

DEADLINE = 0.5  # seconds, instead of the real 10 s for heads and 60 s for bodies


@contextmanager
def running(app, **config) -> Iterator[int]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            http=BoundedHttpToolsProtocol,
            log_level="warning",
            **config,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def port(registry: FakeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(BoundedHttpToolsProtocol, "header_seconds", DEADLINE)
    monkeypatch.setattr(middleware, "BODY_SECONDS", DEADLINE)
    settings = Settings(home=tmp_path, model_poll_seconds=0, api_keys=KEY)
    holder = ModelHolder(settings, RegistrySource(settings, registry.load, registry.peek))
    holder.load_blocking(force=True)
    with running(create_app(settings, holder=holder, poll=False), limit_concurrency=4) as port:
        yield port


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(5)
    return sock


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (b"" when it closes without a word)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    with connect(port) as sock:
        assert answer(sock) == b""


def test_a_head_that_trickles_in_is_closed(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        time.sleep(DEADLINE / 2)
        sock.sendall(b"X-Slow: a")  # the head is still not complete at the deadline
        assert answer(sock) == b""


def test_a_huge_head_is_refused(port: int) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(100))
    with connect(port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 400 Bad Request")


def test_a_body_that_does_not_arrive_in_time_is_408_and_the_connection_closed(port: int) -> None:
    head = (
        f"POST /v1/score HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    with connect(port) as sock:
        sock.sendall(head.encode() + b'{"account_id": ')
        reply = answer(sock)
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in reply.lower()
    assert reply.endswith(b'{"detail":"the request body did not arrive within 0.5 s"}')


def test_a_request_in_time_is_answered(port: int) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{port}/v1/score", json=snapshot(), headers={"X-API-Key": KEY}
    )
    assert response.status_code == 200 and response.json()["account_id"] == "A1"


def test_connections_above_the_limit_get_503(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BoundedHttpToolsProtocol, "header_seconds", 30.0)  # idle ones stay
    idle = [connect(port) for _ in range(4)]
    try:
        statuses = []
        for _ in range(50):  # until the server has taken the four connections in
            statuses.append(httpx.get(f"http://127.0.0.1:{port}/health").status_code)
            if statuses[-1] == 503:
                break
            time.sleep(0.1)
        assert statuses[-1] == 503, statuses
    finally:
        for sock in idle:
            sock.close()
    for _ in range(50):  # and answers again once they are gone
        if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("the server did not answer again after the idle connections closed")
