"""Who signs up (the population) and what happens to them month by month (the history)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from features.timeline import MISSING_DAY, add_months
from training.demo.draws import Bools, Codes, Ints, choice, uniform
from training.demo.dynamics import AccountState, decision_probability, hazard_components, step
from training.demo.months import decision_days, month_end, month_of, month_start
from training.demo.parameters import (
    ACQUISITION_EFFECT,
    ACQUISITION_MIX,
    ADOPTION_START,
    ANNUAL_DISCOUNT,
    ANNUAL_SHARE,
    CSM_SHARE,
    DISCOUNT_RANGE,
    EMPLOYEES_MEDIAN,
    EMPLOYEES_SIGMA,
    FAILED_ADOPTION_SHARE,
    HEALTH_BASELINE_SD,
    HEALTH_INNOVATION_SD,
    HEALTH_PERSISTENCE,
    INDUSTRY_EFFECT,
    INDUSTRY_MIX,
    LEGACY_MONTHS,
    PLAN_MIX,
    PRICE_PER_SEAT,
    REGION_MIX,
    SEATS_CAP,
    SEATS_MEDIAN,
    SEATS_SIGMA,
    SIGNUP_GROWTH_PER_MONTH,
    SIGNUP_SEASONALITY,
    SIZE_EFFECT_PER_DECADE,
)


@dataclass(frozen=True)
class Population:
    """Static attributes of the simulated candidates, and where each comes from."""

    legacy: Bools
    industry: Codes
    region: Codes
    channel: Codes
    employees: Ints
    initial: AccountState


@dataclass(frozen=True)
class History:
    """The realised monthly states and churn of the kept accounts."""

    months: Ints  # month index of each entry of `states`
    states: list[AccountState]
    churn_day: Ints
    churn_reason: Codes  # index into CHURN_REASONS, -1 active

    def at(self, month: int) -> AccountState:
        return self.states[int(month - self.months[0])]


def signup_days(rng: np.random.Generator, count: int, first_day: int, last_day: int) -> Ints:
    """`count` signup days in [first_day, last_day]: monthly cohorts with growth and seasonality."""
    months = np.arange(month_of(first_day), month_of(last_day) + 1)
    calendar_month = months % 12 + 1
    weight = np.exp(SIGNUP_GROWTH_PER_MONTH * (months - months[0]))
    weight *= np.array([SIGNUP_SEASONALITY.get(int(m), 1.0) for m in calendar_month])
    lo = np.maximum([month_start(m) for m in months], first_day)
    hi = np.minimum([month_end(m) for m in months], last_day)
    weight *= (hi - lo + 1) / np.array([month_end(m) - month_start(m) + 1 for m in months])
    cohort = rng.choice(len(months), size=count, p=weight / weight.sum())
    return lo[cohort] + (rng.random(count) * (hi - lo + 1)[cohort]).astype(np.int64)


def draw_population(
    rng: np.random.Generator, n_legacy: int, n_new: int, start: int, end: int
) -> Population:
    """Legacy candidates (signed up in the 24 months before `start`) and new signups."""
    first_legacy = add_months(np.array([start]), -LEGACY_MONTHS)[0]
    signup = np.concatenate(
        [
            signup_days(rng, n_legacy, int(first_legacy), start - 1),
            signup_days(rng, n_new, start, end),
        ]
    )
    n = len(signup)
    plan = choice(rng.random(n), PLAN_MIX)
    annual = rng.random(n) < np.take(ANNUAL_SHARE, plan)
    seats = np.exp(
        np.log(np.take(SEATS_MEDIAN, plan)) + np.take(SEATS_SIGMA, plan) * rng.standard_normal(n)
    )
    seats = np.clip(np.round(seats), 1, SEATS_CAP).astype(np.int64)
    discount = uniform(rng.random(n), DISCOUNT_RANGE) * np.where(annual, ANNUAL_DISCOUNT, 1.0)
    industry = choice(rng.random(n), INDUSTRY_MIX)
    region = choice(rng.random(n), REGION_MIX)
    channel = choice(rng.random(n), ACQUISITION_MIX)
    employees = np.exp(
        np.log(np.take(EMPLOYEES_MEDIAN, plan)) + EMPLOYEES_SIGMA * rng.standard_normal(n)
    )
    employees = np.maximum(np.round(employees), seats).astype(np.int64)
    mu = (
        np.take(list(INDUSTRY_EFFECT.values()), industry)
        + np.take(list(ACQUISITION_EFFECT.values()), channel)
        + SIZE_EFFECT_PER_DECADE * np.log10(employees / 100.0)
        + HEALTH_BASELINE_SD * rng.standard_normal(n)
    )
    stationary_sd = HEALTH_INNOVATION_SD / np.sqrt(1.0 - HEALTH_PERSISTENCE**2)
    zeros = np.zeros(n, dtype=np.int64)
    initial = AccountState(
        signup_day=signup,
        signup_month=month_of(signup),
        annual=annual,
        has_csm=rng.random(n) < np.take(CSM_SHARE, plan),
        failed=rng.random(n) < FAILED_ADOPTION_SHARE,
        mu=mu,
        discount=discount,
        health=mu + stationary_sd * rng.standard_normal(n),
        adoption=np.full(n, ADOPTION_START),
        neglected=np.zeros(n, dtype=bool),
        neglect_months=zeros,
        contacts=zeros,
        qbr=np.zeros(n, dtype=bool),
        support_left=zeros,
        support_slow=np.zeros(n, dtype=bool),
        gap_left=zeros,
        gap_role=np.zeros(n, dtype=np.int8),
        replaced=np.zeros(n, dtype=bool),
        departed=np.zeros(n, dtype=bool),
        joined=np.zeros(n, dtype=bool),
        shock_left=zeros,
        shock_drop=np.zeros(n),
        plan=plan,
        seats=seats,
        mrr=np.round(seats * np.take(PRICE_PER_SEAT, plan) * discount, 2),
        change=np.zeros(n, dtype=np.int8),
    )
    legacy = np.arange(n) < n_legacy
    return Population(legacy, industry, region, channel, employees, initial)


def simulate(
    population: Population, end: int, rng: np.random.Generator, bar: tqdm
) -> tuple[Ints, list[AccountState], Ints, Codes]:
    """Run every candidate month by month from the first signup month to `end`.

    Returns the month indices, the state of each month, churn days and churn reasons.
    The churn reason is the mechanism with the largest hazard at the decision.
    """
    state = population.initial
    months = np.arange(state.signup_month.min(), month_of(end) + 1)
    churn_day = np.full(len(state), MISSING_DAY, dtype=np.int64)
    reason = np.full(len(state), -1, dtype=np.int8)
    states = []
    for month in months:
        state = step(state, int(month), rng)
        states.append(state)
        decision = decision_days(state.signup_day, state.signup_month, state.annual, int(month))
        hazards = hazard_components(state, int(month))
        q = decision_probability(state, int(month))
        leaves = (decision != MISSING_DAY) & (decision <= end) & (churn_day == MISSING_DAY)
        leaves &= rng.random(len(state)) < q
        churn_day[leaves] = decision[leaves]
        reason[leaves] = hazards.argmax(axis=0)[leaves]
        bar.update(1)
    return months, states, churn_day, reason


def keep_accounts(population: Population, churn_day: Ints, n_legacy: int, start: int) -> Ints:
    """Candidate indices kept: the first `n_legacy` legacy survivors at `start`, every new one.

    The initial book holds only customers still active when the event history begins;
    order is by signup date, which also fixes the account ids.
    """
    alive = (churn_day == MISSING_DAY) | (churn_day > start)
    survivors = np.flatnonzero(population.legacy & alive)
    if len(survivors) < n_legacy:
        raise RuntimeError(
            f"only {len(survivors)} of the legacy candidates survive to start; need {n_legacy}:"
            " raise LEGACY_OVERSAMPLE"
        )
    kept = np.concatenate([survivors[:n_legacy], np.flatnonzero(~population.legacy)])
    order = np.lexsort((kept, population.initial.signup_day[kept]))
    return kept[order]


def last_event_day(history: History, end: int) -> Ints:
    """The last day an account can show an event: its churn date, else the end of data."""
    return np.where(history.churn_day == MISSING_DAY, end, np.minimum(history.churn_day, end))
