"""The Bayes limit: p_true at every observation date, by running `step` forward many times."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from tqdm import tqdm

from features.timeline import (
    MISSING_DAY,
    active_on,
    churn_label,
    date_of,
    day_of,
    observation_dates,
)
from training.demo.draws import Bools, Floats, Ints
from training.demo.dynamics import AccountState, decision_probability, step
from training.demo.history import History
from training.demo.months import decision_days, month_of

TRUTH_CHUNK_ROWS = 1 << 19  # accounts x paths simulated at once (memory bound)


@dataclass(frozen=True)
class Truth:
    """One row per account active at each observation date."""

    account: Ints
    as_of: Ints
    p_true: Floats
    churned: Ints


def horizon_decisions(state: AccountState, as_of: int, horizon_days: int) -> tuple[Ints, Bools]:
    """Months spanned by (as_of, as_of + horizon] and which hold a decision of each account."""
    months = np.arange(month_of(as_of), month_of(as_of + horizon_days) + 1)
    due = np.stack(
        [decision_days(state.signup_day, state.signup_month, state.annual, int(m)) for m in months]
    )
    return months, (due != MISSING_DAY) & (due > as_of) & (due <= as_of + horizon_days)


def survival_paths(
    state: AccountState, months: Ints, due: Bools, paths: int, rng: np.random.Generator
) -> Floats:
    """Mean over `paths` futures of P(no churn at the decisions in the horizon).

    `state` is the state known at as_of (that of the month before). Each account is
    replicated `paths` times and moved into every month of the horizon with the same
    `step` as the history; the exact decision probabilities are multiplied along a path
    instead of sampling churn, which removes most of the Monte Carlo noise.
    """
    replicas = np.repeat(np.arange(len(state)), paths)
    future = state.take(replicas)
    survival = np.ones(len(replicas))
    last = int(np.flatnonzero(due.any(axis=1)).max())
    for offset in range(last + 1):
        future = step(future, int(months[offset]), rng)
        q = decision_probability(future, int(months[offset]))
        survival *= 1.0 - q * due[offset][replicas]
    return survival.reshape(len(state), paths).mean(axis=1)


def truth_at(
    history: History, as_of: int, horizon_days: int, paths: int, rng: np.random.Generator
) -> Truth:
    """p_true = P(churn in (as_of, as_of + horizon] | the hidden state known at as_of).

    As of the first day of a month, what has happened is the state of the month before
    (every export row up to as_of was generated from it, but for as_of's own day). The
    transition into as_of's month — this month's new shocks, departures and health
    innovations — is still to come, so it is part of the simulated future, like the
    months after it. Conditioning on it would give p_true knowledge no predictor at
    as_of can have, and stop it being the Bayes limit the model is compared to.
    """
    signup = history.states[0].signup_day
    account = np.flatnonzero(active_on(signup, history.churn_day, np.full(len(signup), as_of)))
    state = history.at(int(month_of(as_of)) - 1).take(account)
    months, due = horizon_decisions(state, as_of, horizon_days)
    survival = np.ones(len(account))
    deciding = np.flatnonzero(due.any(axis=0))
    per_chunk = max(1, TRUTH_CHUNK_ROWS // paths)
    for chunk in np.array_split(deciding, max(1, -(-len(deciding) // per_chunk))):
        if len(chunk):
            survival[chunk] = survival_paths(state.take(chunk), months, due[:, chunk], paths, rng)
    as_of_days = np.full(len(account), as_of)
    churned = churn_label(history.churn_day[account], as_of_days, horizon_days).astype(np.int64)
    return Truth(account, as_of_days, 1.0 - survival, churned)


def compute_truth(
    history: History,
    start: int,
    end: int,
    horizon_days: int,
    paths: int,
    rng: np.random.Generator,
    bar: tqdm,
) -> Truth:
    """Truth rows for every observation date the training pipeline will use."""
    parts = []
    dates = observation_dates(
        data_start=date_of(start), data_end=date_of(end), horizon_days=horizon_days
    )
    for as_of in dates:
        parts.append(truth_at(history, day_of(as_of), horizon_days, paths, rng))
        bar.update(1)
    if not parts:
        empty = np.array([], dtype=np.int64)
        return Truth(empty, empty, np.array([]), empty)
    return Truth(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Truth)))


def roc_auc(score: Floats, label: Ints) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged; NaN with one class."""
    positives = int(label.sum())
    negatives = len(label) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float(
        (ranks[label == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )
