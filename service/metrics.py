"""Prometheus metrics: requests, latency, scores, model version; aggregated over workers.

`churn serve` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers
start; prometheus-client then keeps every worker's values in memory-mapped files there,
and ``/metrics`` (answered by any one worker) reads them all. Without that directory
(tests, an embedding application) each app keeps its own in-memory registry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
SCORE_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def multiprocess_enabled() -> bool:
    """True when prometheus-client was started with a multiprocess directory."""
    try:
        multiprocess.MultiProcessCollector(CollectorRegistry())
    except ValueError:
        return False
    return True


class Metrics:
    """The service's metrics, on a registry of its own (so several apps can coexist)."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_enabled()
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "churn_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "churn_http_request_duration_seconds",
            "Time from the request's first byte to the response's last, by route, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scores = Histogram(
            "churn_score_probability",
            "Churn probabilities returned (one observation per scored account).",
            ["endpoint"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.model_info = Gauge(
            "churn_model_info",
            "1 for the model version a worker serves (label pid: the worker).",
            ["name", "version", "run_id"],
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.reload_failures = Counter(
            "churn_model_reload_failures",
            "Models that failed to load or to score the canary (the old model kept serving).",
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._score_children: dict[str, Histogram] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            label = str(status)
            children = self._children[key] = (
                self.requests.labels(route, method, label),
                self.latency.labels(route, method, label),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_scores(self, endpoint: str, probabilities: Iterable[float]) -> None:
        histogram = self._score_children.get(endpoint)
        if histogram is None:
            histogram = self._score_children[endpoint] = self.scores.labels(endpoint)
        for p in probabilities:
            histogram.observe(p)

    def model_changed(self, old: dict[str, str | None] | None, new: dict[str, str | None]) -> None:
        if old is not None:
            self.model_info.labels(*_labels(old)).set(0)
        self.model_info.labels(*_labels(new)).set(1)

    def render(self) -> tuple[bytes, str]:
        """The exposition text: every worker's values in multiprocess mode, else this app's."""
        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def worker_exited(self) -> None:
        """Drop this worker's live gauges (called at shutdown)."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())


def _labels(ref: dict[str, str | None]) -> tuple[str, str, str]:
    return (ref.get("name") or "", ref.get("version") or "", ref.get("run_id") or "")
