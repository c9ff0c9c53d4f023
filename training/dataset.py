"""Training data: observation dates, labels, and the temporal split.

Each observation date gives one snapshot per account active on it, labelled 1 if the
account churned in ``(as_of, as_of + horizon]``. Dates whose horizon passes the end of
the data are left out (their labels are not known yet). The split is by date ranges —
train -> validation -> calibration -> test — because the same account appears at many
dates and a random split would let the model see its own future.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import DataError
from features.snapshot import active_points, build_snapshots
from features.tables import Tables, account_days
from features.timeline import churn_label, observation_dates, to_days

SPLITS = ("train", "validation", "calibration", "test")
LABEL = "churned"
MIN_ROWS = {"train": 200, "validation": 50, "calibration": 50, "test": 50}
MIN_POSITIVES = {"train": 20, "validation": 5, "calibration": 5, "test": 5}


@dataclass(frozen=True)
class SplitPlan:
    """How many of the latest observation dates go to each held-out split."""

    validation_periods: int = 2
    calibration_periods: int = 3
    test_periods: int = 3

    def assign(self, dates: Sequence[dt.date]) -> dict[dt.date, str]:
        held_out = self.validation_periods + self.calibration_periods + self.test_periods
        if len(dates) < held_out + 2:
            raise DataError(
                f"{len(dates)} observation dates, but the split needs at least {held_out + 2}: "
                f"2+ train, {self.validation_periods} validation, {self.calibration_periods} calibration, "
                f"{self.test_periods} test. Provide a longer history or use fewer held-out periods."
            )
        ordered = sorted(dates)
        names = (
            ["train"] * (len(ordered) - held_out)
            + ["validation"] * self.validation_periods
            + ["calibration"] * self.calibration_periods
            + ["test"] * self.test_periods
        )
        return dict(zip(ordered, names, strict=True))


@dataclass(frozen=True)
class TrainingSet:
    """Labelled snapshots with their split, and the window they were drawn from."""

    snapshots: pd.DataFrame  # snapshot columns + LABEL + "split"
    data_start: dt.date
    data_end: dt.date
    horizon_days: int
    dates: tuple[dt.date, ...]

    def part(self, split: str) -> pd.DataFrame:
        return self.snapshots.loc[self.snapshots["split"] == split]

    def summary(self) -> pd.DataFrame:
        """Rows, dates, churned and base rate per split (printed and logged)."""
        return split_summary(date_counts(self.snapshots))


def date_counts(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Rows and churned per (split, as_of): counts of disjoint sets of rows add up, so a
    cluster counts partition by partition."""
    grouped = snapshots.groupby(["split", "as_of"], observed=True)[LABEL]
    return pd.DataFrame({"rows": grouped.size(), "churned": grouped.sum()}).reset_index()


def split_summary(counts: pd.DataFrame) -> pd.DataFrame:
    """Rows, dates, churned and base rate per split from :func:`date_counts` (summed)."""
    counts = counts.groupby(["split", "as_of"], observed=True)[["rows", "churned"]].sum()
    counts = counts.loc[counts["rows"] > 0].reset_index()
    grouped = counts.groupby("split", observed=True)
    rows, churned = grouped["rows"].sum(), grouped["churned"].sum()
    table = pd.DataFrame(
        {
            "first_as_of": grouped["as_of"].min().dt.date,
            "last_as_of": grouped["as_of"].max().dt.date,
            "dates": grouped["as_of"].nunique(),
            "rows": rows,
            "churned": churned,
            "base_rate": (churned / rows).round(4),
        }
    )
    return table.reindex([s for s in SPLITS if s in table.index])


def churn_days(tables: Tables, points: pd.DataFrame) -> np.ndarray:
    """The churn day of each (account_id, as_of)'s account (``MISSING_DAY``: still active)."""
    if "churn_date" not in tables.accounts:
        raise DataError(
            "churn_date is required to build labels (empty = still active)", table="accounts"
        )
    index = pd.Index(tables.accounts["account_id"]).get_indexer(points["account_id"])
    return account_days(tables.accounts, "churn_date")[index]


def label_snapshots(tables: Tables, points: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """Label each (account_id, as_of): churned within the horizon after as_of."""
    return churn_label(churn_days(tables, points), to_days(points["as_of"]), horizon_days)


def build_training_set(
    tables: Tables,
    horizon_days: int = 90,
    every: str = "MS",
    data_end: dt.date | None = None,
    plan: SplitPlan | None = None,
    exclude_columns: Sequence[str] = (),
) -> TrainingSet:
    """Observation dates -> active accounts -> snapshots + labels + split."""
    plan = plan or SplitPlan()
    start, end = tables.data_start(), data_end or tables.data_end()
    dates = observation_dates(start, end, horizon_days=horizon_days, every=every)
    assignment = plan.assign(dates)
    snapshots = labelled_snapshots(tables, dates, assignment, horizon_days, exclude_columns)
    training = TrainingSet(snapshots, start, end, horizon_days, tuple(dates))
    check_training_set(training)
    return training


def labelled_snapshots(
    tables: Tables,
    dates: Sequence[dt.date],
    assignment: dict[dt.date, str],
    horizon_days: int,
    exclude_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Snapshots of every account active at each date, with label and split. Rows of one
    account depend on that account's rows only: a cluster runs this per account partition."""
    points = active_points(tables, dates)
    snapshots = build_snapshots(tables, points, exclude_columns=exclude_columns)
    snapshots[LABEL] = label_snapshots(tables, points, horizon_days)
    snapshots["split"] = pd.Categorical(
        pd.Series(snapshots["as_of"].dt.date).map(assignment), categories=list(SPLITS)
    )
    return snapshots


def check_training_set(training: TrainingSet) -> None:
    """Enough rows and both classes in every split, before anything is fitted or logged."""
    check_split_summary(training.summary())


def check_split_summary(summary: pd.DataFrame) -> None:
    """:func:`check_training_set` on the split summary (all a cluster needs to collect)."""
    for split in SPLITS:
        rows = int(summary.loc[split, "rows"]) if split in summary.index else 0
        churned = int(summary.loc[split, "churned"]) if split in summary.index else 0
        if rows < MIN_ROWS[split] or churned < MIN_POSITIVES[split] or churned == rows:
            raise DataError(
                f"the {split} split has {rows} labelled rows with {churned} churned; it needs at least "
                f"{MIN_ROWS[split]} rows, {MIN_POSITIVES[split]} churned and some retained accounts. "
                "Provide more accounts or a longer history, or use fewer held-out periods."
            )
