"""What a data scientist tries first, fitted on the same rows as the shipped model.

LightGBM with its default settings and a logistic regression are the bars the shipped
model must clear: on event data they learn from every window before test (as the served
model does) and are scored on the test window; on a single table they are
cross-validated on the same folds as ``training.pipeline.cross_validate``. Used by
``bench/quality.py`` and the quality floors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.derive import FeatureSpec
from features.schema import frame_to_columns
from features.timeline import label_known_by, to_days
from models.linear import LinearBase
from training.dataset import LABEL
from training.fit import ranking_metrics
from training.prepare import Prepared

REFERENCES = ("lightgbm defaults", "logistic regression")
ROC_MARGIN, PR_MARGIN = 0.005, 0.01  # the shipped model may trail the better reference by this


def short_of_references(
    scores: dict[str, float], references: dict[str, dict[str, float]]
) -> list[str]:
    """Where the shipped model trails the better reference by more than the margin."""
    failures = []
    for metric, margin in (("roc_auc", ROC_MARGIN), ("pr_auc", PR_MARGIN)):
        best = max(r[metric] for r in references.values())
        if scores[metric] < best - margin:
            failures.append(f"{metric} {scores[metric]:.4f} < {best:.4f} - {margin}")
    return failures


def reference_scores(
    spec: FeatureSpec, features: np.ndarray, label: np.ndarray, scored: np.ndarray
) -> dict[str, np.ndarray]:
    """Scores of each reference model fitted on (features, label), for the rows ``scored``."""
    import lightgbm as lgb

    categorical = [spec.names.index(c) for c in spec.categorical]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LightGBM's notes on categorical features
        trees = lgb.LGBMClassifier(verbose=-1).fit(
            features, label, categorical_feature=categorical or "auto"
        )
        lgb_scores = trees.predict_proba(scored)[:, 1]
    linear = LinearBase().fit(features, label, categorical)
    return {"lightgbm defaults": lgb_scores, "logistic regression": linear.margin(scored)}


def references_on_test_window(
    prepared: Prepared, settled_only: bool = True
) -> dict[str, dict[str, float]]:
    """Event data: each reference learns from train + validation + calibration (the rows the
    served model refits on) and is scored on the test window.

    With ``settled_only`` it learns only from the rows whose labels were settled on the
    first test date. The last calibration dates are labelled by churn inside the test
    window, so a model that recognises accounts (LightGBM's defaults: 31 leaves, 20 rows
    per leaf) otherwise scores test outcomes it has seen: on demo seed 0, 0.782 with those
    rows and 0.754 without them, where 4 leaves and 300 rows per leaf move 0.780 -> 0.777.
    """
    before = pd.concat([prepared.frames[s] for s in ("train", "validation", "calibration")])
    if settled_only:
        horizon = int(prepared.metadata["horizon_days"])
        first_test = int(to_days(prepared.frames["test"]["as_of"]).min())
        before = before.loc[label_known_by(to_days(before["as_of"]), horizon, first_test)]
    spec = FeatureSpec.fit(prepared.columns("train"), prepared.columns("train").get("account_id"))
    learn = spec.matrix(frame_to_columns(before.drop(columns=[LABEL, "split"])))
    test = spec.matrix(prepared.columns("test"))
    scores = reference_scores(spec, learn, before[LABEL].to_numpy(np.int8), test)
    return {name: ranking_metrics(prepared.label("test"), s) for name, s in scores.items()}


def references_cross_validated(
    prepared: Prepared, folds: int, seed: int
) -> dict[str, dict[str, float]]:
    """A single table: out-of-fold scores on the folds ``cross_validate`` uses (pooled)."""
    from sklearn.model_selection import StratifiedKFold

    frame = pd.concat(prepared.frames.values(), ignore_index=True)
    label = frame[LABEL].to_numpy(np.int8)
    columns = frame_to_columns(frame.drop(columns=[LABEL, "split"]))
    out_of_fold = {name: np.zeros(len(label)) for name in REFERENCES}
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for learn, held in splitter.split(label, label):
        part = {name: values[learn] for name, values in columns.items()}
        spec = FeatureSpec.fit(part, part.get("account_id"))
        held_columns = {name: values[held] for name, values in columns.items()}
        scores = reference_scores(spec, spec.matrix(part), label[learn], spec.matrix(held_columns))
        for name, values in scores.items():
            out_of_fold[name][held] = values
    return {name: ranking_metrics(label, s) for name, s in out_of_fold.items()}


def truth_roc_auc(test: pd.DataFrame, truth: pd.DataFrame) -> float:
    """ROC-AUC of the demo generator's true probabilities on the test rows (the Bayes limit)."""
    rows = test[["account_id", "as_of", LABEL]].copy()
    truth = truth.copy()
    for frame in (rows, truth):
        frame["as_of"] = pd.to_datetime(frame["as_of"])
    joined = rows.merge(truth, on=["account_id", "as_of"], how="left", suffixes=("", "_truth"))
    if joined["p_true"].isna().any() or (joined[LABEL] != joined[f"{LABEL}_truth"]).any():
        raise ValueError("the truth table does not match the test rows (other demo data?)")
    return float(roc_auc_score(joined[LABEL], joined["p_true"]))
