"""POST /v1/score and /v1/score/batch: churn risk, reasons and actions per account."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from features.schema import AccountSnapshot
from service.deps import (
    answering,
    explain_flag,
    handle_batch,
    json_body_doc,
    json_response,
    note_accounts,
    read_body,
)
from service.errors import InvalidRequest
from service.schemas import (
    SNAPSHOT,
    AccountScore,
    Failure,
    ScoreBatchRequest,
    ScoreBatchResponse,
    ValidationFailure,
)

router = APIRouter(prefix="/v1", tags=["score"])
ERRORS = {
    401: {"model": Failure, "description": "No API key sent (when keys are configured)"},
    403: {"model": Failure, "description": "Wrong API key"},
    408: {"model": Failure, "description": "The body did not arrive in time"},
    413: {"model": Failure, "description": "Body or batch above the limit"},
    415: {"model": Failure, "description": "The body is not declared as JSON"},
    422: {"model": ValidationFailure, "description": "Invalid input; `loc` names the field"},
    503: {"model": Failure, "description": "No model loaded yet"},
}


@router.post(
    "/score",
    response_model=AccountScore,
    openapi_extra=json_body_doc(AccountSnapshot, explain=True),
    responses=ERRORS,
    summary="Score one account",
)
async def score(request: Request) -> Response:
    """One AccountSnapshot (every field but `account_id` optional; `as_of` defaults to today,
    UTC) -> churn probability over the model's horizon, risk tier, revenue at risk, the top
    drivers in probability points, playbook actions and the inputs that were missing."""
    services, serving = answering(request)
    explain = explain_flag(request)
    snapshot = await read_body(request, SNAPSHOT)
    note_accounts(request, [snapshot.account_id])
    result = await services.coalescer.score(serving, snapshot, explain)
    if "error" in result:
        raise InvalidRequest([{"loc": ["body"], "msg": result["error"], "type": "unscorable"}])
    return json_response(result)


@router.post(
    "/score/batch",
    response_model=ScoreBatchResponse,
    openapi_extra=json_body_doc(ScoreBatchRequest, explain=True),
    responses=ERRORS,
    summary="Score many accounts",
)
async def score_batch(request: Request) -> Response:
    """`{"accounts": [...]}`, up to CHURN_BATCH_LIMIT (default 10,000) accounts, scored in one
    vectorised call; one result per account, in the order sent (an account that cannot be
    scored gets `{"account_id", "error"}` there instead, and the others their scores)."""
    services, serving = answering(request)
    explain = explain_flag(request)

    def score(batch: ScoreBatchRequest) -> dict[str, Any]:
        results = services.scorer.score(serving, batch.accounts, "score_batch", explain)
        return {"accounts": results, "model": serving.ref}

    return await handle_batch(request, services, services.requests.score_batch, score)
