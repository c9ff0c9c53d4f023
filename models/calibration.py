"""Probability calibration, fitted on a held-out window and applied with numpy only.

Follows sklearn's estimator contract (``__init__`` stores arguments, ``fit`` learns
attributes ending in ``_`` and returns ``self``), but ``transform`` needs nothing but
numpy so the scoring hot path stays lean.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features.errors import ModelError

METHODS = ("platt", "isotonic")


def sigmoid(margin: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(margin, -40.0, 40.0)))


class Calibrator:
    """Maps the booster's raw margin (log-odds) to a calibrated probability.

    ``platt``: logistic regression on the margin (two parameters; robust on small
    windows, keeps the ranking). ``isotonic``: monotone step function (more flexible,
    needs more rows, may tie scores).
    """

    def __init__(self, method: str = "platt") -> None:
        self.method = method

    def fit(self, margin: np.ndarray, label: np.ndarray) -> Calibrator:
        from sklearn.isotonic import IsotonicRegression  # fitting only: scoring stays numpy
        from sklearn.linear_model import LogisticRegression

        if self.method not in METHODS:
            raise ModelError(f"calibration method {self.method!r} is not one of {METHODS}")
        label = np.asarray(label)
        if len(np.unique(label)) < 2:
            raise ModelError(
                "the calibration window has a single class; it needs churned and retained accounts"
            )
        margin = np.asarray(margin, dtype=np.float64)
        if self.method == "platt":
            fitted = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), label)
            self.slope_ = float(fitted.coef_[0, 0])
            self.intercept_ = float(fitted.intercept_[0])
        else:
            fitted = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6).fit(
                margin, label
            )
            self.thresholds_ = np.asarray(fitted.X_thresholds_, dtype=np.float64)
            self.values_ = np.asarray(fitted.y_thresholds_, dtype=np.float64)
        return self

    def transform(self, margin: np.ndarray) -> np.ndarray:
        margin = np.asarray(margin, dtype=np.float64)
        if self.method == "platt":
            return sigmoid(self.slope_ * margin + self.intercept_)
        return np.interp(margin, self.thresholds_, self.values_)

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Plain data for the bundle: (JSON fields, numpy arrays)."""
        if self.method == "platt":
            return {"method": "platt", "slope": self.slope_, "intercept": self.intercept_}, {}
        return {"method": "isotonic"}, {"thresholds": self.thresholds_, "values": self.values_}

    @classmethod
    def from_state(cls, fields: dict[str, Any], arrays: dict[str, np.ndarray]) -> Calibrator:
        method = fields.get("method")
        if method not in METHODS:
            raise ModelError(f"the bundle's calibrator method {method!r} is not one of {METHODS}")
        calibrator = cls(method)
        if method == "platt":
            calibrator.slope_ = float(fields["slope"])
            calibrator.intercept_ = float(fields["intercept"])
        else:
            calibrator.thresholds_ = np.asarray(arrays["thresholds"], dtype=np.float64)
            calibrator.values_ = np.asarray(arrays["values"], dtype=np.float64)
        return calibrator

    def describe(self) -> dict[str, float | str]:
        if self.method == "platt":
            return {"method": "platt", "slope": self.slope_, "intercept": self.intercept_}
        return {"method": "isotonic", "steps": float(len(self.thresholds_))}
