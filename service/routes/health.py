"""GET /health (liveness), /ready (a model is loaded) and /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from service.deps import ServicesDep, json_response
from service.errors import NotReady
from service.routes.score import ERRORS
from service.schemas import Health, Ready

router = APIRouter(tags=["operations"])
NOT_READY = "no model loaded yet; GET /v1/model (with a key) says why"


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> Response:
    """200 while the process answers; says nothing about the model (see /ready)."""
    return json_response({"status": "ok"})


@router.get("/ready", response_model=Ready, responses={503: ERRORS[503]}, summary="Readiness")
async def ready(services: ServicesDep) -> Response:
    """200 once this worker has a model; 503 until then. Open to anyone, so it says no more:
    the reason (the last load error, the model URI) is in the authenticated /v1/model."""
    current = services.holder.current
    if current is None:
        raise NotReady(NOT_READY)
    return json_response({"status": "ready", "model": current.ref})


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics(services: ServicesDep) -> Response:
    """Requests and latency by route and status, returned scores, model version; summed
    over every worker of `churn serve`."""
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)
