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

from features.derive import FeatureSpec
from features.errors import ModelError
from models.bundle import ChurnModel
from models.calibration import Calibrator
from models.card import build_card
from models.linear import LinearBase
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
    refit: bool = True  # after early stopping and calibration, refit on every window before test
    model_form: str = "auto"  # auto | trees | linear+trees (chosen on the validation window)
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


MODEL_FORMS = ("auto", "trees", "linear+trees")


@dataclass(frozen=True)
class Boosted:
    """An early-stopped booster and what the validation window said about it."""

    booster: lgb.Booster
    trees: int
    validation_loss: float


def _dataset(
    spec: FeatureSpec, part: Part, init: np.ndarray | None, reference: lgb.Dataset | None = None
) -> lgb.Dataset:
    return lgb.Dataset(
        part.features,
        part.label,
        init_score=init,
        feature_name=spec.names,
        categorical_feature=spec.categorical,
        reference=reference,
        free_raw_data=False,
    )


def early_stopped(
    spec: FeatureSpec, train: Part, validation: Part, params: TrainParams, linear: LinearBase | None
) -> Boosted:
    """LightGBM (native categoricals), boosted from the linear base's log-odds if given,
    stopped early on the validation log loss."""
    train_set = _dataset(spec, train, None if linear is None else linear.margin(train.features))
    valid_init = None if linear is None else linear.margin(validation.features)
    valid_set = _dataset(spec, validation, valid_init, reference=train_set)
    record: dict[str, Any] = {}
    booster = lgb.train(
        params.lightgbm(),
        train_set,
        num_boost_round=params.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=[
            lgb.early_stopping(params.early_stopping_rounds, verbose=False),
            lgb.record_evaluation(record),
        ],
    )
    trees = booster.best_iteration or params.num_boost_round
    losses = record["validation"]["binary_logloss"]
    return Boosted(booster, trees, float(losses[trees - 1]))


@dataclass(frozen=True)
class ModelForm:
    """What the validation window chose: trees alone or boosted from a linear base, and
    how many trees per training row."""

    name: str
    trees: int
    train_rows: int
    report: dict[str, Any]

    def trees_for(self, rows: int, cap: int) -> int:
        """The early-stopped size, scaled to a refit on more rows."""
        return max(1, min(cap, round(self.trees * rows / self.train_rows)))


def choose_model_form(
    spec: FeatureSpec, train: Part, validation: Part, params: TrainParams
) -> tuple[ModelForm, lgb.Booster, LinearBase | None]:
    """Trees alone, or trees boosted from a linear base: whichever the validation window
    prefers (``model_form=auto``), with its early-stopped booster.

    Some data is mostly additive (a flat export like Telco), some mostly interactions
    (event histories): the held-out log loss decides, never the test window.
    """
    if params.model_form not in MODEL_FORMS:
        raise ModelError(f"model_form {params.model_form!r} is not one of {MODEL_FORMS}")
    categorical = [spec.names.index(c) for c in spec.categorical]
    candidates: dict[str, tuple[Boosted, LinearBase | None]] = {}
    if params.model_form in ("auto", "trees"):
        candidates["trees"] = (early_stopped(spec, train, validation, params, None), None)
    if params.model_form in ("auto", "linear+trees"):
        linear = LinearBase(params.baseline_c).fit(train.features, train.label, categorical)
        candidates["linear+trees"] = (
            early_stopped(spec, train, validation, params, linear),
            linear,
        )
    name = min(candidates, key=lambda n: candidates[n][0].validation_loss)
    boosted, linear = candidates[name]
    report = {
        "model_form": name,
        "validation_log_loss": {n: c[0].validation_loss for n, c in candidates.items()},
        "early_stopping_trees": boosted.trees,
    }
    log.info("model form %s (validation log loss %s)", name, report["validation_log_loss"])
    booster = lgb.Booster(model_str=boosted.booster.model_to_string(num_iteration=boosted.trees))
    return ModelForm(name, boosted.trees, len(train.label), report), booster, linear


def fit_form(
    spec: FeatureSpec, parts: Sequence[Part], form: ModelForm, params: TrainParams
) -> tuple[lgb.Booster, LinearBase | None]:
    """The chosen form, fitted on the given windows together with the size early stopping found."""
    both = Part(*_stacked(parts))
    linear = None
    if form.name == "linear+trees":
        categorical = [spec.names.index(c) for c in spec.categorical]
        linear = LinearBase(params.baseline_c).fit(both.features, both.label, categorical)
    init = None if linear is None else linear.margin(both.features)
    trees = form.trees_for(len(both.label), params.num_boost_round)
    return lgb.train(params.lightgbm(), _dataset(spec, both, init), num_boost_round=trees), linear


def fit_churn_model(
    spec: FeatureSpec,
    train: Part,
    validation: Part,
    calibration: Part,
    params: TrainParams,
    metadata: dict[str, Any],
) -> ChurnModel:
    """Booster (form and size chosen on validation), calibrator on the calibration window.

    The calibrator maps the early-stopped booster's margins on the calibration window.
    With ``refit`` the served booster then learns from every window before test, keeping
    that calibrator: those windows hold the most recent labelled rows, and churn drifts.
    The test window stays unseen, so the test metrics judge exactly what is served.
    """
    form, booster, linear = choose_model_form(spec, train, validation, params)
    base_rate = float(np.mean(train.label))
    model = ChurnModel(
        spec=spec,
        booster=booster,
        calibrator=Calibrator(params.calibration),
        card=build_card({**metadata, "base_rate": base_rate}),
        linear=linear,
    )
    model.calibrator.fit(model.margin(calibration.features), calibration.label)
    if params.refit:
        model.booster, model.linear = fit_form(spec, [train, validation, calibration], form, params)
    model.card = model.card.replace(
        **form.report,
        trees=model.booster.num_trees(),
        calibration=model.calibrator.describe(),
        params=params.as_dict(),
    )
    model.profile = FeatureProfile.fit(train.features, spec.names)
    return model


def fit_baseline(
    spec: FeatureSpec, train: Part, validation: Part, calibration: Part, params: TrainParams
) -> tuple[LinearBase, Calibrator]:
    """Logistic regression on the same features: the bar LightGBM must clear.

    It gets the same windows as the model (calibrated on the calibration window as fitted
    on train, then refitted on every window before test with ``refit``): a fair bar.
    """
    categorical = [spec.names.index(c) for c in spec.categorical]
    baseline = LinearBase(params.baseline_c).fit(train.features, train.label, categorical)
    calibrator = Calibrator(params.calibration).fit(
        baseline.margin(calibration.features), calibration.label
    )
    if params.refit:
        baseline = LinearBase(params.baseline_c).fit(
            *_stacked([train, validation, calibration]), categorical
        )
    return baseline, calibrator


def _stacked(parts: Sequence[Part]) -> tuple[np.ndarray, np.ndarray]:
    return np.vstack([p.features for p in parts]), np.concatenate([p.label for p in parts])
