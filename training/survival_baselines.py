"""The bars the time-to-churn model must clear: a Cox proportional-hazards model on the same
features and Kaplan-Meier curves by lifecycle stage and plan (both from lifelines, which
only training imports).

Both learn from the same training snapshots as the hazard model, with the same censoring
(follow-up ends where the training knowledge ends), and answer with survival curves on a
grid of days, so every model is scored by the same functions.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping

import numpy as np

from features.derive import View
from features.timeline import LIFECYCLE_STAGES, lifecycle_stage_codes
from models.linear import LinearBase
from training.survival import Followup

log = logging.getLogger(__name__)
COX_PENALIZER = 0.01  # a little ridge: one-hot levels are collinear with the baseline hazard
MIN_STRATUM_ROWS = 200  # fewer snapshots: the stratum borrows its lifecycle stage's curve
ALL = "all"


@contextlib.contextmanager
def quiet_lifelines() -> Iterator[None]:
    """lifelines calls pandas in ways pandas announces it will change (warnings, not errors)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


class CoxBaseline:
    """Cox proportional hazards on the churn model's features (imputed, scaled, one-hot:
    the logistic baseline's transform), fitted on censored follow-up in days."""

    def __init__(self, penalizer: float = COX_PENALIZER) -> None:
        self.penalizer = penalizer

    def fit(self, features: np.ndarray, categorical: list[int], follow: Followup) -> CoxBaseline:
        from lifelines import CoxPHFitter

        self.transform_ = LinearBase().fit_design(features, categorical)
        design = self.transform_.design(features)
        self.kept_ = np.flatnonzero(design.std(axis=0) > 0)
        frame = self._frame(design)
        frame["days"] = np.maximum(follow.days, 0.5)  # a churn on day 0 cannot be a duration 0
        frame["churned"] = follow.event.astype(np.int8)
        with quiet_lifelines():
            self.model_ = CoxPHFitter(penalizer=self.penalizer).fit(
                frame, duration_col="days", event_col="churned"
            )
        return self

    def survival(self, features: np.ndarray, grid: np.ndarray) -> np.ndarray:
        """P(still a customer) at each day of ``grid`` (rows x grid)."""
        frame = self._frame(self.transform_.design(features))
        with quiet_lifelines():
            curves = self.model_.predict_survival_function(frame, times=grid)
        return np.asarray(curves.to_numpy(dtype=np.float64)).T

    def _frame(self, design: np.ndarray):
        import pandas as pd

        return pd.DataFrame(design[:, self.kept_], columns=[f"x{j}" for j in self.kept_])


def strata(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """``"<lifecycle stage> | <plan>"`` of each snapshot (``unknown`` where missing)."""
    view = View(columns)
    codes = lifecycle_stage_codes(view.tenure_days())
    names = np.array([*LIFECYCLE_STAGES, "unknown"], dtype=object)
    stage = names[np.where(np.isnan(codes), len(LIFECYCLE_STAGES), codes).astype(np.int64)]
    plan = np.where(np.equal(view.text("plan"), None), "unknown", view.text("plan"))
    return np.char.add(np.char.add(stage.astype(str), " | "), plan.astype(str)).astype(object)


def stage_of(stratum: np.ndarray) -> np.ndarray:
    """The lifecycle-stage part of each stratum."""
    return np.char.partition(stratum.astype(str), " | ")[:, 0].astype(object)


class KaplanMeierBaseline:
    """One Kaplan-Meier curve per lifecycle stage x plan of the training snapshots; a
    stratum with fewer than ``MIN_STRATUM_ROWS`` (or unseen) takes its stage's curve, an
    unseen stage the overall one. No account-level information beyond the stratum."""

    def fit(self, stratum: np.ndarray, follow: Followup, grid: np.ndarray) -> KaplanMeierBaseline:
        self.grid_ = grid
        stage = stage_of(stratum)
        self.curves_: dict[str, np.ndarray] = {ALL: km_curve(follow, grid)}
        for groups in (stage, stratum):
            for name in np.unique(groups):
                rows = groups == name
                if rows.sum() >= MIN_STRATUM_ROWS:
                    self.curves_[str(name)] = km_curve(follow.take(rows), grid)
        return self

    def survival(self, stratum: np.ndarray) -> np.ndarray:
        """Each snapshot's curve at the grid it was fitted on (rows x grid)."""
        names, which = np.unique(stratum.astype(str), return_inverse=True)
        overall = self.curves_[ALL]
        curves = [
            self.curves_.get(name, self.curves_.get(name.split(" | ")[0], overall))
            for name in names.tolist()
        ]
        return np.vstack(curves)[which]


def km_curve(follow: Followup, grid: np.ndarray) -> np.ndarray:
    """The Kaplan-Meier survival of ``follow`` at each day of ``grid``."""
    from lifelines import KaplanMeierFitter

    with quiet_lifelines():
        fitted = KaplanMeierFitter().fit(follow.days, event_observed=follow.event)
        return np.asarray(fitted.survival_function_at_times(grid).to_numpy(dtype=np.float64))
