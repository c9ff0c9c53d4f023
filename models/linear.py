"""A logistic regression over the model's feature matrix, with numpy-only scoring.

It is two things at once: the baseline every run is compared against, and — when the
validation window prefers it — the base the trees are boosted from (LightGBM's
``init_score``), so smooth additive effects (risk falling with log tenure) come from
the linear part and interactions from the trees. Its transform is ours (median
imputation with missing flags, signed log, standardisation, one-hot levels), so scoring
and per-feature contributions need no sklearn and sum exactly to the margin.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from features.errors import ModelError

MISSING_LEVEL = -1.0


def signed_log(values: np.ndarray) -> np.ndarray:
    """Heavy-tailed counts and amounts onto a scale where effects are closer to linear."""
    return np.sign(values) * np.log1p(np.abs(values))


class LinearBase:
    """Logistic regression with its own transform; sklearn's estimator contract."""

    def __init__(self, c: float = 1.0, max_iter: int = 2000) -> None:
        self.c = c
        self.max_iter = max_iter

    def fit(self, features: np.ndarray, label: np.ndarray, categorical: list[int]) -> LinearBase:
        from sklearn.linear_model import LogisticRegression

        if len(np.unique(label)) < 2:
            raise ModelError(
                "the training rows have a single class; churned and retained accounts are both needed"
            )
        design = self.fit_design(features, categorical).design(features)
        model = LogisticRegression(C=self.c, max_iter=self.max_iter).fit(design, label)
        self.coef_ = model.coef_[0].astype(np.float64)
        self.intercept_ = float(model.intercept_[0])
        owners = self._owners()
        self.owner_matrix_ = np.zeros((len(owners), self.n_features_))
        self.owner_matrix_[np.arange(len(owners)), owners] = 1.0
        self.design_mean_ = design.mean(axis=0)
        self.expected_ = float(self.intercept_ + self.design_mean_ @ self.coef_)
        return self

    def fit_design(self, features: np.ndarray, categorical: list[int]) -> LinearBase:
        """Learn the transform alone (imputation, scaling, levels); ``fit`` starts here, and
        other linear models (the Cox baseline) reuse it."""
        self.n_features_ = features.shape[1]
        self.categorical_ = [int(j) for j in categorical]
        numeric = [j for j in range(self.n_features_) if j not in self.categorical_]
        self.numeric_ = numeric
        with np.errstate(all="ignore"):
            medians = np.nanmedian(features[:, numeric], axis=0) if numeric else np.array([])
        self.medians_ = np.where(np.isnan(medians), 0.0, medians)
        self.flagged_ = [j for j in numeric if np.isnan(features[:, j]).any()]
        self.levels_ = {
            j: np.unique(np.where(np.isnan(features[:, j]), MISSING_LEVEL, features[:, j]))
            for j in self.categorical_
        }
        logged = signed_log(self._imputed(features))
        self.means_ = logged.mean(axis=0) if len(logged) else np.zeros(len(numeric))
        std = logged.std(axis=0)
        self.stds_ = np.where(std > 0, std, 1.0)
        return self

    # --- plain data for the bundle ----------------------------------------------------

    ARRAYS: ClassVar[tuple[str, ...]] = ("medians_", "means_", "stds_", "coef_", "design_mean_")

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON fields, numpy arrays): everything scoring needs, nothing pickled."""
        fields = {
            "c": self.c,
            "max_iter": self.max_iter,
            "n_features": self.n_features_,
            "categorical": self.categorical_,
            "numeric": self.numeric_,
            "flagged": self.flagged_,
            "levels": [[j, levels.tolist()] for j, levels in self.levels_.items()],  # in order
            "intercept": self.intercept_,
        }
        return fields, {name.rstrip("_"): getattr(self, name) for name in self.ARRAYS}

    @classmethod
    def from_state(cls, fields: dict[str, Any], arrays: dict[str, np.ndarray]) -> LinearBase:
        base = cls(float(fields["c"]), int(fields["max_iter"]))
        base.n_features_ = int(fields["n_features"])
        base.categorical_ = [int(j) for j in fields["categorical"]]
        base.numeric_ = [int(j) for j in fields["numeric"]]
        base.flagged_ = [int(j) for j in fields["flagged"]]
        base.levels_ = {
            int(j): np.asarray(levels, dtype=np.float64) for j, levels in fields["levels"]
        }
        base.intercept_ = float(fields["intercept"])
        for name in cls.ARRAYS:
            setattr(base, name, np.asarray(arrays[name.rstrip("_")], dtype=np.float64))
        owners = base._owners()
        base.owner_matrix_ = np.zeros((len(owners), base.n_features_))
        base.owner_matrix_[np.arange(len(owners)), owners] = 1.0
        base.expected_ = float(base.intercept_ + base.design_mean_ @ base.coef_)
        return base

    # --- scoring (numpy only) ---------------------------------------------------------

    def _imputed(self, features: np.ndarray) -> np.ndarray:
        block = features[:, self.numeric_]
        return np.where(np.isnan(block), self.medians_, block)

    def design(self, features: np.ndarray) -> np.ndarray:
        """The regression's inputs: scaled numbers, missing flags, one-hot levels."""
        blocks = [(signed_log(self._imputed(features)) - self.means_) / self.stds_]
        if self.flagged_:
            blocks.append(np.isnan(features[:, self.flagged_]).astype(np.float64))
        for j, levels in self.levels_.items():
            codes = np.where(np.isnan(features[:, j]), MISSING_LEVEL, features[:, j])
            blocks.append((codes[:, None] == levels[None, :]).astype(np.float64))
        return np.hstack(blocks)

    def _owners(self) -> np.ndarray:
        owners = [*self.numeric_, *self.flagged_]
        for j, levels in self.levels_.items():
            owners.extend([j] * len(levels))
        return np.asarray(owners, dtype=np.int64)

    def margin(self, features: np.ndarray) -> np.ndarray:
        """Log-odds of churn."""
        return self.design(features) @ self.coef_ + self.intercept_

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        return self.margin(features)

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """Per original feature: its log-odds above the training average (rows x features).

        ``margin = expected_ + contributions.sum(axis=1)`` exactly.
        """
        return ((self.design(features) - self.design_mean_) * self.coef_) @ self.owner_matrix_
