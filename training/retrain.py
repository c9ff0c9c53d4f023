"""Retraining: a challenger trained on the latest data takes the champion alias only if it wins.

Both models are scored on the same rows: the challenger's test window, the latest
labelled observation dates, which the challenger never learnt from. The challenger is
promoted only when it passes the checks (enough churners to judge, calibrated) and
beats the champion's ROC-AUC by the configured margin; either way the verdict and the
champion's figures are recorded on the challenger's run. The alias is the last thing
touched, through its one owner (``models.champion``): it moves only if it still names the
champion that was judged, so a failure at any step, or a rollback made meanwhile, leaves
the champion where it was. A local lock and a registry lease (``models.lease``: it works
across machines, where each CronJob pod has a home of its own) keep two retrains apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from features.errors import ConflictError, ModelError
from features.settings import Settings
from models.champion import AliasOwner
from models.lease import Lease
from models.registry import LoadedModel, Registry, load_model
from training.describe import RETRAIN, with_decision
from training.evaluate import evaluate, finite
from training.params import TrainParams
from training.pipeline import Prepared, TrainResult, lifecycle_stage, train_and_record
from training.progress import Steps
from training.track import describe_run

log = logging.getLogger(__name__)
LOCK_FILE = "retrain.lock"
JUDGED_METRIC = "test_roc_auc"


@dataclass(frozen=True)
class Verdict:
    """Whether the challenger replaces the champion, and why, in one sentence."""

    promote: bool
    reason: str


@dataclass(frozen=True)
class RetrainResult:
    trained: TrainResult
    verdict: Verdict
    champion_version: str | None
    champion_metrics: dict[str, float]


def check_challenger(metrics: dict[str, float], min_churners: int, max_ece: float) -> list[str]:
    """Reasons the challenger's own figures are not trustworthy enough to promote it."""
    failures = []
    churners = metrics.get("test_rows", 0.0) * metrics.get("test_base_rate", 0.0)
    if churners < min_churners:
        failures.append(
            f"the test window holds {churners:.0f} churners, fewer than {min_churners} to judge by"
        )
    ece = metrics.get("test_ece", float("nan"))
    if not ece <= max_ece:
        failures.append(f"the challenger's test ECE {ece:.4f} is above {max_ece}")
    return failures


def judge(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    min_gain: float,
    failures: list[str],
) -> Verdict:
    """Promote only a challenger that passes its checks and beats the champion by ``min_gain``."""
    if failures:
        return Verdict(False, "challenger failed its checks: " + "; ".join(failures))
    if champion is None:
        return Verdict(True, "there is no champion yet")
    new, old = challenger[JUDGED_METRIC], champion[JUDGED_METRIC]
    if new > old + min_gain:
        return Verdict(
            True,
            f"{JUDGED_METRIC} {new:.4f} beats the champion's {old:.4f} by more than {min_gain}",
        )
    return Verdict(
        False,
        f"{JUDGED_METRIC} {new:.4f} does not beat the champion's {old:.4f} by more than {min_gain}",
    )


@contextlib.contextmanager
def retrain_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``; the OS releases it if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ConflictError(
                f"another retrain is running ({holder} holds {path}); try again when it ends"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def retrain_guard(settings: Settings) -> Iterator[Lease]:
    """The local lock (first guard, this home) and the registry's retrain lease (every
    machine); a second retrain refuses with who holds them (ConflictError, exit 6)."""
    with retrain_lock(settings.resolved_home / LOCK_FILE):
        lease = Lease(Registry.of(settings), settings.model_name, "retrain", settings.lease_seconds)
        with lease.hold():
            yield lease


def current_champion(owner: AliasOwner, settings: Settings) -> LoadedModel | None:
    """The champion as registered now (that exact version, verified), or None if there is
    none; a registry that cannot tell stops the retrain (RegistryError)."""
    version = owner.current()
    if version is None:
        return None
    return load_model(f"models:/{owner.name}/{version}", settings)


def champion_metrics(champion: LoadedModel, prepared: Prepared) -> dict[str, float]:
    """The champion's figures on the challenger's test window, under the same keys."""
    horizon = prepared.metadata.get("horizon_days")
    if champion.model.horizon_days != horizon:
        raise ModelError(
            f"the champion (version {champion.version}) predicts {champion.model.horizon_days} days ahead "
            f"and this retrain {horizon}: their scores are not comparable (to change the horizon, "
            "review a `churn train` run and promote it with --promote)"
        )
    columns = prepared.columns("test")
    probability = champion.model.predict_proba(columns)
    return finite(evaluate(prepared.label("test"), probability, lifecycle_stage(columns)))


def retrain(
    prepared: Prepared,
    params: TrainParams,
    settings: Settings,
    steps: Steps | None = None,
    run_name: str | None = None,
    lease: Lease | None = None,
    realized: Callable[[str], Mapping[str, float]] | None = None,
) -> RetrainResult:
    """Train a challenger, compare it with the champion on the same window, promote the winner.

    The caller holds :func:`retrain_guard` for the whole job (data preparation included)
    and passes its ``lease``, checked once more before the alias moves.
    ``realized(version)`` gives the champion's realized figures from the prediction log
    (``training.outcomes.champion_outcomes``), recorded on the run as ``champion_realized_*``.
    """
    steps = steps or Steps(enabled=False)
    owner = AliasOwner.of(settings)
    with steps.step("scoring the champion on the latest labelled window"):
        champion = current_champion(owner, settings)
        previous = champion_metrics(champion, prepared) if champion is not None else None
    trained = train_and_record(
        prepared, params, settings, promote="never", steps=steps, run_name=run_name, kind=RETRAIN
    )
    metrics = trained.trained.metrics
    failures = check_challenger(metrics, settings.retrain_min_churners, settings.retrain_max_ece)
    verdict = judge(metrics, previous, settings.retrain_min_gain, failures)
    registry, run_id = owner.registry, trained.registered.run_id
    judged = None if champion is None else str(champion.version)

    def decide(decision: str, reason: str) -> None:
        """The run's decision tags, and (once final) its note and its version's description."""
        registry.call(
            "tag the retrain run", registry.client.set_tag, run_id, "retrain.decision", decision
        )
        registry.call(
            "tag the retrain run", registry.client.set_tag, run_id, "retrain.reason", reason
        )
        if decision != "promoting":
            note = with_decision(
                trained.note, decision == "promoted", reason, settings.champion_alias, judged
            )
            describe_run(registry, settings.model_name, run_id, trained.registered.version, note)

    if judged is not None:
        registry.call(
            "tag the retrain run",
            registry.client.set_tag,
            run_id,
            "retrain.champion_version",
            judged,
        )
        figures = {**(previous or {}), **(realized(judged) if realized else {})}
        for key, value in figures.items():
            registry.call(
                "log the champion's figures",
                registry.client.log_metric,
                run_id,
                f"champion_{key}",
                value,
            )
    if verdict.promote:  # the last step: anything failing before leaves the champion as it was
        decide("promoting", verdict.reason)
        try:
            if lease is not None:
                lease.check()
            owner.move(
                trained.registered.version, f"churn retrain: {verdict.reason}", judged=judged
            )
        except ConflictError as exc:
            decide("kept champion", f"not promoted: {exc}")
            raise
        decide("promoted", verdict.reason)
    else:
        decide("kept champion", verdict.reason)
    log.info(
        "retrain: %s (%s)", "promoted" if verdict.promote else "kept the champion", verdict.reason
    )
    return RetrainResult(
        trained=trained,
        verdict=verdict,
        champion_version=judged,
        champion_metrics=previous or {},
    )
