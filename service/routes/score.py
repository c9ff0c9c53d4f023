"""POST /v1/score and /v1/score/batch: churn risk, reasons and actions per account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from features.schema import AccountSnapshot
from service.deps import (
    ServicesDep,
    ServingDep,
    check_batch,
    json_body_doc,
    json_response,
    note_accounts,
    read_body,
)
from service.schemas import (
    SCORE_BATCH,
    SNAPSHOT,
    AccountScore,
    Failure,
    ScoreBatchRequest,
    ScoreBatchResponse,
    ValidationFailure,
)

router = APIRouter(prefix="/v1", tags=["score"])
ExplainQuery = Annotated[
    bool,
    Query(
        description="Per-account drivers (and the actions they call for). `false` skips the contribution pass."
    ),
]
ERRORS = {
    413: {"model": Failure, "description": "Body or batch above the limit"},
    422: {"model": ValidationFailure, "description": "Invalid input; `loc` names the field"},
    503: {"model": Failure, "description": "No model loaded yet"},
}


@router.post(
    "/score",
    response_model=AccountScore,
    openapi_extra=json_body_doc(AccountSnapshot),
    responses=ERRORS,
    summary="Score one account",
)
async def score(
    request: Request, serving: ServingDep, services: ServicesDep, explain: ExplainQuery = True
) -> Response:
    """One AccountSnapshot (every field but `account_id` optional; `as_of` defaults to today,
    UTC) -> churn probability over the model's horizon, risk tier, revenue at risk, the top
    drivers in probability points, playbook actions and the inputs that were missing."""
    snapshot = await read_body(request, SNAPSHOT)
    note_accounts(request, [snapshot.account_id])
    return json_response(services.scorer.score(serving, [snapshot], "score", explain)[0])


@router.post(
    "/score/batch",
    response_model=ScoreBatchResponse,
    openapi_extra=json_body_doc(ScoreBatchRequest),
    responses=ERRORS,
    summary="Score many accounts",
)
async def score_batch(
    request: Request, serving: ServingDep, services: ServicesDep, explain: ExplainQuery = True
) -> Response:
    """`{"accounts": [...]}`, up to CHURN_BATCH_LIMIT (default 10,000) accounts, scored in one
    vectorised call; one result per account, in the order sent."""
    batch = await read_body(request, SCORE_BATCH)
    check_batch(len(batch.accounts), services.settings)
    note_accounts(request, [a.account_id for a in batch.accounts])
    results = services.scorer.score(serving, batch.accounts, "score_batch", explain)
    return json_response({"accounts": results, "model": serving.ref})
