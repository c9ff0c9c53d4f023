"""What routes depend on, as ``Annotated`` aliases, and the raw-body helpers of the hot path.

Routes read ``def model_info(services: ServicesDep)``; a test swaps one of them with
``app.dependency_overrides``. The scoring routes (the hot path) call ``answering(request)``
and ``explain_flag(request)`` instead: FastAPI's dependency resolver costs 20-30 us per
dependency, a tenth of a single-account request. Bodies are read raw (JSON only: 415
otherwise) and validated by a ``TypeAdapter`` straight from bytes (no ``json.loads``, no
FastAPI body model); a batch's accounts are counted before any is validated
(``service.limits``), and answers are orjson bytes in a plain ``Response``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.responses import Response

from features.redact import redact
from features.settings import Settings
from service.auth import ApiKeys
from service.errors import InvalidRequest, NotReady, UnsupportedMediaType, validation_errors
from service.holder import ModelHolder, Serving
from service.limits import Gate, Throttle, batch_too_large, check_account_count
from service.metrics import Metrics
from service.middleware import ACCOUNT_IDS
from service.schemas import BatchRequests
from service.scoring import Coalescer, Scorer

T = TypeVar("T")
EXPLAIN = TypeAdapter(bool)  # parses ?explain= as FastAPI parses a bool query parameter
EXPLAIN_PARAMETER = {
    "name": "explain",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean", "default": True, "title": "Explain"},
    "description": "Per-account drivers (and the actions they call for). `false` skips the contribution pass.",
}


@dataclass(frozen=True)
class Services:
    """Everything one app instance shares between requests (``app.state.services``)."""

    settings: Settings
    holder: ModelHolder
    scorer: Scorer
    metrics: Metrics
    api_keys: ApiKeys
    coalescer: Coalescer
    requests: BatchRequests
    gate: Gate
    reloads: Throttle


async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def answering(request: Request) -> tuple[Services, Serving]:
    """The app's services and the model this request is answered with (read once: a swap
    cannot change it midway)."""
    found: Services = request.app.state.services
    current = found.holder.current
    if current is None:
        raise NotReady(not_ready_message(found.holder))
    return found, current


def explain_flag(request: Request) -> bool:
    """``?explain=`` (default true); 422 naming the parameter when it is not a boolean."""
    if not request.scope["query_string"]:
        return True
    raw = request.query_params.get("explain")
    if raw is None:
        return True
    try:
        return EXPLAIN.validate_python(raw)
    except ValidationError as exc:
        raise InvalidRequest(validation_errors(exc, ("query", "explain"))) from None


def not_ready_message(holder: ModelHolder) -> str:
    """Why there is no model, for the callers of /v1/* (who may hold a key); /ready says
    less."""
    last = holder.last_reload
    why = f": last attempt failed: {last.error}" if last and last.error else ""
    return redact(f"no model loaded yet ({holder.settings.resolved_model_uri}){why}")


ServicesDep = Annotated[Services, Depends(services)]
JSON_TYPES = ("application/json",)


async def read_json(request: Request) -> bytes:
    """The raw body of a request that declares JSON (415 before reading anything else)."""
    declared = request.headers.get("content-type", "")
    media_type = declared.partition(";")[0].strip().lower()
    if media_type not in JSON_TYPES and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            "send the body as JSON with 'Content-Type: application/json'"
            + (f" (got {media_type[:40]!r})" if media_type else " (no Content-Type was sent)")
        )
    return await request.body()


def validate(adapter: TypeAdapter[T], body: bytes) -> T:
    """Validate a raw body with ``adapter``; 422 naming the field on any problem."""
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        raise InvalidRequest(validation_errors(exc)) from None


async def read_body(request: Request, adapter: TypeAdapter[T]) -> T:
    """Validate the raw JSON body with ``adapter`` (one account: small, so on the loop)."""
    return validate(adapter, await read_json(request))


async def handle_batch(
    request: Request, services: Services, adapter: TypeAdapter[T], work: Callable[[T], Any]
) -> Response:
    """A batch body: count its accounts (413 above the limit), validate, ``work`` on it and
    answer with what it returns; a large body is all of that in a thread, one at a time
    (``Gate``), its answer serialised there too."""
    body = await read_json(request)
    limit = services.settings.batch_limit

    def run() -> Any:
        check_account_count(body, limit)
        batch = validate(adapter, body)
        accounts = batch.accounts  # type: ignore[attr-defined]
        if len(accounts) > limit:  # the count above is exact for valid JSON: a safety net
            raise batch_too_large(len(accounts), limit)
        note_accounts(request, [a.account_id for a in accounts])
        return json_response(work(batch))

    return await services.gate.handle(len(body), run)


def note_accounts(request: Request, account_ids: list[str]) -> None:
    """Account ids for the request's log line (the only request data ever logged)."""
    request.scope[ACCOUNT_IDS] = account_ids


def json_response(payload: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code, media_type="application/json")


def json_body_doc(model: type[BaseModel], explain: bool = False) -> dict[str, Any]:
    """``openapi_extra`` documenting a body (and ``?explain=``) that the handler reads raw."""
    return {
        **({"parameters": [EXPLAIN_PARAMETER]} if explain else {}),
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        },
    }
