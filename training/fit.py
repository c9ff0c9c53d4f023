"""Fit the model: LightGBM (native categoricals, early stopping), a calibrator, a baseline.

Hyperparameters are one typed object, filled from defaults, a TOML file and
``--param key=value`` pairs, and every value is logged so tuned runs can be compared.
The defaults are generic for tabular churn data (shallow trees, strong leaf minimums,
subsampling); nothing here is tuned to the demo data.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from features.derive import FeatureSpec
from features.errors import ModelError
from models.bundle import ChurnModel
from models.calibration import Calibrator
from models.profile import FeatureProfile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainParams:
    """Model settings; every field is logged as an MLflow param."""

    learning_rate: float = 0.03
    num_leaves: int = 4
    max_depth: int = -1
    min_data_in_leaf: int = 300
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    cat_smooth: float = 10.0
    min_data_per_group: int = 50
    linear_tree: bool = False
    linear_lambda: float = 0.0
    extra_trees: bool = False
    path_smooth: float = 0.0
    num_boost_round: int = 3000
    early_stopping_rounds: int = 100
    refit: bool = True  # after early stopping, refit on train + validation (the most recent rows)
    calibration: str = "platt"
    baseline_c: float = 1.0
    seed: int = 0
    num_threads: int = 0

    def lightgbm(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "lambda_l2": self.lambda_l2,
            "cat_smooth": self.cat_smooth,
            "min_data_per_group": self.min_data_per_group,
            "linear_tree": self.linear_tree,
            "linear_lambda": self.linear_lambda,
            "extra_trees": self.extra_trees,
            "path_smooth": self.path_smooth,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_params(file: Path | None = None, pairs: Sequence[str] = ()) -> TrainParams:
    """Defaults <- TOML file (top level or [params]) <- ``key=value`` pairs."""
    values: dict[str, Any] = {}
    if file is not None:
        try:
            document = tomllib.loads(Path(file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ModelError(f"cannot read parameter file {file}: {exc}") from exc
        values.update(document.get("params", document))
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ModelError(f"--param {pair!r} is not key=value")
        values[key.strip()] = raw.strip()
    return coerce_params(values)


def coerce_params(values: Mapping[str, Any]) -> TrainParams:
    fields = {f.name: f for f in dataclasses.fields(TrainParams)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ModelError(f"unknown parameter(s) {unknown}; known: {sorted(fields)}")
    typed: dict[str, Any] = {}
    for key, raw in values.items():
        kind = type(getattr(TrainParams(), key))
        try:
            typed[key] = _as_bool(raw) if kind is bool else kind(raw)
        except (TypeError, ValueError):
            raise ModelError(f"parameter {key}={raw!r} is not a {kind.__name__}") from None
    return TrainParams(**typed)


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(raw)


@dataclass(frozen=True)
class Part:
    """One split as the fitter needs it: feature matrix and labels."""

    features: np.ndarray
    label: np.ndarray


def fit_booster(spec: FeatureSpec, train: Part, validation: Part, params: TrainParams) -> lgb.Booster:
    """LightGBM with native categoricals, stopped early on the validation log loss."""
    names = spec.names
    categorical = spec.categorical
    train_set = lgb.Dataset(
        train.features, train.label, feature_name=names, categorical_feature=categorical, free_raw_data=False
    )
    valid_set = lgb.Dataset(validation.features, validation.label, reference=train_set)
    booster = lgb.train(
        params.lightgbm(),
        train_set,
        num_boost_round=params.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )
    trees = booster.best_iteration or params.num_boost_round
    log.info("LightGBM stopped early at %d trees", trees)
    if not params.refit:
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=trees))
    # The validation rows are the most recent labelled ones: once they have chosen the
    # number of trees, the final model learns from them too (trees scaled with the rows).
    rows = len(train.label) + len(validation.label)
    refit_trees = min(params.num_boost_round, int(round(trees * rows / len(train.label))))
    both = lgb.Dataset(
        np.vstack([train.features, validation.features]),
        np.concatenate([train.label, validation.label]),
        feature_name=names,
        categorical_feature=categorical,
    )
    return lgb.train(params.lightgbm(), both, num_boost_round=refit_trees)


def fit_churn_model(
    spec: FeatureSpec,
    train: Part,
    validation: Part,
    calibration: Part,
    params: TrainParams,
    metadata: dict[str, Any],
) -> ChurnModel:
    """Booster on train (early stopping on validation), calibrator on the calibration window."""
    booster = fit_booster(spec, train, validation, params)
    margin = np.asarray(booster.predict(calibration.features, raw_score=True))
    calibrator = Calibrator(params.calibration).fit(margin, calibration.label)
    metadata = {
        **metadata,
        "base_rate": float(np.mean(train.label)),
        "trees": booster.num_trees(),
        "calibration": calibrator.describe(),
        "params": params.as_dict(),
    }
    profile = FeatureProfile.fit(train.features, spec.names)
    return ChurnModel(spec=spec, booster=booster, calibrator=calibrator, metadata=metadata, profile=profile)


def _signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


def fit_baseline(spec: FeatureSpec, train: Part, params: TrainParams) -> Pipeline:
    """Logistic regression on the same features: the bar LightGBM must clear."""
    categorical = [spec.names.index(c) for c in spec.categorical]
    numeric = [i for i in range(len(spec.names)) if i not in categorical]
    transformers: list[tuple[str, Any, list[int]]] = [
        (
            "numeric",
            make_pipeline(
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                FunctionTransformer(_signed_log),
                StandardScaler(),
            ),
            numeric,
        )
    ]
    if categorical:
        transformers.append(
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=-1.0, keep_empty_features=True),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            )
        )
    pipeline = Pipeline(
        [
            ("features", ColumnTransformer(transformers)),
            ("model", LogisticRegression(C=params.baseline_c, max_iter=2000)),
        ]
    )
    return pipeline.fit(train.features, train.label)
