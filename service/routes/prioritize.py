"""POST /v1/prioritize: whom to work first, given capacity and the cost of an intervention."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.deps import answering, handle_batch, json_body_doc
from service.routes.score import ERRORS
from service.schemas import PrioritizeRequest, PrioritizeResponse

router = APIRouter(prefix="/v1", tags=["prioritize"])


@router.post(
    "/prioritize",
    response_model=PrioritizeResponse,
    openapi_extra=json_body_doc(PrioritizeRequest),
    responses=ERRORS,
    summary="Rank accounts by expected saved profit",
)
async def prioritize(request: Request) -> Response:
    """Accounts ranked by `p * expected_save_rate * value - cost_per_action`, only those where
    it is positive, at most `capacity`; value is a year of margin (`mrr * 12 * gross_margin`,
    `value: "arr"`, the default) or the expected margin over the account's remaining life
    (`value: "lifetime"`: expected_remaining_value). Accounts without `mrr` are never chosen
    (their revenue is unknown)."""
    services, serving = answering(request)

    def rank(body: PrioritizeRequest) -> dict[str, Any]:
        return services.scorer.prioritize(serving, body)

    return await handle_batch(request, services, services.requests.prioritize, rank)
