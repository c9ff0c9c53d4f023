"""Model capacity chosen on held-out data: a small budgeted search beside the model form.

No fixed capacity serves all data: event histories repeat each account at every
observation date and want shallow, strongly regularised trees; a flat export whose
churn lives in interactions (usage with plan and support calls) wants deeper ones. So
`churn train` scores a few candidates on held-out rows (the validation window, or inner
folds of a single table; never the test window) and keeps the best validation log loss.

The search knows parameters, not data. What fits one candidate and returns its held-out
loss is an :data:`Objective`: :func:`holdout_objective` fits LightGBM on numpy parts; a
distributed or a time-to-churn trainer plugs in its own and reuses the same search,
pruning and candidate table. ``churn tune`` (training/tune.py) drives the same objective
with Optuna over the same :data:`SPACE`.

The built-in search is a coordinate climb from the defaults, in the order that matters
most: model form, then leaves (doubling while the loss falls, else halving once), rows
per leaf (a share of the training rows), feature fraction, L2, learning rate. A
candidate must beat the incumbent by ``MIN_GAIN`` (relative) to replace it, so noise
on the validation rows does not buy capacity. Candidates falling clearly behind the
incumbent's learning curve are pruned before early stopping would end them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from training.params import TrainParams

log = logging.getLogger(__name__)

MIN_GAIN = 0.001  # a candidate replaces the incumbent only if its loss is this much lower
MIN_LEAF_SHARE = 0.005  # starting rows per leaf, as a share of the training rows
MIN_LEAF_FLOOR = 5  # never fewer rows per leaf than this
PRUNE_WARMUP = 50  # iterations before any candidate may be pruned
PRUNE_SLACK = 2.0  # a candidate may be this many times as far from the best as the incumbent
PRUNE_MARGIN = 0.005  # ... plus this share of the incumbent's best loss


class Pruned(Exception):
    """Raised inside a fit when its candidate cannot catch up; carries the best loss seen."""

    def __init__(self, loss: float, iteration: int) -> None:
        super().__init__(f"pruned at iteration {iteration} (validation loss {loss:.5f})")
        self.loss = loss
        self.iteration = iteration


class Pruning(Protocol):
    """Asked after each boosting iteration: should this candidate stop now?"""

    def __call__(self, iteration: int, loss: float) -> bool: ...


def never_prune(iteration: int, loss: float) -> bool:
    return False


@dataclass(frozen=True)
class Evaluation:
    """What one candidate scored on held-out rows."""

    loss: float  # validation log loss (mean over folds)
    trees: int  # early-stopped trees (mean over folds)
    curve: tuple[float, ...] = ()  # validation loss per iteration (first fold), for pruning
    pruned: bool = False
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. validation ROC-AUC, PR-AUC
    fitted: Any = None  # what the objective fitted, for the caller to reuse; never logged


class Objective(Protocol):
    """Fit one candidate and score it on held-out rows; a pruned one returns
    ``Evaluation(pruned=True)`` rather than raising."""

    def __call__(self, params: TrainParams, pruning: Pruning) -> Evaluation: ...


@dataclass(frozen=True)
class Dimension:
    """One searched parameter, its range and scale (``min_data_in_leaf`` as a row share)."""

    name: str
    low: float
    high: float
    log: bool = True
    integer: bool = False

    def clip(self, value: float) -> float:
        return min(self.high, max(self.low, value))


SPACE: tuple[Dimension, ...] = (
    Dimension("num_leaves", 2, 128, integer=True),
    Dimension("min_data_in_leaf", 0.0005, 0.05),  # share of the training rows
    Dimension("feature_fraction", 0.4, 1.0, log=False),
    Dimension("lambda_l2", 0.01, 100.0),
    Dimension("learning_rate", 0.01, 0.2),
)


def min_leaf_rows(share: float, rows: int) -> int:
    """Rows per leaf for a share of the training rows (the search's scale for it)."""
    return max(MIN_LEAF_FLOOR, round(share * rows))


def searched(params: TrainParams) -> tuple[Dimension, ...]:
    """The dimensions the user has not fixed."""
    return tuple(d for d in SPACE if d.name not in params.fixed)


def starting_point(params: TrainParams, rows: int) -> TrainParams:
    """The defaults, with rows per leaf scaled to the training rows unless fixed."""
    if "min_data_in_leaf" in params.fixed:
        return params
    return params.with_values(min_data_in_leaf=min_leaf_rows(MIN_LEAF_SHARE, rows))


@dataclass(frozen=True)
class Candidate:
    """One row of the candidates table."""

    number: int
    stage: str
    params: TrainParams
    evaluation: Evaluation
    seconds: float
    chosen: bool = False

    def row(self, rows: int) -> dict[str, Any]:
        return {
            "candidate": self.number,
            "stage": self.stage,
            "model_form": self.params.model_form,
            **{d.name: getattr(self.params, d.name) for d in SPACE},
            "min_leaf_share": round(self.params.min_data_in_leaf / max(rows, 1), 6),
            "validation_log_loss": self.evaluation.loss,
            **self.evaluation.metrics,
            "trees": self.evaluation.trees,
            "pruned": self.evaluation.pruned,
            "seconds": round(self.seconds, 2),
            "chosen": self.chosen,
        }


@dataclass
class SearchResult:
    """The chosen parameters, their evaluation, and every candidate tried."""

    params: TrainParams
    best: Evaluation
    candidates: list[Candidate]
    rows: int
    scored_on: str
    searched: tuple[str, ...] = field(default_factory=tuple)

    def without_fits(self) -> SearchResult:
        """The same result without the fitted models (kept for logging, not for reuse)."""
        return replace(
            self,
            best=replace(self.best, fitted=None),
            candidates=[
                replace(c, evaluation=replace(c.evaluation, fitted=None)) for c in self.candidates
            ],
        )

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([c.row(self.rows) for c in self.candidates])

    def report(self) -> dict[str, Any]:
        """What the model card keeps about the choice (the values are its params; how they
        were chosen goes to MLflow: ``search.*`` params and the candidates table)."""
        return {
            "model_form": self.params.model_form,
            "validation_log_loss": self.form_losses(),
            "early_stopping_trees": self.best.trees,
        }

    def capacity(self) -> dict[str, Any]:
        """The chosen values of the searched space."""
        return {d.name: getattr(self.params, d.name) for d in SPACE}

    def form_losses(self) -> dict[str, float]:
        """The best held-out loss each model form reached."""
        losses: dict[str, float] = {}
        for c in self.candidates:
            if not c.evaluation.pruned:
                form = c.params.model_form
                losses[form] = min(losses.get(form, math.inf), c.evaluation.loss)
        return losses


class CurvePruning:
    """Stop a candidate that is clearly behind the incumbent's learning curve.

    Early in a fit every curve is far from its minimum, and a candidate that learns more
    slowly (fewer leaves, a smaller feature fraction) may still end lower, so the
    allowance is proportional to how far the incumbent itself still was from its best at
    that iteration: the candidate is stopped when its excess over the incumbent's best
    loss is more than ``PRUNE_SLACK`` times the incumbent's, plus ``PRUNE_MARGIN``.
    """

    def __init__(self, incumbent: Evaluation) -> None:
        self.curve = incumbent.curve
        self.best = incumbent.loss

    def __call__(self, iteration: int, loss: float) -> bool:
        if iteration < PRUNE_WARMUP or not self.curve:
            return False
        still = self.curve[min(iteration, len(self.curve) - 1)] - self.best
        return loss - self.best > PRUNE_SLACK * max(still, 0.0) + PRUNE_MARGIN * self.best


def search(
    objective: Objective,
    params: TrainParams,
    forms: Sequence[str],
    rows: int,
    scored_on: str = "validation window",
    on_candidate: Callable[[Candidate], None] | None = None,
) -> SearchResult:
    """Model form, then capacity, chosen by held-out loss within ``search_candidates`` fits.

    ``forms`` are the model forms to compare (each tried once, at the starting point);
    ``rows`` the training rows a candidate learns from (rows per leaf scale with them).
    With ``search_candidates`` 0 or 1 only the form is chosen, at the given values (the
    fixed capacity of earlier versions).
    """
    budget = max(params.search_candidates, len(forms))
    start = starting_point(params, rows) if params.search_candidates > 1 else params
    candidates: list[Candidate] = []

    def attempt(stage: str, candidate: TrainParams, pruning: Pruning) -> Candidate:
        began = time.perf_counter()
        evaluation = objective(candidate, pruning)
        tried = Candidate(
            len(candidates) + 1, stage, candidate, evaluation, time.perf_counter() - began
        )
        candidates.append(tried)
        log.info(
            "candidate %d (%s): %s -> validation log loss %.5f%s",
            tried.number,
            stage,
            {d.name: getattr(candidate, d.name) for d in SPACE},
            evaluation.loss,
            " (pruned)" if evaluation.pruned else "",
        )
        if on_candidate is not None:
            on_candidate(tried)
        return tried

    best = [
        min(
            (attempt("model form", start.with_values(model_form=f), never_prune) for f in forms),
            key=lambda c: c.evaluation.loss,
        )
    ]  # the incumbent, read by the climb as it moves
    dimensions = {d.name for d in searched(params)}
    for stage, values in _climb(rows, dimensions, lambda: best[0]):
        if len(candidates) >= budget:
            break
        incumbent = best[0]
        pruning = CurvePruning(incumbent.evaluation)
        tried = attempt(stage, incumbent.params.with_values(**values), pruning)
        if not tried.evaluation.pruned and tried.evaluation.loss < incumbent.evaluation.loss * (
            1 - MIN_GAIN
        ):
            best[0] = tried
    incumbent = best[0]
    chosen = [replace(c, chosen=c is incumbent) for c in candidates]
    return SearchResult(
        params=incumbent.params,
        best=incumbent.evaluation,
        candidates=chosen,
        rows=rows,
        scored_on=scored_on,
        searched=tuple(sorted(dimensions)) if budget > len(forms) else (),
    )


def _climb(
    rows: int, dimensions: set[str], incumbent: Callable[[], Candidate]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Proposals relative to the current incumbent, one dimension at a time.

    A ladder climbs while its step wins (leaves double, rows per leaf quarter) and tries
    the other direction once when its first step loses.
    """
    if "num_leaves" in dimensions:
        yield from _ladder("leaves", "num_leaves", incumbent, lambda v: v * 2, lambda v: v // 2)
    if "min_data_in_leaf" in dimensions:
        yield from _ladder(
            "rows per leaf",
            "min_data_in_leaf",
            incumbent,
            lambda v: v // 4,
            lambda v: v * 4,
            rows,
        )
    for stage, name, values in (
        ("feature fraction", "feature_fraction", (0.5, 1.0)),
        ("L2", "lambda_l2", (10.0, 0.1)),
        ("learning rate", "learning_rate", (0.1,)),
    ):
        if name not in dimensions:
            continue
        for value in values:
            if value != getattr(incumbent().params, name):
                yield stage, {name: value}


def _ladder(
    stage: str,
    name: str,
    incumbent: Callable[[], Candidate],
    up: Callable[[int], int],
    down: Callable[[int], int],
    rows: int = 0,
) -> Iterator[tuple[str, dict[str, Any]]]:
    dimension = next(d for d in SPACE if d.name == name)
    for step in (up, down):
        moved = False
        while True:
            current = incumbent()
            value = _bounded(dimension, step(getattr(current.params, name)), rows)
            if value == getattr(current.params, name):
                break
            yield stage, {name: value}
            if incumbent() is current:  # the step lost: this direction is done
                break
            moved = True
        if moved:
            return


def _bounded(dimension: Dimension, value: int, rows: int) -> int:
    """A ladder step kept inside the space (rows per leaf as a share of ``rows``)."""
    if dimension.name == "min_data_in_leaf":
        share = dimension.clip(value / max(rows, 1))
        return min_leaf_rows(share, rows)
    return int(dimension.clip(value))


# --- the objective on numpy parts ---------------------------------------------------------------


def holdout_objective(
    fit: Callable[[TrainParams, int, Pruning], Evaluation], folds: int
) -> Objective:
    """Mean held-out loss over ``folds`` (fit(params, fold, pruning) fits one); only the
    first fold is pruned, so a pruned candidate costs less than one fold."""

    def evaluate(params: TrainParams, pruning: Pruning) -> Evaluation:
        results = []
        for fold in range(folds):
            result = fit(params, fold, pruning if fold == 0 else never_prune)
            if result.pruned:
                return result
            results.append(result)
        return Evaluation(
            loss=float(np.mean([r.loss for r in results])),
            trees=round(float(np.mean([r.trees for r in results]))),
            curve=results[0].curve,
            metrics={
                name: float(np.mean([r.metrics[name] for r in results]))
                for name in results[0].metrics
            },
            fitted=results[0].fitted if folds == 1 else None,
        )

    return evaluate
