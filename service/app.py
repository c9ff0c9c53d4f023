"""The FastAPI application: ``create_app(settings)`` builds one; importing builds nothing.

``churn serve``'s workers build theirs in ``service.worker`` (a holder that follows the
model the parent publishes); tests call ``create_app`` with their own settings and, if
they like, their own holder (by default one that resolves the model in-process).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from importlib import metadata
from typing import Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel

from features.errors import ChurnError
from features.settings import Settings
from service.actions import Playbook
from service.auth import ApiKeys, require_admin_key, require_api_key
from service.deps import Services
from service.errors import churn_error_handler
from service.holder import ModelHolder
from service.limits import Gate, Throttle
from service.metrics import Metrics
from service.middleware import Observe
from service.routes import admin, health, model, prioritize, score
from service.schemas import BatchRequests
from service.scoring import Coalescer, Scorer

DESCRIPTION = """
Churn risk for B2B SaaS accounts: POST what your CRM knows about an account (an
*AccountSnapshot*; only `account_id` is required) and get the probability that it churns
within the model's horizon, its risk tier, the revenue at risk, the reasons (top drivers,
in probability points) and what to do about them (actions from the retention playbook).

* `/v1/score`, `/v1/score/batch` (up to CHURN_BATCH_LIMIT accounts), `/v1/prioritize`
* `/v1/model`: the model served; `/health`, `/ready`, `/metrics`; `/admin/reload`

When API keys are configured, send one as `X-API-Key: <key>` or `Authorization: Bearer <key>`
(`/admin/*` takes an admin key). Bodies are JSON (`Content-Type: application/json`).
"""


def create_app(
    settings: Settings,
    *,
    holder: ModelHolder | None = None,
    poll: bool = True,
) -> FastAPI:
    """A ready-to-serve app. ``holder``: bring your own (tests, workers); ``poll``: load and
    follow the model in the background (``ModelHolder.watch``)."""
    metrics = Metrics()
    holder = holder or ModelHolder(settings)
    _watch(holder, metrics)
    scorer = Scorer(
        Playbook.load(settings.playbook),
        metrics,
        settings.gross_margin,
        discount_rate=settings.discount_rate,
    )
    keys = ApiKeys(settings.api_key_values())
    gate = Gate()
    services = Services(
        settings=settings,
        holder=holder,
        scorer=scorer,
        metrics=metrics,
        api_keys=keys,
        coalescer=Coalescer(scorer),
        requests=BatchRequests.for_limit(settings.batch_limit),
        gate=gate,
        reloads=Throttle(settings.reload_min_seconds),
    )

    app = FastAPI(
        title="Churn",
        version=_version(),
        description=DESCRIPTION,
        lifespan=_lifespan(services, poll),
        # Our own Prometheus metrics and JSON log cover this; FastAPI's OpenTelemetry hooks
        # would cost a provider lookup on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.services = services
    app.state.api_keys = keys
    app.state.admin_keys = ApiKeys(settings.admin_key_values())
    guard = [Depends(require_api_key)] if keys.configured else []
    for router in (score.router, prioritize.router, model.router):
        app.include_router(router, dependencies=guard)
    app.include_router(health.router)
    app.include_router(admin.router, dependencies=[Depends(require_admin_key)])
    app.add_exception_handler(ChurnError, churn_error_handler)
    app.add_middleware(Observe, metrics=metrics, settings=settings, gate=gate)
    app.openapi = _openapi_with_request_models(app, services.requests.models)  # type: ignore[method-assign]
    return app


def _watch(holder: ModelHolder, metrics: Metrics) -> None:
    """Model swaps and refused models show up in /metrics."""
    holder.subscribe(
        on_swap=lambda old, new: metrics.model_changed(old.ref if old else None, new.ref),
        on_failure=lambda message: metrics.reload_failures.inc(),
    )
    if holder.current is not None:
        metrics.model_changed(None, holder.current.ref)


def _lifespan(services: Services, poll: bool) -> Callable[[FastAPI], Any]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(services.holder.watch()) if poll else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            services.metrics.worker_exited()

    return lifespan


def _openapi_with_request_models(
    app: FastAPI, request_models: tuple[type[BaseModel], ...]
) -> Callable[[], dict[str, Any]]:
    """FastAPI's schema plus the request bodies our handlers read raw (see deps.json_body_doc)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for request_model in request_models:
            body = request_model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[request_model.__name__] = body
        app.openapi_schema = schema
        return schema

    return openapi


def _version() -> str:
    try:
        return metadata.version("churn")
    except metadata.PackageNotFoundError:
        return "0+unknown"
