"""Training data, prepared: labelled snapshot splits and what a run records about them.

Event tables (``prepare_events``) and single labelled tables (``training.table``) both end
in a ``Prepared``; ``training.pipeline`` fits, evaluates and records from there. The row
selections that keep fitting honest in time (labels settled before validation or test)
are read off the prepared splits here too.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.derive import FeatureSpec
from features.schema import Columns, frame_to_columns
from features.tables import Tables
from features.timeline import label_known_by, to_days
from training.dataset import (
    LABEL,
    MIN_POSITIVES,
    MIN_ROWS,
    SPLITS,
    SplitPlan,
    build_training_set,
    churn_days,
)
from training.params import TrainParams
from training.survival import Outcomes

if TYPE_CHECKING:  # training.fit loads LightGBM; preparing data does not need it
    from training.fit import Boosting

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Labelled snapshot frames per split, plus what the run should say about them."""

    frames: dict[str, pd.DataFrame]
    summary: pd.DataFrame
    metadata: dict[str, Any]
    tags: dict[str, str]
    params: dict[str, Any] = field(default_factory=dict)
    cv_folds: int = 0  # table mode adds k-fold cross-validated metrics beside the hold-out
    horizons: tuple[int, ...] = ()  # days of the time-to-churn model; () = none (table mode)
    outcomes: dict[str, Outcomes] = field(default_factory=dict)  # per split: as_of, churn day
    # When the training window lives on a cluster (training.distributed), frames["train"] is
    # a sample of it here, the spec was learnt from all of it, and boosting trains there.
    spec: FeatureSpec | None = None
    boosting: Boosting | None = None

    def columns(self, split: str) -> Columns:
        return frame_to_columns(self.frames[split].drop(columns=[LABEL, "split"], errors="ignore"))

    def label(self, split: str) -> np.ndarray:
        return self.frames[split][LABEL].to_numpy(np.int8)


def static_columns_warning(tables: Tables) -> str | None:
    """Without subscriptions, export-time plan/seats/mrr are used for every as_of."""
    if tables.subscriptions is not None:
        return None
    present = [c for c in ("plan", "seats", "mrr") if c in tables.accounts]
    if not present:
        return None
    return (
        f"no subscriptions table: accounts.{'/'.join(present)} are export-time values used as static "
        "features for past snapshots (they may leak later downgrades)"
    )


def prepare_events(
    tables: Tables,
    horizon_days: int,
    every: str = "MS",
    data_end: dt.date | None = None,
    plan: SplitPlan | None = None,
    exclude_columns: Sequence[str] = (),
    horizons: Sequence[int] = (),
) -> Prepared:
    """Observation dates, labels and the temporal split from event tables, and what
    happened after each snapshot: with ``horizons`` (days, e.g. ``DEFAULT_HORIZONS``) a
    time-to-churn model is trained beside the horizon model."""
    plan = plan or SplitPlan()
    training = build_training_set(tables, horizon_days, every, data_end, plan, exclude_columns)
    frames = {split: training.part(split).reset_index(drop=True) for split in SPLITS}
    outcomes = {
        split: Outcomes(to_days(frame["as_of"]), churn_days(tables, frame))
        for split, frame in frames.items()
    }
    span = (training.data_start, training.data_end)
    return describe_events(
        frames,
        training.summary(),
        span,
        training.dates,
        tables,
        horizon_days,
        every,
        plan,
        exclude_columns,
        horizons,
        outcomes,
    )


def describe_events(
    frames: dict[str, pd.DataFrame],
    summary: pd.DataFrame,
    span: tuple[dt.date, dt.date],
    dates: Sequence[dt.date],
    tables: Tables,
    horizon_days: int,
    every: str,
    plan: SplitPlan,
    exclude_columns: Sequence[str],
    horizons: Sequence[int] = (),
    outcomes: dict[str, Outcomes] | None = None,
) -> Prepared:
    """What a run records about event-table training data: window, rows, warnings.

    ``tables`` need only hold the data set's shape (which tables and columns) and its
    unknown-account counts: a cluster describes its data without collecting it. Without
    ``outcomes`` (churn days after each snapshot) no time-to-churn model is trained.
    """
    window = {
        "data_start": span[0].isoformat(),
        "data_end": span[1].isoformat(),
        "first_as_of": dates[0].isoformat(),
        "last_as_of": dates[-1].isoformat(),
    }
    tags = {
        "mode": "events",
        "split": "temporal",
        "horizon_days": str(horizon_days),
        **{f"window.{k}": v for k, v in window.items()},
        **{f"rows.{split}": str(int(summary.loc[split, "rows"])) for split in summary.index},
        "tables": ",".join(["accounts", *tables.event_tables()]),
    }
    warning = static_columns_warning(tables)
    if warning:
        tags["warning.static_current_columns"] = warning
        log.warning(warning)
    if tables.unknown_accounts:
        tags["warning.unknown_accounts"] = str(tables.unknown_accounts)
    metadata = {
        "mode": "events",
        "horizon_days": horizon_days,
        "window": window,
        "observation_every": every,
        "split_plan": plan.__dict__,
        "exclude_columns": list(exclude_columns),
        "warnings": [w for w in (warning,) if w],
    }
    params = {
        "horizon_days": horizon_days,
        "every": every,
        "horizons": ",".join(str(h) for h in horizons) or "none",
        **{f"split.{k}": v for k, v in plan.__dict__.items()},
    }
    return Prepared(
        frames=frames,
        summary=summary,
        metadata=metadata,
        tags=tags,
        params=params,
        horizons=tuple(sorted(horizons)),
        outcomes=outcomes or {},
    )


def settled_rows(
    prepared: Prepared, splits: Sequence[str], window: str
) -> dict[str, np.ndarray] | None:
    """Event data: per split, the rows whose labels were settled on the first date of
    ``window`` (their whole horizon had passed). None for a single table (its splits are not
    in time)."""
    horizon = prepared.metadata.get("horizon_days")
    if prepared.cv_folds or not horizon:
        return None
    first = int(to_days(prepared.frames[window]["as_of"]).min())
    return {
        split: label_known_by(to_days(prepared.frames[split]["as_of"]), horizon, first)
        for split in splits
    }


def settled_train_rows(prepared: Prepared) -> np.ndarray | None:
    """Event data: the train rows whose labels were settled on the first validation date
    (the rows validation may judge a model by having learnt from). None for a table, or
    when too few rows would be left to learn from."""
    rows = settled_rows(prepared, ("train",), "validation")
    if rows is None:
        return None
    settled = rows["train"]
    label = prepared.label("train")[settled]
    if len(label) < MIN_ROWS["train"] or label.sum() < MIN_POSITIVES["train"]:
        log.warning(
            "only %d train rows have labels settled before the validation window: "
            "validation judges models learnt from every train row",
            len(label),
        )
        return None
    return settled


def refit_rows(prepared: Prepared) -> dict[str, np.ndarray] | None:
    """Event data: per window before test, the rows whose labels were settled on the first
    test date, the only ones the served model may refit on (a later row's label is churn
    inside the test window). None for a single table."""
    return settled_rows(prepared, ("train", "validation", "calibration"), "test")


def search_folds(prepared: Prepared, params: TrainParams) -> int:
    """A single table scores candidates on inner folds (its validation rows are few); event
    data on the validation window, the dates right after train."""
    return params.search_folds if prepared.cv_folds else 0
