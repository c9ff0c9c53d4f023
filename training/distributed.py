"""Training, scoring and drift on a Dask cluster, with the single-process functions.

Labelled snapshots are built per account partition by ``training.dataset.labelled_snapshots``.
What every decision needs is counted per partition and merged here: rows and churners per
split and date (the split summary and its checks), the evidence the feature spec is learnt
from. The held-out windows (validation, calibration, test: a few observation dates) are
collected; the training window stays on the workers as a feature matrix, where
``lightgbm.dask`` boosts on it with early stopping on the whole validation window. The
logistic parts (the baseline and the linear base of ``linear+trees``) and the feature
profile are fitted here on the training window, or on a uniform sample of
``SAMPLE_ROWS`` of it when it is larger. From there the single-process pipeline runs
unchanged: calibration, evaluation, plots, MLflow run and registration, same bundle.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.dataframe as dd
import lightgbm as lgb
import numpy as np
import pandas as pd

from features.derive import FeatureSpec, SpecEvidence
from features.errors import DataError
from features.partitioned import PartitionedTables, load_partitioned, write_parquet_directory
from features.schema import Columns, frame_to_columns
from features.settings import Settings
from features.snapshot import active_snapshots
from features.tables import Tables
from features.timeline import day_of, label_known_by, observation_dates, to_days
from models.bundle import ChurnModel
from models.linear import LinearBase
from models.profile import ProfileTally
from training.cluster import partition_rows, worker_threads
from training.dataset import (
    LABEL,
    SPLITS,
    SplitPlan,
    check_split_summary,
    churn_days,
    date_counts,
    labelled_snapshots,
    split_summary,
)
from training.fit import Boosted, Boosting, ModelForm, Part
from training.params import TrainParams
from training.prepare import Prepared, describe_events
from training.progress import Steps
from training.scoring import drift_report, score_frame, training_profile
from training.search import Pruning
from training.survival import Outcomes

if TYPE_CHECKING:
    from distributed import Client

SAMPLE_ROWS = 1_000_000  # training rows collected for the logistic parts and the profile
CHURN_DAY = "churn_day"  # rides beside each snapshot row until the outcomes are taken out
AS_OF_DAY = "as_of_day"  # beside the workers' feature rows: which ones were settled when


def load(client: Client, data: str | Path, settings: Settings) -> PartitionedTables:
    """The data directory, checked and partitioned by account for this cluster."""
    return load_partitioned(
        data, partitions=settings.dask_partitions, partition_rows=partition_rows(client)
    )


# --- snapshots -------------------------------------------------------------------------------


def write_snapshots(
    client: Client, data: Path, day: dt.date, out: Path, settings: Settings, steps: Steps
) -> int:
    """`churn snapshot` on the cluster: every account active on ``day``, as a Parquet directory."""
    with steps.step(f"checking and partitioning {data}"):
        tables = load(client, data, settings)
    with steps.step(f"snapshots at {day} on {tables.npartitions} partitions -> {out}"):
        frame = tables.map_frames(active_snapshots, [day], list(settings.exclude_columns))
        (rows,) = write_parquet_directory(frame, out, frame.shape[0])
    return int(rows)


# --- training ----------------------------------------------------------------------------


def prepare_partitioned(
    client: Client,
    data: Path,
    settings: Settings,
    every: str,
    data_end: dt.date | None,
    plan: SplitPlan,
    steps: Steps,
    seed: int = 0,
) -> Prepared:
    """`prepare_events` on the cluster: the same labelled splits, spec learnt from the whole
    training window, the training window's features held by the workers."""
    horizon, exclude = settings.horizon_days, list(settings.exclude_columns)
    with steps.step(f"checking and partitioning {data}"):
        tables = load(client, data, settings)
    end = data_end or tables.span[1]
    dates = observation_dates(tables.span[0], end, horizon_days=horizon, every=every)
    assignment = plan.assign(dates)
    labelled = tables.map(_labelled, dates, assignment, horizon, exclude)
    with steps.step(f"snapshots and labels on {tables.npartitions} partitions"):
        parts = [dask.delayed(_by_window, nout=2)(frame) for frame in labelled]
        # The training rows stay on the workers; only what decides the spec comes back.
        persisted = client.persist([p[0] for p in parts] + [p[1] for p in parts])
        train_parts = persisted[: len(parts)]
        results, unknown = dask.compute(persisted[len(parts) :], tables.unknown_accounts())
        summary = split_summary(pd.concat([r[0] for r in results], ignore_index=True))
        check_split_summary(summary)
        spec = FeatureSpec.from_evidence(
            functools.reduce(SpecEvidence.merge, (r[1] for r in results))
        )
        frames = {split: _gathered([r[2] for r in results], split) for split in SPLITS[1:]}
    train_rows = int(summary.loc["train", "rows"])
    share = min(1.0, SAMPLE_ROWS / train_rows)
    with steps.step(f"training features on the workers ({train_rows:,} rows)"):
        window = [
            dask.delayed(_train_window, nout=2)(frame, spec, share, seed, i)
            for i, frame in enumerate(train_parts)
        ]
        persisted = client.persist([w[0] for w in window] + [w[1] for w in window])
        held, sample = persisted[: len(window)], dask.compute(persisted[len(window) :])[0]
        del train_parts, parts, labelled  # the workers may drop the snapshot rows now
        frames["train"] = _sorted(pd.concat(sample, ignore_index=True))
        first_validation = min(d for d in dates if assignment[d] == "validation")
        settled_by = (horizon, day_of(first_validation))
        boosting = DaskBoosting.of(client, held, spec, train_rows, settled_by)
    outcomes = {
        split: Outcomes(to_days(frame["as_of"]), frame.pop(CHURN_DAY).to_numpy(np.int64))
        for split, frame in frames.items()
    }
    counts: dict[str, int] = {}
    for part in unknown:
        for name, rows in part.items():
            counts[name] = counts.get(name, 0) + rows
    shape = replace(tables.shape, unknown_accounts=counts)
    prepared = describe_events(
        {split: frames[split] for split in SPLITS},
        summary,
        (tables.span[0], end),
        dates,
        shape,
        horizon,
        every,
        plan,
        exclude,
        settings.horizons,
        outcomes,
    )
    prepared.tags.update(
        {
            "engine": "dask",
            "dask.partitions": str(tables.npartitions),
            "dask.train_sample_rows": str(len(frames["train"])),
        }
    )
    return replace(prepared, spec=spec, boosting=boosting)


def _labelled(
    tables: Tables,
    dates: Sequence[dt.date],
    assignment: dict[dt.date, str],
    horizon_days: int,
    exclude_columns: Sequence[str],
) -> pd.DataFrame:
    """Per partition: ``labelled_snapshots`` and each row's account churn day, what the
    time-to-churn model learns from (the accounts table is partitioned with the events)."""
    frame = labelled_snapshots(tables, dates, assignment, horizon_days, exclude_columns)
    frame[CHURN_DAY] = churn_days(tables, frame)
    return frame


def _snapshot_columns(frame: pd.DataFrame) -> Columns:
    """The snapshot columns of labelled rows: without what rides beside them (label, split,
    churn day), which no feature may read."""
    return frame_to_columns(frame.drop(columns=[LABEL, "split", CHURN_DAY]))


def _by_window(
    frame: pd.DataFrame,
) -> tuple[pd.DataFrame, tuple[pd.DataFrame, SpecEvidence, pd.DataFrame]]:
    """Per partition: its training rows, and what decides the spec and checks the splits:
    rows and churners per split and date, the spec evidence of the training rows, and
    the held-out rows (validation, calibration, test)."""
    train = frame.loc[frame["split"] == "train"].reset_index(drop=True)
    columns = _snapshot_columns(train)
    evidence = SpecEvidence.of(columns, columns.get("account_id"))
    return train, (date_counts(frame), evidence, frame.loc[frame["split"] != "train"])


def _gathered(parts: Sequence[pd.DataFrame], split: str) -> pd.DataFrame:
    frame = pd.concat([p.loc[p["split"] == split] for p in parts], ignore_index=True)
    return _sorted(frame)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in (as_of, account) order, whatever the partitioning."""
    return frame.sort_values(["as_of", "account_id"], kind="stable", ignore_index=True)


def _train_window(
    frame: pd.DataFrame, spec: FeatureSpec, share: float, seed: int, partition: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per partition: its training rows as (feature matrix + label) for the workers, and a
    uniform ``share`` of them as snapshot rows for this process."""
    train = frame
    columns = _snapshot_columns(train)
    matrix = pd.DataFrame(spec.matrix(columns), columns=spec.names)
    matrix[LABEL] = train[LABEL].to_numpy()
    matrix[AS_OF_DAY] = to_days(train["as_of"])
    if share < 1.0:
        rng = np.random.default_rng([seed, partition])
        train = train.loc[rng.random(len(train)) < share]
    return matrix, train


# --- boosting on the workers ----------------------------------------------------------------


class ValidationStop:
    """Early stopping on the whole validation window, as ``lgb.early_stopping`` on the
    validation log loss. Every worker holds the same model and the same window, so every
    worker stops at the same tree (a per-worker validation share would not)."""

    order = 30

    def __init__(self, validation: Part, init: np.ndarray | None, rounds: int) -> None:
        self.features = validation.features
        self.label = validation.label.astype(np.float64)
        self.margin = np.zeros(len(self.label)) if init is None else init.copy()
        self.rounds = rounds
        self.best_loss, self.best_iteration = math.inf, 0

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        i = env.iteration
        self.margin += env.model.predict(
            self.features, raw_score=True, start_iteration=i, num_iteration=1
        )
        loss = log_loss(self.label, self.margin)
        if loss < self.best_loss:
            self.best_loss, self.best_iteration = loss, i
        if i - self.best_iteration >= self.rounds or env.iteration == env.end_iteration - 1:
            best = [("validation", "binary_logloss", self.best_loss, False)]
            raise lgb.callback.EarlyStopException(self.best_iteration, best)


def log_loss(label: np.ndarray, margin: np.ndarray) -> float:
    """LightGBM's binary log loss of raw margins."""
    probability = np.clip(1.0 / (1.0 + np.exp(-margin)), 1e-15, 1 - 1e-15)
    return float(-np.mean(label * np.log(probability) + (1 - label) * np.log(1 - probability)))


@dataclass
class DaskBoosting(Boosting):
    """Boosting on the workers: the training window's feature matrix is held there
    (persisted), the small windows travel with each fit."""

    client: Any
    window: dd.DataFrame  # spec.names + LABEL + AS_OF_DAY, persisted on the workers
    rows: int
    threads: int
    settled_by: tuple[int, int] | None = None  # (horizon, day): rows whose labels were known

    @classmethod
    def of(
        cls,
        client: Client,
        held: list[Any],
        spec: FeatureSpec,
        rows: int,
        settled_by: tuple[int, int] | None = None,
    ) -> DaskBoosting:
        meta = pd.DataFrame(
            {
                **{n: pd.Series(dtype=np.float64) for n in spec.names},
                LABEL: np.int8(),
                AS_OF_DAY: np.int64(),
            }
        )
        lengths = client.compute([dask.delayed(len)(h) for h in held], sync=True)
        kept = [h for h, n in zip(held, lengths, strict=True) if n]  # LightGBM refuses empty parts
        window = dd.from_delayed(kept, meta=meta.iloc[:0], verify_meta=False)
        return cls(client, window, rows, worker_threads(client), settled_by)

    @property
    def local(self) -> bool:
        return False

    def settled(self) -> DaskBoosting:
        """The training rows whose labels were settled on the first validation date, as
        the single-process search learns from (filtered on the workers, not copied)."""
        if self.settled_by is None:
            return self
        horizon, day = self.settled_by
        window = self.window.loc[label_known_by(self.window[AS_OF_DAY], horizon, day)]
        lengths = window.map_partitions(len).compute()
        kept = [i for i, n in enumerate(lengths) if n]  # LightGBM refuses empty parts
        return replace(
            self, window=window.partitions[kept], rows=int(sum(lengths)), settled_by=None
        )

    def early_stopped(
        self,
        spec: FeatureSpec,
        train: Part,
        validation: Part,
        params: TrainParams,
        linear: LinearBase | None,
        pruning: Pruning | None = None,
    ) -> Boosted:
        """Early-stopped on the whole validation window; ``pruning`` does not apply here
        (every candidate is a cluster-wide fit)."""
        init = None if linear is None else linear.margin(validation.features)
        stop = ValidationStop(validation, init, params.early_stopping_rounds)
        booster = self._fit(spec, self.window, params, params.num_boost_round, linear, [stop])
        trees = booster.best_iteration or params.num_boost_round
        margin = booster.predict(validation.features, raw_score=True, num_iteration=trees)
        loss = log_loss(validation.label, margin if init is None else margin + init)
        return Boosted(booster, trees, loss, train_rows=self.rows)

    def refit(
        self,
        spec: FeatureSpec,
        parts: Sequence[Part],
        form: ModelForm,
        params: TrainParams,
        linear: LinearBase | None,
    ) -> lgb.Booster:
        """Every window before test: the workers' training window and the held-out parts
        (``parts[0]``, the training window as held here, is the workers' already)."""
        extra = [
            pd.DataFrame(p.features, columns=spec.names).assign(**{LABEL: p.label})
            for p in parts[1:]
        ]
        held = self.window.drop(columns=AS_OF_DAY)
        window = dd.concat([held, *(dd.from_pandas(e, npartitions=1) for e in extra)])
        rows = self.rows + sum(len(p.label) for p in parts[1:])
        return self._fit(spec, window, params, form.trees_for(rows, params.num_boost_round), linear)

    def _fit(
        self,
        spec: FeatureSpec,
        window: dd.DataFrame,
        params: TrainParams,
        trees: int,
        linear: LinearBase | None,
        callbacks: list[Any] | None = None,
    ) -> lgb.Booster:
        from lightgbm.dask import DaskLGBMClassifier

        settings = {**params.lightgbm(), "num_threads": params.num_threads or self.threads}
        features = window[spec.names]
        init = (
            None
            if linear is None
            else features.map_partitions(_linear_margin, linear, meta=(None, np.float64))
        )
        model = DaskLGBMClassifier(client=self.client, n_estimators=trees, **settings)
        model.fit(
            features,
            window[LABEL],
            init_score=init,
            feature_name=spec.names,
            categorical_feature=spec.categorical,
            callbacks=callbacks,
        )
        booster = model.booster_
        fresh = lgb.Booster(model_str=booster.model_to_string())
        fresh.best_iteration = booster.best_iteration
        return fresh


def _linear_margin(features: pd.DataFrame, linear: LinearBase) -> pd.Series:
    return pd.Series(linear.margin(features.to_numpy(np.float64)), index=features.index)


# --- scoring and drift ---------------------------------------------------------------------


def score_accounts(tables: Tables, model: ChurnModel, day: dt.date, drivers: int) -> pd.DataFrame:
    """One partition of `churn score`: its accounts active on ``day``, scored."""
    snapshots = active_snapshots(tables, [day], list(model.card.exclude_columns))
    return score_frame(model, frame_to_columns(snapshots), drivers)


def write_scores(
    client: Client,
    model: ChurnModel,
    data: Path,
    day: dt.date | None,
    drivers: int,
    out: Path,
    settings: Settings,
    steps: Steps,
) -> tuple[int, dt.date, pd.DataFrame]:
    """`churn score` on the cluster: rows written, the score date, the five riskiest."""
    with steps.step(f"checking and partitioning {data}"):
        tables = load(client, data, settings)
    day = day or tables.span[1]
    with steps.step(f"scoring accounts active on {day} on {tables.npartitions} partitions"):
        shared = client.scatter(model, broadcast=True)
        meta = score_accounts(tables.shape, model, day, drivers)
        frame = tables.map_frames(score_accounts, shared, day, drivers, meta=meta)
        top = frame.nlargest(5, "churn_probability")
        rows, riskiest = write_parquet_directory(frame, out, frame.shape[0], top)
    if not rows:
        raise DataError(f"no account is active on {day}")
    return int(rows), day, riskiest


@dataclass(frozen=True)
class Drift:
    report: pd.DataFrame
    accounts: int
    mean_probability: float
    day: dt.date


def drift_tally(tables: Tables, model: ChurnModel, day: dt.date) -> tuple[ProfileTally, float, int]:
    """One partition of `churn monitor`: the tally of its feature matrix against the training
    profile, and the sum and count of its churn probabilities."""
    snapshots = active_snapshots(tables, [day], list(model.card.exclude_columns))
    columns = frame_to_columns(snapshots)
    tally = training_profile(model).tally(model.matrix(columns))
    probability = model.predict_proba(columns) if len(snapshots) else np.zeros(0)
    return tally, float(probability.sum()), len(probability)


def drift(
    client: Client,
    model: ChurnModel,
    data: Path,
    day: dt.date | None,
    settings: Settings,
    steps: Steps,
) -> Drift:
    """`churn monitor` on the cluster: drift tallied per partition and merged."""
    with steps.step(f"checking and partitioning {data}"):
        tables = load(client, data, settings)
    day = day or tables.span[1]
    with steps.step(f"drift of accounts active on {day} on {tables.npartitions} partitions"):
        shared = client.scatter(model, broadcast=True)
        parts = dask.compute(tables.map(drift_tally, shared, day))[0]
    accounts = sum(p[2] for p in parts)
    if not accounts:
        raise DataError(f"no account is active on {day}")
    tally = functools.reduce(ProfileTally.merge, (p[0] for p in parts))
    mean = sum(p[1] for p in parts) / accounts
    return Drift(drift_report(model, tally), accounts, mean, day)
