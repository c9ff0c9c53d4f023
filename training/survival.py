"""Time-to-churn data and the metrics every survival model is judged by.

A snapshot taken at ``as_of`` is followed month by month (the intervals of
:func:`features.timeline.month_bounds`) until the account churns or the knowledge ends:
the end of the data, or, for training rows, the first day of the test window. An interval
that has not ended by then is *censored*: it is left out, never counted as a month the
account stayed (that would bias every hazard down). The same follow-up, in days, feeds
the Cox and Kaplan-Meier baselines and the censoring-aware metrics: per-horizon ROC-AUC,
ECE and Brier on the snapshots whose horizon lies inside the data, Harrell's concordance
index and the integrated Brier score weighted by the inverse probability of censoring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from features.timeline import MISSING_DAY, churn_label, horizon_inside, interval_of, month_bounds
from training.evaluate import classification_metrics

GRID_STEP_DAYS = 7  # resolution of the integrated Brier score


@dataclass(frozen=True)
class Outcomes:
    """Per snapshot: its ``as_of`` day and its account's churn day (``MISSING_DAY``: none)."""

    as_of: np.ndarray
    churn: np.ndarray

    def __len__(self) -> int:
        return len(self.as_of)

    def take(self, rows: np.ndarray) -> Outcomes:
        return Outcomes(self.as_of[rows], self.churn[rows])

    @classmethod
    def concat(cls, parts: Sequence[Outcomes]) -> Outcomes:
        return cls(
            np.concatenate([p.as_of for p in parts]), np.concatenate([p.churn for p in parts])
        )


@dataclass(frozen=True)
class Intervals:
    """Person-month rows: which snapshot, which month after its as_of, churned in it or not."""

    row: np.ndarray
    month: np.ndarray
    churned: np.ndarray

    def __len__(self) -> int:
        return len(self.row)


def expand_intervals(outcomes: Outcomes, known_until: int, months: int) -> Intervals:
    """Each snapshot's months, from ``as_of`` until the month it churns in or the last
    month that ended by ``known_until`` (at most ``months``).

    A churn in a month that has not ended by ``known_until`` (or after it) is censored
    with that month: only whole observed months count, churned or not.
    """
    bounds = month_bounds(months)
    observed = np.searchsorted(bounds[1:], known_until - outcomes.as_of, side="right")
    known = outcomes.churn != MISSING_DAY
    churn_month = np.where(known, interval_of(outcomes.churn - outcomes.as_of, months), months)
    count = np.clip(np.minimum(observed, churn_month + 1), 0, months)
    row = np.repeat(np.arange(len(outcomes)), count)
    month = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
    return Intervals(row, month, (month == churn_month[row]).astype(np.int8))


@dataclass(frozen=True)
class Followup:
    """Days from ``as_of`` to churn (``event``) or to the end of what is known (censored)."""

    days: np.ndarray
    event: np.ndarray

    def take(self, rows: np.ndarray) -> Followup:
        return Followup(self.days[rows], self.event[rows])


def followup(outcomes: Outcomes, known_until: int, cap_days: int) -> Followup:
    """Time to churn, censored at ``known_until`` and at ``cap_days`` after as_of."""
    end = np.minimum(known_until, outcomes.as_of + cap_days)
    event = (outcomes.churn != MISSING_DAY) & (outcomes.churn <= end)
    days = np.where(event, outcomes.churn, end) - outcomes.as_of
    return Followup(days.astype(np.float64), event)


def evaluation_grid(horizons: Sequence[int]) -> np.ndarray:
    """Days at which survival curves are compared: 0, every week, and each horizon."""
    weekly = np.arange(0, max(horizons) + 1, GRID_STEP_DAYS)
    return np.unique(np.concatenate([weekly, list(horizons)])).astype(np.float64)


def restricted_mean(survival: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Expected days as a customer within the grid (area under each row's curve)."""
    widths = np.diff(grid)
    return ((survival[:, 1:] + survival[:, :-1]) / 2 * widths).sum(axis=1)


def concordance(follow: Followup, expected_days: np.ndarray) -> float:
    """Harrell's C: the share of comparable pairs (the earlier time a churn) that the model
    orders right, censored rows counting only as the later member of a pair."""
    from lifelines.utils import concordance_index

    if not follow.event.any():
        return float("nan")
    return float(concordance_index(follow.days, expected_days, follow.event))


def censoring_survival(follow: Followup, days: np.ndarray) -> np.ndarray:
    """P(not yet censored) at ``days``: Kaplan-Meier of the censoring times."""
    from training.survival_baselines import km_curve

    return km_curve(Followup(follow.days, ~follow.event), np.asarray(days, dtype=np.float64))


def integrated_brier(follow: Followup, survival: np.ndarray, grid: np.ndarray) -> float:
    """Brier score of the survival curves over ``grid``, averaged over time (Graf et al. 1999).

    At each day ``t`` a row churned by ``t`` should have survival 0, a row still a customer
    1; rows censored before ``t`` drop out, and the others are weighted by the inverse
    probability of being uncensored so the score stays unbiased under censoring.
    """
    churned_by = follow.event[:, None] & (follow.days[:, None] <= grid[None, :])
    alive = follow.days[:, None] > grid[None, :]
    weight_churned = 1.0 / np.maximum(censoring_survival(follow, follow.days - 0.5), 1e-12)
    weight_alive = 1.0 / np.maximum(censoring_survival(follow, grid), 1e-12)
    score = (
        churned_by * survival**2 * weight_churned[:, None]
        + alive * (1.0 - survival) ** 2 * weight_alive[None, :]
    ).mean(axis=0)
    span = grid[-1] - grid[0]
    return float(np.trapezoid(score, grid) / span) if span > 0 else float("nan")


def horizon_scores(
    outcomes: Outcomes, data_end: int, churn_probability: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """(label, probability) of the snapshots whose horizon lies inside the data."""
    inside = horizon_inside(outcomes.as_of, horizon, data_end)
    label = churn_label(outcomes.churn[inside], outcomes.as_of[inside], horizon)
    return label, churn_probability[inside]


def survival_metrics(
    outcomes: Outcomes,
    data_end: int,
    survival: np.ndarray,
    grid: np.ndarray,
    horizons: Sequence[int],
    tau: int,
) -> dict[str, float]:
    """Per horizon (``roc_auc_30d``, ``ece_30d``, ``brier_30d``, ``rows_30d``) on the
    snapshots whose horizon lies inside the data (none: left out), then ``concordance`` and
    ``integrated_brier`` over the first ``tau`` days (follow-up censored at the data end)."""
    metrics: dict[str, float] = {}
    for horizon in horizons:
        probability = 1.0 - survival[:, int(np.searchsorted(grid, horizon))]
        label, shown = horizon_scores(outcomes, data_end, probability, horizon)
        if len(label) == 0:
            continue
        found = classification_metrics(label, shown)
        for key in ("roc_auc", "ece", "brier", "rows", "base_rate"):
            metrics[f"{key}_{horizon}d"] = found.get(key, float("nan"))
    within = grid <= tau
    follow = followup(outcomes, data_end, tau)
    metrics["concordance"] = concordance(follow, restricted_mean(survival[:, within], grid[within]))
    metrics["integrated_brier"] = integrated_brier(follow, survival[:, within], grid[within])
    return metrics


def longest_observed(outcomes: Outcomes, data_end: int, horizons: Sequence[int]) -> int | None:
    """The longest horizon inside the data for every snapshot (what C and IBS cover)."""
    inside = [h for h in horizons if horizon_inside(outcomes.as_of, h, data_end).all()]
    return max(inside) if inside else None


def keyed(metrics: Mapping[str, float], window: str, model: str) -> dict[str, float]:
    """MLflow keys: ``{window}_{model}_{metric}``, e.g. ``test_hazard_roc_auc_90d``."""
    return {f"{window}_{model}_{key}": value for key, value in metrics.items()}
