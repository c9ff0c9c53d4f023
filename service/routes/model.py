"""GET /v1/model: what this worker serves, where it came from, how good it was."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from features.redact import redact
from models.bundle import RISK_TIERS
from service.deps import ServicesDep, json_response, not_ready_message
from service.errors import NotReady
from service.routes.score import ERRORS
from service.schemas import ModelInfo

router = APIRouter(prefix="/v1", tags=["model"])


@router.get(
    "/model",
    response_model=ModelInfo,
    responses={code: ERRORS[code] for code in (401, 403, 503)},
    summary="The served model",
)
async def model_info(services: ServicesDep) -> Response:
    """Name, version, run id, training window, horizon, test metrics, features, and the
    latest reload attempt (with its error if the new model was refused)."""
    holder = services.holder
    current = holder.current
    if current is None:
        raise NotReady(not_ready_message(holder))
    model, loaded = current.model, current.loaded
    metrics: dict[str, Any] = model.card.metrics
    cutoffs = dict(zip(RISK_TIERS[1:], model.tier_cutoffs, strict=True))
    return json_response(
        {
            "name": loaded.name,
            "version": loaded.version,
            "run_id": loaded.run_id,
            "uri": redact(loaded.uri),
            "sha256": loaded.sha256,
            "loaded_at": current.loaded_at.isoformat(),
            "horizon_days": model.horizon_days,
            "training_window": model.card.window,
            "base_rate": model.base_rate,
            "risk_tier_cutoffs": cutoffs,
            "test_metrics": {k: v for k, v in metrics.items() if k.startswith("test_")},
            "horizons": list(model.horizons) or None,
            "horizons_absent_reason": model.horizons_absent_reason,
            "value_months": model.hazard.months if model.hazard is not None else None,
            "discount_rate": services.settings.discount_rate,
            "features": model.spec.names,
            "categorical_features": model.spec.categorical,
            "inputs": model.spec.inputs,
            "last_reload": holder.last_reload.as_dict() if holder.last_reload else None,
        }
    )
