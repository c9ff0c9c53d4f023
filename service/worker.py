"""The entry point of every `churn serve` worker process: ``service.worker:app`` (a factory).

uvicorn imports this module and calls ``app()`` in each worker before anything else of
Churn's, so this is where a worker decides what it loads:

* **No scikit-learn, no pandas.** LightGBM imports both opportunistically
  (``lightgbm.compat``: its scikit-learn estimators, DataFrame inputs, Dask), which costs a
  worker ~1.7 s of start-up and ~200 MB; we predict with the bare ``Booster`` on numpy
  arrays and use neither. ``sys.modules[name] = None`` makes ``import name`` raise
  ImportError, which LightGBM reads as "not installed"; anything else that would import them
  on the request path fails loudly instead of quietly growing every worker.
* **No MLflow.** The parent resolves the model and publishes a verified local bundle
  (``service.publisher``); the worker follows that pointer (``service.holder.PublishedSource``).
* One LightGBM thread per prediction (the workers are the parallelism), two for large
  batches (``service.scoring.WIDE_BATCH``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

UNUSED_IN_WORKERS = ("pandas", "sklearn")
log = logging.getLogger("churn.serve")


def mark_unavailable(names: Iterable[str]) -> None:
    """Make ``import name`` fail for each name; refuse if one is already imported."""
    loaded = [name for name in names if sys.modules.get(name) is not None]
    if loaded:
        raise RuntimeError(
            f"{', '.join(loaded)} already imported when the worker started: service.worker:app "
            "must run before anything imports LightGBM"
        )
    for name in names:
        sys.modules[name] = None  # type: ignore[assignment]


def lean_logging() -> None:
    """Skip what our JSON lines never show: caller frame, thread and process names.

    The "Optimization" section of Python's logging HOWTO; it saves a few microseconds on
    every request's log line.
    """
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def app() -> FastAPI:
    """The uvicorn factory of `churn serve`'s workers (settings from ``CHURN_*``).

    A configuration error (e.g. an invalid playbook) exits with uvicorn's start-up failure
    code, so the supervisor stops instead of restarting the worker forever.
    """
    mark_unavailable(UNUSED_IN_WORKERS)
    lean_logging()
    from uvicorn.config import STARTUP_FAILURE

    from features.errors import ChurnError
    from features.settings import read_settings
    from models.archive import SigningKeys
    from service.app import create_app
    from service.holder import ModelHolder, PublishedSource
    from service.pointer import SERVING_DIR_ENV, ServeSettings

    try:
        settings = read_settings(ServeSettings)
        if settings.serving_dir is None:
            raise ChurnError(
                f"service.worker runs under `churn serve` ({SERVING_DIR_ENV} is not set)"
            )
        keys = SigningKeys(tuple(settings.signing_key_values()))
        source = PublishedSource(settings.serving_dir, settings.resolved_model_uri, keys=keys)
        holder = ModelHolder(settings, source, threads=1, wide_threads=min(2, os.cpu_count() or 1))
        return create_app(settings, holder=holder)
    except ChurnError as error:
        log.error(f"cannot start: {error}")
        raise SystemExit(STARTUP_FAILURE) from None
