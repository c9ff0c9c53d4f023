"""Money: revenue at risk and the expected saved profit of acting (DESIGN.md section 10).

``annual_revenue = mrr * 12``; ``revenue_at_risk = p * annual_revenue`` with ``p`` the
churn probability over the model's horizon; an intervention is worth it where
``p * save_rate * value - cost > 0``, the value being ``annual_revenue * gross_margin``
(``arr``) or the expected margin over the account's remaining life (``lifetime``):
``mrr * gross_margin`` a month for as long as the survival curve says the account stays,
discounted at an annual rate, within the months the time-to-churn model covers.
"""

from __future__ import annotations

import numpy as np

MONTHS_PER_YEAR = 12


def annual_revenue(mrr: np.ndarray) -> np.ndarray:
    return np.asarray(mrr, dtype=np.float64) * MONTHS_PER_YEAR


def revenue_at_risk(probability: np.ndarray, mrr: np.ndarray) -> np.ndarray:
    """Expected annual revenue lost if nothing is done (NaN where MRR is unknown)."""
    return np.asarray(probability) * annual_revenue(mrr)


def expected_saved_profit(
    probability: np.ndarray,
    mrr: np.ndarray,
    save_rate: float,
    cost: float,
    gross_margin: float = 1.0,
) -> np.ndarray:
    """Expected profit of one intervention: saved margin minus what the action costs."""
    return saved_profit_on_value(probability, annual_revenue(mrr) * gross_margin, save_rate, cost)


def survival_months(
    hazard: np.ndarray, annual_rate: float = 0.0, start: np.ndarray | None = None
) -> np.ndarray:
    """Area under each row's survival curve, in months, each month discounted at
    ``annual_rate`` a year (0: the expected months as a customer within the modelled months).

    ``hazard`` holds monthly churn hazards (rows x months), constant inside a month, and
    money is taken to arrive continuously: month ``k`` contributes
    ``S_k * d**k * integral_0^1 (q * d)**u du`` with ``S_k`` the survival at its start,
    ``q = 1 - hazard`` and ``d = (1 + annual_rate) ** (-1/12)``. ``start`` (the survival at
    each month's start) may be passed when the caller has it already.
    """
    hazard = np.asarray(hazard, dtype=np.float64)
    months = hazard.shape[1]
    monthly = (1.0 + annual_rate) ** (-1.0 / MONTHS_PER_YEAR)
    if start is None:
        ones = np.ones((hazard.shape[0], 1))
        start = np.hstack([ones, np.cumprod(1.0 - hazard, axis=1)[:, :-1]])
    decay = (1.0 - hazard) * monthly  # per-month factor of survival x discount
    # integral of decay**u over [0, 1]: (decay - 1) / ln(decay), 1 at decay 1, 0 at decay 0
    safe = np.clip(decay, 1e-300, 1.0 - 1e-12)
    inside = np.where(decay >= 1.0 - 1e-12, 1.0, (safe - 1.0) / np.log(safe))
    inside = np.where(decay <= 0.0, 0.0, inside)
    discount = monthly ** np.arange(months)
    return (start * discount * inside).sum(axis=1)


def expected_remaining_value(
    months: np.ndarray, mrr: np.ndarray, gross_margin: float = 1.0
) -> np.ndarray:
    """Margin expected over the remaining (discounted) months: ``months * mrr * margin``
    (NaN where MRR is unknown)."""
    return np.asarray(months) * np.asarray(mrr, dtype=np.float64) * gross_margin


def saved_profit_on_value(
    probability: np.ndarray, value: np.ndarray, save_rate: float, cost: float
) -> np.ndarray:
    """Expected profit of one intervention on an account worth ``value`` (already margin)."""
    return np.asarray(probability) * save_rate * np.asarray(value) - cost


def prioritize(
    profit: np.ndarray,
    capacity: int,
) -> np.ndarray:
    """Indices of the accounts worth acting on, best first, at most ``capacity``."""
    profit = np.nan_to_num(np.asarray(profit, dtype=np.float64), nan=-np.inf)
    order = np.argsort(-profit, kind="stable")
    worth = order[profit[order] > 0]
    return worth[: max(capacity, 0)]
