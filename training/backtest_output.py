"""What a backtest leaves behind: the folder (backtest.csv, scores.parquet, plots) and the
MLflow runs (a parent named ``backtest <data end> <model form>``, a nested run per origin
named by its date), each with a note that says in words what it was and what it found.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from features.files import atomic_directory
from features.settings import Settings
from training.backtest import SCORES_FILE, TABLE_FILE, Backtest, BacktestPlan
from training.params import TrainParams
from training.track import BacktestRecord, OriginRun, record_backtest

SERIES = (
    "roc_auc",
    "baseline_roc_auc",
    "naive_roc_auc",
    "lift_top10",
    "ece",
    "predicted_churners",
    "realized_churners",
)


def write_backtest(backtest: Backtest, folder: Path) -> None:
    """backtest.csv (one row per origin), scores.parquet (every account at every origin)
    and the plots, into ``folder``."""
    from training.report import plots

    backtest.table.to_csv(folder / TABLE_FILE, index=False)
    backtest.scores.to_parquet(folder / SCORES_FILE, index=False)
    (folder / "plots").mkdir(exist_ok=True)
    charts = {
        "backtest_metrics": plots.backtest_metrics(backtest.table),
        "backtest_churners": plots.backtest_churners(backtest.table),
    }
    for name, figure in charts.items():
        (folder / "plots" / f"{name}.png").write_bytes(plots.png(figure))


def backtest_record(
    backtest: Backtest, params: TrainParams, source: str, step: str, folder: Path
) -> BacktestRecord:
    """The MLflow parent run (named ``backtest <data end> <model form>``) and its origins."""
    table, plan = backtest.table, backtest.plan
    summary = backtest.summary()
    first, last = table["origin"].min().date(), table["origin"].max().date()

    def mean(key: str) -> str:
        return f"{summary[key]:.3f}" if key in summary else "n/a"

    note = (
        f"Rolling-origin backtest of {source}: {len(table)} origins from {first} to {last} "
        f"every {step}, horizon {plan.horizon_days} days. Each origin trained as `churn train` "
        "would have on the data known then, and was judged on what its accounts did next. "
        f"Mean realized ROC-AUC {mean('mean_roc_auc')} (logistic baseline "
        f"{mean('mean_baseline_roc_auc')}, naive rule {mean('mean_naive_roc_auc')}), lift in "
        f"the top 10% {mean('mean_lift_top10')}, over the {int(summary['origins_judged'])} "
        f"origins with at least {plan.min_churners} churners."
    )
    return BacktestRecord(
        run_name=f"backtest {backtest.data_end} {backtest.model_form()}",
        note=note,
        params={
            "mode": "backtest",
            "source": source,
            "origin_from": first.isoformat(),
            "origin_to": last.isoformat(),
            "origin_every": step,
            "horizon_days": plan.horizon_days,
            "every": plan.every,
            "min_churners": plan.min_churners,
            **{f"split.{k}": v for k, v in dataclasses.asdict(plan.split).items()},
            **params.as_dict(),
        },
        metrics=summary,
        series={key: table[key].astype(float).tolist() for key in SERIES},
        tags={"mode": "backtest", "window.data_end": backtest.data_end.isoformat()},
        origins=[_origin_run(row, plan) for row in table.to_dict(orient="records")],
        artifacts_dir=folder,
    )


def _origin_run(row: dict[str, object], plan: BacktestPlan) -> OriginRun:
    origin = pd.Timestamp(row["origin"]).date().isoformat()

    def figure(key: str) -> str:
        value = row.get(key)
        return "n/a" if value is None or value != value else f"{value:.3f}"

    trained = (
        f"trained on {row['train_rows']:,} rows known by then ({row['model_form']})"
        if row.get("model_form")
        else "not trained"
    )
    note = (
        f"Origin {origin}: {trained}; {row['accounts']:,} active accounts scored, "
        f"{row['churners']} churned within {plan.horizon_days} days. Realized ROC-AUC "
        f"{figure('roc_auc')} (baseline {figure('baseline_roc_auc')}, naive "
        f"{figure('naive_roc_auc')}); predicted {figure('predicted_churners')} churners."
        + (f" {row['note']}." if row.get("note") else "")
    )
    metrics = {
        str(k): float(v)
        for k, v in row.items()
        if isinstance(v, int | float | np.number)
        and not isinstance(v, bool | np.bool_)
        and np.isfinite(v)
    }
    return OriginRun(
        origin, note, metrics, {"role": "origin", "origin": origin, "note": str(row["note"])}
    )


def save_backtest(
    backtest: Backtest,
    params: TrainParams,
    source: str,
    step: str,
    out: Path,
    settings: Settings,
) -> str:
    """Write the folder and log the runs; the folder replaces ``out`` only once both are
    done, so a failure leaves the previous backtest in place. The parent run id."""
    with atomic_directory(out) as folder:
        write_backtest(backtest, folder)
        return record_backtest(backtest_record(backtest, params, source, step, folder), settings)
