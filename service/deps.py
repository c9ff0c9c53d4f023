"""What routes depend on, as ``Annotated`` aliases, and the raw-body helpers of the hot path.

Routes read ``def model_info(services: ServicesDep)``; a test swaps one of them with
``app.dependency_overrides``. The scoring routes (the hot path) call ``answering(request)``
and ``explain_flag(request)`` instead: FastAPI's dependency resolver costs 20-30 us per
dependency, a tenth of a single-account request. Bodies are read raw and validated by a
module-level ``TypeAdapter`` straight from bytes (no ``json.loads``, no FastAPI body
model), and answers are orjson bytes in a plain ``Response``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.responses import Response

from features.settings import Settings
from service.auth import ApiKeys
from service.errors import InvalidRequest, NotReady, TooLarge, validation_errors
from service.holder import ModelHolder, Serving
from service.metrics import Metrics
from service.middleware import ACCOUNT_IDS
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
    last = holder.last_reload
    why = f": last attempt failed: {last.error}" if last and last.error else ""
    return f"no model loaded yet ({holder.settings.resolved_model_uri}){why}"


ServicesDep = Annotated[Services, Depends(services)]


async def read_body(request: Request, adapter: TypeAdapter[T]) -> T:
    """Validate the raw body with ``adapter``; 422 naming the field on any problem."""
    body = await request.body()
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        raise InvalidRequest(validation_errors(exc)) from None


def check_batch(count: int, settings: Settings) -> None:
    if count > settings.batch_limit:
        raise TooLarge(
            f"batch of {count} accounts is above the limit of {settings.batch_limit} "
            f"(CHURN_BATCH_LIMIT); split it into batches of at most {settings.batch_limit}"
        )


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
