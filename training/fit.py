"""Fit the model: LightGBM (native categoricals, early stopping), a calibrator, a baseline.

Hyperparameters (``TrainParams``, loaded from defaults, a TOML file and ``--param``
pairs) live in training/params.py.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
from training.params import TrainParams
from training.search import (
    Evaluation,
    Pruned,
    Pruning,
    SearchResult,
    holdout_objective,
    min_leaf_rows,
    search,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """One split as the fitter needs it: feature matrix and labels."""

    features: np.ndarray
    label: np.ndarray

    def rows(self, keep: np.ndarray) -> Part:
        return Part(self.features[keep], self.label[keep])


MODEL_FORMS = ("auto", "trees", "linear+trees")


@dataclass(frozen=True)
class Boosted:
    """An early-stopped booster and what the validation window said about it."""

    booster: lgb.Booster
    trees: int
    validation_loss: float
    curve: tuple[float, ...] = ()  # validation log loss per iteration
    train_rows: int | None = None  # rows learnt from, when more than this process holds


class Boosting:
    """Where boosters learn: here, on the parts handed over. A cluster boosting
    (training.distributed.DaskBoosting) trains on the whole window its workers hold, and
    the ``train`` part handed here is then a sample of it (the linear parts and the
    profile fit on that)."""

    def early_stopped(
        self,
        spec: FeatureSpec,
        train: Part,
        validation: Part,
        params: TrainParams,
        linear: LinearBase | None,
        pruning: Pruning | None = None,
    ) -> Boosted:
        return early_stopped(spec, train, validation, params, linear, pruning)

    @property
    def local(self) -> bool:
        """True when boosters learn from the parts handed over (so a search may hand it a
        subset of the train rows, and prune)."""
        return True

    def settled(self) -> Boosting:
        """Where candidates learn when only the train rows settled on the first validation
        date may be learnt from: here the search hands those rows over itself; a cluster
        returns the boosting of its own settled rows."""
        return self

    def refit(
        self,
        spec: FeatureSpec,
        parts: Sequence[Part],
        form: ModelForm,
        params: TrainParams,
        linear: LinearBase | None,
    ) -> lgb.Booster:
        both = Part(*_stacked(parts))
        init = None if linear is None else linear.margin(both.features)
        trees = form.trees_for(len(both.label), params.num_boost_round)
        return lgb.train(params.lightgbm(), _dataset(spec, both, init), num_boost_round=trees)


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
    spec: FeatureSpec,
    train: Part,
    validation: Part,
    params: TrainParams,
    linear: LinearBase | None,
    pruning: Pruning | None = None,
) -> Boosted:
    """LightGBM (native categoricals), boosted from the linear base's log-odds if given,
    stopped early on the validation log loss (or raising ``Pruned`` when ``pruning`` says so)."""
    train_set = _dataset(spec, train, None if linear is None else linear.margin(train.features))
    valid_init = None if linear is None else linear.margin(validation.features)
    valid_set = _dataset(spec, validation, valid_init, reference=train_set)
    record: dict[str, Any] = {}
    callbacks = [
        lgb.early_stopping(params.early_stopping_rounds, verbose=False),
        lgb.record_evaluation(record),
    ]
    if pruning is not None:
        callbacks.append(_stopped_by(pruning))
    booster = lgb.train(
        params.lightgbm(),
        train_set,
        num_boost_round=params.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=callbacks,
    )
    trees = booster.best_iteration or params.num_boost_round
    losses = record["validation"]["binary_logloss"]
    return Boosted(booster, trees, float(losses[trees - 1]), tuple(losses))


def _stopped_by(pruning: Pruning) -> Callable[[Any], None]:
    """A LightGBM callback asking ``pruning`` after every iteration."""
    best = [math.inf]

    def callback(env: Any) -> None:
        loss = float(env.evaluation_result_list[0][2])
        best[0] = min(best[0], loss)
        if pruning(env.iteration, loss):
            raise Pruned(best[0], env.iteration)

    return callback


@dataclass(frozen=True)
class ModelForm:
    """What held-out data chose: trees alone or boosted from a linear base, the capacity,
    and how many trees per training row."""

    name: str
    trees: int
    train_rows: int
    report: dict[str, Any]
    params: TrainParams  # the chosen values
    search: SearchResult

    def trees_for(self, rows: int, cap: int) -> int:
        """The early-stopped size, scaled to a refit on more rows."""
        return max(1, min(cap, round(self.trees * rows / self.train_rows)))


def forms(params: TrainParams) -> list[str]:
    """The model forms to try: both for ``auto``, else the one asked for."""
    if params.model_form not in MODEL_FORMS:
        raise ModelError(f"model_form {params.model_form!r} is not one of {MODEL_FORMS}")
    return ["trees", "linear+trees"] if params.model_form == "auto" else [params.model_form]


def holdout_folds(
    train: Part,
    validation: Part,
    inner_folds: int,
    seed: int,
    settled: np.ndarray | None = None,
) -> tuple[list[tuple[Part, Part]], str]:
    """Where candidates are scored: the validation window, learning only from the train rows
    whose labels were ``settled`` before it; or (a single table, whose validation rows are
    few) stratified inner folds of train + validation."""
    if inner_folds < 2:
        if settled is None:
            return [(train, validation)], "validation window"
        judged = Part(train.features[settled], train.label[settled])
        return [(judged, validation)], "validation window (train rows settled before it)"
    from sklearn.model_selection import StratifiedKFold

    both = Part(*_stacked([train, validation]))
    splitter = StratifiedKFold(inner_folds, shuffle=True, random_state=seed)
    folds = [
        (Part(both.features[fit], both.label[fit]), Part(both.features[held], both.label[held]))
        for fit, held in splitter.split(both.label, both.label)
    ]
    return folds, f"{inner_folds} inner folds of train + validation"


def lightgbm_fits(
    spec: FeatureSpec, folds: Sequence[tuple[Part, Part]], boosting: Boosting | None = None
) -> Callable[[TrainParams, int, Pruning], Evaluation]:
    """Fit one candidate on one fold (LightGBM early-stopped on the fold's held-out rows);
    the linear base of each fold is fitted once and shared by every candidate. A cluster
    ``boosting`` learns from the whole training window its workers hold, without pruning."""
    boosting = boosting or Boosting()
    categorical = [spec.names.index(c) for c in spec.categorical]
    linears: dict[tuple[int, float], LinearBase] = {}

    def fit(params: TrainParams, fold: int, pruning: Pruning) -> Evaluation:
        train, validation = folds[fold]
        linear = None
        if params.model_form == "linear+trees":
            key = (fold, params.baseline_c)
            if key not in linears:
                linears[key] = LinearBase(params.baseline_c).fit(
                    train.features, train.label, categorical
                )
            linear = linears[key]
        try:
            boosted = boosting.early_stopped(
                spec, train, validation, params, linear, pruning if boosting.local else None
            )
        except Pruned as pruned:
            return Evaluation(pruned.loss, pruned.iteration + 1, pruned=True)
        margin = boosted.booster.predict(
            validation.features, num_iteration=boosted.trees, raw_score=True
        )
        if linear is not None:
            margin = margin + linear.margin(validation.features)
        return Evaluation(
            boosted.validation_loss,
            boosted.trees,
            boosted.curve,
            metrics=ranking_metrics(validation.label, margin, prefix="validation_"),
            fitted=(boosted, linear),
        )

    return fit


def ranking_metrics(label: np.ndarray, score: np.ndarray, prefix: str = "") -> dict[str, float]:
    """ROC-AUC and PR-AUC (NaN where a part holds a single class)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if len(np.unique(label)) < 2:
        return {f"{prefix}roc_auc": math.nan, f"{prefix}pr_auc": math.nan}
    return {
        f"{prefix}roc_auc": float(roc_auc_score(label, score)),
        f"{prefix}pr_auc": float(average_precision_score(label, score)),
    }


def choose_model_form(
    spec: FeatureSpec,
    train: Part,
    validation: Part,
    params: TrainParams,
    inner_folds: int = 0,
    settled: np.ndarray | None = None,
    boosting: Boosting | None = None,
) -> tuple[ModelForm, lgb.Booster, LinearBase | None]:
    """Model form and capacity, whichever held-out data prefers, with the early-stopped booster.

    Some data is mostly additive (a flat export like Telco), some mostly interactions;
    some repeats accounts at every date and wants shallow trees, some wants deep ones: the
    held-out log loss decides (training/search.py), never the test window. ``settled``
    marks the train rows whose labels were known on the first validation date: candidates
    learn only from those (the others' outcomes fall inside the validation window, which
    would reward a model for recognising accounts). The chosen candidate is then stopped
    early on every train row, as before the search. A cluster ``boosting`` (Dask) learns
    every candidate from the settled rows of the training window its workers hold
    (``Boosting.settled``), without pruning.
    """
    boosting = boosting or Boosting()
    searching = boosting
    if not boosting.local:
        inner_folds = 0
        if settled is not None:
            searching = boosting.settled()
    folds, scored_on = holdout_folds(train, validation, inner_folds, params.seed, settled)
    searched_rows = len(folds[0][0].label)
    result = search(
        holdout_objective(lightgbm_fits(spec, folds, searching), len(folds)),
        params,
        forms(params),
        searched_rows,
        scored_on,
    )
    chosen = result.params
    if result.best.fitted is not None and settled is None:
        boosted, linear = result.best.fitted
    else:  # scored on other rows: fit the chosen candidate on train, stopped on validation
        if "min_data_in_leaf" in result.searched:
            share = chosen.min_data_in_leaf / searched_rows
            chosen = chosen.with_values(min_data_in_leaf=min_leaf_rows(share, len(train.label)))
        linear = None
        if chosen.model_form == "linear+trees":
            categorical = [spec.names.index(c) for c in spec.categorical]
            linear = LinearBase(chosen.baseline_c).fit(train.features, train.label, categorical)
        boosted = boosting.early_stopped(spec, train, validation, chosen, linear)
    report = {**result.report(), "early_stopping_trees": boosted.trees}
    log.info(
        "model form %s, capacity %s (validation log loss %s)",
        chosen.model_form,
        result.capacity(),
        report["validation_log_loss"],
    )
    booster = lgb.Booster(model_str=boosted.booster.model_to_string(num_iteration=boosted.trees))
    rows = boosted.train_rows or len(train.label)
    form = ModelForm(chosen.model_form, boosted.trees, rows, report, chosen, result.without_fits())
    return form, booster, linear


def fit_form(
    spec: FeatureSpec,
    parts: Sequence[Part],
    form: ModelForm,
    params: TrainParams,
    boosting: Boosting | None = None,
) -> tuple[lgb.Booster, LinearBase | None]:
    """The chosen form, fitted on the given windows together with the size early stopping found."""
    linear = None
    if form.name == "linear+trees":
        categorical = [spec.names.index(c) for c in spec.categorical]
        linear = LinearBase(params.baseline_c).fit(*_stacked(parts), categorical)
    return (boosting or Boosting()).refit(spec, parts, form, params, linear), linear


def fit_chosen_model(
    spec: FeatureSpec,
    train: Part,
    validation: Part,
    calibration: Part,
    params: TrainParams,
    metadata: dict[str, Any],
    inner_folds: int = 0,
    settled: np.ndarray | None = None,
    boosting: Boosting | None = None,
    refit_parts: Sequence[Part] | None = None,
) -> tuple[ChurnModel, ModelForm]:
    """Booster (form and capacity chosen on held-out rows), calibrator on the calibration
    window; with the model, what the search chose and tried (logged by the pipeline).

    The calibrator maps the early-stopped booster's margins on the calibration window.
    With ``refit`` the served booster then learns from every window before test, keeping
    that calibrator: those windows hold the most recent labelled rows, and churn drifts.
    The test window stays unseen, so the test metrics judge exactly what is served.
    ``refit_parts`` (default: the three windows whole) are the rows of the refit: on event
    data only those whose labels were settled on the first test date
    (``training.prepare.refit_rows``), else the last calibration dates, labelled by churn
    inside the test window, would let the served booster recognise test outcomes.
    ``inner_folds``, ``settled`` and ``boosting``: see :func:`choose_model_form`.
    """
    form, booster, linear = choose_model_form(
        spec, train, validation, params, inner_folds, settled=settled, boosting=boosting
    )
    params = form.params
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
        model.booster, model.linear = fit_form(
            spec, refit_parts or [train, validation, calibration], form, params, boosting
        )
    model.card = model.card.replace(
        **form.report,
        trees=model.booster.num_trees(),
        calibration=model.calibrator.describe(),
        params=params.as_dict(),
    )
    model.profile = FeatureProfile.fit(train.features, spec.names)
    return model, form


def fit_baseline(
    spec: FeatureSpec,
    train: Part,
    validation: Part,
    calibration: Part,
    params: TrainParams,
    refit_parts: Sequence[Part] | None = None,
) -> tuple[LinearBase, Calibrator]:
    """Logistic regression on the same features: the bar LightGBM must clear.

    It gets the same windows as the model (calibrated on the calibration window as fitted
    on train, then refitted on the same rows as the model with ``refit``): a fair bar.
    """
    categorical = [spec.names.index(c) for c in spec.categorical]
    baseline = LinearBase(params.baseline_c).fit(train.features, train.label, categorical)
    calibrator = Calibrator(params.calibration).fit(
        baseline.margin(calibration.features), calibration.label
    )
    if params.refit:
        baseline = LinearBase(params.baseline_c).fit(
            *_stacked(refit_parts or [train, validation, calibration]), categorical
        )
    return baseline, calibrator


def _stacked(parts: Sequence[Part]) -> tuple[np.ndarray, np.ndarray]:
    return np.vstack([p.features for p in parts]), np.concatenate([p.label for p in parts])
