"""The request path: validated snapshots -> one vectorised score call -> response dicts.

No MLflow and no pandas here: snapshots become numpy columns (``records_to_columns``),
``ChurnModel.score(columns, explain=True)`` makes one booster call whose contribution row
sums are the margins, and the per-account dicts are built from ``tolist()``-ed arrays.
A batch of ``WIDE_BATCH`` accounts or more predicts with two LightGBM threads
(``Serving.wide``): exact TreeSHAP is most of a 10,000-account batch's time.

Single-account requests that are already waiting together go through ``Coalescer``: one
vectorised call for all of them (a request's cost is mostly fixed per call, not per row).

An account that passes validation but still cannot be scored (or scores to something that
is not a probability) never takes its batch down: the batch is halved until the accounts
that fail are found, they get ``{"account_id", "error"}`` in their place and the others
their scores (``_failing``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from features.schema import AccountSnapshot, Columns, records_to_columns
from models.bundle import ChurnModel, Driver, Scores
from models.value import (
    annual_revenue,
    expected_remaining_value,
    prioritize,
    revenue_at_risk,
    saved_profit_on_value,
)
from service.actions import Playbook
from service.errors import InvalidRequest
from service.holder import Serving
from service.metrics import Metrics
from service.schemas import PrioritizeRequest

log = logging.getLogger("churn.scoring")
T = TypeVar("T")
TOP_DRIVERS = 3
WIDE_BATCH = 2_000  # accounts from which one request predicts with Serving.wide


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class Scorer:
    """Scores batches against the serving model and the playbook; one per app."""

    def __init__(
        self,
        playbook: Playbook,
        metrics: Metrics,
        gross_margin: float,
        top_k: int = TOP_DRIVERS,
        discount_rate: float = 0.0,
    ) -> None:
        self.playbook = playbook
        self.metrics = metrics
        self.gross_margin = gross_margin
        self.top_k = top_k
        self.discount_rate = discount_rate

    def score(
        self,
        serving: Serving,
        snapshots: Sequence[AccountSnapshot],
        endpoint: str,
        explain: bool = True,
    ) -> list[dict[str, Any]]:
        """One result per snapshot, in order (an ``UnscoredAccount`` for one that fails).
        Without ``explain``: no drivers, and only the playbook rules that need none (e.g. a
        renewal plan) can fire."""
        today = today_utc()

        def attempt(part: Sequence[AccountSnapshot]) -> list[dict[str, Any]]:
            columns = records_to_columns(part, today, serving.attributes)
            scores = _model_for(serving, len(part)).score(columns, explain=explain)
            _check_probabilities(scores.probability)
            return self._results(serving, part, columns, scores, today)

        try:
            results = attempt(snapshots)
        except Exception as error:
            results = _isolated(snapshots, attempt, error)
        self.metrics.observe_scores(
            endpoint, [r["churn_probability"] for r in results if "error" not in r]
        )
        return results

    def prioritize(self, serving: Serving, request: PrioritizeRequest) -> dict[str, Any]:
        """Accounts worth an intervention, best expected saved profit first, at most capacity.

        Everyone is scored without explanations; only the chosen accounts are explained.
        Accounts that cannot be scored are listed apart and never chosen.
        """
        today = today_utc()
        model = _model_for(serving, len(request.accounts))

        def attempt(part: Sequence[AccountSnapshot]) -> tuple[Columns, Scores]:
            columns = records_to_columns(part, today, serving.attributes)
            scored = model.score(columns, explain=False)
            _check_probabilities(scored.probability)
            return columns, scored

        accounts: Sequence[AccountSnapshot] = request.accounts
        unscored: list[dict[str, Any]] = []
        try:
            columns, scored = attempt(accounts)
        except Exception as error:
            failed = _failing(accounts, attempt, error)
            unscored = [_unscored(accounts[i], failed[i]) for i in sorted(failed)]
            accounts = [a for i, a in enumerate(accounts) if i not in failed]
            columns, scored = attempt(accounts) if accounts else ({}, None)
        probability = np.empty(0) if scored is None else scored.probability
        self.metrics.observe_scores("prioritize", probability.tolist())
        margin = self.gross_margin if request.gross_margin is None else request.gross_margin
        chosen = np.empty(0, dtype=np.int64)
        profit = np.empty(0)
        if scored is not None and accounts:
            value = self._value(model, scored, columns, request.value, margin)
            profit = saved_profit_on_value(
                probability, value, request.expected_save_rate, request.cost_per_action
            )
            chosen = prioritize(profit, request.capacity)
        results: list[dict[str, Any]] = []
        if len(chosen):
            picked: Columns = {name: values[chosen] for name, values in columns.items()}
            explained = model.score(picked, explain=True)
            snapshots = [accounts[i] for i in chosen.tolist()]
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
            "unscored": unscored,
            "capacity": request.capacity,
            "total_expected_saved_profit": float(profit[chosen].sum()) if len(chosen) else 0.0,
            "value": request.value,
            "model": serving.ref,
        }

    def _value(
        self, model: ChurnModel, scores: Scores, columns: Columns, kind: str, margin: float
    ) -> np.ndarray:
        """What keeping each account is worth: a year of margin (``arr``), or the margin
        expected over its remaining life (``lifetime``, from the time-to-churn model)."""
        if kind == "arr":
            return annual_revenue(columns["mrr"]) * margin
        survival = model.survival(scores.features)
        if survival is None:
            raise InvalidRequest(
                [
                    {
                        "loc": ["body", "value"],
                        "msg": "value 'lifetime' needs a time-to-churn model; this one has "
                        f"none ({model.horizons_absent_reason}): use 'arr'",
                        "type": "value_error",
                    }
                ]
            )
        months = survival.expected_months(self.discount_rate)
        return expected_remaining_value(months, columns["mrr"], margin)

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
        missing = serving.model.missing_inputs(columns)
        later = time_to_churn(model, scores, columns, self.gross_margin, self.discount_rate)
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
                    "churn_probability_by_horizon": later.by_horizon[i],
                    "expected_months_remaining": later.months[i],
                    "expected_remaining_value": later.value[i],
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


@dataclass(frozen=True)
class Later:
    """Per account, as the response carries them: churn probability by horizon, expected
    months remaining and expected remaining value (None without a time-to-churn model)."""

    by_horizon: list[dict[str, float] | None]
    months: list[float | None]
    value: list[float | None]


def time_to_churn(
    model: ChurnModel, scores: Scores, columns: Columns, gross_margin: float, discount_rate: float
) -> Later:
    """One vectorised pass over the scored matrix: hazards, survival, horizons, value."""
    n = len(scores.probability)
    survival = model.survival(scores.features) if scores.features is not None else None
    if survival is None:
        return Later([None] * n, [None] * n, [None] * n)
    keys = [str(h) for h in model.horizons]
    months = survival.expected_months()
    discounted = survival.expected_months(discount_rate) if discount_rate else months
    value = expected_remaining_value(discounted, columns["mrr"], gross_margin)
    return Later(
        [
            dict(zip(keys, row, strict=True))
            for row in survival.churn_within(model.horizons).tolist()
        ],
        months.tolist(),
        _nullable(value),
    )


Waiting = tuple[AccountSnapshot, "asyncio.Future[dict[str, Any]]"]


class Coalescer:
    """Scores the single-account requests that are waiting at the same moment in one call.

    A request hands its snapshot over and awaits the result; the first one of an event-loop
    turn schedules a flush for the end of that turn (``call_soon``), by which time every
    request whose body had arrived while the worker was busy has handed its snapshot over
    too. Nothing ever waits for more requests to come: alone, a request is scored at once.
    Requests are grouped by the model they were answered with and by ``explain``; if a
    group's call fails, its accounts are scored one by one, so one bad account fails alone.
    """

    def __init__(self, scorer: Scorer, limit: int = 64) -> None:
        self.scorer = scorer
        self.limit = limit  # accounts per call at most
        self._waiting: dict[tuple[int, bool], tuple[Serving, list[Waiting]]] = {}
        self._flush_scheduled = False

    async def score(
        self, serving: Serving, snapshot: AccountSnapshot, explain: bool
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[dict[str, Any]] = loop.create_future()
        _, waiting = self._waiting.setdefault((id(serving), explain), (serving, []))
        waiting.append((snapshot, result))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self.flush)
        return await result

    def flush(self) -> None:
        self._flush_scheduled = False
        groups, self._waiting = self._waiting, {}
        for (_, explain), (serving, waiting) in groups.items():
            for start in range(0, len(waiting), self.limit):
                self._score_group(serving, waiting[start : start + self.limit], explain)

    def _score_group(self, serving: Serving, waiting: list[Waiting], explain: bool) -> None:
        try:
            results = self.scorer.score(
                serving, [snapshot for snapshot, _ in waiting], "score", explain
            )
        except Exception as exc:
            if len(waiting) > 1:  # isolate the account that fails
                for one in waiting:
                    self._score_group(serving, [one], explain)
            elif not waiting[0][1].done():
                waiting[0][1].set_exception(exc)
            return
        for (_, future), result in zip(waiting, results, strict=True):
            if not future.done():  # the client may have gone
                future.set_result(result)


def _check_probabilities(probability: np.ndarray) -> None:
    if not np.all(np.isfinite(probability)):
        raise ValueError("the model returned a churn probability that is not a number")


def _isolated(
    snapshots: Sequence[AccountSnapshot],
    attempt: Callable[[Sequence[AccountSnapshot]], list[dict[str, Any]]],
    error: Exception,
) -> list[dict[str, Any]]:
    """``attempt`` failed on ``snapshots``: results for those that score, entries for the rest."""
    failed = _failing(snapshots, attempt, error)
    good = [s for i, s in enumerate(snapshots) if i not in failed]
    scored = iter(attempt(good) if good else ())
    return [
        _unscored(s, failed[i]) if i in failed else next(scored) for i, s in enumerate(snapshots)
    ]


def _failing(
    items: Sequence[T], attempt: Callable[[Sequence[T]], object], error: Exception, offset: int = 0
) -> dict[int, Exception]:
    """``items`` failed ``attempt`` with ``error``: the positions of those that fail on their
    own, found by halving (a few calls per failing item instead of one per item). None found
    (only the whole fails): the error was not an account's, and is raised."""
    if len(items) == 1:
        return {offset: error}
    found: dict[int, Exception] = {}
    half = len(items) // 2
    for start, part in ((0, items[:half]), (half, items[half:])):
        try:
            attempt(part)
        except Exception as exc:
            found |= _failing(part, attempt, exc, offset + start)
    if not found and offset == 0:
        raise error
    return found


def _unscored(snapshot: AccountSnapshot, error: Exception) -> dict[str, Any]:
    """The entry of an account that could not be scored. The log gets the error's type and
    where it was raised, never its message (which may quote the account's values)."""
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    log.warning(
        "account could not be scored",
        extra={
            "fields": {
                "account_id": snapshot.account_id,
                "error": type(error).__name__,
                "at": f"{where.filename}:{where.lineno} ({where.name})" if where else None,
            }
        },
    )
    return {
        "account_id": snapshot.account_id,
        "error": f"this account could not be scored ({type(error).__name__}); the others were",
    }


def _model_for(serving: Serving, accounts: int) -> ChurnModel:
    return serving.wide if accounts >= WIDE_BATCH else serving.model


def _nullable(values: np.ndarray) -> list[float | None]:
    return [None if v != v else v for v in values.tolist()]  # NaN -> null
