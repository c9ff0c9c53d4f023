"""The request path: validated snapshots -> one vectorised score call -> response dicts.

No MLflow and no pandas here: snapshots become numpy columns (``records_to_columns``),
``ChurnModel.score(columns, explain=True)`` makes one booster call whose contribution row
sums are the margins, and the per-account dicts are built from ``tolist()``-ed arrays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np

from features.schema import AccountSnapshot, Columns, records_to_columns
from models.bundle import Driver, Scores
from models.value import expected_saved_profit, prioritize, revenue_at_risk
from service.actions import Playbook
from service.holder import Serving
from service.metrics import Metrics
from service.schemas import PrioritizeRequest

TOP_DRIVERS = 3


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class Scorer:
    """Scores batches against the serving model and the playbook; one per app."""

    def __init__(
        self, playbook: Playbook, metrics: Metrics, gross_margin: float, top_k: int = TOP_DRIVERS
    ) -> None:
        self.playbook = playbook
        self.metrics = metrics
        self.gross_margin = gross_margin
        self.top_k = top_k

    def score(
        self,
        serving: Serving,
        snapshots: Sequence[AccountSnapshot],
        endpoint: str,
        explain: bool = True,
    ) -> list[dict[str, Any]]:
        """One result per snapshot, in order. Without ``explain``: no drivers, and only the
        playbook rules that need none (e.g. a renewal plan) can fire."""
        today = today_utc()
        columns = records_to_columns(snapshots, today)
        scores = serving.model.score(columns, explain=explain)
        self.metrics.observe_scores(endpoint, scores.probability.tolist())
        return self._results(serving, snapshots, columns, scores, today)

    def prioritize(self, serving: Serving, request: PrioritizeRequest) -> dict[str, Any]:
        """Accounts worth an intervention, best expected saved profit first, at most capacity.

        Everyone is scored without explanations; only the chosen accounts are explained.
        """
        today = today_utc()
        model = serving.model
        columns = records_to_columns(request.accounts, today)
        probability = model.score(columns, explain=False).probability
        self.metrics.observe_scores("prioritize", probability.tolist())
        margin = self.gross_margin if request.gross_margin is None else request.gross_margin
        profit = expected_saved_profit(
            probability, columns["mrr"], request.expected_save_rate, request.cost_per_action, margin
        )
        chosen = prioritize(profit, request.capacity)
        picked: Columns = {name: values[chosen] for name, values in columns.items()}
        explained = model.score(picked, explain=True) if len(chosen) else None
        results: list[dict[str, Any]] = []
        if explained is not None:
            snapshots = [request.accounts[i] for i in chosen.tolist()]
            results = self._results(serving, snapshots, picked, explained, today)
            for rank, (result, value) in enumerate(
                zip(results, profit[chosen].tolist(), strict=True), start=1
            ):
                result["rank"] = rank
                result["expected_saved_profit"] = value
        worth = profit[~np.isnan(profit)] > 0
        return {
            "accounts": results,
            "considered": len(request.accounts),
            "worth_acting": int(worth.sum()),
            "capacity": request.capacity,
            "total_expected_saved_profit": float(profit[chosen].sum()) if len(chosen) else 0.0,
            "model": serving.ref,
        }

    def _results(
        self,
        serving: Serving,
        snapshots: Sequence[AccountSnapshot],
        columns: Columns,
        scores: Scores,
        today: dt.date,
    ) -> list[dict[str, Any]]:
        model = serving.model
        probability = scores.probability
        tiers = model.risk_tiers(probability).tolist()
        at_risk = _nullable(revenue_at_risk(probability, columns["mrr"]))
        if scores.contributions is None:
            drivers: list[list[Driver]] = [[] for _ in range(len(probability))]
        else:
            drivers = model.drivers(columns, scores, self.top_k)
        actions = self.playbook.recommend(drivers, tiers, columns)
        missing = model.missing_inputs(columns)
        horizon = model.horizon_days
        ref = serving.ref
        default_as_of = today.isoformat()
        out = []
        for i, (snapshot, p) in enumerate(zip(snapshots, probability.tolist(), strict=True)):
            out.append(
                {
                    "account_id": snapshot.account_id,
                    "as_of": snapshot.as_of.isoformat() if snapshot.as_of else default_as_of,
                    "churn_probability": p,
                    "horizon_days": horizon,
                    "risk_tier": tiers[i],
                    "revenue_at_risk": at_risk[i],
                    "top_drivers": [
                        {
                            "feature": d.feature,
                            "value": d.value,
                            "contribution": d.contribution,
                            "reason": d.reason,
                        }
                        for d in drivers[i]
                    ],
                    "actions": actions[i],
                    "missing_inputs": missing[i],
                    "model": ref,
                }
            )
        return out


def _nullable(values: np.ndarray) -> list[float | None]:
    return [None if v != v else v for v in values.tolist()]  # NaN -> null
