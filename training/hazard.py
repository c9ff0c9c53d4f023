"""Fit the time-to-churn model and judge it against Cox and Kaplan-Meier, at two origins.

The hazard model learns from the same snapshots as the horizon model (every observation
date before the test window), expanded into the months that follow each
(``training.survival.expand_intervals``). What a row may know ends on the first day of the
test window: later months are censored, so no test outcome is ever learnt.

Its questions span a year, and the as-of windows just before the test (the horizon
model's validation and calibration) can only show the first months after their dates.
So its held-out rows are *accounts*: 15% of them (all their snapshots) stop the trees
early, another 15% fit the calibrator, whose slope moves with the months elapsed
(``models.hazard.MonthCalibrator``); then (``refit``) the booster is refitted on every
account with the tree count scaled, keeping that calibrator. The test window stays later
in time than everything it learnt from.

Two origins are judged, each with all three models fitted the same way:

- ``test``: the horizon model's test window. The served hazard model is the one fitted
  here; horizons that reach past the end of the data from these dates (180 and 365 days
  on a data set that ends three months later) cannot be checked on them.
- ``long_test``: the latest observation dates whose *longest* horizon lies inside the data,
  with every model refitted on the snapshots before them: every horizon is checked there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np

from features.derive import FeatureSpec
from features.errors import ChurnError, DataError, ModelError
from features.schema import Columns
from features.timeline import date_of, months_covering
from models.hazard import RENEWAL_INPUTS, HazardFit, HazardModel, MonthCalibrator
from training.dataset import MIN_POSITIVES, MIN_ROWS, SplitPlan
from training.fit import Part
from training.params import TrainParams
from training.progress import Steps
from training.survival import (
    Followup,
    Outcomes,
    evaluation_grid,
    expand_intervals,
    followup,
    keyed,
    longest_observed,
    survival_metrics,
)
from training.survival_baselines import CoxBaseline, KaplanMeierBaseline, strata

log = logging.getLogger(__name__)
FIT_SPLITS = ("train", "validation", "calibration")  # the horizon model's windows before test
HELD_OUT = {"validation": 0.15, "calibration": 0.15}  # shares of accounts the hazard holds out
MODELS = ("hazard", "cox", "km")


@dataclass(frozen=True)
class Origin:
    """Snapshot columns and outcomes per split, and the day training knowledge ends."""

    name: str  # "test" or "long_test": the metric key prefix
    columns: dict[str, Columns]
    outcomes: dict[str, Outcomes]
    data_end: int

    @property
    def known_until(self) -> int:
        """The first test date: training rows see nothing on or after it."""
        return int(self.outcomes["test"].as_of.min())

    def describe(self) -> dict[str, str]:
        test = self.outcomes["test"].as_of
        return {
            "first_test_as_of": date_of(int(test.min())).isoformat(),
            "last_test_as_of": date_of(int(test.max())).isoformat(),
            "training_known_until": date_of(self.known_until).isoformat(),
        }


@dataclass
class Judged:
    """One origin's figures and the curves behind them (for plots)."""

    origin: Origin
    metrics: dict[str, float]  # keyed ``{origin}_{model}_{metric}``
    grid: np.ndarray
    survival: dict[str, np.ndarray]  # model -> test rows x grid
    training_strata: np.ndarray  # stage | plan of the training snapshots (KM plots)
    training_followup: Followup  # their follow-up, censored where training knowledge ends
    horizons: tuple[int, ...]


@dataclass
class SurvivalReport:
    """The served hazard model and every origin's figures; what was skipped and why."""

    model: HazardModel
    judged: list[Judged]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for judged in self.judged:
            out.update(judged.metrics)
        return out


def hazard_params(params: TrainParams, rows_per_snapshot: float) -> dict:
    """LightGBM settings of the hazard booster: the churn model's, with the leaf minimum
    counted in snapshots rather than person-months (each snapshot repeats up to ``months``
    times, and a leaf of 300 copies of 25 accounts learns accounts, not churn). ``params``
    carry the capacity the search chose for the horizon model on the same snapshots.
    """
    settings = params.lightgbm()
    settings["min_data_in_leaf"] = max(1, round(params.min_data_in_leaf * rows_per_snapshot))
    return settings


def person_months(
    model: HazardModel, features: np.ndarray, outcomes: Outcomes, known_until: int
) -> tuple[Part, np.ndarray]:
    """One group's person-month rows (booster input, churned in that month) and the months
    elapsed of each."""
    intervals = expand_intervals(outcomes, known_until, model.months)
    rows = model.rows(features[intervals.row], intervals.month)
    return Part(rows, intervals.churned), intervals.month


def account_roles(account_id: np.ndarray, seed: int) -> np.ndarray:
    """``train``, ``validation`` or ``calibration`` per row, drawn once per account."""
    accounts, which = np.unique(account_id.astype(str), return_inverse=True)
    draw = np.random.default_rng(seed).random(len(accounts))
    cut = np.cumsum(list(HELD_OUT.values()))
    names = np.array([*HELD_OUT, "train"], dtype=object)
    return names[np.searchsorted(cut, draw, side="right")][which]


def fit_hazard(
    spec: FeatureSpec, origin: Origin, params: TrainParams, horizons: Sequence[int]
) -> HazardModel:
    """Trees early-stopped on held-out accounts, month-aware calibration on others,
    refitted on every account (see the module doc)."""
    model = HazardModel(
        booster=None,  # type: ignore[arg-type]
        calibrator=MonthCalibrator(),
        feature_names=tuple(spec.names),
        horizons=tuple(sorted(horizons)),
        months=months_covering(max(horizons)),
        renewal=all(name in spec.names for name in RENEWAL_INPUTS),
    )
    columns, outcomes = _rows(origin, FIT_SPLITS)
    features = spec.matrix(columns)
    role = account_roles(columns["account_id"], params.seed)
    groups = {
        name: person_months(
            model, features[role == name], outcomes.take(role == name), origin.known_until
        )
        for name in ("train", *HELD_OUT)
    }
    parts = {name: part for name, (part, _) in groups.items()}
    check_intervals(parts, origin.name)
    per_snapshot = sum(len(p.label) for p in parts.values()) / max(len(outcomes), 1)
    settings = hazard_params(params, per_snapshot)
    categorical = [c for c in spec.categorical if c in model.names]
    train = _dataset(model, parts["train"], categorical)
    valid = _dataset(model, parts["validation"], categorical, reference=train)
    early = lgb.train(
        settings,
        train,
        num_boost_round=params.num_boost_round,
        valid_sets=[valid],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )
    trees = early.best_iteration or params.num_boost_round
    model.booster = lgb.Booster(model_str=early.model_to_string(num_iteration=trees))
    held, month = groups["calibration"]
    model.calibrator.fit(model.margin(held.features), month, held.label)
    if params.refit:
        rows = np.vstack([p.features for p in parts.values()])
        label = np.concatenate([p.label for p in parts.values()])
        size = max(
            1, min(params.num_boost_round, round(trees * len(label) / len(parts["train"].label)))
        )
        model.booster = lgb.train(
            settings, _dataset(model, Part(rows, label), categorical), num_boost_round=size
        )
    model.fit = HazardFit(
        early_stopping_trees=int(trees),
        trees=int(model.booster.num_trees()),
        min_data_in_leaf=int(settings["min_data_in_leaf"]),
        person_months={name: len(p.label) for name, p in parts.items()},
        held_out_accounts={
            name: len(np.unique(columns["account_id"][role == name].astype(str)))
            for name in HELD_OUT
        },
        **origin.describe(),
    )
    return model


def _dataset(
    model: HazardModel, part: Part, categorical: list[str], reference: lgb.Dataset | None = None
) -> lgb.Dataset:
    return lgb.Dataset(
        part.features,
        part.label,
        feature_name=model.names,
        categorical_feature=categorical,
        reference=reference,
        free_raw_data=False,
    )


def check_intervals(parts: dict[str, Part], origin: str) -> None:
    """Enough person-months and churns in every window before anything is fitted."""
    for split, part in parts.items():
        churned = int(part.label.sum())
        if len(part.label) < MIN_ROWS[split] or churned < MIN_POSITIVES[split]:
            raise ModelError(
                f"the time-to-churn model's {split} window ({origin}) has {len(part.label)} "
                f"observed account-months with {churned} churns; it needs at least "
                f"{MIN_ROWS[split]} and {MIN_POSITIVES[split]}. Provide a longer history, or "
                "train without horizons (--horizons none)."
            )


# --- judging ---------------------------------------------------------------------------------


def judge(spec: FeatureSpec, origin: Origin, hazard: HazardModel, params: TrainParams) -> Judged:
    """Hazard, Cox and Kaplan-Meier survival curves on the test rows, and their metrics."""
    horizons = hazard.horizons
    grid = evaluation_grid(horizons)
    known = origin.known_until
    cap = int(max(horizons))
    fit_columns, fit_outcomes = _rows(origin, FIT_SPLITS)
    fit_features = spec.matrix(fit_columns)
    follow = followup(fit_outcomes, known, cap)
    fit_strata = strata(fit_columns)
    test_columns, test_outcomes = origin.columns["test"], origin.outcomes["test"]
    test_features = spec.matrix(test_columns)
    categorical = [spec.names.index(c) for c in spec.categorical]
    survival = {
        "hazard": hazard.survival(test_features, params.num_threads).at_days(grid),
        "cox": CoxBaseline().fit(fit_features, categorical, follow).survival(test_features, grid),
        "km": KaplanMeierBaseline().fit(fit_strata, follow, grid).survival(strata(test_columns)),
    }
    tau = longest_observed(test_outcomes, origin.data_end, horizons)
    if tau is None:
        raise DataError(
            f"no horizon lies inside the data for every {origin.name} snapshot: nothing to judge"
        )
    metrics: dict[str, float] = {}
    for name, curves in survival.items():
        found = survival_metrics(test_outcomes, origin.data_end, curves, grid, horizons, tau)
        metrics.update(keyed(found, origin.name, name))
    metrics[f"{origin.name}_survival_days"] = float(tau)
    return Judged(origin, metrics, grid, survival, fit_strata, follow, horizons)


def long_test_origin(
    columns: Columns, outcomes: Outcomes, data_end: int, plan: SplitPlan, longest: int
) -> Origin:
    """Snapshots re-split so the test window is the latest dates whose longest horizon lies
    inside the data (DataError when the history is too short for that)."""
    inside = outcomes.as_of + longest <= data_end
    days = np.unique(outcomes.as_of[inside])
    assignment = plan.assign([date_of(int(d)) for d in days])
    every_day, which = np.unique(outcomes.as_of, return_inverse=True)
    named = {day: assignment[date_of(int(day))] for day in days.tolist()}
    split_of = np.array([named.get(day, "") for day in every_day.tolist()], dtype=object)[which]
    parts_columns, parts_outcomes = {}, {}
    for split in (*FIT_SPLITS, "test"):
        rows = np.flatnonzero(split_of == split)
        parts_columns[split] = {name: values[rows] for name, values in columns.items()}
        parts_outcomes[split] = outcomes.take(rows)
    return Origin("long_test", parts_columns, parts_outcomes, data_end)


def survival_report(
    spec: FeatureSpec,
    origin: Origin,
    params: TrainParams,
    horizons: Sequence[int],
    plan: SplitPlan,
    steps: Steps,
) -> SurvivalReport:
    """The served hazard model (fitted at the test origin) and both origins judged."""
    with steps.step("training the time-to-churn model (monthly hazards)"):
        model = fit_hazard(spec, origin, params, horizons)
    with steps.step("judging it against Cox and Kaplan-Meier on the test window"):
        judged = [judge(spec, origin, model, params)]
    skipped: dict[str, str] = {}
    everything = _rows(origin, (*FIT_SPLITS, "test"))
    try:
        long = long_test_origin(*everything, origin.data_end, plan, max(horizons))
        if long.known_until == origin.known_until:
            skipped["long_test"] = f"the test window already observes {max(horizons)} days"
            return SurvivalReport(model, judged, skipped)
        with steps.step(f"refitting all three where {max(horizons)} days are observed"):
            long_spec = FeatureSpec.fit(
                long.columns["train"], long.columns["train"].get("account_id")
            )
            long_model = fit_hazard(long_spec, long, params, horizons)
            judged.append(judge(long_spec, long, long_model, params))
    except ChurnError as exc:
        skipped["long_test"] = str(exc)
        log.warning("long-horizon check skipped: %s", exc)
    return SurvivalReport(model, judged, skipped)


def _rows(origin: Origin, splits: Sequence[str]) -> tuple[Columns, Outcomes]:
    """The columns and outcomes of ``splits`` together."""
    names = origin.columns[splits[0]].keys()
    columns = {name: np.concatenate([origin.columns[s][name] for s in splits]) for name in names}
    return columns, Outcomes.concat([origin.outcomes[s] for s in splits])
