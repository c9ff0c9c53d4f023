"""Rolling-origin backtest: would the model have worked, month by month?

At each origin the data is cut to what was known at the end of that day (``known_at``)
and the model is trained exactly as `churn train` would have trained it then
(``prepare_events`` + ``fit_and_evaluate``: the same observation dates, splits, early
stopping, calibration and refit). The accounts active at the origin are scored, and
what they did over the next horizon, read from the full data, is the judge. Beside the
model: the logistic baseline of the same run, and a naive rule (last horizon's churn
rate of the account's lifecycle stage and plan), so a reader sees what the model adds.

Origins run from the first date with enough history for the split to the last whose
horizon lies inside the data. An origin whose training refuses the data, or whose
horizon holds too few churners to judge, is reported with a note, never left out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.derive import View
from features.errors import DataError
from features.schema import Columns, frame_to_columns
from features.snapshot import (
    account_columns,
    active_points,
    build_snapshots,
    point_queries,
    subscription_columns,
)
from features.tables import EVENT_TABLES, Tables, account_days
from features.timeline import (
    LIFECYCLE_STAGES,
    add_months,
    churn_label,
    date_of,
    day_of,
    first_observation_date,
    lifecycle_stage_codes,
    months_between,
    observation_dates,
    to_days,
)
from models.value import annual_revenue
from training.card import model_form
from training.dataset import SplitPlan
from training.evaluate import classification_metrics
from training.params import TrainParams
from training.pipeline import fit_and_evaluate, prepare_events
from training.progress import Steps
from training.report.segments import UNKNOWN, level_names, text_labels

BACKTEST_DIR = "backtest"  # under CHURN_HOME, where `churn report` looks by default
TABLE_FILE, SCORES_FILE = "backtest.csv", "scores.parquet"
STEP = re.compile(r"^(?P<count>\d+)\s*(?P<unit>[DWM])$", re.IGNORECASE)
FIRST_COLUMNS = (  # backtest.csv starts with these, in this order
    "origin",
    "accounts",
    "churners",
    "roc_auc",
    "pr_auc",
    "lift_top10",
    "capture_top10",
    "ece",
    "predicted_churners",
    "realized_churners",
)
RANKING = ("roc_auc", "pr_auc", "lift_top10", "capture_top10", "lift_top20", "capture_top20")
PREFIXES = {"model": "", "baseline": "baseline_", "naive": "naive_"}


@dataclass(frozen=True)
class BacktestPlan:
    """How each origin trains (as `churn train`) and how origins are judged."""

    horizon_days: int = 90
    every: str = "MS"  # observation frequency of the training snapshots
    split: SplitPlan = dataclasses.field(default_factory=SplitPlan)
    exclude_columns: tuple[str, ...] = ()
    min_churners: int = 20  # fewer realized churners: the origin's metrics are flagged


# --- origins ----------------------------------------------------------------------------------


def parse_step(text: str) -> tuple[int, str]:
    """``1M`` (months), ``2W`` (weeks), ``14D`` (days) -> (count, unit)."""
    match = STEP.match(text.strip())
    if match is None or int(match["count"]) < 1:
        raise DataError(f"--every {text!r}: use a count and a unit, e.g. 1M, 3M, 2W or 14D")
    return int(match["count"]), match["unit"].upper()


def first_possible_origin(tables: Tables, plan: BacktestPlan) -> dt.date:
    """The first month start at which `churn train` has the observation dates its split
    needs (two training dates plus the held-out ones, each with a complete horizon)."""
    split = plan.split
    needed = split.validation_periods + split.calibration_periods + split.test_periods + 2
    start = tables.data_start()
    origin = pd.Timestamp(first_observation_date(start)) + pd.offsets.MonthBegin(1)
    while len(observation_dates(start, origin.date(), plan.horizon_days, plan.every)) < needed:
        origin += pd.offsets.MonthBegin(1)
    return origin.date()


def last_possible_origin(end: dt.date, plan: BacktestPlan) -> dt.date:
    """The last origin whose whole horizon lies inside the data."""
    return end - dt.timedelta(days=plan.horizon_days)


def origin_dates(first: dt.date, last: dt.date, every: str) -> list[dt.date]:
    """``first``, ``first + every``, ... up to ``last``."""
    count, unit = parse_step(every)
    if unit == "M":
        span = int(months_between(np.array([day_of(first)]), np.array([day_of(last)]))[0])
        months = np.arange(0, max(span, 0) + 1, count)
        days = add_months(np.full(len(months), day_of(first)), months)
    else:
        step = count * (7 if unit == "W" else 1)
        days = np.arange(day_of(first), day_of(last) + 1, step)
    return [date_of(d) for d in days if d <= day_of(last)]


# --- what was known at an origin --------------------------------------------------------------


def known_at(tables: Tables, day: dt.date) -> Tables:
    """The data as it stood at the end of ``day``: accounts that had signed up, churn dates
    (and reasons) that had happened, event rows dated on or before it, tickets still open
    if they closed later. Export-time columns (plan, seats, mrr without a subscription
    history; renewal_date) are what the export holds, as `churn train` reads them."""
    cut = np.datetime64(day, "s")
    accounts = tables.accounts
    accounts = accounts.loc[accounts["signup_date"] <= cut].copy()
    if "churn_date" in accounts:
        later = accounts["churn_date"] > cut
        accounts.loc[later, "churn_date"] = pd.NaT
        if "churn_reason" in accounts:
            accounts.loc[later, "churn_reason"] = pd.NA
    events: dict[str, pd.DataFrame | None] = {}
    for spec in EVENT_TABLES:
        frame = getattr(tables, spec.name)
        if frame is not None:
            frame = frame.loc[frame[spec.event_date] <= cut].copy()
            if "closed_date" in frame:
                frame.loc[frame["closed_date"] > cut, "closed_date"] = pd.NaT
        events[spec.name] = frame
    return dataclasses.replace(
        tables, accounts=accounts.reset_index(drop=True), **events, warnings=()
    )


@dataclass(frozen=True)
class OriginAccounts:
    """The accounts active at an origin: their snapshots, what they did next, and the naive
    rule's probability for them."""

    origin: dt.date
    columns: Columns
    churned: np.ndarray  # churned in (origin, origin + horizon], from the full data
    naive: np.ndarray

    @property
    def mrr(self) -> np.ndarray:
        return View(self.columns).num("mrr")


def origin_accounts(
    tables: Tables, known: Tables, origin: dt.date, plan: BacktestPlan
) -> OriginAccounts:
    """Snapshots at the origin from the known data; outcomes from the full data."""
    points = active_points(known, [origin])
    if len(points) == 0:
        raise DataError(f"no account is active on the origin {origin}")
    columns = frame_to_columns(build_snapshots(known, points, exclude_columns=plan.exclude_columns))
    index = pd.Index(tables.accounts["account_id"]).get_indexer(points["account_id"])
    churn = account_days(tables.accounts, "churn_date")[index]
    churned = churn_label(churn, to_days(points["as_of"]), plan.horizon_days)
    return OriginAccounts(origin, columns, churned, naive_rule(known, origin, columns, plan))


def naive_rule(known: Tables, origin: dt.date, columns: Columns, plan: BacktestPlan) -> np.ndarray:
    """Last horizon's churn rate of the account's (lifecycle stage, plan): the accounts
    active one horizon before the origin and whether they left by the origin. A group
    never seen falls back to its stage's rate, then to the overall rate."""
    before = origin - dt.timedelta(days=plan.horizon_days)
    points = active_points(known, [before])
    if len(points) == 0:
        return np.full(len(columns["account_id"]), np.nan)
    queries = point_queries(known, points)
    state = {**account_columns(known, queries), **subscription_columns(known, queries)}
    churn = account_days(known.accounts, "churn_date")[queries.account]
    history = pd.DataFrame(
        {
            "stage": _stage((queries.as_of - queries.signup).astype(np.float64)),
            "plan": text_labels(state["plan"]),
            "churned": churn_label(churn, queries.as_of, plan.horizon_days),
        }
    )
    now = View(columns)
    current = pd.DataFrame(
        {"stage": _stage(now.tenure_days()), "plan": text_labels(now.text("plan"))}
    )
    by_group = history.groupby(["stage", "plan"])["churned"].mean().rename("group_rate")
    by_stage = history.groupby("stage")["churned"].mean().rename("stage_rate")
    rates = current.join(by_group, on=["stage", "plan"]).join(by_stage, on="stage")
    overall = float(history["churned"].mean())
    return rates["group_rate"].fillna(rates["stage_rate"]).fillna(overall).to_numpy(np.float64)


def _stage(tenure_days: np.ndarray) -> np.ndarray:
    return level_names(lifecycle_stage_codes(tenure_days), LIFECYCLE_STAGES, UNKNOWN)


# --- one origin -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OriginResult:
    """Scores of the accounts active at one origin, and what the training reported."""

    origin: dt.date
    scores: pd.DataFrame  # account_id, mrr, churned, probability, baseline/naive probability
    trained: dict[str, object]  # model form, training rows, the run's own test metrics
    note: str = ""


def score_origin(
    tables: Tables, origin: dt.date, plan: BacktestPlan, params: TrainParams
) -> OriginResult:
    """Train on the data known at ``origin`` as `churn train` would, score its accounts."""
    known = known_at(tables, origin)
    accounts = origin_accounts(tables, known, origin, plan)
    scores = pd.DataFrame(
        {
            "origin": pd.Timestamp(origin),
            "account_id": accounts.columns["account_id"],
            "mrr": accounts.mrr,
            "churned": accounts.churned.astype(np.int64),
            "probability": np.nan,
            "baseline_probability": np.nan,
            "naive_probability": accounts.naive,
        }
    )
    try:
        prepared = prepare_events(
            known, plan.horizon_days, plan.every, origin, plan.split, plan.exclude_columns
        )
        trained = fit_and_evaluate(prepared, params, Steps(enabled=False))
    except DataError as error:
        return OriginResult(origin, scores, {}, f"not trained: {error}")
    assert trained.fitted is not None
    features = trained.model.matrix(accounts.columns)
    model, baseline = trained.fitted.probabilities(features)
    scores["probability"], scores["baseline_probability"] = model, baseline
    facts = {
        "model_form": model_form(trained.model),
        "train_rows": int(prepared.summary["rows"].sum()),
        "test_roc_auc": trained.metrics.get("test_roc_auc", np.nan),
    }
    return OriginResult(origin, scores, facts)


def origin_metrics(result: OriginResult, plan: BacktestPlan) -> dict[str, object]:
    """One backtest row: realized ranking, calibration and volume for the model, its
    baseline and the naive rule, on the accounts active at the origin."""
    scores = result.scores
    label = scores["churned"].to_numpy(np.float64)
    revenue = annual_revenue(np.nan_to_num(scores["mrr"].to_numpy(np.float64)))
    churners = int(label.sum())
    row: dict[str, object] = {
        "origin": pd.Timestamp(result.origin),
        "accounts": len(scores),
        "churners": churners,
    }
    for name, prefix in PREFIXES.items():
        column = "probability" if name == "model" else f"{name}_probability"
        probability = scores[column].to_numpy(np.float64)
        known = ~np.isnan(probability)
        metrics = classification_metrics(label, probability) if known.all() and len(label) else {}
        for key in (*RANKING, "ece", "brier"):
            row[f"{prefix}{key}"] = metrics.get(key, np.nan)
        row[f"{prefix}predicted_churners"] = float(probability.sum()) if known.all() else np.nan
        row[f"{prefix}revenue_at_risk"] = (
            float((probability * revenue).sum()) if known.all() else np.nan
        )
        if name == "model":
            row["realized_churners"] = churners
            row["revenue_lost"] = float((label * revenue).sum())
    row.update(
        {
            "test_roc_auc": result.trained.get("test_roc_auc", np.nan),
            "model_form": result.trained.get("model_form", ""),
            "train_rows": result.trained.get("train_rows", 0),
            "enough_churners": churners >= plan.min_churners,
            "note": "; ".join(
                n
                for n in (
                    result.note,
                    f"only {churners} churners (< {plan.min_churners}): read with care"
                    if churners < plan.min_churners
                    else "",
                )
                if n
            ),
        }
    )
    return row


# --- the whole backtest -----------------------------------------------------------------------


@dataclass(frozen=True)
class Backtest:
    table: pd.DataFrame  # one row per origin (backtest.csv)
    scores: pd.DataFrame  # one row per account and origin (scores.parquet)
    plan: BacktestPlan
    data_end: dt.date

    def summary(self) -> dict[str, float]:
        """Means over the origins with enough churners to judge (what the run logs)."""
        judged = self.table[self.table["enough_churners"].astype(bool)]
        keys = [f"{p}{k}" for p in PREFIXES.values() for k in ("roc_auc", "lift_top10", "ece")]
        out = {f"mean_{k}": float(judged[k].mean()) for k in keys if judged[k].notna().any()}
        out["origins"] = float(len(self.table))
        out["origins_judged"] = float(len(judged))
        return out

    def model_form(self) -> str:
        forms = sorted({str(f) for f in self.table["model_form"] if f})
        return forms[0] if len(forms) == 1 else "+".join(forms) if forms else "untrained"


def run_backtest(
    tables: Tables,
    origins: Sequence[dt.date],
    plan: BacktestPlan,
    params: TrainParams,
    data_end: dt.date,
    steps: Steps | None = None,
) -> Backtest:
    """Every origin in turn: train on what was known, score, judge on what happened."""
    steps = steps or Steps(enabled=False)
    rows, scores = [], []
    for number, origin in enumerate(origins, start=1):
        with steps.step(f"origin {origin} ({number}/{len(origins)}): train, score, judge"):
            result = score_origin(tables, origin, plan, params)
        rows.append(origin_metrics(result, plan))
        scores.append(result.scores)
    table = pd.DataFrame(rows)
    table = table[[*FIRST_COLUMNS, *(c for c in table.columns if c not in FIRST_COLUMNS)]]
    return Backtest(table, pd.concat(scores, ignore_index=True), plan, data_end)


def check_origins(
    tables: Tables, first: dt.date | None, last: dt.date | None, end: dt.date, plan: BacktestPlan
) -> tuple[dt.date, dt.date]:
    """The origin range, defaulted and checked against the data."""
    first = first or first_possible_origin(tables, plan)
    latest = last_possible_origin(end, plan)
    last = last or latest
    if last > latest:
        raise DataError(
            f"--to {last}: the outcome of an origin needs its whole {plan.horizon_days}-day "
            f"horizon inside the data (ending {end}); the last possible origin is {latest}"
        )
    if first > last:
        raise DataError(
            f"no origin between {first} and {last}: the data ({tables.data_start()} to {end}) "
            f"is too short for `churn train`'s split plus a {plan.horizon_days}-day horizon; "
            "give --from, or a longer history, or fewer held-out periods"
        )
    return first, last
