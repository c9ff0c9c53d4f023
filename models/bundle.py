"""ChurnModel: everything scoring needs, in one versioned file.

The bundle holds the frozen feature spec, the LightGBM booster, the calibrator and the
training metadata (window, horizon, base rate, metrics, feature profile). Scoring a
snapshot is: columns -> feature matrix -> one ``pred_contrib`` call (whose row sums are
the raw margins, so explanations cost no second pass) -> calibration. No pandas and
no MLflow on that path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import joblib
import lightgbm as lgb
import numpy as np

from features.derive import FeatureSpec
from features.errors import ModelError
from features.files import file_sha256, write_atomic
from features.schema import Columns, frame_to_columns
from models.calibration import Calibrator
from models.hazard import HazardModel, Survival
from models.linear import LinearBase
from models.profile import FeatureProfile

FORMAT_VERSION = 1
RISK_TIERS = ("low", "medium", "high", "critical")
TIER_MULTIPLES = (1.0, 2.0, 4.0)
FEW_ROWS = 32  # up to this many rows, plain Python beats numpy's per-call cost  # cut-offs as multiples of the training base rate


@dataclass(frozen=True)
class Driver:
    """One reason behind a score: the feature, its value, how much it adds, in words."""

    feature: str
    value: Any
    contribution: float  # probability points this feature adds (calibrated scale)
    reason: str


@dataclass(frozen=True)
class Scores:
    """Scores of a batch: calibrated probability, raw margin and per-feature contributions."""

    probability: np.ndarray
    margin: np.ndarray
    contributions: np.ndarray | None  # rows x features, log-odds (trees + linear base)
    features: np.ndarray | None = None  # the matrix that was scored (drivers reuse it)


Data = Any  # a snapshot DataFrame or a columns mapping (pandas is never imported here)


@dataclass
class ChurnModel:
    """Feature spec + booster (+ linear base) + calibrator + metadata; one file.

    The margin is the booster's raw score, plus the linear base's log-odds when the
    trees were boosted from it (``linear`` set); contributions add up the same way.
    """

    spec: FeatureSpec
    booster: lgb.Booster
    calibrator: Calibrator
    metadata: dict[str, Any] = field(default_factory=dict)
    profile: FeatureProfile | None = None
    linear: LinearBase | None = None
    threads: int = 0  # LightGBM threads per predict call; 0 = LightGBM's default
    format_version: int = FORMAT_VERSION
    hazard: HazardModel | None = None  # time-to-churn model (event data only)

    # --- scoring -------------------------------------------------------------------

    @property
    def horizon_days(self) -> int | None:
        """Days ahead the probability covers; None for a table-mode model, whose label
        ("churned", as the export defines it) has no horizon of its own."""
        horizon = self.metadata.get("horizon_days")
        return None if horizon is None else int(horizon)

    @property
    def base_rate(self) -> float:
        return float(self.metadata["base_rate"])

    @property
    def tier_cutoffs(self) -> tuple[float, ...]:
        """Probabilities where medium, high and critical start (override in metadata)."""
        custom = self.metadata.get("tier_cutoffs")
        if custom:
            return tuple(float(c) for c in custom)
        return tuple(min(self.base_rate * m, 1.0) for m in TIER_MULTIPLES)

    def columns(self, data: Data) -> Columns:
        return dict(data) if isinstance(data, Mapping) else frame_to_columns(data)

    def matrix(self, data: Data) -> np.ndarray:
        return self.spec.matrix(self.columns(data))

    def score(self, data: Data, explain: bool = True) -> Scores:
        """Calibrated probabilities, and contributions when ``explain`` (one booster call)."""
        features = self.matrix(data)
        threads = {"num_threads": self.threads} if self.threads else {}
        if explain:
            contributions = np.asarray(self.booster.predict(features, pred_contrib=True, **threads))
            margin = contributions.sum(axis=1)
            contributions = contributions[:, :-1]  # the last column is the expected value
            if self.linear is not None:
                margin = margin + self.linear.margin(features)
                contributions = contributions + self.linear.contributions(features)
        else:
            margin = self.margin(features)
            contributions = None
        return Scores(self.calibrator.transform(margin), margin, contributions, features)

    def margin(self, features: np.ndarray) -> np.ndarray:
        """Raw log-odds of a feature matrix: trees, plus the linear base if any."""
        threads = {"num_threads": self.threads} if self.threads else {}
        margin = np.asarray(self.booster.predict(features, raw_score=True, **threads))
        return margin if self.linear is None else margin + self.linear.margin(features)

    @property
    def horizons(self) -> tuple[int, ...]:
        """Days of ``churn_probability_by_horizon``; () without a time-to-churn model."""
        return () if self.hazard is None else self.hazard.horizons

    @property
    def horizons_absent_reason(self) -> str | None:
        """Why there are no probabilities by horizon (None when there are)."""
        if self.hazard is not None:
            return None
        if self.metadata.get("mode") == "table":
            return (
                "trained on one labelled export with no history: there is no time axis to "
                "learn when accounts leave, only whether they did"
            )
        return "trained without a time-to-churn model (--horizons none)"

    def survival(self, features: np.ndarray) -> Survival | None:
        """Monthly hazards of a scored feature matrix (``Scores.features``), one booster
        call for every account and month; None without a time-to-churn model."""
        return None if self.hazard is None else self.hazard.survival(features, self.threads)

    def predict_proba(self, data: Data) -> np.ndarray:
        """P(churn within the horizon) for each snapshot."""
        return self.score(data, explain=False).probability

    def risk_tiers(self, probability: np.ndarray) -> np.ndarray:
        """low < b <= medium < 2b <= high < 4b <= critical (b = training base rate)."""
        return np.asarray(RISK_TIERS, dtype=object)[
            np.searchsorted(self.tier_cutoffs, probability, side="right")
        ]

    def drivers(
        self, columns: Mapping[str, np.ndarray], scores: Scores, k: int = 3
    ) -> list[list[Driver]]:
        """Top-k features raising each account's risk, in calibrated probability points.

        A feature's contribution is how much lower the calibrated probability would be
        without its push on the margin: ``p(margin) - p(margin - contribution)``.
        """
        if scores.contributions is None:
            raise ModelError("drivers need contributions: score with explain=True")
        names = self.spec.names
        without = self.calibrator.transform(scores.margin[:, None] - scores.contributions)
        effect = scores.probability[:, None] - without
        k = min(k, effect.shape[1])
        if k <= 0:
            return [[] for _ in range(effect.shape[0])]
        top = np.argsort(-effect, axis=1)[:, :k]
        features = scores.features if scores.features is not None else self.spec.matrix(columns)
        out: list[list[Driver]] = []
        for i in range(effect.shape[0]):
            row = []
            for j in top[i]:
                if effect[i, j] <= 0:
                    break
                name = names[j]
                raw = self._raw_value(columns, name, i, features[i, j])
                row.append(
                    Driver(name, raw, float(effect[i, j]), self.spec.say(name, features[i, j], raw))
                )
            out.append(row)
        return out

    def explain(self, data: Data, k: int = 3) -> list[list[Driver]]:
        """Per-account top drivers in plain words (e.g. "active users down 45% vs prior 2 months")."""
        columns = self.columns(data)
        return self.drivers(columns, self.score(columns, explain=True), k)

    def _raw_value(
        self, columns: Mapping[str, np.ndarray], name: str, row: int, value: float
    ) -> Any:
        column = self.spec.column_of(name)
        if column is not None and column in columns:
            raw = columns[column][row]
            if raw is None or (isinstance(raw, float) and np.isnan(raw)):
                return None
            return raw.item() if isinstance(raw, np.generic) else raw
        return None if np.isnan(value) else float(value)

    @cached_property
    def input_columns(self) -> tuple[tuple[str, str], ...]:
        """(input, the column that tells whether a snapshot sent it), computed once."""
        return tuple((name, "mau_0" if name == "mau" else name) for name in self.spec.inputs)

    def missing_inputs(self, columns: Mapping[str, np.ndarray]) -> list[list[str]]:
        """Per row: the inputs the model uses that the snapshot did not provide.

        A few rows (one HTTP request) are checked value by value: numpy's fixed cost per
        call would be most of the work; many rows are checked column by column.
        """
        n = len(next(iter(columns.values())))
        result: list[list[str]] = [[] for _ in range(n)]
        for name, source in self.input_columns:
            values = columns.get(source)
            if values is None:
                for row in result:
                    row.append(name)
                continue
            text = values.dtype == object  # text: None is missing; numbers: NaN is
            if n <= FEW_ROWS:
                for row, value in zip(result, values.tolist(), strict=True):
                    if value is None if text else value != value:
                        row.append(name)
                continue
            missing = np.equal(values, None) if text else np.isnan(values)
            for i in np.flatnonzero(missing):
                result[i].append(name)
        return result

    def set_threads(self, threads: int) -> None:
        """LightGBM threads for prediction (1 per worker process when serving).

        Passed to every ``predict`` call: ``Booster.predict`` ignores ``booster.params``,
        and ``reset_parameter`` on a booster loaded from a file crashes the process.
        """
        self.threads = threads

    # --- files -----------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """joblib file with a format version, written atomically."""
        payload = {"format_version": self.format_version, "model": self}
        return write_atomic(path, lambda temp: joblib.dump(payload, temp, compress=3))

    @classmethod
    def load(cls, path: str | Path, sha256: str | None = None) -> ChurnModel:
        """Load a bundle; refuse another format version or a checksum that does not match."""
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model bundle {path} does not exist")
        if sha256 is not None:
            actual = file_sha256(path)
            if actual != sha256:
                raise ModelError(
                    f"model bundle {path.name} has SHA-256 {actual}, expected {sha256}: refusing to load"
                )
        try:
            payload = joblib.load(path)
        except Exception as exc:
            raise ModelError(f"cannot read model bundle {path}: {exc}") from exc
        version = payload.get("format_version") if isinstance(payload, dict) else None
        if version != FORMAT_VERSION:
            raise ModelError(
                f"model bundle {path.name} has format version {version}; this Churn reads version "
                f"{FORMAT_VERSION}. Retrain with `churn train` (or install the Churn release that wrote it)."
            )
        return payload["model"]
