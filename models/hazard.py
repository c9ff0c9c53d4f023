"""The time-to-churn model: a monthly churn hazard, and the survival curve it implies.

A discrete-time hazard model answers "when": for each of the months after ``as_of``
(intervals of :func:`features.timeline.month_bounds`), the probability of churning in that
month given the account was still a customer at its start. One LightGBM booster scores
every month of every account, from the snapshot's features plus two interval features
(months elapsed, and whether a contract renewal falls in that month), and a calibrator
scales the cumulative hazard month by month (``MonthCalibrator``). The survival curve is
the running product of
``1 - hazard``, so the probability of churning within any horizon comes from one curve and
can never decrease as the horizon grows. Inside a month the hazard is taken as constant
(a horizon ending mid-month gets the matching share of that month, geometrically).

Scoring is one booster call over ``accounts x months`` rows and numpy arithmetic: no
pandas, no per-account Python loops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property, lru_cache
from typing import Any

import lightgbm as lgb
import numpy as np

from features.errors import ModelError
from features.timeline import DAYS_PER_MONTH, interval_of, month_bounds
from models.value import survival_months

MONTHS_ELAPSED = "months_elapsed"
RENEWAL_IN_MONTH = "renewal_in_month"
RENEWAL_INPUTS = ("days_to_renewal", "contract_term_months")  # snapshot features it reads


def interval_columns(
    features: np.ndarray, month: np.ndarray, names: Sequence[str], renewal: bool
) -> np.ndarray:
    """The per-interval features of rows of snapshot ``features`` at months ``month``.

    ``renewal_in_month`` is 1 where a contract renewal (the next one, or a later one by
    whole terms) falls inside that month, 0 where none does, NaN where the renewal date or
    the term is unknown. The same function builds training rows and scoring rows.
    """
    month = np.asarray(month, dtype=np.float64)
    if not renewal:
        return month[:, None]
    to_renewal = features[:, list(names).index(RENEWAL_INPUTS[0])]
    term_days = features[:, list(names).index(RENEWAL_INPUTS[1])] * DAYS_PER_MONTH
    index = month.astype(np.int64)
    bounds = _bounds(int(index.max()) + 1 if len(index) else 1)
    start, end = bounds[index], bounds[index + 1]
    # NaN (unknown renewal or term) propagates to NaN without a warning
    terms_passed = np.where(to_renewal > start, 0.0, np.floor((start - to_renewal) / term_days) + 1)
    next_renewal = to_renewal + terms_passed * term_days
    inside = np.where(np.isnan(next_renewal), np.nan, (next_renewal <= end).astype(np.float64))
    return np.column_stack([month, inside])


@lru_cache(maxsize=64)
def _bounds(months: int) -> np.ndarray:
    return month_bounds(months).astype(np.float64)


@lru_cache(maxsize=256)
def _steps(days: tuple[float, ...], months: int) -> tuple[np.ndarray, np.ndarray]:
    """(interval, share of it) reached by each of ``days``: computed once per set of days."""
    values = np.asarray(days, dtype=np.float64)
    bounds = _bounds(months)
    if np.any(values < 0) or np.any(values > bounds[-1]):
        raise ValueError(f"days must lie within 0..{bounds[-1]:.0f}")
    k = np.clip(interval_of(values, months), 0, months - 1)
    return k, (values - bounds[k]) / (bounds[k + 1] - bounds[k])


class MonthCalibrator:
    """Calibrates the booster's monthly hazards by scaling their cumulative hazard, by a
    factor that may move with the months elapsed ``k``:
    ``hazard = 1 - (1 - sigmoid(margin)) ** exp(a + b * k/12)``.

    Scaling ``-log(1 - hazard)`` keeps what the booster learnt about *where* the risk lies
    (a month with no renewal for an annual contract stays near zero, a renewal month keeps
    its height relative to others) and corrects only how much there is, month by month;
    a Platt map on the margins would instead be pulled by the many near-zero months and
    distort the few that matter. Fitted by maximum likelihood on held-out accounts
    followed over every elapsed month; identity is ``a = b = 0``. Numpy only to apply.
    """

    NAMES = ("log_scale", "log_scale_per_year")

    def fit(self, margin: np.ndarray, month: np.ndarray, label: np.ndarray) -> MonthCalibrator:
        from scipy.optimize import minimize  # fitting only

        label = np.asarray(label, dtype=np.float64)
        if len(np.unique(label)) < 2:
            raise ModelError(
                "the time-to-churn calibration rows have a single class; they need churned "
                "and retained account-months"
            )
        base = np.logaddexp(0.0, np.asarray(margin, dtype=np.float64))  # -log(1 - sigmoid)
        elapsed = np.asarray(month, dtype=np.float64) / 12.0

        def loss(coef: np.ndarray) -> float:
            cumulative = np.exp(coef[0] + coef[1] * elapsed) * base
            churned = np.log(-np.expm1(-np.maximum(cumulative, 1e-300)))
            return -float(np.mean(label * churned - (1.0 - label) * cumulative))

        found = minimize(
            loss, x0=np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-12}
        )
        self.coef_ = (float(found.x[0]), float(found.x[1]))
        return self

    def transform(self, margin: np.ndarray, month: np.ndarray) -> np.ndarray:
        a, b = self.coef_
        scale = np.exp(a + b * np.asarray(month, dtype=np.float64) / 12.0)
        return -np.expm1(-scale * np.logaddexp(0.0, np.asarray(margin, dtype=np.float64)))

    def describe(self) -> dict[str, float]:
        return dict(zip(self.NAMES, self.coef_, strict=True))

    @classmethod
    def from_coefficients(cls, values: Sequence[float]) -> MonthCalibrator:
        if len(values) != len(cls.NAMES):
            raise ValueError(
                f"the hazard calibrator has {len(values)} coefficients, not {len(cls.NAMES)}"
            )
        calibrator = cls()
        calibrator.coef_ = tuple(float(v) for v in values)
        return calibrator


@dataclass(frozen=True)
class Survival:
    """Calibrated monthly hazards of a batch of accounts (rows x months) and what follows."""

    hazard: np.ndarray

    @property
    def months(self) -> int:
        return self.hazard.shape[1]

    @cached_property
    def _curve(self) -> np.ndarray:
        ones = np.ones((self.hazard.shape[0], 1))
        return np.hstack([ones, np.cumprod(1.0 - self.hazard, axis=1)])

    def curve(self) -> np.ndarray:
        """P(still a customer) at each month boundary, from 1 at ``as_of`` (rows x months+1)."""
        return self._curve

    def at_days(self, days: Sequence[float] | np.ndarray) -> np.ndarray:
        """P(still a customer) ``days`` after as_of (rows x days); constant hazard inside a month."""
        k, share = _steps(tuple(float(d) for d in np.ravel(days)), self.months)
        return self._curve[:, k] * (1.0 - self.hazard[:, k]) ** share

    def churn_within(self, horizons: Sequence[int]) -> np.ndarray:
        """P(churn within each horizon), rows x horizons; non-decreasing along a row."""
        return 1.0 - self.at_days(horizons)

    def expected_months(self, annual_rate: float = 0.0) -> np.ndarray:
        """Expected months as a customer within the modelled months (discounted if a rate
        is given): the area under the survival curve."""
        return survival_months(self.hazard, annual_rate, start=self._curve[:, :-1])


@dataclass(frozen=True)
class HazardFit:
    """How the hazard model was fitted and on which window (logged, and kept in the bundle)."""

    early_stopping_trees: int = 0
    trees: int = 0
    min_data_in_leaf: int = 0
    person_months: dict[str, int] = field(default_factory=dict)
    held_out_accounts: dict[str, int] = field(default_factory=dict)
    first_test_as_of: str = ""
    last_test_as_of: str = ""
    training_known_until: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> HazardFit:
        """Fields this Churn does not know (written by a newer one) are skipped."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in document.items() if key in known})


@dataclass
class HazardModel:
    """Booster + calibrator over snapshot features and interval features; see the module doc.

    ``feature_names`` are the churn model's snapshot features (the same matrix feeds both);
    ``months`` the intervals modelled (the longest horizon rounded up to whole months).
    """

    booster: lgb.Booster
    calibrator: MonthCalibrator
    feature_names: tuple[str, ...]
    horizons: tuple[int, ...]
    months: int
    renewal: bool = False
    fit: HazardFit = field(default_factory=HazardFit)

    @property
    def names(self) -> list[str]:
        """Booster feature names: snapshot features, then the interval features."""
        extra = [MONTHS_ELAPSED, RENEWAL_IN_MONTH] if self.renewal else [MONTHS_ELAPSED]
        return [*self.feature_names, *extra]

    def rows(self, features: np.ndarray, month: np.ndarray) -> np.ndarray:
        """Booster input for snapshot rows ``features`` at months ``month`` (float32)."""
        out = np.empty((features.shape[0], len(self.names)), dtype=np.float32)
        out[:, : features.shape[1]] = features
        out[:, features.shape[1] :] = interval_columns(
            features, month, self.feature_names, self.renewal
        )
        return out

    def margin(self, rows: np.ndarray, threads: int = 0) -> np.ndarray:
        extra = {"num_threads": threads} if threads else {}
        return np.asarray(self.booster.predict(rows, raw_score=True, **extra))

    def survival(self, features: np.ndarray, threads: int = 0) -> Survival:
        """Every account's monthly hazards in one booster call (accounts x months rows)."""
        n = features.shape[0]
        month = np.broadcast_to(np.arange(self.months), (n, self.months)).reshape(-1)
        rows = self.rows(np.repeat(features, self.months, axis=0), month)
        hazard = self.calibrator.transform(self.margin(rows, threads), month)
        return Survival(hazard.reshape(n, self.months))

    # --- bundle parts ------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The plain fields of ``hazard.json`` (the booster is a part of its own)."""
        return {
            "feature_names": list(self.feature_names),
            "horizons": list(self.horizons),
            "months": self.months,
            "renewal": self.renewal,
            "calibrator": list(self.calibrator.coef_),
            "fit": self.fit.to_json(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], booster: lgb.Booster) -> HazardModel:
        """The model from its parts; ValueError where they do not fit together."""
        model = cls(
            booster=booster,
            calibrator=MonthCalibrator.from_coefficients(state["calibrator"]),
            feature_names=tuple(str(n) for n in state["feature_names"]),
            horizons=tuple(int(h) for h in state["horizons"]),
            months=int(state["months"]),
            renewal=bool(state["renewal"]),
            fit=HazardFit.from_json(state.get("fit", {})),
        )
        if booster.num_feature() != len(model.names):
            raise ValueError(
                f"the hazard booster reads {booster.num_feature()} features, its part names "
                f"{len(model.names)}"
            )
        if not model.horizons or max(model.horizons) > month_bounds(model.months)[-1]:
            raise ValueError(f"horizons {model.horizons} do not fit in {model.months} months")
        return model
