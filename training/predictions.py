"""The prediction log: what `churn score` scored, kept so it can be checked against what
happened once the horizon has passed (`churn outcomes`).

The log is partitioned Parquet under ``CHURN_HOME/predictions/as_of=YYYY-MM-DD/``. An
append is one new file, written atomically (temp file + rename) and never rewritten:
a killed scoring leaves the log as it was, and two scorings never overwrite each other.
Scoring the same accounts again adds rows; reading keeps the latest score of each
(account, as_of, model, version).
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import DataError
from features.files import write_atomic
from models.registry import LoadedModel
from training.card import reported_figures

LOG_DIR = "predictions"
PARTITION = "as_of"
KEY = ("account_id", "as_of", "model_name", "model_version")
COLUMNS = {
    "account_id": "string",
    "as_of": "datetime64[s]",
    "churn_probability": "float64",
    "risk_tier": "string",
    "mrr": "float64",
    "model_name": "string",
    "model_version": "string",
    "horizon_days": "int64",
    "model_test_roc_auc": "float64",
    "model_test_lift_top10": "float64",
    "scored_at": "datetime64[us, UTC]",
}


def model_version(loaded: LoadedModel) -> str:
    """The registry version, or the bundle's checksum for a model loaded from a file."""
    if loaded.version is not None:
        return str(loaded.version)
    return f"sha256:{loaded.sha256[:12]}" if loaded.sha256 else "unregistered"


def prediction_records(
    scored: pd.DataFrame, mrr: np.ndarray | None, loaded: LoadedModel, scored_at: dt.datetime
) -> pd.DataFrame:
    """The log rows of one scoring (``scored`` as ``training.scoring.score_frame`` returns)."""
    horizon = loaded.model.horizon_days
    if horizon is None:
        raise DataError("a model without a horizon (table mode) has no outcome to check later")
    records = pd.DataFrame(
        {
            "account_id": scored["account_id"],
            "as_of": scored["as_of"],
            "churn_probability": scored["churn_probability"],
            "risk_tier": scored["risk_tier"],
            "mrr": np.full(len(scored), np.nan) if mrr is None else mrr,
            "model_name": loaded.name or "unnamed",
            "model_version": model_version(loaded),
            "horizon_days": horizon,
            **reported_figures(loaded.model),
            "scored_at": pd.Timestamp(scored_at),
        }
    )
    return records.astype(COLUMNS)


def append_predictions(records: pd.DataFrame, root: Path) -> list[Path]:
    """One new file per score date: the log only ever grows by whole, complete files."""
    written = []
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%fZ")
    for day, part in records.groupby(records["as_of"].dt.date, sort=True):
        path = (
            root / f"{PARTITION}={day.isoformat()}" / f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
        )
        written.append(write_atomic(path, lambda temp, p=part: p.to_parquet(temp, index=False)))
    return written


def read_predictions(root: Path) -> pd.DataFrame:
    """Every logged prediction, the latest score of each (account, as_of, model, version)."""
    files = sorted(root.glob(f"{PARTITION}=*/part-*.parquet"))
    if not files:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in COLUMNS.items()})
    parts = []
    for file in files:
        try:
            parts.append(pd.read_parquet(file).astype(COLUMNS))
        except Exception as exc:  # pyarrow raises many types; name the file
            raise DataError(f"cannot read prediction log file {file}: {exc}") from exc
    log = pd.concat(parts, ignore_index=True).sort_values("scored_at", kind="stable")
    return log.drop_duplicates(list(KEY), keep="last").reset_index(drop=True)
