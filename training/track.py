"""MLflow: one run per training, the baseline nested in it, the model registered.

Everything a data scientist compares in the MLflow UI is logged under stable names:
params (model and data settings), metrics (DESIGN.md section 10 keys), the input
dataset, tags (data window, horizon, git commit, package version), plots and tables
as artifacts (the per-stage metrics as a table the UI shows), and the model as a pyfunc
with signature and input example. Runs are named and described in words
(``training.describe``), the experiment is marked as a model-training one, and
evaluations of a registered model are runs of their own (they register nothing). The
version gets the bundle's SHA-256 as a tag; the ``champion`` alias moves only when no
champion exists or when asked to. Any failure before the alias moves leaves it untouched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from features.files import file_sha256
from features.settings import Settings
from models.archive import key_id
from models.bundle import ChurnModel
from models.champion import PROMOTION_TAG, AliasOwner
from models.pyfunc import BUNDLE_ARTIFACT, ChurnPyfunc
from models.registry import BUNDLE_FILE, SHA_TAG, SIGNED_TAG, Registry
from training.describe import (
    BASELINE,
    EXPERIMENT_KIND_TAG,
    EXPERIMENT_NOTE,
    NOTE_TAG,
    experiment_kind_to_set,
    trial_name,
)

log = logging.getLogger(__name__)
MODEL_ARTIFACT = "model"
STAGE_TABLE = "tables/metrics_by_stage.json"  # mlflow.log_table: shown as a table in the UI
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RunRecord:
    """What one training run hands to MLflow."""

    model: ChurnModel
    params: dict[str, Any]
    metrics: dict[str, float]
    baseline_params: dict[str, Any]
    baseline_metrics: dict[str, float]
    tags: dict[str, str]
    artifacts_dir: Path
    input_frame: pd.DataFrame  # the labelled snapshots (logged as the run's input dataset)
    input_example: pd.DataFrame  # a few snapshot rows (model input example)
    run_name: str | None = None
    extra_json: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # the run's description, and its registered version's
    baseline_note: str = ""
    model_description: str = ""  # the registered model's: what it predicts, from what
    stage_table: pd.DataFrame | None = None


@dataclass
class EvaluationRecord:
    """What one `churn evaluate` hands to MLflow: a run of its own, no model, no alias."""

    run_name: str
    note: str
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    stage_table: pd.DataFrame
    artifacts_dir: Path


@dataclass(frozen=True)
class Registered:
    run_id: str
    experiment_id: str
    version: str
    promoted: bool
    model_uri: str


def configure(settings: Settings) -> str:
    """Point MLflow at the configured store; create the experiment if needed."""
    import mlflow

    if not settings.tracking_uri:
        settings.resolved_home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri or settings.resolved_tracking_uri)
    return Registry.of(settings).call(  # a refusal or a dead server: a RegistryError (exit 5)
        f"open the experiment '{settings.experiment}'", _open_experiment, settings
    )


def _open_experiment(settings: Settings) -> str:
    import mlflow

    experiment = mlflow.get_experiment_by_name(settings.experiment)
    if experiment is None:
        experiment_id = mlflow.create_experiment(
            settings.experiment, artifact_location=settings.artifact_location
        )
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    mark_training_experiment({} if experiment is None else experiment.tags)
    return experiment_id


def mark_training_experiment(tags: Mapping[str, str]) -> None:
    """Mark the current experiment as model training (its kind for the UI, which otherwise
    guesses GenAI) and describe it, unless someone already chose otherwise."""
    import mlflow

    kind = experiment_kind_to_set(tags.get(EXPERIMENT_KIND_TAG))
    if kind is not None:
        mlflow.set_experiment_tag(EXPERIMENT_KIND_TAG, kind)
    if not tags.get(NOTE_TAG):
        mlflow.set_experiment_tag(NOTE_TAG, EXPERIMENT_NOTE)


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PACKAGE_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def code_version() -> str:
    try:
        return package_metadata.version("churn")
    except package_metadata.PackageNotFoundError:
        return "unknown"


def pip_requirements() -> list[str]:
    names = (
        "lightgbm",
        "scikit-learn",
        "pandas",
        "numpy",
        "pydantic",
        "orjson",
        "pyarrow",
    )
    pins = []
    for name in names:
        with contextlib.suppress(package_metadata.PackageNotFoundError):
            pins.append(f"{name}=={package_metadata.version(name)}")
    return pins


Promotion = Literal["first", "always", "never"]


def record_run(record: RunRecord, settings: Settings, promote: Promotion = "first") -> Registered:
    """Log the run, register a new model version, and move the alias if it should move:
    ``first`` only when there is no champion, ``always`` (``--promote``), ``never`` (a
    retrain decides after judging)."""
    import mlflow
    from mlflow.models import infer_signature

    experiment_id = configure(settings)
    registry = Registry.of(settings)
    signer = registry.keys.signer
    with tempfile.TemporaryDirectory(prefix="churn-bundle-") as scratch:
        bundle_path = record.model.save(Path(scratch) / BUNDLE_FILE, signing_key=signer)
        sha = file_sha256(bundle_path)
        version_tags = {
            SHA_TAG: sha,
            PROMOTION_TAG: "registered",
            **({SIGNED_TAG: key_id(signer)} if signer else {}),
        }
        with (
            registry.reported("record the training run"),
            mlflow.start_run(run_name=record.run_name) as run,
        ):
            run_id = run.info.run_id
            mlflow.set_tags(
                {
                    **record.tags,
                    "bundle_sha256": sha,
                    "git_commit": git_commit(),
                    "code_version": code_version(),
                    NOTE_TAG: record.note,
                }
            )
            mlflow.log_params(_flat(record.params))
            mlflow.log_metrics(record.metrics)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
                dataset = mlflow.data.from_pandas(
                    record.input_frame, name="labelled_snapshots", targets="churned"
                )
            mlflow.log_input(dataset, context="training")
            mlflow.log_artifacts(str(record.artifacts_dir))
            for name, payload in record.extra_json.items():
                mlflow.log_dict(payload, name)
            if record.stage_table is not None:
                mlflow.log_table(record.stage_table, STAGE_TABLE)
            with mlflow.start_run(run_name=BASELINE, nested=True):
                mlflow.set_tags({"role": "baseline", NOTE_TAG: record.baseline_note})
                mlflow.log_params(_flat(record.baseline_params))
                mlflow.log_metrics(record.baseline_metrics)
            output = _example_output(record)
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=ChurnPyfunc(),
                artifacts={BUNDLE_ARTIFACT: str(bundle_path)},
                signature=optional_inputs(infer_signature(record.input_example, output)),
                input_example=record.input_example,
                code_paths=[str(PACKAGE_ROOT / "features"), str(PACKAGE_ROOT / "models")],
                pip_requirements=pip_requirements(),
            )
            version = _register(settings.model_name, info.model_uri, run_id, version_tags)
            describe_version(registry, settings.model_name, version, record.note)
            if record.model_description:
                registry.call(
                    "describe the registered model",
                    registry.client.update_registered_model,
                    settings.model_name,
                    description=record.model_description,
                )
        promoted = _maybe_promote(AliasOwner.of(settings, registry), version, promote)
    return Registered(
        run_id, experiment_id, version, promoted, f"models:/{settings.model_name}/{version}"
    )


def describe_version(registry: Registry, model_name: str, version: str, note: str) -> None:
    """The registered version carries its run's summary as its description."""
    if note:
        registry.call(
            f"describe {model_name} version {version}",
            registry.client.update_model_version,
            model_name,
            version,
            description=note,
        )


def describe_run(registry: Registry, model_name: str, run_id: str, version: str, note: str) -> None:
    """Replace a training run's note and its version's description (a retrain adds its
    decision once the verdict is known)."""
    registry.call("describe the run", registry.client.set_tag, run_id, NOTE_TAG, note)
    describe_version(registry, model_name, version, note)


def record_evaluation(record: EvaluationRecord, settings: Settings) -> str:
    """Log an evaluation as a run of its own; it registers no model and moves no alias."""
    import mlflow

    configure(settings)
    with (
        Registry.of(settings).reported("record the evaluation"),
        mlflow.start_run(run_name=record.run_name) as run,
    ):
        mlflow.set_tags(
            {
                **record.tags,
                "git_commit": git_commit(),
                "code_version": code_version(),
                NOTE_TAG: record.note,
            }
        )
        mlflow.log_params(_flat(record.params))
        mlflow.log_metrics(record.metrics)
        mlflow.log_artifacts(str(record.artifacts_dir))
        mlflow.log_table(record.stage_table, STAGE_TABLE)
    return run.info.run_id


def optional_inputs(signature: Any) -> Any:
    """Every snapshot field but account_id may be missing (a CRM rarely has everything)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    columns = [
        ColSpec(c.type, c.name, required=c.name == "account_id") for c in signature.inputs.inputs
    ]
    return ModelSignature(inputs=Schema(columns), outputs=signature.outputs)


def _example_output(record: RunRecord) -> pd.DataFrame:
    from features.schema import frame_to_columns

    probability = record.model.predict_proba(frame_to_columns(record.input_example))
    return pd.DataFrame(
        {
            "account_id": record.input_example["account_id"].astype(str).to_numpy(),
            "churn_probability": probability,
            "risk_tier": record.model.risk_tiers(probability),
        }
    )


def _register(name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> str:
    """A new version carrying its bundle's checksum (and signing key id), verified before
    every load."""
    import mlflow

    return str(mlflow.register_model(model_uri, name, tags={**tags, "run_id": run_id}).version)


def _maybe_promote(owner: AliasOwner, version: str, promote: Promotion) -> bool:
    """Move the alias through its owner; a registry that cannot say whether there is a
    champion stops here (RegistryError), it never reads as "no champion"."""
    if promote == "never":
        return False
    champion = owner.current()
    if promote == "first":
        if champion is not None:
            return False
        owner.move(version, "the first model: there was no champion", judged=None)
        return True
    owner.move(version, "churn train --promote")
    return True


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> dotted keys; MLflow params are flat strings."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = json.dumps(list(value))[:500]
        else:
            out[name] = value
    return out


@contextlib.contextmanager
def artifacts_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="churn-artifacts-") as scratch:
        yield Path(scratch)


# --- churn tune: a parent run, a nested run per trial (training/tune.py) ------------------------


class TuneTracker:
    """Records a tune in MLflow: parent run ``tune <data end>``, nested ``trial <n>`` runs.

    Each trial's run is opened and closed within the trial, so an interrupted tune leaves
    every finished trial recorded; the parent carries the best so far at every moment.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def trial(
        self, number: int, values: dict[str, Any], metrics: dict[str, float], state: str, note: str
    ) -> None:
        import mlflow

        with mlflow.start_run(run_name=trial_name(number), nested=True):
            mlflow.set_tags(
                {"role": "trial", "trial.number": str(number), "trial.state": state, NOTE_TAG: note}
            )
            mlflow.log_params(_flat(values))
            mlflow.log_metrics(metrics)

    def best(self, number: int, values: dict[str, Any], loss: float) -> None:
        from mlflow import MlflowClient

        client = MlflowClient()
        client.log_metric(self.run_id, "best_validation_log_loss", loss, step=number)
        client.set_tag(self.run_id, "best_trial", str(number))
        for key, value in values.items():
            client.set_tag(self.run_id, f"best.{key}", str(value))


@contextlib.contextmanager
def tune_run(
    settings: Settings, name: str, params: dict[str, Any], tags: dict[str, str], note: str
) -> Iterator[TuneTracker]:
    """The parent run of a tune; nested trial runs are started inside it."""
    import mlflow

    configure(settings)
    with mlflow.start_run(run_name=name) as run:
        mlflow.set_tags(
            {
                **tags,
                "role": "tune",
                "git_commit": git_commit(),
                "code_version": code_version(),
                NOTE_TAG: note,
            }
        )
        mlflow.log_params(_flat(params))
        yield TuneTracker(run.info.run_id)


def finish_tune(run_id: str, note: str, out: Path | None, interrupted: bool) -> None:
    """Final words on the parent run: the summary note and the params file as an artifact."""
    from mlflow import MlflowClient

    client = MlflowClient()
    client.set_tag(run_id, NOTE_TAG, note)
    client.set_tag(run_id, "tune.interrupted", str(interrupted).lower())
    if out is not None and out.is_file():
        client.log_artifact(run_id, str(out))


# --- backtests (issue 13): one parent run, a nested run per origin ------------------------


@dataclass(frozen=True)
class OriginRun:
    """One origin of a backtest, as a nested run named by its date."""

    name: str
    note: str
    metrics: dict[str, float]
    tags: dict[str, str]


@dataclass
class BacktestRecord:
    """What one backtest hands to MLflow."""

    run_name: str
    note: str
    params: dict[str, Any]
    metrics: dict[str, float]  # means over the judged origins
    series: dict[str, list[float]]  # per-origin metrics, logged with step = origin number
    tags: dict[str, str]
    origins: list[OriginRun]
    artifacts_dir: Path


def record_backtest(record: BacktestRecord, settings: Settings) -> str:
    """Log the parent run (params, means, per-origin series, tables and plots) and one
    nested run per origin; the parent's run id."""
    import math
    import time

    import mlflow
    from mlflow.entities import Metric

    configure(settings)
    with (
        Registry.of(settings).reported("record the backtest"),
        mlflow.start_run(run_name=record.run_name) as parent,
    ):
        mlflow.set_tags(
            {
                **record.tags,
                NOTE_TAG: record.note,
                "git_commit": git_commit(),
                "code_version": code_version(),
            }
        )
        mlflow.log_params(_flat(record.params))
        mlflow.log_metrics(record.metrics)
        now = int(time.time() * 1000)
        series = [
            Metric(key, value, now, step)
            for key, values in record.series.items()
            for step, value in enumerate(values)
            if not math.isnan(value)
        ]
        for start in range(0, len(series), 1000):  # MLflow takes up to 1,000 per batch
            mlflow.MlflowClient().log_batch(
                parent.info.run_id, metrics=series[start : start + 1000]
            )
        mlflow.log_artifacts(str(record.artifacts_dir))
        for origin in record.origins:
            with mlflow.start_run(run_name=origin.name, nested=True):
                mlflow.set_tags({**origin.tags, NOTE_TAG: origin.note})
                mlflow.log_metrics(origin.metrics)
        return parent.info.run_id
