"""uvicorn's httptools protocol with a deadline and a size limit on request headers.

uvicorn bounds idle keep-alive connections, but not a connection that opens and sends
nothing, nor one that trickles its request line and headers a byte at a time, nor headers
of any size: each would hold a slot of the worker's connection limit (a few hundred such
clients and the service answers nobody). Here the request line and headers must arrive
within ``HEADER_SECONDS`` of the connection (or of the request's first byte) and stay under
``HEADER_BYTES``; otherwise the connection is closed. Bodies have their own deadline
(``service.middleware``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.limits import HEADER_BYTES, HEADER_SECONDS


class HeaderLimitError(Exception):
    """Raised inside the parser's callbacks: uvicorn answers 400 and closes."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose request heads have a deadline and a size limit."""

    header_seconds = HEADER_SECONDS
    header_bytes = HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_size = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = 0
        self._start_head_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.header_bytes:
            raise HeaderLimitError(f"request head above {self.header_bytes} bytes")

    def _start_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_seconds, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()
