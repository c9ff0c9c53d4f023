"""`churn tune`: a longer search than `churn train`'s, with Optuna, every trial in MLflow.

The same held-out setup as training (the validation window with the train rows whose
labels were settled before it, or inner folds of a single table), the same objective
and the same space (training/search.py); Optuna's TPE sampler proposes, its median
pruner stops trials whose learning curve falls behind. Every trial is a nested MLflow
run under one parent (params, validation log loss, ROC-AUC, PR-AUC), and the best
parameters so far are written to a TOML file after every improvement, so an interrupted
tune (Ctrl-C, a killed job) keeps the trials done and the best found. `churn train
--params FILE` and `churn retrain --params FILE` take that file: every value in it is
fixed, so training reproduces the best trial.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.derive import FeatureSpec
from features.errors import ModelError
from features.files import write_atomic
from features.settings import Settings
from training import describe
from training.fit import Part, forms, holdout_folds, lightgbm_fits
from training.params import TrainParams
from training.prepare import Prepared, search_folds, settled_train_rows
from training.search import (
    PRUNE_WARMUP,
    SPACE,
    Evaluation,
    Objective,
    holdout_objective,
    min_leaf_rows,
    searched,
    starting_point,
)

log = logging.getLogger(__name__)
REPORT_EVERY = 10  # iterations between reports to the pruner
TUNED = ("model_form", *(d.name for d in SPACE))


@dataclass(frozen=True)
class HeldOut:
    """What every trial is scored on, built once."""

    objective: Objective
    rows: int  # training rows of a candidate (rows per leaf scale with them)
    scored_on: str


def held_out(prepared: Prepared, params: TrainParams) -> HeldOut:
    """The objective `churn train` scores candidates with, on the same rows."""
    train_columns = prepared.columns("train")
    spec = FeatureSpec.fit(train_columns, train_columns.get("account_id"))
    train = Part(spec.matrix(train_columns), prepared.label("train"))
    validation = Part(spec.matrix(prepared.columns("validation")), prepared.label("validation"))
    inner_folds, settled = search_folds(prepared, params), settled_train_rows(prepared)
    folds, scored_on = holdout_folds(train, validation, inner_folds, params.seed, settled)
    objective = holdout_objective(lightgbm_fits(spec, folds), len(folds))
    return HeldOut(objective, len(folds[0][0].label), scored_on)


def suggest(trial: Any, params: TrainParams, rows: int) -> TrainParams:
    """One candidate from Optuna, over the dimensions the user has not fixed."""
    values: dict[str, Any] = {}
    choices = forms(params)
    if len(choices) > 1:
        values["model_form"] = trial.suggest_categorical("model_form", choices)
    for dimension in searched(params):
        if dimension.name == "min_data_in_leaf":
            share = trial.suggest_float("min_leaf_share", dimension.low, dimension.high, log=True)
            values["min_data_in_leaf"] = min_leaf_rows(share, rows)
        elif dimension.integer:
            values[dimension.name] = trial.suggest_int(
                dimension.name, int(dimension.low), int(dimension.high), log=dimension.log
            )
        else:
            values[dimension.name] = trial.suggest_float(
                dimension.name, dimension.low, dimension.high, log=dimension.log
            )
    return params.with_values(**values)


def first_trial(params: TrainParams, rows: int) -> dict[str, Any]:
    """The defaults, tried first, so a tune never ends worse than the defaults."""
    start = starting_point(params, rows)
    values: dict[str, Any] = {}
    if len(forms(params)) > 1:
        values["model_form"] = "trees"
    for dimension in searched(params):
        if dimension.name == "min_data_in_leaf":
            values["min_leaf_share"] = dimension.clip(start.min_data_in_leaf / rows)
        else:
            values[dimension.name] = dimension.clip(getattr(start, dimension.name))
    return values


class TrialPruning:
    """Reports the learning curve to Optuna; its pruner decides."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def __call__(self, iteration: int, loss: float) -> bool:
        if iteration % REPORT_EVERY:
            return False
        self.trial.report(loss, iteration)
        return self.trial.should_prune()


@dataclass
class Best:
    """The best trial so far."""

    params: TrainParams
    evaluation: Evaluation
    number: int


@dataclass(frozen=True)
class TuneResult:
    best: Best | None
    trials: int
    pruned: int
    interrupted: bool
    out: Path
    run_id: str | None


def tuned_values(params: TrainParams) -> dict[str, Any]:
    return {name: getattr(params, name) for name in TUNED}


def trial_note(number: int, params: TrainParams, evaluation: Evaluation, state: str) -> str:
    """The trial's run description: what it tried and what validation said."""
    scores = ", ".join(
        f"{k.removeprefix('validation_')} {v:.4f}" for k, v in evaluation.metrics.items()
    )
    return (
        f"Trial {number} ({state}): {params.model_form}, {params.num_leaves} leaves, "
        f"{params.min_data_in_leaf} rows per leaf, learning rate {params.learning_rate:.3g}, "
        f"feature fraction {params.feature_fraction:.2f}, L2 {params.lambda_l2:.3g}: "
        f"validation log loss {evaluation.loss:.5f}" + (f", {scores}" if scores else "")
    )


def params_toml(best: Best, header: dict[str, Any]) -> str:
    """The best values as a `--params` file: every tuned value, fixed when read back."""
    lines = [f"# {key}: {value}" for key, value in header.items()]
    lines.append("[params]")
    lines.extend(f"{name} = {_toml_value(v)}" for name, v in tuned_values(best.params).items())
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def tune(
    prepared: Prepared,
    params: TrainParams,
    trials: int | None,
    timeout: float | None,
    out: Path,
    tracker: Any,
    on_trial: Callable[[int, TrainParams, Evaluation, str], None] | None = None,
) -> TuneResult:
    """Optuna trials on held-out rows; the best so far in ``out`` after every improvement.

    ``tracker`` records each trial (training/track.py ``TuneTracker``). Ctrl-C stops the
    study: the trials done stay recorded and the best so far stays written.
    """
    import optuna

    if trials is None and timeout is None:
        raise ModelError("give --trials N or --timeout SECONDS (or both)")
    setup = held_out(prepared, params)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own line per trial
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=params.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=PRUNE_WARMUP),
    )
    study.enqueue_trial(first_trial(params, setup.rows))
    state: dict[str, Any] = {"best": None, "pruned": 0}

    def objective(trial: Any) -> float:
        candidate = suggest(trial, params, setup.rows)
        evaluation = setup.objective(candidate, TrialPruning(trial))
        status = "pruned" if evaluation.pruned else "complete"
        tracker.trial(
            trial.number,
            tuned_values(candidate),
            {
                "validation_log_loss": evaluation.loss,
                "trees": evaluation.trees,
                **evaluation.metrics,
            },
            status,
            trial_note(trial.number, candidate, evaluation, status),
        )
        if on_trial is not None:
            on_trial(trial.number, candidate, evaluation, status)
        if evaluation.pruned:
            state["pruned"] += 1
            raise optuna.TrialPruned()
        best: Best | None = state["best"]
        if best is None or evaluation.loss < best.evaluation.loss:
            improved = Best(candidate, evaluation, trial.number)
            write_params(out, improved, setup, prepared)  # the file first: Ctrl-C may come
            state["best"] = improved
            tracker.best(trial.number, tuned_values(candidate), evaluation.loss)
        return evaluation.loss

    interrupted = False
    with stop_after_the_trial() as stop:
        try:
            study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[stop.callback])
        except KeyboardInterrupt:
            interrupted = True
    interrupted = interrupted or stop.requested
    if interrupted:
        log.warning("tune interrupted: the trials done and the best so far are kept")
    finished = [t for t in study.trials if t.state.is_finished()]
    return TuneResult(
        best=state["best"],
        trials=len(finished),
        pruned=state["pruned"],
        interrupted=interrupted,
        out=out,
        run_id=getattr(tracker, "run_id", None),
    )


class Stop:
    """Whether Ctrl-C asked the study to stop; its callback stops it after the trial."""

    def __init__(self) -> None:
        self.requested = False

    def callback(self, study: Any, trial: Any) -> None:
        if self.requested:
            study.stop()


@contextlib.contextmanager
def stop_after_the_trial() -> Iterator[Stop]:
    """Ctrl-C lets the running trial finish (its MLflow calls and the params file are never
    cut in half: an interrupt inside an HTTP call left the job hanging) and then stops the
    study; a second Ctrl-C stops at once."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_interrupt(signum: int, frame: Any) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True
        log.warning("stopping after the running trial (Ctrl-C again to stop now)")

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def write_params(out: Path, best: Best, setup: HeldOut, prepared: Prepared) -> None:
    header = {
        "written by": "churn tune",
        "best trial": best.number,
        "validation log loss": f"{best.evaluation.loss:.6f}",
        "scored on": setup.scored_on,
        "data": prepared.tags.get("window.data_end") or prepared.tags.get("source", "?"),
    }
    text = params_toml(best, header)
    write_atomic(out, lambda temp: temp.write_text(text))


def data_end(prepared: Prepared) -> str:
    """The date a tune run is named after: the data's end, or a table's export date."""
    window = prepared.metadata.get("window") or {}
    return str(window.get("data_end") or prepared.metadata.get("as_of") or "table")


DEFAULT_TRIALS = 50


def run_tune(
    prepared: Prepared,
    params: TrainParams,
    settings: Settings,
    trials: int | None,
    timeout: float | None,
    out: Path,
) -> TuneResult:
    """`churn tune`: the study inside its MLflow parent run, a line per trial on stderr."""
    from training.progress import terminal
    from training.track import finish_tune, tune_run

    console = terminal(stderr=True)
    if trials is None and timeout is None:
        trials = DEFAULT_TRIALS

    def show(number: int, candidate: TrainParams, evaluation: Evaluation, state: str) -> None:
        console.print(trial_note(number, candidate, evaluation, state), highlight=False)

    name = describe.run_name(describe.TUNE, data_end(prepared))
    run_params = {
        **prepared.params,
        "trials": trials if trials is not None else "until timeout",
        "timeout_seconds": timeout if timeout is not None else "none",
        "sampler": "TPE",
        "pruner": "median",
        "fixed": ",".join(sorted(params.fixed)) or "none",
    }
    note = "Tuning model form and capacity: in progress (trials are the nested runs)."
    with tune_run(settings, name, run_params, prepared.tags, note) as tracker:
        result = tune(prepared, params, trials, timeout, out, tracker, on_trial=show)
        if result.best is not None:  # again: an interruption may have cut the last write short
            best = result.best
            tracker.best(best.number, tuned_values(best.params), best.evaluation.loss)
        finish_tune(tracker.run_id, tune_note(result), out, result.interrupted)
    return result


def tune_note(result: TuneResult) -> str:
    """The parent run's description once the study ends."""
    state = "Interrupted after" if result.interrupted else "Finished"
    text = f"{state} {result.trials} trials ({result.pruned} pruned)."
    if result.best is None:
        return text + " No trial finished: no parameters written."
    best = result.best
    return (
        f"{text} Best: trial {best.number}, "
        + trial_note(best.number, best.params, best.evaluation, "best").split(": ", 1)[1]
        + f". Written to {result.out.name}: churn train --params {result.out.name}"
    )
