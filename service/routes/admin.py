"""POST /admin/reload: load the current champion in the worker that answers."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from service.deps import ServicesDep, json_response
from service.routes.score import ERRORS
from service.schemas import Failure, ReloadResponse

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post(
    "/reload",
    response_model=ReloadResponse,
    responses={
        401: ERRORS[401],
        403: ERRORS[403],
        429: {"model": Failure, "description": "A reload less than CHURN_RELOAD_MIN_SECONDS ago"},
        503: ERRORS[503],
    },
    summary="Reload the champion",
)
async def reload(services: ServicesDep, force: bool = False) -> Response:
    """Load what CHURN_MODEL_URI points at now (default the champion alias), score the canary,
    and swap it in. Unchanged version: nothing happens unless `force=true`. If the new model
    fails, the old one keeps serving and this answers 503 with the reason (also shown in
    /v1/model). Other workers follow within CHURN_MODEL_POLL_SECONDS. Needs an admin key
    (CHURN_ADMIN_KEYS); one reload per CHURN_RELOAD_MIN_SECONDS per worker (429 sooner)."""
    services.reloads.take()
    holder = services.holder
    previous = holder.current.ref["version"] if holder.current else None
    swapped, serving = await holder.reload(force=force)
    return json_response({"reloaded": swapped, "previous_version": previous, "model": serving.ref})
