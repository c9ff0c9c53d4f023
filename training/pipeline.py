"""The training pipeline: prepared splits -> fitted, evaluated, tracked, registered model.

The ``Prepared`` splits come from ``training.prepare`` (event tables) or ``training.table``
(a single labelled table); from there one path fits, evaluates, plots and records.
Everything that can refuse the data (too few rows, one class) runs before MLflow is
touched, so a refused training leaves no run, no version and no moved alias behind.
Evaluating a registered model on new labelled data is recorded here too, as a run that
registers nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.derive import FeatureSpec, View
from features.redact import redact
from features.schema import Columns, frame_to_columns
from features.settings import Settings
from features.timeline import day_of, lifecycle_stage_codes
from models.bundle import ChurnModel
from models.calibration import Calibrator
from models.registry import LoadedModel
from training import describe
from training.dataset import LABEL, SPLITS, SplitPlan
from training.evaluate import (
    evaluate,
    finite,
    plot_evaluation,
    plot_importance,
    plot_shap_summary,
    stage_table,
)
from training.fit import Boosting, Part, fit_baseline, fit_chosen_model
from training.hazard import Origin, SurvivalReport, survival_report
from training.params import TrainParams
from training.prepare import (
    Prepared,
    describe_events,
    prepare_events,
    refit_rows,
    search_folds,
    settled_train_rows,
    static_columns_warning,
)
from training.progress import Steps
from training.search import SearchResult
from training.survival_plots import metrics_table, plot_survival
from training.track import (
    EvaluationRecord,
    Promotion,
    Registered,
    RunRecord,
    artifacts_dir,
    record_evaluation,
    record_run,
)

# The data preparation moved to training.prepare; importers still find it here.
__all__ = [
    "EXAMPLE_ROWS",
    "SHAP_ROWS",
    "Fitted",
    "Prepared",
    "TrainResult",
    "Trained",
    "cross_validate",
    "describe_events",
    "fit_and_evaluate",
    "fit_splits",
    "fit_survival",
    "lifecycle_stage",
    "prepare_events",
    "record_model_evaluation",
    "refit_rows",
    "search_folds",
    "search_params",
    "settled_train_rows",
    "static_columns_warning",
    "survival_tags",
    "train_and_record",
    "write_artifacts",
]

log = logging.getLogger(__name__)
SHAP_ROWS = 2000
EXAMPLE_ROWS = 5


@dataclass
class Trained:
    """A fitted and evaluated model, its baseline, and the test-window predictions."""

    model: ChurnModel
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    test_probability: np.ndarray
    baseline_probability: np.ndarray
    search: SearchResult | None = None  # the candidates scored on held-out rows
    fitted: Fitted | None = None  # model and baseline, to score other rows (the backtest)
    survival: SurvivalReport | None = None


@dataclass(frozen=True)
class TrainResult:
    trained: Trained
    registered: Registered
    summary: pd.DataFrame
    note: str = ""  # what the run and its version say about themselves


def lifecycle_stage(columns: Columns) -> np.ndarray:
    return lifecycle_stage_codes(View(columns).tenure_days())


@dataclass
class Fitted:
    """A model and its calibrated baseline, fitted on one train/validation/calibration split."""

    model: ChurnModel
    baseline: Any
    baseline_calibrator: Calibrator
    search: SearchResult | None = None

    def probabilities(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(model, baseline) calibrated probabilities for a feature matrix."""
        model = self.model.calibrator.transform(self.model.margin(features))
        baseline = self.baseline_calibrator.transform(self.baseline.decision_function(features))
        return model, baseline


def fit_splits(
    columns: dict[str, Columns],
    labels: dict[str, np.ndarray],
    params: TrainParams,
    metadata: dict[str, Any],
    steps: Steps,
    inner_folds: int = 0,
    settled: np.ndarray | None = None,
    spec: FeatureSpec | None = None,
    boosting: Boosting | None = None,
    refit: dict[str, np.ndarray] | None = None,
) -> Fitted:
    """Spec on train; booster (form and capacity chosen on validation, or on ``inner_folds``
    of train + validation) and calibrators on calibration.

    A spec learnt elsewhere (from a whole training window on a cluster) and a boosting
    that trains there replace what this process would learn from ``columns["train"]``.
    ``refit`` (split -> rows, from :func:`refit_rows`) limits the final refit to those rows.
    """
    spec = spec or FeatureSpec.fit(columns["train"], columns["train"].get("account_id"))
    parts = {
        split: Part(spec.matrix(columns[split]), labels[split])
        for split in ("train", "validation", "calibration")
    }
    refit_parts = None
    if refit is not None:  # the cluster's training window stays first (DaskBoosting.refit)
        refit_parts = [parts[s].rows(refit[s]) for s in ("train", "validation", "calibration")]
        refit_parts = [refit_parts[0], *(p for p in refit_parts[1:] if len(p.label))]
    budget = max(params.search_candidates, 2)
    with steps.step(
        f"training LightGBM on {len(labels['train']):,} rows x {len(spec.names)} features"
        f" (up to {budget} candidates scored on held-out rows)"
    ):
        model, form = fit_chosen_model(
            spec,
            parts["train"],
            parts["validation"],
            parts["calibration"],
            params,
            metadata,
            inner_folds,
            settled,
            boosting=boosting,
            refit_parts=refit_parts,
        )
    with steps.step("training the logistic-regression baseline"):
        baseline, baseline_calibrator = fit_baseline(
            spec, parts["train"], parts["validation"], parts["calibration"], params, refit_parts
        )
    return Fitted(model, baseline, baseline_calibrator, form.search)


def fit_and_evaluate(prepared: Prepared, params: TrainParams, steps: Steps) -> Trained:
    """Fit spec, booster, calibrator and baseline; evaluate both on the test split."""
    with steps.step("deriving features"):
        columns = {split: prepared.columns(split) for split in SPLITS}
        labels = {split: prepared.label(split) for split in SPLITS}
    fitted = fit_splits(
        columns,
        labels,
        params,
        dict(prepared.metadata),
        steps,
        search_folds(prepared, params),
        settled_train_rows(prepared),
        prepared.spec,
        prepared.boosting,
        refit_rows(prepared),
    )
    with steps.step("evaluating on the test window"):
        stage = lifecycle_stage(columns["test"])
        probability, baseline_probability = fitted.probabilities(
            fitted.model.matrix(columns["test"])
        )
        metrics = finite(evaluate(labels["test"], probability, stage))
        baseline_metrics = finite(evaluate(labels["test"], baseline_probability, stage))
    survival = None
    if prepared.horizons and prepared.outcomes:
        chosen = fitted.search.params if fitted.search is not None else params
        survival = fit_survival(prepared, fitted.model, columns, chosen, steps)
        fitted.model.hazard = survival.model
        metrics.update(finite(survival.metrics))
    if prepared.cv_folds:
        with steps.step(f"{prepared.cv_folds}-fold cross-validation"):
            cv, cv_baseline = cross_validate(prepared, params, prepared.cv_folds)
        metrics.update(cv)
        baseline_metrics.update(cv_baseline)
    fitted.model.card = fitted.model.card.replace(
        metrics=metrics, baseline_metrics=baseline_metrics
    )
    return Trained(
        fitted.model,
        metrics,
        baseline_metrics,
        probability,
        baseline_probability,
        fitted.search,
        fitted,
        survival,
    )


def fit_survival(
    prepared: Prepared,
    model: ChurnModel,
    columns: dict[str, Columns],
    params: TrainParams,
    steps: Steps,
) -> SurvivalReport:
    """The time-to-churn model on the same snapshots and features, judged at both origins,
    with the capacity the search chose for the horizon model (``params``)."""
    origin = Origin(
        "test", columns, prepared.outcomes, day_of(prepared.metadata["window"]["data_end"])
    )
    plan = SplitPlan(**prepared.metadata["split_plan"])
    return survival_report(model.spec, origin, params, prepared.horizons, plan, steps)


def cross_validate(
    prepared: Prepared, params: TrainParams, folds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Out-of-fold calibrated predictions for every row; metrics keyed ``cv_*``.

    Each fold refits everything on the other folds (its own inner validation and
    calibration rows), so no row is scored by a model that saw it.
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split

    frame = pd.concat(prepared.frames.values(), ignore_index=True)
    label = frame[LABEL].to_numpy(np.int8)
    columns = frame_to_columns(frame.drop(columns=[LABEL, "split"]))
    model_oof, baseline_oof = np.zeros(len(label)), np.zeros(len(label))
    quiet = Steps(enabled=False)
    for fold_train, fold_test in StratifiedKFold(
        folds, shuffle=True, random_state=params.seed
    ).split(label, label):
        fit_rows, held = train_test_split(
            fold_train, test_size=0.2, stratify=label[fold_train], random_state=params.seed
        )
        valid_rows, calib_rows = train_test_split(
            held, test_size=0.5, stratify=label[held], random_state=params.seed
        )
        rows = {"train": fit_rows, "validation": valid_rows, "calibration": calib_rows}
        fitted = fit_splits(
            {k: _take(columns, r) for k, r in rows.items()},
            {k: label[r] for k, r in rows.items()},
            params,
            {},
            quiet,
            search_folds(prepared, params),
        )
        features = fitted.model.matrix(_take(columns, fold_test))
        model_oof[fold_test], baseline_oof[fold_test] = fitted.probabilities(features)
    stage = lifecycle_stage(columns)
    return finite(evaluate(label, model_oof, stage, prefix="cv")), finite(
        evaluate(label, baseline_oof, stage, prefix="cv")
    )


def survival_tags(report: SurvivalReport | None) -> dict[str, str]:
    """What the run says about its time-to-churn model: horizons, windows, what was skipped."""
    if report is None:
        return {"hazard": "none"}
    fit = report.model.fit
    tags = {
        "hazard": "monthly hazards (LightGBM, calibrated), beside the horizon model",
        "hazard.horizons": ",".join(str(h) for h in report.model.horizons),
        "hazard.months": str(report.model.months),
        "hazard.trees": str(fit.trees),
        "hazard.training_known_until": fit.training_known_until,
    }
    for one in report.judged:
        tags.update({f"hazard.{one.origin.name}.{k}": v for k, v in one.origin.describe().items()})
    tags.update({f"hazard.{name}.skipped": reason[:250] for name, reason in report.skipped.items()})
    return tags


def _take(columns: Columns, rows: np.ndarray) -> Columns:
    return {name: values[rows] for name, values in columns.items()}


def write_artifacts(prepared: Prepared, trained: Trained, out_dir: Path) -> None:
    """Plots and tables a data scientist opens in the MLflow UI."""
    plots = out_dir / "plots"
    label = prepared.label("test")
    plot_evaluation(
        label,
        {"LightGBM": trained.test_probability, "logistic baseline": trained.baseline_probability},
        plots,
    )
    model = trained.model
    gain = np.asarray(model.booster.feature_importance(importance_type="gain"), dtype=np.float64)
    plot_importance(model.spec.names, gain, plots)
    test_columns = prepared.columns("test")
    rows = np.random.default_rng(0).permutation(len(label))[:SHAP_ROWS]
    sample = {name: values[rows] for name, values in test_columns.items()}
    explained = model.score(sample, explain=True)
    plot_shap_summary(explained.contributions, explained.features, model.spec.names, plots)
    tables = out_dir / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    prepared.summary.to_csv(tables / "split_summary.csv")
    keys = sorted(set(trained.metrics) | set(trained.baseline_metrics))
    pd.DataFrame(
        {
            "metric": keys,
            "lightgbm": [trained.metrics.get(k) for k in keys],
            "baseline": [trained.baseline_metrics.get(k) for k in keys],
        }
    ).to_csv(tables / "metrics.csv", index=False)
    pd.DataFrame({"feature": model.spec.names, "gain": gain}).sort_values(
        "gain", ascending=False
    ).to_csv(tables / "feature_importance.csv", index=False)
    if trained.search is not None:
        trained.search.table().to_csv(tables / "search_candidates.csv", index=False)
    if trained.survival is not None:
        plot_survival(trained.survival, plots)
        metrics_table(trained.survival).to_csv(tables / "survival_metrics.csv")


def train_and_record(
    prepared: Prepared,
    params: TrainParams,
    settings: Settings,
    promote: Promotion = "first",
    steps: Steps | None = None,
    run_name: str | None = None,
    kind: str = describe.TRAIN,
) -> TrainResult:
    """Fit, evaluate, write artifacts, log the run and register the model.

    The run is named ``<kind> <data end> <model form>`` unless ``run_name`` is given.
    """
    steps = steps or Steps(enabled=False)
    trained = fit_and_evaluate(prepared, params, steps)
    model = trained.model
    card = model.card.to_json()
    note = describe.training_note(
        kind,
        card,
        prepared.summary,
        trained.metrics,
        trained.baseline_metrics,
        len(model.spec.names),
    )
    with artifacts_dir() as out_dir:
        with steps.step("plotting"):
            write_artifacts(prepared, trained, out_dir)
        with steps.step(f"logging to MLflow at {redact(settings.resolved_tracking_uri)}"):
            features = model.spec
            record = RunRecord(
                model=model,
                params={
                    **prepared.params,
                    **(model.card.params or params.as_dict()),
                    "features": len(features.names),
                    **search_params(trained.search),
                },
                metrics={
                    **trained.metrics,
                    **{
                        f"validation_log_loss_{form.replace('+', '_')}": loss
                        for form, loss in model.card.validation_log_loss.items()
                    },
                },
                baseline_params={
                    "model": "logistic_regression",
                    "C": params.baseline_c,
                    "calibration": params.calibration,
                },
                baseline_metrics=trained.baseline_metrics,
                tags={
                    **prepared.tags,
                    "model_type": "lightgbm+calibration",
                    "model_form": str(model.card.model_form),
                    **survival_tags(trained.survival),
                },
                artifacts_dir=out_dir,
                input_frame=pd.concat(prepared.frames.values(), ignore_index=True),
                input_example=prepared.frames["test"]
                .drop(columns=[LABEL, "split"])
                .head(EXAMPLE_ROWS),
                run_name=run_name
                or describe.run_name(kind, describe.data_end_of(card), model.card.model_form),
                note=note,
                baseline_note=describe.baseline_note(trained.baseline_metrics),
                model_description=describe.model_description(
                    settings.model_name,
                    settings.champion_alias,
                    model.horizon_days,
                    (model.card.mapping or {}).get("label"),
                    features.names,
                    str(settings.playbook) if settings.playbook else describe.DEFAULT_PLAYBOOK,
                ),
                stage_table=stage_table(
                    {"lightgbm": trained.metrics, "baseline": trained.baseline_metrics}
                ),
                extra_json={
                    "feature_spec.json": {
                        "features": features.names,
                        "categorical": features.categorical,
                        "inputs": features.inputs,
                        "dropped": features.dropped,
                    },
                    "model_card.json": model.card.to_json(),
                    **(
                        {"hazard_model.json": model.hazard.to_state()}
                        if model.hazard is not None
                        else {}
                    ),
                },
            )
            registered = record_run(record, settings, promote=promote)
    return TrainResult(trained=trained, registered=registered, summary=prepared.summary, note=note)


def record_model_evaluation(
    loaded: LoadedModel,
    data_end: dt.date,
    dates: Sequence[dt.date],
    label: np.ndarray,
    probability: np.ndarray,
    metrics: dict[str, float],
    params: dict[str, Any],
    settings: Settings,
) -> str:
    """An evaluation of ``loaded`` on labelled snapshots (``eval_*`` ``metrics``) as a run:
    figures, plots, note. It registers no model and moves no alias; returns the run id."""
    version = f"v{loaded.version}" if loaded.version else None
    shown = f"{loaded.name} version {loaded.version}" if loaded.version else redact(loaded.uri)
    model = loaded.model
    card = model.card.to_json()
    with artifacts_dir() as out_dir:
        plot_evaluation(label, {shown: probability}, out_dir / "plots")
        record = EvaluationRecord(
            run_name=describe.run_name(describe.EVALUATE, data_end, model.card.model_form, version),
            note=describe.evaluation_note(
                shown, card, data_end, dates, params.get("horizon_days"), metrics
            ),
            params={**params, "model_uri": redact(loaded.uri)},
            metrics=metrics,
            tags={
                "mode": "evaluation",
                "evaluated.model": str(loaded.name),
                "evaluated.version": str(loaded.version),
                "evaluated.run_id": str(loaded.run_id),
                "window.data_end": data_end.isoformat(),
                "window.first_as_of": str(dates[0]),
                "window.last_as_of": str(dates[-1]),
            },
            stage_table=stage_table({shown: metrics}, prefix="eval"),
            artifacts_dir=out_dir,
        )
        return record_evaluation(record, settings)


def search_params(search: SearchResult | None) -> dict[str, Any]:
    """What the run says about the search beside the chosen values (logged as params)."""
    if search is None:
        return {}
    return {
        "search.candidates": len(search.candidates),
        "search.scored_on": search.scored_on,
        "search.searched": ",".join(search.searched) or "none (model form only)",
        "search.fixed": ",".join(sorted(search.params.fixed)) or "none",
    }
