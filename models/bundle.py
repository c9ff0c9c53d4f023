"""ChurnModel: everything scoring needs, in one versioned file of plain data.

The bundle holds the frozen feature spec, the LightGBM booster (its model text), the
calibrator, the linear base, the training feature profile and the model card (horizon,
base rate, tier cut-offs, mode, mapping, window, metrics), each a part of one archive
(``models.archive``): nothing in it is pickled, so loading runs no code from the file and
does not depend on where our classes live. Scoring a snapshot is: columns -> feature
matrix -> one ``pred_contrib`` call (whose row sums are the raw margins, so explanations
cost no second pass) -> calibration. No pandas and no MLflow on that path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from features.derive import FEATURE_VERSION, INDICATORS, FeatureSpec
from features.errors import ModelError
from features.files import file_sha256
from features.schema import Columns, frame_to_columns
from models.archive import NO_KEYS, Archive, ArchiveWriter, SigningKeys
from models.calibration import Calibrator
from models.card import ModelCard
from models.hazard import HazardModel, Survival
from models.linear import LinearBase
from models.profile import FeatureProfile

RISK_TIERS = ("low", "medium", "high", "critical")
TIER_MULTIPLES = (1.0, 2.0, 4.0)  # cut-offs as multiples of the training base rate
FEW_ROWS = 32  # up to this many rows, plain Python beats numpy's per-call cost
# The parts of format 2; "linear", "profile" and the hazard parts are optional.
CARD, SPEC, BOOSTER, CALIBRATOR = "card.json", "spec.json", "booster.txt", "calibrator.json"
LINEAR, PROFILE = "linear", "profile.json"
HAZARD, HAZARD_BOOSTER = "hazard.json", "hazard.booster.txt"
REQUIRED_PARTS = (CARD, SPEC, BOOSTER, CALIBRATOR)


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
    """Feature spec + booster (+ linear base) + calibrator + model card; one file.

    The margin is the booster's raw score, plus the linear base's log-odds when the
    trees were boosted from it (``linear`` set); contributions add up the same way.
    """

    spec: FeatureSpec
    booster: lgb.Booster
    calibrator: Calibrator
    card: ModelCard
    profile: FeatureProfile | None = None
    linear: LinearBase | None = None
    threads: int = 0  # LightGBM threads per predict call; 0 = LightGBM's default
    hazard: HazardModel | None = None  # time-to-churn model (event data only)

    # --- scoring -------------------------------------------------------------------

    @property
    def horizon_days(self) -> int | None:
        """Days ahead the probability covers; None for a table-mode model, whose label
        ("churned", as the export defines it) has no horizon of its own."""
        return self.card.horizon_days

    @property
    def base_rate(self) -> float:
        return self.card.base_rate

    @property
    def tier_cutoffs(self) -> tuple[float, ...]:
        """Probabilities where medium, high and critical start (override in the card)."""
        if self.card.tier_cutoffs:
            return self.card.tier_cutoffs
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
        if self.card.mode == "table":
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

    def save(self, path: str | Path, signing_key: bytes | None = None) -> Path:
        """The plain-data archive, written atomically; HMAC-signed when given a key."""
        writer = ArchiveWriter()
        writer.add_json(CARD, self.card.to_json())
        writer.add_json(SPEC, spec_state(self.spec))
        writer.add_text(BOOSTER, self.booster.model_to_string())
        add_state(writer, "calibrator", *self.calibrator.to_state())
        if self.linear is not None:
            add_state(writer, LINEAR, *self.linear.to_state())
        if self.profile is not None:
            writer.add_json(PROFILE, self.profile.to_state())
        if self.hazard is not None:
            writer.add_json(HAZARD, self.hazard.to_state())
            writer.add_text(HAZARD_BOOSTER, self.hazard.booster.model_to_string())
        return writer.write(path, signing_key, created_by=f"churn {_code_version()}")

    @classmethod
    def load(
        cls, path: str | Path, sha256: str | None = None, keys: SigningKeys = NO_KEYS
    ) -> ChurnModel:
        """Load a bundle: refuse a checksum that does not match, another format version, a
        missing part, and (with ``keys``) a bundle not signed by one of them."""
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model bundle {path} does not exist")
        if sha256 is not None:
            actual = file_sha256(path)
            if actual != sha256:
                raise ModelError(
                    f"model bundle {path.name} has SHA-256 {actual}, expected {sha256}: refusing to load"
                )
        return from_archive(Archive.read(path, keys))


def from_archive(archive: Archive) -> ChurnModel:
    """Build the model from checked parts; a part that does not make sense is a ModelError."""
    archive.require(REQUIRED_PARTS)
    try:
        booster = lgb.Booster(model_str=archive.text(BOOSTER))
        calibrator = Calibrator.from_state(*read_state(archive, "calibrator"))
        linear = (
            LinearBase.from_state(*read_state(archive, LINEAR))
            if archive.has(f"{LINEAR}.json")
            else None
        )
        profile = FeatureProfile.from_state(archive.json(PROFILE)) if archive.has(PROFILE) else None
        spec = spec_from_state(archive.json(SPEC), archive.name)
        hazard = read_hazard(archive, spec) if archive.has(HAZARD) else None
    except (KeyError, TypeError, ValueError, lgb.basic.LightGBMError) as exc:
        raise ModelError(
            f"model bundle {archive.name}: a part is malformed ({type(exc).__name__}: {exc})"
        ) from None
    card = ModelCard.from_json(archive.json(CARD), archive.name)
    if booster.num_feature() != len(spec.names):
        raise ModelError(
            f"model bundle {archive.name}: the booster reads {booster.num_feature()} features, "
            f"the feature spec names {len(spec.names)}"
        )
    return ChurnModel(
        spec, booster, calibrator, card, profile=profile, linear=linear, hazard=hazard
    )


def read_hazard(archive: Archive, spec: FeatureSpec) -> HazardModel:
    """The time-to-churn parts; its features must be the churn model's (one matrix feeds both)."""
    archive.require([HAZARD_BOOSTER])
    hazard = HazardModel.from_state(
        archive.json(HAZARD), lgb.Booster(model_str=archive.text(HAZARD_BOOSTER))
    )
    if list(hazard.feature_names) != spec.names:
        raise ValueError("the hazard model's features are not the feature spec's")
    return hazard


def add_state(
    writer: ArchiveWriter, name: str, fields: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    """A component as ``name.json`` plus ``name.<array>.npy`` parts."""
    writer.add_json(f"{name}.json", {**fields, "arrays": sorted(arrays)})
    for key, array in arrays.items():
        writer.add_array(f"{name}.{key}.npy", array)


def read_state(archive: Archive, name: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    fields = archive.json(f"{name}.json")
    arrays = {key: archive.array(f"{name}.{key}.npy") for key in fields.pop("arrays", [])}
    return fields, arrays


def spec_state(spec: FeatureSpec) -> dict[str, Any]:
    return {
        "version": spec.version,
        "indicators": list(spec.indicators),
        "levels": [[column, list(levels)] for column, levels in spec.levels.items()],  # in order
        "numeric_attributes": list(spec.numeric_attributes),
        "dropped": dict(spec.dropped),
    }


def spec_from_state(fields: dict[str, Any], bundle: str) -> FeatureSpec:
    """The feature spec; refuse indicators or a feature version this Churn cannot compute."""
    version = fields.get("version")
    if version != FEATURE_VERSION:
        raise ModelError(
            f"model bundle {bundle} was built with feature version {version}; this Churn "
            f"computes version {FEATURE_VERSION}: retrain with `churn train`"
        )
    unknown = [name for name in fields["indicators"] if name not in INDICATORS]
    if unknown:
        raise ModelError(
            f"model bundle {bundle} uses indicators this Churn does not compute: {unknown}"
        )
    return FeatureSpec(
        indicators=tuple(fields["indicators"]),
        levels={str(column): tuple(str(v) for v in levels) for column, levels in fields["levels"]},
        numeric_attributes=tuple(fields["numeric_attributes"]),
        dropped=dict(fields["dropped"]),
        version=int(version),
    )


def _code_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("churn")
    except metadata.PackageNotFoundError:
        return "unknown"
