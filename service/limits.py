"""What one request may cost a worker: bytes per route, accounts per batch, time, threads.

Every limit here holds before the expensive step it protects: the body limit before the
body is buffered, the account count before pydantic builds one object per account, the
body deadline while a slow client trickles bytes in, the header deadline and size (in
``service.protocol``) before a request exists at all. Large bodies are read a few at a
time and validated and scored one at a time, in a thread, so the event loop keeps
answering small requests meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
import numpy as np

from features.settings import Settings
from service.errors import TooLarge, TooManyRequests

T = TypeVar("T")

SINGLE_BODY_BYTES = 64 * 1024  # one account (and every route that is not a batch)
BATCH_ROUTES = ("/v1/score/batch", "/v1/prioritize")
MIN_ACCOUNT_BYTES = len(b'{"account_id":"a"},')  # the smallest valid account in a batch
LARGE_BODY_BYTES = 256 * 1024  # from here a body is read under READERS and handled in a thread
READERS = 4  # large bodies buffered at once per worker
HANDLERS = 1  # large requests validated and scored at once per worker
BODY_SECONDS = 60.0  # a body must arrive whole within this (408 after)
HEADER_SECONDS = 10.0  # request line and headers must arrive within this (service.protocol)
HEADER_BYTES = 64 * 1024  # request line and headers at most this large (service.protocol)
CONNECTIONS = 512  # per worker; uvicorn answers 503 above it (``limit_concurrency``)
KEEP_ALIVE_SECONDS = 5  # an idle keep-alive connection is closed after this
HEALTHCHECK_SECONDS = 30  # a worker silent this long to the supervisor's ping is replaced


def body_limit(path: str, settings: Settings) -> int:
    """Bytes a request body to ``path`` may have."""
    return settings.body_limit_bytes if path in BATCH_ROUTES else SINGLE_BODY_BYTES


def body_too_large(size: int, limit: int, path: str) -> TooLarge:
    why = (
        "(about 2 KB per account of CHURN_BATCH_LIMIT); split the batch"
        if path in BATCH_ROUTES
        else "for one request (one account)"
    )
    return TooLarge(f"request body of {size} bytes is above the limit of {limit} bytes {why}")


def batch_too_large(count: int, limit: int) -> TooLarge:
    return TooLarge(
        f"batch of {count} accounts is above the limit of {limit} (CHURN_BATCH_LIMIT); "
        f"split it into batches of at most {limit}"
    )


def check_account_count(body: bytes, limit: int) -> None:
    """413 when ``body`` holds more than ``limit`` accounts, counted without parsing them
    (a 20 MB body of a million minimal accounts would cost pydantic a gigabyte)."""
    if len(body) <= (limit + 1) * MIN_ACCOUNT_BYTES:
        return  # too short to hold more
    count = count_accounts(body)
    if count > limit:
        raise batch_too_large(count, limit)


_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN_OBJECT, _OPEN_ARRAY, _CLOSE_OBJECT, _CLOSE_ARRAY = (ord(c) for c in "{[}]")
_ACCOUNT_DEPTH = 3  # {"accounts": [ {account} ]}: an account's brace opens the third level


def count_accounts(body: bytes) -> int:
    """Objects directly inside the array of a top-level object's member, outside strings.

    Vectorised over the bytes (tens of milliseconds for a 20 MB body): brackets are found
    with numpy, those inside strings dropped (a quote ends a string unless an odd run of
    backslashes precedes it), and the objects opening at depth three counted. For a valid
    batch body this is exactly its number of accounts; for malformed JSON it is some number
    and the parser reports the real problem.
    """
    raw = np.frombuffer(body, np.uint8)
    brackets = np.flatnonzero(
        (raw == _OPEN_OBJECT)
        | (raw == _OPEN_ARRAY)
        | (raw == _CLOSE_OBJECT)
        | (raw == _CLOSE_ARRAY)
    )
    quotes = _unescaped_quotes(raw)
    brackets = brackets[np.searchsorted(quotes, brackets) % 2 == 0]  # even quotes before: outside
    kind = raw[brackets]
    opens = (kind == _OPEN_OBJECT) | (kind == _OPEN_ARRAY)
    depth = np.cumsum(np.where(opens, 1, -1), dtype=np.int64)
    return int(np.count_nonzero((kind == _OPEN_OBJECT) & (depth == _ACCOUNT_DEPTH)))


def _unescaped_quotes(raw: np.ndarray) -> np.ndarray:
    quotes = np.flatnonzero(raw == _QUOTE)
    slashes = np.flatnonzero(raw == _BACKSLASH)
    if len(slashes) == 0 or len(quotes) == 0:
        return quotes
    breaks = np.flatnonzero(np.diff(slashes) != 1)  # runs of consecutive backslashes
    starts = slashes[np.r_[0, breaks + 1]]
    ends = slashes[np.r_[breaks, len(slashes) - 1]]
    run = np.minimum(np.searchsorted(ends, quotes - 1), len(ends) - 1)
    length = np.where(ends[run] == quotes - 1, ends[run] - starts[run] + 1, 0)
    return quotes[length % 2 == 0]


class Gate:
    """Bounds the large requests of one worker: READERS bodies buffered at once, HANDLERS
    validated and scored at once (in a thread, off the event loop)."""

    def __init__(self, readers: int = READERS, handlers: int = HANDLERS) -> None:
        self.readers = asyncio.Semaphore(readers)
        self.handlers = asyncio.Semaphore(handlers)

    async def handle(self, size: int, work: Callable[[], T]) -> T:
        """``work()`` here for a small body; in a thread, one at a time, for a large one."""
        if size < LARGE_BODY_BYTES:
            return work()
        async with self.handlers:
            return await anyio.to_thread.run_sync(work)


class Throttle:
    """At most one event per ``seconds`` (per worker): ``/admin/reload``, so that no key
    holder can keep a worker loading models in a loop."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._last: float | None = None

    def take(self) -> None:
        """Count one event now; 429 (with the wait) if the previous one was too recent."""
        now = self.clock()
        if self._last is not None and now - self._last < self.seconds:
            wait = self.seconds - (now - self._last)
            raise TooManyRequests(
                f"reloads are limited to one per {self.seconds:g} s per worker "
                f"(CHURN_RELOAD_MIN_SECONDS); retry in {wait:.1f} s",
                retry_after=wait,
            )
        self._last = now
