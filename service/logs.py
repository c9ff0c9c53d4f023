"""Structured JSON logs: one line per event, one per request.

A request line carries the request id, method, route template, status, latency and the
account ids scored, never the payload: no field of a snapshot other than its id reaches
a log. Other records (start-up, model loads, uvicorn's own) use the same one-line JSON.
Every line passes through ``redact``: a URI's ``user:password@`` (MLflow's own errors
quote the tracking URI) never reaches a log.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import orjson

from features.redact import redact

ACCESS = logging.getLogger("churn.access")
MAX_LOGGED_IDS = 100  # a 10,000-account batch logs its count and the first ids


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...fields}``; fields come from ``extra={"fields": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        line = orjson.dumps(entry, default=str).decode()
        return redact(line) if "@" in line else line


def log_config(level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn and Churn: JSON lines on stderr."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "service.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "churn": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def log_request(
    request_id: str,
    method: str,
    route: str,
    status: int,
    seconds: float,
    account_ids: list[str] | None,
) -> None:
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "request_id": request_id,
        "method": method,
        "route": route,
        "status": status,
        "latency_ms": round(seconds * 1000, 3),
    }
    if account_ids is not None:
        fields["accounts"] = len(account_ids)
        fields["account_ids"] = account_ids[:MAX_LOGGED_IDS]
    ACCESS.info("request", extra={"fields": fields})
