"""What the over-time commands read from a model's card, in one place."""

from __future__ import annotations

import numpy as np

from models.bundle import ChurnModel


def reported_figures(model: ChurnModel) -> dict[str, float]:
    """The model's own test-window figures, to compare realized ones with (NaN if absent)."""
    metrics = model.card.metrics
    return {
        "model_test_roc_auc": float(metrics.get("test_roc_auc", np.nan)),
        "model_test_lift_top10": float(metrics.get("test_lift_top10", np.nan)),
    }


def model_form(model: ChurnModel) -> str:
    """Trees alone or boosted from a linear base, as the validation window chose."""
    return str(model.card.model_form or "")


def exclude_columns(model: ChurnModel) -> list[str]:
    """Account columns the model was trained without (they must stay out at scoring)."""
    return list(model.card.exclude_columns)
