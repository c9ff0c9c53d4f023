"""Money: revenue at risk and the expected saved profit of acting (DESIGN.md section 10).

``annual_revenue = mrr * 12``; ``revenue_at_risk = p * annual_revenue`` with ``p`` the
churn probability over the model's horizon; an intervention is worth it where
``p * save_rate * annual_revenue * gross_margin - cost > 0``.
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
    return np.asarray(probability) * save_rate * annual_revenue(mrr) * gross_margin - cost


def prioritize(
    profit: np.ndarray,
    capacity: int,
) -> np.ndarray:
    """Indices of the accounts worth acting on, best first, at most ``capacity``."""
    profit = np.nan_to_num(np.asarray(profit, dtype=np.float64), nan=-np.inf)
    order = np.argsort(-profit, kind="stable")
    worth = order[profit[order] > 0]
    return worth[: max(capacity, 0)]
