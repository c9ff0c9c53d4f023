"""The FastAPI application: ``create_app(settings)`` builds one; importing builds nothing.

``churn serve`` runs ``app_from_env`` in each uvicorn worker (settings from ``CHURN_*``);
tests call ``create_app`` with their own settings and, if they like, their own holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from importlib import metadata
from typing import Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel

from features.errors import ChurnError
from features.settings import Settings, get_settings
from service.actions import Playbook
from service.auth import ApiKeys, require_admin_key, require_api_key
from service.deps import Services
from service.errors import churn_error_handler
from service.holder import ModelHolder
from service.metrics import Metrics
from service.middleware import Observe
from service.routes import admin, health, model, prioritize, score
from service.schemas import PrioritizeRequest, ScoreBatchRequest
from service.scoring import Scorer

DESCRIPTION = """
Churn risk for B2B SaaS accounts: POST what your CRM knows about an account (an
*AccountSnapshot*; only `account_id` is required) and get the probability that it churns
within the model's horizon, its risk tier, the revenue at risk, the reasons (top drivers,
in probability points) and what to do about them (actions from the retention playbook).

* `/v1/score`, `/v1/score/batch` (up to CHURN_BATCH_LIMIT accounts), `/v1/prioritize`
* `/v1/model`: the model served; `/health`, `/ready`, `/metrics`; `/admin/reload`

When API keys are configured, send one as `X-API-Key: <key>` or `Authorization: Bearer <key>`.
"""
REQUEST_MODELS: tuple[type[BaseModel], ...] = (ScoreBatchRequest, PrioritizeRequest)


def create_app(
    settings: Settings,
    *,
    holder: ModelHolder | None = None,
    poll: bool = True,
    prediction_threads: int | None = None,
) -> FastAPI:
    """A ready-to-serve app. ``holder``: bring your own (tests); ``poll``: load and follow the
    champion in the background; ``prediction_threads``: cap OpenMP threads in this process
    (``churn serve`` uses 1 per worker)."""
    metrics = Metrics()
    holder = holder or ModelHolder(settings)
    _watch(holder, metrics)
    scorer = Scorer(Playbook.load(settings.playbook), metrics, settings.gross_margin)
    keys = ApiKeys(settings.api_key_values())
    services = Services(
        settings=settings, holder=holder, scorer=scorer, metrics=metrics, api_keys=keys
    )

    app = FastAPI(
        title="Churn",
        version=_version(),
        description=DESCRIPTION,
        lifespan=_lifespan(services, poll, prediction_threads),
        # Our own Prometheus metrics and JSON log cover this; FastAPI's OpenTelemetry hooks
        # would cost a provider lookup on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.services = services
    app.state.api_keys = keys
    guard = [Depends(require_api_key)] if keys.configured else []
    for router in (score.router, prioritize.router, model.router):
        app.include_router(router, dependencies=guard)
    app.include_router(health.router)
    app.include_router(admin.router, dependencies=[Depends(require_admin_key)])
    app.add_exception_handler(ChurnError, churn_error_handler)
    app.add_middleware(Observe, metrics=metrics, body_limit=settings.body_limit_bytes)
    app.openapi = _openapi_with_request_models(app)  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory of `churn serve`'s workers: settings from ``CHURN_*``, one thread.

    A configuration error (e.g. an invalid playbook) exits with uvicorn's start-up failure
    code, so the supervisor stops instead of restarting the worker forever.
    """
    from uvicorn.config import STARTUP_FAILURE

    try:
        return create_app(get_settings(), prediction_threads=1)
    except ChurnError as error:
        logging.getLogger("churn.serve").error(f"cannot start: {error}")
        raise SystemExit(STARTUP_FAILURE) from None


def _watch(holder: ModelHolder, metrics: Metrics) -> None:
    """Model swaps and refused models show up in /metrics."""
    holder.subscribe(
        on_swap=lambda old, new: metrics.model_changed(old.ref if old else None, new.ref),
        on_failure=lambda message: metrics.reload_failures.inc(),
    )
    if holder.current is not None:
        metrics.model_changed(None, holder.current.ref)


def _lifespan(services: Services, poll: bool, threads: int | None) -> Callable[[FastAPI], Any]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if threads is not None:
            _limit_openmp(threads)
        task = asyncio.create_task(services.holder.poll_forever()) if poll else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            services.metrics.worker_exited()

    return lifespan


def _limit_openmp(threads: int) -> None:
    """One OpenMP (LightGBM) thread in the thread that predicts: the event loop's."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="openmp")


def _openapi_with_request_models(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's schema plus the request bodies our handlers read raw (see deps.json_body_doc)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for request_model in REQUEST_MODELS:
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
