"""Errors the service raises on purpose, and the one table mapping them to HTTP statuses.

``features.errors`` defines what goes wrong in Churn (``DataError``, ``ModelError``); this
module adds what can only go wrong over HTTP (an oversized body, a missing API key) and
turns every ``ChurnError`` into a response. Nothing else in the service picks a status.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from features.errors import QUOTED_CHARACTERS, ChurnError, DataError, ModelError
from features.redact import redact

MAX_FIELD_ERRORS = 20  # a 10,000-account batch of bad accounts answers with the first few
MAX_MESSAGE = 300  # ours quote at most QUOTED_CHARACTERS of the input; this caps the rest


class InvalidRequest(DataError):
    """The body is not valid JSON or breaks the schema; ``errors`` name the fields (422)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        first = errors[0] if errors else {"loc": ["body"], "msg": "invalid request"}
        super().__init__(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")


class TooLarge(ChurnError):
    """More accounts than the batch limit, or more bytes than the body limit (413)."""


class RequestTimeout(ChurnError):
    """The body did not arrive in time (408)."""


class UnsupportedMediaType(ChurnError):
    """A body that is not declared as JSON (415): a browser form cannot post one unasked."""


class TooManyRequests(ChurnError):
    """Reloads asked for faster than CHURN_RELOAD_MIN_SECONDS allows (429)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotReady(ModelError):
    """No model is loaded yet in this worker (503)."""


class Unauthorized(ChurnError):
    """No API key presented where one is required (401)."""


class Forbidden(ChurnError):
    """A wrong API key, or admin endpoints with no key configured (403)."""


# The one place statuses are chosen; the first matching class wins (most specific first).
STATUS: tuple[tuple[type[ChurnError], int], ...] = (
    (InvalidRequest, 422),
    (TooLarge, 413),
    (RequestTimeout, 408),
    (UnsupportedMediaType, 415),
    (TooManyRequests, 429),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotReady, 503),
    (DataError, 422),
    (ModelError, 503),
    (ChurnError, 400),
)


def status_of(error: ChurnError) -> int:
    return next(code for kind, code in STATUS if isinstance(error, kind))


def validation_errors(
    error: ValidationError, prefix: tuple[str | int, ...] = ("body",)
) -> list[dict[str, Any]]:
    """pydantic errors as FastAPI-style details, the first MAX_FIELD_ERRORS of them; never
    echoes the input back, and quotes at most QUOTED_CHARACTERS of a name the client made up
    (an unknown field or attribute named with a megabyte)."""
    items = error.errors(include_url=False, include_context=False, include_input=False)
    return [
        {
            "loc": [*prefix, *(_clip(part) for part in item["loc"])],
            "msg": _clip(item["msg"], MAX_MESSAGE),
            "type": item["type"],
        }
        for item in items[:MAX_FIELD_ERRORS]
    ]


def _clip(part: Any, limit: int = QUOTED_CHARACTERS) -> Any:
    if isinstance(part, str) and len(part) > limit:
        return f"{part[: limit - 3]}..."
    return part


def error_body(error: ChurnError) -> dict[str, Any]:
    if isinstance(error, InvalidRequest):
        return {"detail": error.errors}
    return {"detail": redact(str(error))}


async def churn_error_handler(request: Request, error: Exception) -> Response:
    """Exception handler installed by ``create_app`` for every ``ChurnError``."""
    assert isinstance(error, ChurnError)
    status = status_of(error)
    headers = (
        {"WWW-Authenticate": 'Bearer realm="churn", charset="UTF-8"'} if status == 401 else None
    )
    if isinstance(error, TooManyRequests):
        headers = {"Retry-After": str(max(1, round(error.retry_after)))}
    return Response(
        orjson.dumps(error_body(error)), status, headers=headers, media_type="application/json"
    )
