"""A synthetic B2B SaaS business whose churn we know: demo data and the Bayes limit.

The generator is a small simulation, not a random table filler. Every account has a
hidden monthly state (health, adoption, CSM attention, support trouble, key-contact
turnover, competitor pressure, seats) that evolves in one transition function,
:func:`step`. Whether an account leaves at a contract decision date is a pure function of
that state, :func:`decision_probability`. Everything a real export would contain (usage,
NPS, contacts, tickets, stakeholders, subscription changes) is *emitted* from the state
through a separate random stream and never feeds back, so the observable tables are
noisy, partial views of what drives churn, as in real life.

Because the state is known, so is the best possible forecast: ``truth.parquet`` holds, for
every account active at every observation date, ``p_true`` = P(churn within the horizon |
hidden state), computed by running the very same :func:`step` forward many times. A model
trained on the observable tables can approach that limit but not pass it. The mechanisms
and every noise parameter are documented in ``docs/demo-data.md``; they were fixed from
domain reasoning and must not be tuned to make a model look good.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from tqdm import tqdm

from features.errors import ChurnError
from features.files import atomic_directory
from features.timeline import (
    EPOCH,
    MISSING_DAY,
    active_on,
    add_months,
    churn_label,
    date_of,
    day_of,
    days_to_datetime,
    next_term_end,
    observation_dates,
)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int8]

# ======================================================================================
# Population: who signs up, when, on which plan
# ======================================================================================

LEGACY_SHARE = 1 / 3  # accounts signed up before `start` (the book a new system imports)
LEGACY_MONTHS = 24  # the initial book signed up in the 24 months before `start`
LEGACY_OVERSAMPLE = 3.0  # legacy candidates simulated per legacy account kept (survivors only)
LEGACY_SPARE = 20  # extra candidates, so tiny data sets never run short of survivors
SIGNUP_GROWTH_PER_MONTH = 0.015  # signups grow ~20% a year
# Fewer deals close in the holiday months, more at the start of the year and after summer.
SIGNUP_SEASONALITY: Mapping[int, float] = {1: 1.1, 8: 0.75, 9: 1.1, 12: 0.65}

PLANS = ("starter", "growth", "enterprise")
PLAN_MIX = (0.55, 0.33, 0.12)
ANNUAL_SHARE = (0.25, 0.55, 0.85)  # larger plans sign annual contracts more often
SEATS_MEDIAN = (4.0, 14.0, 45.0)  # seats are lognormal per plan
SEATS_SIGMA = (0.45, 0.45, 0.55)
SEATS_CAP = 999  # user ids carry three digits
PRICE_PER_SEAT = (25.0, 45.0, 70.0)  # list price per seat and month
DISCOUNT_RANGE = (0.75, 1.0)  # negotiated discount, uniform per account
ANNUAL_DISCOUNT = 0.85  # annual prepay discount on top
CSM_SHARE = (0.15, 0.80, 1.0)  # share of accounts with a named customer-success manager
EMPLOYEES_MEDIAN = (30.0, 200.0, 2000.0)  # company size (lognormal per plan)
EMPLOYEES_SIGMA = 0.8

# Static attributes and their effect on the account's health baseline mu_i. Small on
# purpose: firmographics explain a little of churn, never most of it. Region has none.
INDUSTRY_EFFECT: Mapping[str, float] = {
    "software": 0.10,
    "finance": 0.10,
    "healthcare": 0.05,
    "manufacturing": 0.0,
    "education": -0.10,
    "media": -0.10,
    "retail": -0.15,
}
INDUSTRY_MIX = (0.25, 0.12, 0.12, 0.15, 0.10, 0.10, 0.16)
REGIONS = ("north_america", "europe", "apac", "latam")
REGION_MIX = (0.45, 0.33, 0.14, 0.08)
ACQUISITION_EFFECT: Mapping[str, float] = {
    "inbound": 0.10,
    "partner": 0.15,
    "event": 0.0,
    "outbound": -0.10,
    "paid_search": -0.15,
}
ACQUISITION_MIX = (0.35, 0.12, 0.10, 0.23, 0.20)
SIZE_EFFECT_PER_DECADE = 0.05  # bigger companies are slightly steadier
HEALTH_BASELINE_SD = 0.5  # unexplained spread of account baselines mu_i

# ======================================================================================
# Dynamics: the hidden monthly state (all of it lives in `step`)
# ======================================================================================

HEALTH_PERSISTENCE = 0.8  # AR(1) coefficient: a shock to health halves in ~3 months
HEALTH_INNOVATION_SD = 0.35  # month-to-month noise; stationary sd 0.35/sqrt(1-0.8^2) = 0.58

EARLY_MONTHS = 3  # the onboarding stage
FAILED_ADOPTION_SHARE = 0.25  # accounts whose roll-out fails in the first 3 months
ADOPTION_START = 0.3  # share of the intended use reached in the signup month
ADOPTION_SPEED = 0.5  # monthly pull towards the target level
ADOPTION_NOISE_SD = 0.05
ADOPTION_TARGET = 1.0  # successful roll-out
FAILED_ADOPTION_LEVEL = 0.2  # failed roll-out, first 3 months
RECOVERED_ADOPTION_LEVEL = 0.65  # failed roll-outs that survive partly recover

CONTACT_RATE = (0.8, 1.5, 3.0)  # CSM touches per month by plan (Poisson), when attentive
NO_CSM_CONTACT_RATE = 0.15  # sales / account-management touches without a CSM
ESCALATION_CONTACTS = 0.5  # extra touches per month while a support episode is open
CONTACT_LIFT = 0.03  # health gained per contact (at most CONTACT_LIFT_CAP contacts count)
CONTACT_LIFT_CAP = 3
NEGLECT_ENTER = 0.05  # monthly chance a CSM stops contacting the account (Markov spell)
NEGLECT_EXIT = 0.30  # monthly chance the spell ends (mean spell 3.3 months)
NEGLECT_GRACE_MONTHS = 2  # neglect hurts only after this many months
NEGLECT_DRAG = 0.05  # health lost per month of long neglect

SUPPORT_EPISODE_RATE = 0.05  # monthly chance a product problem starts
EARLY_SUPPORT_EPISODE_RATE = 0.10  # onboarding surfaces more problems
SUPPORT_EPISODE_MONTHS = (1, 3)  # episode length, uniform
SLOW_RESOLUTION_SHARE = 0.3  # episodes support is slow to fix
SUPPORT_DRAG = 0.08  # health lost per month of an open episode
SLOW_SUPPORT_DRAG = 0.15  # extra health lost per month when resolution is slow

DEPARTURE_RATE = (0.010, 0.015, 0.022)  # key contact leaves, per month by plan (more people)
ROLES = ("champion", "economic_buyer", "admin")
ROLE_MIX = (0.45, 0.25, 0.30)
DEPARTURE_HIT = (0.50, 0.35, 0.15)  # immediate health loss by role
CHAMPION_GAP_MONTHS = 4  # months of raised risk after a departure
REPLACEMENT_RATE = 0.3  # monthly chance a successor joins during the gap

SHOCK_RATE_EARLY = 0.003  # monthly chance of a competitor push, first 12 months
SHOCK_RATE_LATE = 0.02  # ... from month 12 on (competitors target settled accounts)
SHOCK_MONTHS = (3, 5)  # how long the evaluation lasts, uniform
SHOCK_VISIBLE_SHARE = 0.5  # shocks that show up as users trialling the competitor
SHOCK_USAGE_DROP = (0.2, 0.5)  # drop of monthly active users when visible

DOWNGRADE_MAX_RATE = 0.08  # monthly downgrade chance at very low health
DOWNGRADE_CENTER = -0.8  # health at which half of that rate applies
UPGRADE_MAX_RATE = 0.04  # monthly upgrade chance at very high health
UPGRADE_CENTER = 0.8
SEAT_CHANGE_SLOPE = 3.0  # steepness of both curves in health
DOWNGRADE_CUT = (0.2, 0.5)  # share of seats removed, uniform
UPGRADE_GROWTH = (0.1, 0.5)  # share of seats added, uniform
ANNUAL_SEAT_EXPOSURE = 6.0  # annual contracts cut seats only at renewal, with a year of intent
PLAN_UP_SEATS = (12, 60, SEATS_CAP + 1)  # more seats than this moves the plan up
PLAN_DOWN_SEATS = (0, 4, 20)  # fewer seats than this moves the plan down

# ======================================================================================
# Hazard at a decision date: additive monthly hazards by mechanism
# ======================================================================================

CHURN_REASONS = ("budget", "no value", "failed adoption", "competitor", "champion left")
BUDGET_HAZARD = (0.006, 0.004, 0.002)  # by plan: small customers lose budget more often
NO_VALUE_HAZARD = 0.008  # at health 0; scales with exp(-slope * health)
NO_VALUE_SLOPE = 1.3
NO_VALUE_STAGE = (0.5, 1.3, 0.8)  # early / mid / late: value is judged in months 3-12, then proven
ADOPTION_HAZARD = 0.6  # per unit of adoption below ADOPTION_HAZARD_FLOOR
ADOPTION_HAZARD_FLOOR = 0.6
LATE_ADOPTION_WEIGHT = 0.25  # after onboarding, poor adoption matters less
COMPETITOR_HAZARD = 0.10  # while a competitor shock lasts
CHAMPION_HAZARD = (0.05, 0.04, 0.01)  # during a gap, by role of who left
REPLACED_FACTOR = 0.5  # a successor halves the gap hazard
TERM_EXPOSURE = (1.0, 8.0)  # monthly, annual: a renewal weighs a year of intent, x2/3 commitment

# ======================================================================================
# Observation: how the state shows (or does not show) in the tables
# ======================================================================================

USER_ENGAGEMENT_SD = 1.0  # persistent per-user propensity (logit scale)
MAU_BASE_LOGIT = 0.8  # monthly active chance of an average user of a healthy account: 0.69
MAU_HEALTH_SLOPE = 0.8
MAU_ADOPTION_SLOPE = 3.0  # per unit of adoption below 1
DAU_BASE = 0.3  # chance an active user uses the product on a weekday
DAU_HEALTH_SLOPE = 0.25
DAU_ENGAGEMENT_SLOPE = 0.3
DAU_CAP = 0.95
WEEKEND_FACTOR = 0.2
AUGUST_FACTOR = 0.75
YEAR_END_FACTOR = 0.5  # 20-31 December
DUPLICATE_USAGE_SHARE = 0.005  # exact duplicate rows, as exports have them

NPS_BASE = 7.0  # score of an average-health account
NPS_HEALTH_SLOPE = 1.5
NPS_NOISE_SD = 1.3  # per answer
NPS_RESPONDENT_SD = 0.8  # per account: some respondents always say 8
ANSWER_LOGIT = -0.4  # 40% of surveys answered at health 0 ...
ANSWER_HEALTH_SLOPE = 0.8  # ... fewer by unhappy accounts
ONBOARDING_SURVEY_DAYS = (30, 60)  # after signup
RENEWAL_SURVEY_DAYS = (30, 60)  # before an annual renewal
QBR_SURVEY_SHARE = 0.6  # QBRs that include a survey
SUPPORT_SURVEY_SHARE = 0.25  # closed tickets followed by a survey
SUPPORT_SURVEY_DELAY_DAYS = 3  # at most this many days after closing

COMPLAINER_SHARE = 0.3  # accounts that file tickets when something is wrong
BACKGROUND_TICKET_RATE = 0.06  # how-to tickets per month, any account, unrelated to health
EPISODE_TICKET_RATE = 1.0  # tickets per month of an episode, complainers only
TICKET_SEAT_POWER = 0.3  # both rates grow with seats ** 0.3 (more users, more questions)
RESOLUTION_MEDIAN_DAYS = (1.0, 3.0, 12.0)  # background, episode, slow episode
RESOLUTION_SIGMA = 0.8  # lognormal spread of resolution time
BACKGROUND_PRIORITY_MIX = (0.50, 0.45, 0.05, 0.0)  # low, normal, high, urgent
EPISODE_PRIORITY_MIX = (0.0, 0.30, 0.50, 0.20)

LEFT_RECORDED = 0.8  # CRMs miss some departures ...
JOINED_RECORDED = 0.9  # ... and some successors
CHANNELS = ("email", "call", "meeting")
CONTACT_CHANNEL_MIX = ((0.70, 0.25, 0.05), (0.50, 0.35, 0.15), (0.35, 0.35, 0.30))  # by plan

# Text values of the tables, by the integer codes the emitters use.
EVENT_TABLES = ("subscriptions", "usage", "nps", "contacts", "tickets", "stakeholders")
TOUCHPOINTS = ("onboarding", "support", "qbr", "renewal")  # codes used by the emitters
CONTACT_CHANNELS = ("qbr", *CHANNELS)
STAKEHOLDER_CHANGES = ("left", "joined")
PRIORITIES = ("low", "normal", "high", "urgent")

TRUTH_CHUNK_ROWS = 1 << 19  # accounts x paths simulated at once (memory bound)


# ======================================================================================
# Public result
# ======================================================================================


@dataclass(frozen=True)
class DemoSummary:
    """What `generate_demo` wrote, and how hard the data is (truth base rate and AUC)."""

    accounts: int
    churned: int
    rows: Mapping[str, int]
    truth_rows: int
    base_rate: float
    truth_auc: float
    seconds: float

    def __str__(self) -> str:
        tables = ", ".join(f"{name} {count:,}" for name, count in self.rows.items())
        return (
            f"{self.accounts:,} accounts ({self.churned:,} churned); rows: {tables}; "
            f"truth: {self.truth_rows:,} rows, base rate {self.base_rate:.3f}, "
            f"AUC {self.truth_auc:.3f}; {self.seconds:.1f}s"
        )


# ======================================================================================
# Calendar helpers (months are integers: months since 1970-01)
# ======================================================================================


def month_of(day: Ints | int) -> Ints:
    """Days since epoch -> month index."""
    days = np.asarray(day, dtype=np.int64)
    return (EPOCH + days.astype("timedelta64[D]")).astype("datetime64[M]").astype(np.int64)


def month_start(month: int) -> int:
    """First day of a month index."""
    return int(np.datetime64(int(month), "M").astype("datetime64[D]").astype(np.int64))


def month_end(month: int) -> int:
    """Last day of a month index."""
    return month_start(month + 1) - 1


def decision_days(signup_day: Ints, signup_month: Ints, annual: Bools, month: int) -> Ints:
    """The contract decision date in `month` (``MISSING_DAY`` if none).

    Monthly contracts can end at every monthly billing anniversary, annual ones only at a
    signup anniversary; `add_months` from the signup date is the same arithmetic as
    `features.timeline.next_term_end`, so both sides agree on the calendar.
    """
    k = month - signup_month
    due = (k >= 1) & (~annual | (k % 12 == 0))
    days = add_months(signup_day, np.maximum(k, 0))
    return np.where(due, days, MISSING_DAY)


def _sigmoid(x: Floats) -> Floats:
    return 1.0 / (1.0 + np.exp(-x))


def _uniform(u: Floats, bounds: tuple[float, float]) -> Floats:
    return bounds[0] + (bounds[1] - bounds[0]) * u


def _choice(u: Floats, mix: tuple[float, ...] | Floats) -> Codes:
    """Categorical draw from uniforms (vectorized inverse CDF); `mix` may be per row (n, k)."""
    cdf = np.cumsum(np.asarray(mix, dtype=np.float64), axis=-1)
    cdf = cdf / cdf[..., -1:]
    if cdf.ndim == 1:
        return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1).astype(np.int8)
    return np.minimum((u[:, None] >= cdf).sum(axis=1), cdf.shape[1] - 1).astype(np.int8)


# ======================================================================================
# The hidden state and its dynamics
# ======================================================================================


@dataclass(frozen=True, slots=True)
class AccountState:
    """The hidden monthly state of every account (one array element per account).

    The first block is fixed at signup; the rest evolves in :func:`step`. Flags such as
    `departed` or `change` describe what happened in this month, so emission can show it.
    """

    # fixed at signup
    signup_day: Ints
    signup_month: Ints
    annual: Bools
    has_csm: Bools
    failed: Bools  # this account's roll-out fails in its first months
    mu: Floats  # health baseline
    discount: Floats
    # evolving
    health: Floats
    adoption: Floats
    neglected: Bools
    neglect_months: Ints
    contacts: Ints  # CSM / sales touches this month (QBR included)
    qbr: Bools  # a quarterly business review happens this month
    support_left: Ints  # months left of the current support-problem episode
    support_slow: Bools
    gap_left: Ints  # months left of raised risk after a key-contact departure
    gap_role: Codes
    replaced: Bools  # a successor joined during the gap
    departed: Bools  # a key contact left this month
    joined: Bools  # a successor joined this month
    shock_left: Ints  # months left of a competitor evaluation
    shock_drop: Floats  # share of monthly active users lost to the evaluation (0 if invisible)
    plan: Codes
    seats: Ints
    mrr: Floats
    change: Codes  # 0 none, 1 downgrade, 2 upgrade this month

    def __len__(self) -> int:
        return len(self.health)

    def take(self, index: Ints) -> Self:
        """The states of some accounts (repeat an index to replicate paths)."""
        return type(self)(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def merge(self, live: Bools, new: Self) -> Self:
        """`new` where `live`, else unchanged (accounts that have not signed up yet)."""
        if live.all():
            return new
        return type(self)(
            **{
                f.name: np.where(live, getattr(new, f.name), getattr(self, f.name))
                for f in fields(self)
            }
        )


def step(state: AccountState, month: int, rng: np.random.Generator) -> AccountState:
    """Advance every account's hidden state into `month` (the only stochastic dynamics).

    The result for a batch is a deterministic function of the generator state: one draw
    per account for each kind of event, then details (lengths, roles, sizes) only for the
    accounts where the event happened. Accounts that sign up later are left unchanged;
    the signup month is the first step.
    """
    n = len(state)
    u = rng.random((6, n))
    z = rng.standard_normal((2, n))
    tenure = month - state.signup_month
    live = tenure >= 0
    plan = state.plan

    neglected = np.where(state.neglected, u[0] >= NEGLECT_EXIT, u[0] < NEGLECT_ENTER)
    neglect_months = np.where(neglected, state.neglect_months + 1, 0)
    qbr = state.has_csm & ~neglected & (tenure > 0) & (tenure % 3 == 0)

    support_left = np.maximum(state.support_left - 1, 0)
    episode_rate = np.where(tenure < EARLY_MONTHS, EARLY_SUPPORT_EPISODE_RATE, SUPPORT_EPISODE_RATE)
    episode_starts = (support_left == 0) & (u[1] < episode_rate)
    detail = _details(rng, episode_starts, 2)
    low, high = SUPPORT_EPISODE_MONTHS
    support_left = np.where(
        episode_starts, low + (detail[0] * (high - low + 1)).astype(np.int64), support_left
    )
    support_slow = np.where(episode_starts, detail[1] < SLOW_RESOLUTION_SHARE, state.support_slow)
    in_episode = support_left > 0

    attentive_rate = np.where(state.has_csm, np.take(CONTACT_RATE, plan), NO_CSM_CONTACT_RATE)
    rate = np.where(neglected, 0.0, attentive_rate) + ESCALATION_CONTACTS * in_episode
    contacts = rng.poisson(rate) + qbr

    departed = u[2] < np.take(DEPARTURE_RATE, plan)
    role = _choice(_details(rng, departed, 1)[0], ROLE_MIX)
    gap_role = np.where(departed, role, state.gap_role).astype(np.int8)
    gap_left = np.where(departed, CHAMPION_GAP_MONTHS, np.maximum(state.gap_left - 1, 0))
    joined = ~departed & (gap_left > 0) & ~state.replaced & (u[3] < REPLACEMENT_RATE)
    replaced = np.where(departed, False, state.replaced | joined)

    shock_left = np.maximum(state.shock_left - 1, 0)
    shock_rate = np.where(tenure >= 12, SHOCK_RATE_LATE, SHOCK_RATE_EARLY)
    shock_starts = (shock_left == 0) & (u[4] < shock_rate)
    detail = _details(rng, shock_starts, 3)
    low, high = SHOCK_MONTHS
    shock_left = np.where(
        shock_starts, low + (detail[0] * (high - low + 1)).astype(np.int64), shock_left
    )
    visible = detail[1] < SHOCK_VISIBLE_SHARE
    visible_drop = np.where(visible, _uniform(detail[2], SHOCK_USAGE_DROP), 0.0)
    shock_drop = np.where(
        shock_starts, visible_drop, np.where(shock_left > 0, state.shock_drop, 0.0)
    )

    health = (
        state.mu
        + HEALTH_PERSISTENCE * (state.health - state.mu)
        + HEALTH_INNOVATION_SD * z[0]
        + CONTACT_LIFT * np.minimum(contacts, CONTACT_LIFT_CAP)
        - NEGLECT_DRAG * (neglect_months > NEGLECT_GRACE_MONTHS)
        - SUPPORT_DRAG * in_episode
        - SLOW_SUPPORT_DRAG * (in_episode & support_slow)
        - np.take(DEPARTURE_HIT, role) * departed
    )

    target = np.where(
        state.failed,
        np.where(tenure < EARLY_MONTHS, FAILED_ADOPTION_LEVEL, RECOVERED_ADOPTION_LEVEL),
        ADOPTION_TARGET,
    )
    adoption = (
        state.adoption + ADOPTION_SPEED * (target - state.adoption) + ADOPTION_NOISE_SD * z[1]
    )
    adoption = np.clip(adoption, 0.0, 1.0)

    plan, seats, change = _seat_changes(state, health, tenure, u[5], rng)
    mrr = np.round(seats * np.take(PRICE_PER_SEAT, plan) * state.discount, 2)

    new = AccountState(
        signup_day=state.signup_day,
        signup_month=state.signup_month,
        annual=state.annual,
        has_csm=state.has_csm,
        failed=state.failed,
        mu=state.mu,
        discount=state.discount,
        health=health,
        adoption=adoption,
        neglected=neglected,
        neglect_months=neglect_months,
        contacts=contacts,
        qbr=qbr,
        support_left=support_left,
        support_slow=support_slow,
        gap_left=gap_left,
        gap_role=gap_role,
        replaced=replaced,
        departed=departed,
        joined=joined,
        shock_left=shock_left,
        shock_drop=shock_drop,
        plan=plan,
        seats=seats,
        mrr=mrr,
        change=change,
    )
    return state.merge(live, new)


def _details(rng: np.random.Generator, happened: Bools, count: int) -> Floats:
    """`count` uniforms per account, drawn only where an event happened (0.5 elsewhere)."""
    out = np.full((count, len(happened)), 0.5)
    where = np.flatnonzero(happened)
    out[:, where] = rng.random((count, len(where)))
    return out


def _seat_changes(
    state: AccountState, health: Floats, tenure: Ints, u_event: Floats, rng: np.random.Generator
) -> tuple[Codes, Ints, Codes]:
    """Downgrades when health is low, upgrades when high; plans follow seat thresholds.

    Annual contracts can only shrink at a renewal, where a year of intent is weighed.
    """
    down_rate = DOWNGRADE_MAX_RATE * _sigmoid(-SEAT_CHANGE_SLOPE * (health - DOWNGRADE_CENTER))
    renewal = (tenure > 0) & (tenure % 12 == 0)
    annual_rate = 1.0 - (1.0 - down_rate) ** ANNUAL_SEAT_EXPOSURE
    down_rate = np.where(state.annual, np.where(renewal, annual_rate, 0.0), down_rate)
    up_rate = UPGRADE_MAX_RATE * _sigmoid(SEAT_CHANGE_SLOPE * (health - UPGRADE_CENTER))
    eligible = tenure >= 1
    down = eligible & (u_event < down_rate)
    up = eligible & ~down & (u_event < down_rate + up_rate)
    u_size = _details(rng, down | up, 1)[0]
    cut = np.round(state.seats * (1.0 - _uniform(u_size, DOWNGRADE_CUT))).astype(np.int64)
    grown = np.ceil(state.seats * (1.0 + _uniform(u_size, UPGRADE_GROWTH))).astype(np.int64)
    seats = np.where(
        down, np.maximum(cut, 1), np.where(up, np.minimum(grown, SEATS_CAP), state.seats)
    )
    plan = state.plan
    plan = np.where(down & (seats < np.take(PLAN_DOWN_SEATS, plan)), plan - 1, plan)
    plan = np.where(up & (seats > np.take(PLAN_UP_SEATS, plan)), plan + 1, plan).astype(np.int8)
    changed = (seats != state.seats) | (plan != state.plan)
    change = np.where(changed & down, 1, np.where(changed & up, 2, 0)).astype(np.int8)
    return plan, seats, change


def hazard_components(state: AccountState, month: int) -> Floats:
    """Monthly churn hazard by mechanism (rows in the order of `CHURN_REASONS`).

    Stage effects: early accounts leave when adoption failed, mid-life ones when they see
    no value (low health), settled ones when a competitor shows up.
    """
    tenure = month - state.signup_month
    stage = np.where(tenure <= EARLY_MONTHS, 0, np.where(tenure < 12, 1, 2))
    budget = np.take(BUDGET_HAZARD, state.plan)
    no_value = (
        NO_VALUE_HAZARD * np.exp(-NO_VALUE_SLOPE * state.health) * np.take(NO_VALUE_STAGE, stage)
    )
    adoption_gap = np.maximum(ADOPTION_HAZARD_FLOOR - state.adoption, 0.0)
    failed_adoption = (
        ADOPTION_HAZARD * adoption_gap * np.where(stage == 0, 1.0, LATE_ADOPTION_WEIGHT)
    )
    competitor = COMPETITOR_HAZARD * (state.shock_left > 0)
    gap = np.take(CHAMPION_HAZARD, state.gap_role) * np.where(state.replaced, REPLACED_FACTOR, 1.0)
    champion = gap * (state.gap_left > 0)
    return np.stack([budget, no_value, failed_adoption, competitor, champion])


def decision_probability(state: AccountState, month: int) -> Floats:
    """P(the account leaves | it faces a contract decision in `month` with this state)."""
    exposure = np.where(state.annual, TERM_EXPOSURE[1], TERM_EXPOSURE[0])
    return 1.0 - np.exp(-exposure * hazard_components(state, month).sum(axis=0))


# ======================================================================================
# Population and the realised history
# ======================================================================================


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
    plan = _choice(rng.random(n), PLAN_MIX)
    annual = rng.random(n) < np.take(ANNUAL_SHARE, plan)
    seats = np.exp(
        np.log(np.take(SEATS_MEDIAN, plan)) + np.take(SEATS_SIGMA, plan) * rng.standard_normal(n)
    )
    seats = np.clip(np.round(seats), 1, SEATS_CAP).astype(np.int64)
    discount = _uniform(rng.random(n), DISCOUNT_RANGE) * np.where(annual, ANNUAL_DISCOUNT, 1.0)
    industry = _choice(rng.random(n), INDUSTRY_MIX)
    region = _choice(rng.random(n), REGION_MIX)
    channel = _choice(rng.random(n), ACQUISITION_MIX)
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


# ======================================================================================
# Emission: what a real export shows of the state (separate random stream)
# ======================================================================================


@dataclass(frozen=True)
class Profile:
    """Per-account observation traits; they shape the tables, never the churn."""

    complainer: Bools
    respondent_bias: Floats
    onboarding_survey_day: Ints
    renewal_survey_offset: Ints
    user_offset: Ints  # first user slot of each account in `engagement`
    engagement: Floats  # persistent propensity of every user slot (logit scale)


def draw_profile(rng: np.random.Generator, signup_day: Ints, max_seats: Ints) -> Profile:
    n = len(signup_day)
    low, high = ONBOARDING_SURVEY_DAYS
    onboarding = signup_day + rng.integers(low, high + 1, n)
    low, high = RENEWAL_SURVEY_DAYS
    offsets = np.concatenate([[0], np.cumsum(max_seats)[:-1]])
    return Profile(
        complainer=rng.random(n) < COMPLAINER_SHARE,
        respondent_bias=NPS_RESPONDENT_SD * rng.standard_normal(n),
        onboarding_survey_day=onboarding,
        renewal_survey_offset=rng.integers(low, high + 1, n),
        user_offset=offsets,
        engagement=USER_ENGAGEMENT_SD * rng.standard_normal(int(max_seats.sum())),
    )


@dataclass(frozen=True)
class MonthWindow:
    """Days of one month on which each account may show events: [lo, hi], empty if lo > hi."""

    first: int
    length: int
    lo: Ints
    hi: Ints

    def inside(self, account: Ints, day: Ints) -> Bools:
        return (day >= self.lo[account]) & (day <= self.hi[account])


class Events:
    """Rows of one table collected month by month as integer columns."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, **columns: np.ndarray) -> None:
        for name, values in columns.items():
            self.parts.setdefault(name, []).append(np.asarray(values))

    def column(self, name: str) -> np.ndarray:
        return (
            np.concatenate(self.parts[name]) if name in self.parts else np.array([], dtype=np.int64)
        )


def _answered(rng: np.random.Generator, health: Floats) -> Bools:
    return rng.random(len(health)) < _sigmoid(ANSWER_LOGIT + ANSWER_HEALTH_SLOPE * health)


def _nps_scores(rng: np.random.Generator, health: Floats, bias: Floats) -> Ints:
    raw = (
        NPS_BASE
        + NPS_HEALTH_SLOPE * health
        + bias
        + NPS_NOISE_SD * rng.standard_normal(len(health))
    )
    return np.clip(np.round(raw), 0, 10).astype(np.int64)


def _days_in(rng: np.random.Generator, window: MonthWindow, counts: Ints) -> tuple[Ints, Ints]:
    """Spread `counts[i]` events of account i uniformly over the month; keep those in its window."""
    account = np.repeat(np.arange(len(counts)), counts)
    day = window.first + rng.integers(0, window.length, len(account))
    keep = window.inside(account, day)
    return account[keep], day[keep]


def day_factor(days: Ints) -> Floats:
    """Calendar effect on daily use: weekends, August, the days before New Year."""
    dates = EPOCH + days.astype("timedelta64[D]")
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    month = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day_of_month = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    factor = np.where(weekday >= 5, WEEKEND_FACTOR, 1.0)
    factor = factor * np.where(month == 8, AUGUST_FACTOR, 1.0)
    return factor * np.where((month == 12) & (day_of_month >= 20), YEAR_END_FACTOR, 1.0)


def emit_usage(
    rng: np.random.Generator,
    state: AccountState,
    profile: Profile,
    window: MonthWindow,
    tables: dict[str, Events],
) -> None:
    """Each seat is a user; a subset is active this month, active users on some days."""
    open_ = np.flatnonzero(window.lo <= window.hi)
    seats = state.seats[open_]
    account = np.repeat(open_, seats)
    slot = np.arange(len(account)) - np.repeat(np.cumsum(seats) - seats, seats)
    user = profile.user_offset[account] + slot
    engagement = profile.engagement[user]
    logit = (
        MAU_BASE_LOGIT
        + engagement
        + MAU_HEALTH_SLOPE * state.health[account]
        - MAU_ADOPTION_SLOPE * (1.0 - state.adoption[account])
    )
    monthly = _sigmoid(logit) * (1.0 - state.shock_drop[account])
    active = rng.random(len(account)) < monthly
    account, user, engagement = account[active], user[active], engagement[active]
    daily = DAU_BASE * np.exp(
        DAU_HEALTH_SLOPE * state.health[account] + DAU_ENGAGEMENT_SLOPE * engagement
    )
    days = window.first + np.arange(window.length)
    chance = np.minimum(daily[:, None] * day_factor(days)[None, :], DAU_CAP)
    row, col = np.nonzero(rng.random(chance.shape) < chance)
    account, user, day = account[row], user[row], days[col]
    keep = window.inside(account, day)
    account, user, day = account[keep], user[keep], day[keep]
    duplicate = np.flatnonzero(rng.random(len(day)) < DUPLICATE_USAGE_SHARE)
    tables["usage"].add(
        account=np.concatenate([account, account[duplicate]]),
        user=np.concatenate([user, user[duplicate]]),
        day=np.concatenate([day, day[duplicate]]),
    )


def emit_contacts(
    rng: np.random.Generator,
    state: AccountState,
    profile: Profile,
    window: MonthWindow,
    tables: dict[str, Events],
) -> None:
    """Contact rows from the month's contact count; a QBR month's first touch is the QBR,
    and a survey may follow it."""
    counts = np.where(window.lo <= window.hi, state.contacts, 0)
    account, day = _days_in(rng, window, counts)
    channel = (
        _choice(rng.random(len(account)), np.asarray(CONTACT_CHANNEL_MIX)[state.plan[account]]) + 1
    )
    first = np.r_[True, account[1:] != account[:-1]] if len(account) else np.zeros(0, dtype=bool)
    is_qbr = first & state.qbr[account]
    channel = np.where(is_qbr, 0, channel)  # code 0 = 'qbr'
    tables["contacts"].add(account=account, day=day, channel=channel)
    surveyed = is_qbr & (rng.random(len(account)) < QBR_SURVEY_SHARE)
    surveyed &= _answered(rng, state.health[account])
    a, d = account[surveyed], day[surveyed]
    tables["nps"].add(
        account=a,
        day=d,
        score=_nps_scores(rng, state.health[a], profile.respondent_bias[a]),
        touchpoint=np.full(len(a), 2),
    )


def emit_surveys(
    rng: np.random.Generator,
    state: AccountState,
    profile: Profile,
    window: MonthWindow,
    tables: dict[str, Events],
) -> None:
    """Onboarding surveys 30-60 days after signup, renewal surveys 30-60 days before an
    annual renewal; unhappy accounts answer less often."""
    n = len(state)
    last = window.first + window.length - 1
    onboarding = profile.onboarding_survey_day
    due_onboarding = (onboarding >= window.first) & (onboarding <= last)
    renewal = next_term_end(state.signup_day, np.full(n, window.first - 1), np.full(n, 12))
    renewal_survey = renewal - profile.renewal_survey_offset
    due_renewal = state.annual & (renewal > state.signup_day)
    due_renewal &= (renewal_survey >= window.first) & (renewal_survey <= last)
    for due, day, touchpoint in ((due_onboarding, onboarding, 0), (due_renewal, renewal_survey, 3)):
        account = np.flatnonzero(due)
        account = account[window.inside(account, day[account])]
        account = account[_answered(rng, state.health[account])]
        scores = _nps_scores(rng, state.health[account], profile.respondent_bias[account])
        tables["nps"].add(
            account=account,
            day=day[account],
            score=scores,
            touchpoint=np.full(len(account), touchpoint),
        )


def emit_tickets(
    rng: np.random.Generator,
    state: AccountState,
    profile: Profile,
    window: MonthWindow,
    churn_day: Ints,
    cap: Ints,
    tables: dict[str, Events],
) -> None:
    """Background how-to tickets from everyone; episode tickets only from complainers.

    A ticket still open when the account leaves is closed on the churn date; one still
    open at the end of data keeps a closing date past it, written as NaT. `cap` is each
    account's last event day (churn date or end of data).
    """
    open_ = window.lo <= window.hi
    episode = open_ & profile.complainer & (state.support_left > 0)
    size = state.seats.astype(np.float64) ** TICKET_SEAT_POWER
    background = rng.poisson(np.where(open_, BACKGROUND_TICKET_RATE * size, 0.0))
    troubled = rng.poisson(np.where(episode, EPISODE_TICKET_RATE * size, 0.0))
    for counts, kind in ((background, 0), (troubled, 1)):
        account, opened = _days_in(rng, window, counts)
        if kind == 0:
            median = np.full(len(account), RESOLUTION_MEDIAN_DAYS[0])
            priority = _choice(rng.random(len(account)), BACKGROUND_PRIORITY_MIX)
        else:
            slow = state.support_slow[account]
            median = np.where(slow, RESOLUTION_MEDIAN_DAYS[2], RESOLUTION_MEDIAN_DAYS[1])
            priority = _choice(rng.random(len(account)), EPISODE_PRIORITY_MIX)
        days = median * np.exp(RESOLUTION_SIGMA * rng.standard_normal(len(account)))
        closed = opened + np.round(days).astype(np.int64)
        churn = churn_day[account]
        closed = np.where((churn != MISSING_DAY) & (closed > churn), churn, closed)
        tables["tickets"].add(account=account, day=opened, closed=closed, priority=priority)
        surveyed = rng.random(len(account)) < SUPPORT_SURVEY_SHARE
        surveyed &= _answered(rng, state.health[account])
        survey_day = closed + rng.integers(0, SUPPORT_SURVEY_DELAY_DAYS + 1, len(account))
        surveyed &= survey_day <= cap[account]
        a = account[surveyed]
        scores = _nps_scores(rng, state.health[a], profile.respondent_bias[a])
        tables["nps"].add(
            account=a, day=survey_day[surveyed], score=scores, touchpoint=np.full(len(a), 1)
        )


def emit_stakeholders(
    rng: np.random.Generator, state: AccountState, window: MonthWindow, tables: dict[str, Events]
) -> None:
    """Departures and successors, as far as the CRM recorded them."""
    for flag, recorded, change in (
        (state.departed, LEFT_RECORDED, 0),
        (state.joined, JOINED_RECORDED, 1),
    ):
        counts = (flag & (rng.random(len(state)) < recorded)).astype(np.int64)
        account, day = _days_in(rng, window, counts)
        tables["stakeholders"].add(
            account=account,
            day=day,
            change=np.full(len(account), change),
            role=state.gap_role[account],
        )


def emit_subscription_changes(
    rng: np.random.Generator,
    state: AccountState,
    window: MonthWindow,
    start: int,
    tables: dict[str, Events],
) -> None:
    """One row per seat or plan change, dated inside the month and after the opening row."""
    lo = np.maximum(window.lo, start + 1)
    account = np.flatnonzero((state.change > 0) & (lo <= window.hi))
    span = window.hi[account] - lo[account] + 1
    day = lo[account] + (rng.random(len(account)) * span).astype(np.int64)
    tables["subscriptions"].add(
        account=account,
        day=day,
        seats=state.seats[account],
        mrr=state.mrr[account],
        plan=state.plan[account],
    )


def opening_subscriptions(history: History, start: int) -> tuple[Ints, Ints, Floats, Codes]:
    """The first subscriptions row: at signup, or at `start` for the initial book.

    A legacy account's row holds its state before the first month of history (changes
    in that month get their own, later row); a new account's holds its signup month.
    """
    signup = history.states[0].signup_day
    legacy = signup < start
    first_month = int(month_of(start))
    month = np.where(legacy, first_month - 1, month_of(signup))
    row = month - history.months[0]
    column = np.arange(len(signup))
    seats = np.stack([s.seats for s in history.states])[row, column]
    mrr = np.stack([s.mrr for s in history.states])[row, column]
    plan = np.stack([s.plan for s in history.states])[row, column]
    return np.maximum(signup, start), seats, mrr, plan


def emit_events(
    history: History, start: int, end: int, rng: np.random.Generator, bar: tqdm
) -> dict[str, Events]:
    """Every event table, month by month from `start` to `end` (burn-in months emit nothing)."""
    signup = history.states[0].signup_day
    max_seats = np.max([s.seats for s in history.states], axis=0)
    profile = draw_profile(rng, signup, max_seats)
    cap = last_event_day(history, end)
    tables = {name: Events() for name in EVENT_TABLES}
    day, seats, mrr, plan = opening_subscriptions(history, start)
    tables["subscriptions"].add(
        account=np.arange(len(signup)), day=day, seats=seats, mrr=mrr, plan=plan
    )
    for month in range(int(month_of(start)), int(month_of(end)) + 1):
        first, last = month_start(month), month_end(month)
        window = MonthWindow(
            first=first,
            length=last - first + 1,
            lo=np.maximum(np.maximum(signup, start), first),
            hi=np.minimum(cap, last),
        )
        state = history.at(month)
        emit_subscription_changes(rng, state, window, start, tables)
        emit_usage(rng, state, profile, window, tables)
        emit_contacts(rng, state, profile, window, tables)
        emit_surveys(rng, state, profile, window, tables)
        emit_tickets(rng, state, profile, window, history.churn_day, cap, tables)
        emit_stakeholders(rng, state, window, tables)
        bar.update(1)
    return tables


def last_event_day(history: History, end: int) -> Ints:
    """The last day an account can show an event: its churn date, else the end of data."""
    return np.where(history.churn_day == MISSING_DAY, end, np.minimum(history.churn_day, end))


# ======================================================================================
# Truth: the Bayes limit at every observation date
# ======================================================================================


@dataclass(frozen=True)
class Truth:
    """One row per account active at each observation date."""

    account: Ints
    as_of: Ints
    p_true: Floats
    churned: Ints


def horizon_decisions(state: AccountState, as_of: int, horizon_days: int) -> tuple[Ints, Bools]:
    """Months spanned by (as_of, as_of + horizon] and which hold a decision of each account."""
    months = np.arange(month_of(as_of), month_of(as_of + horizon_days) + 1)
    due = np.stack(
        [decision_days(state.signup_day, state.signup_month, state.annual, int(m)) for m in months]
    )
    return months, (due != MISSING_DAY) & (due > as_of) & (due <= as_of + horizon_days)


def survival_paths(
    state: AccountState, months: Ints, due: Bools, paths: int, rng: np.random.Generator
) -> Floats:
    """Mean over `paths` futures of P(no churn at the decisions in the horizon).

    `state` is the state known at as_of (that of the month before). Each account is
    replicated `paths` times and moved into every month of the horizon with the same
    `step` as the history; the exact decision probabilities are multiplied along a path
    instead of sampling churn, which removes most of the Monte Carlo noise.
    """
    replicas = np.repeat(np.arange(len(state)), paths)
    future = state.take(replicas)
    survival = np.ones(len(replicas))
    last = int(np.flatnonzero(due.any(axis=1)).max())
    for offset in range(last + 1):
        future = step(future, int(months[offset]), rng)
        q = decision_probability(future, int(months[offset]))
        survival *= 1.0 - q * due[offset][replicas]
    return survival.reshape(len(state), paths).mean(axis=1)


def truth_at(
    history: History, as_of: int, horizon_days: int, paths: int, rng: np.random.Generator
) -> Truth:
    """p_true = P(churn in (as_of, as_of + horizon] | the hidden state known at as_of).

    As of the first day of a month, what has happened is the state of the month before
    (every export row up to as_of was generated from it, but for as_of's own day). The
    transition into as_of's month — this month's new shocks, departures and health
    innovations — is still to come, so it is part of the simulated future, like the
    months after it. Conditioning on it would give p_true knowledge no predictor at
    as_of can have, and stop it being the Bayes limit the model is compared to.
    """
    signup = history.states[0].signup_day
    account = np.flatnonzero(active_on(signup, history.churn_day, np.full(len(signup), as_of)))
    state = history.at(int(month_of(as_of)) - 1).take(account)
    months, due = horizon_decisions(state, as_of, horizon_days)
    survival = np.ones(len(account))
    deciding = np.flatnonzero(due.any(axis=0))
    per_chunk = max(1, TRUTH_CHUNK_ROWS // paths)
    for chunk in np.array_split(deciding, max(1, -(-len(deciding) // per_chunk))):
        if len(chunk):
            survival[chunk] = survival_paths(state.take(chunk), months, due[:, chunk], paths, rng)
    as_of_days = np.full(len(account), as_of)
    churned = churn_label(history.churn_day[account], as_of_days, horizon_days).astype(np.int64)
    return Truth(account, as_of_days, 1.0 - survival, churned)


def compute_truth(
    history: History,
    start: int,
    end: int,
    horizon_days: int,
    paths: int,
    rng: np.random.Generator,
    bar: tqdm,
) -> Truth:
    """Truth rows for every observation date the training pipeline will use."""
    parts = []
    dates = observation_dates(
        data_start=date_of(start), data_end=date_of(end), horizon_days=horizon_days
    )
    for as_of in dates:
        parts.append(truth_at(history, day_of(as_of), horizon_days, paths, rng))
        bar.update(1)
    if not parts:
        empty = np.array([], dtype=np.int64)
        return Truth(empty, empty, np.array([]), empty)
    return Truth(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Truth)))


def roc_auc(score: Floats, label: Ints) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged; NaN with one class."""
    positives = int(label.sum())
    negatives = len(label) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float(
        (ranks[label == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


# ======================================================================================
# Frames and files
# ======================================================================================


def labels(names: tuple[str, ...] | npt.NDArray[np.str_], codes: np.ndarray) -> pd.Series:
    """Text column from integer codes, built once per distinct value (fast for millions)."""
    return (
        pd.Series(np.asarray(names), dtype="str")
        .take(np.asarray(codes, dtype=np.int64))
        .reset_index(drop=True)
    )


def dates(days: np.ndarray) -> np.ndarray:
    """Days since epoch -> datetime64[s] at midnight, NaT for ``MISSING_DAY``."""
    return days_to_datetime(np.asarray(days, dtype=np.int64))


def user_names(ids: npt.NDArray[np.str_], max_seats: Ints) -> npt.NDArray[np.str_]:
    """'A000001-U001' ... for every user slot an account ever had."""
    return np.array(
        [
            f"{account}-U{slot + 1:03d}"
            for account, seats in zip(ids, max_seats, strict=True)
            for slot in range(seats)
        ]
    )


def accounts_frame(
    population: Population, kept: Ints, history: History, ids: npt.NDArray[np.str_], end: int
) -> pd.DataFrame:
    """One row per account with the values AT THE END of the data (like a real export)."""
    first = history.states[0]
    last_day = last_event_day(history, end)
    row = month_of(last_day) - history.months[0]
    column = np.arange(len(kept))
    final = {
        name: np.stack([getattr(s, name) for s in history.states])[row, column]
        for name in ("plan", "seats", "mrr")
    }
    term = np.where(first.annual, 12, 1)
    active = history.churn_day == MISSING_DAY
    renewal = np.where(
        active, next_term_end(first.signup_day, np.full(len(kept), end), term), MISSING_DAY
    )
    reason = pd.Series(
        np.array(CHURN_REASONS, dtype=object)[np.maximum(history.churn_reason, 0)], dtype="str"
    )
    return pd.DataFrame(
        {
            "account_id": pd.Series(ids, dtype="str"),
            "signup_date": dates(first.signup_day),
            "churn_date": dates(history.churn_day),
            "plan": labels(PLANS, final["plan"]),
            "contract_type": labels(("monthly", "annual"), first.annual.astype(np.int64)),
            "seats": final["seats"].astype(np.int64),
            "mrr": final["mrr"].astype(np.float64),
            "renewal_date": dates(renewal),
            "churn_reason": reason.where(~active, None),
            "industry": labels(tuple(INDUSTRY_EFFECT), population.industry[kept]),
            "region": labels(REGIONS, population.region[kept]),
            "acquisition_channel": labels(tuple(ACQUISITION_EFFECT), population.channel[kept]),
            "employees": population.employees[kept].astype(np.int64),
        }
    )


def by_date(frame: pd.DataFrame, day: np.ndarray, account: np.ndarray) -> pd.DataFrame:
    """Rows in date order (then account), as an export sorted by time would have them."""
    return frame.iloc[np.lexsort((account, day))].reset_index(drop=True)


def subscriptions_frame(events: Events, ids: npt.NDArray[np.str_]) -> pd.DataFrame:
    account, day = events.column("account"), events.column("day")
    frame = pd.DataFrame(
        {
            "account_id": labels(ids, account),
            "date": dates(day),
            "mrr": events.column("mrr").astype(np.float64),
            "seats": events.column("seats").astype(np.int64),
            "plan": labels(PLANS, events.column("plan")),
        }
    )
    return frame.iloc[np.lexsort((day, account))].reset_index(drop=True)  # account, then time


def usage_frame(events: Events, ids: npt.NDArray[np.str_], max_seats: Ints) -> pd.DataFrame:
    """Left in emission order (month, account, user): sorting millions of rows buys nothing."""
    return pd.DataFrame(
        {
            "account_id": labels(ids, events.column("account")),
            "user_id": labels(user_names(ids, max_seats), events.column("user")),
            "date": dates(events.column("day")),
        }
    )


def nps_frame(events: Events, ids: npt.NDArray[np.str_]) -> pd.DataFrame:
    account, day = events.column("account"), events.column("day")
    frame = pd.DataFrame(
        {
            "account_id": labels(ids, account),
            "date": dates(day),
            "score": events.column("score").astype(np.int64),
            "touchpoint": labels(TOUCHPOINTS, events.column("touchpoint")),
        }
    )
    return by_date(frame, day, account)


def contacts_frame(events: Events, ids: npt.NDArray[np.str_]) -> pd.DataFrame:
    account, day = events.column("account"), events.column("day")
    frame = pd.DataFrame(
        {
            "account_id": labels(ids, account),
            "date": dates(day),
            "channel": labels(CONTACT_CHANNELS, events.column("channel")),
        }
    )
    return by_date(frame, day, account)


def tickets_frame(events: Events, ids: npt.NDArray[np.str_], end: int) -> pd.DataFrame:
    """A ticket closed after the end of data is still open in the export (NaT)."""
    account, day, closed = events.column("account"), events.column("day"), events.column("closed")
    frame = pd.DataFrame(
        {
            "account_id": labels(ids, account),
            "opened_date": dates(day),
            "closed_date": dates(np.where(closed > end, MISSING_DAY, closed)),
            "priority": labels(PRIORITIES, events.column("priority")),
        }
    )
    return by_date(frame, day, account)


def stakeholders_frame(events: Events, ids: npt.NDArray[np.str_]) -> pd.DataFrame:
    account, day = events.column("account"), events.column("day")
    frame = pd.DataFrame(
        {
            "account_id": labels(ids, account),
            "date": dates(day),
            "change": labels(STAKEHOLDER_CHANGES, events.column("change")),
            "role": labels(ROLES, events.column("role")),
        }
    )
    return by_date(frame, day, account)


def event_frames(
    tables: dict[str, Events], ids: npt.NDArray[np.str_], max_seats: Ints, end: int
) -> dict[str, pd.DataFrame]:
    """Integer-coded event columns -> the contract's tables."""
    return {
        "subscriptions": subscriptions_frame(tables["subscriptions"], ids),
        "usage": usage_frame(tables["usage"], ids, max_seats),
        "nps": nps_frame(tables["nps"], ids),
        "contacts": contacts_frame(tables["contacts"], ids),
        "tickets": tickets_frame(tables["tickets"], ids, end),
        "stakeholders": stakeholders_frame(tables["stakeholders"], ids),
    }


def truth_frame(truth: Truth, ids: npt.NDArray[np.str_]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": labels(ids, truth.account),
            "as_of": dates(truth.as_of),
            "p_true": truth.p_true,
            "churned": truth.churned.astype(np.int64),
        }
    )


DEMO_TABLES = ("accounts", "subscriptions", "usage", "nps", "contacts", "tickets", "stakeholders")
DEMO_FILES = frozenset(f"{name}.parquet" for name in (*DEMO_TABLES, "truth"))


def check_replaceable(out: Path) -> None:
    """The demo set replaces its folder whole: refuse a folder that holds anything else."""
    if out.exists() and not out.is_dir():
        raise ChurnError(f"{out} is a file: give a folder for the demo data set")
    others = (
        sorted(p.name for p in out.iterdir() if p.name not in DEMO_FILES) if out.is_dir() else []
    )
    if others:
        raise ChurnError(
            f"{out} holds files that are not demo tables ({', '.join(others[:5])}): the demo "
            "data set replaces its folder whole, so give a new or empty folder"
        )


def write_set(frames: Mapping[str, pd.DataFrame], out: Path) -> None:
    """Every table into a temporary folder, which then replaces ``out`` whole: an interrupted
    run leaves the previous set (or none), never a mix that `make run` would take as done."""
    with atomic_directory(out) as folder:
        for name, frame in frames.items():
            write_table(frame, folder / f"{name}.parquet")


def write_table(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)


# ======================================================================================
# The front door
# ======================================================================================


def generate_demo(
    out: Path,
    accounts: int = 5000,
    start: dt.date = dt.date(2023, 1, 1),
    end: dt.date = dt.date(2025, 12, 31),
    seed: int = 0,
    horizon_days: int = 90,
    truth_paths: int = 256,
    progress: bool = True,
) -> DemoSummary:
    """Simulate `accounts` B2B SaaS customers and write every table plus the truth to `out`.

    Same seed, same frames. Four independent random streams (population, dynamics,
    observation, truth) keep what is observed from ever steering what happens.
    """
    if accounts < 1:
        raise ChurnError(f"accounts must be at least 1, got {accounts}")
    if end <= start:
        raise ChurnError(f"end ({end}) must be after start ({start})")
    if horizon_days < 1 or truth_paths < 1:
        raise ChurnError(
            f"horizon_days and truth_paths must be positive, got {horizon_days} and {truth_paths}"
        )
    began = time.perf_counter()
    out = Path(out).resolve()
    check_replaceable(out)
    start_day, end_day = day_of(start), day_of(end)
    population_rng, dynamics_rng, emission_rng, truth_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    n_legacy = round(accounts * LEGACY_SHARE)
    n_candidates = int(np.ceil(n_legacy * LEGACY_OVERSAMPLE)) + LEGACY_SPARE
    population = draw_population(
        population_rng, n_candidates, accounts - n_legacy, start_day, end_day
    )

    n_months = int(month_of(end_day) - population.initial.signup_month.min() + 1)
    n_emitted = int(month_of(end_day) - month_of(start_day) + 1)
    n_dates = len(observation_dates(start, end, horizon_days))
    with tqdm(
        total=n_months + n_emitted + n_dates, unit="month", desc="simulating", disable=not progress
    ) as bar:
        months, states, churn_day, reason = simulate(population, end_day, dynamics_rng, bar)
        kept = keep_accounts(population, churn_day, n_legacy, start_day)
        history = History(months, [s.take(kept) for s in states], churn_day[kept], reason[kept])
        ids = np.array([f"A{i + 1:06d}" for i in range(len(kept))])
        bar.set_description("emitting events")
        tables = emit_events(history, start_day, end_day, emission_rng, bar)
        bar.set_description("computing truth")
        truth = compute_truth(
            history, start_day, end_day, horizon_days, truth_paths, truth_rng, bar
        )

    max_seats = np.max([s.seats for s in history.states], axis=0)
    frames = {"accounts": accounts_frame(population, kept, history, ids, end_day)}
    frames |= event_frames(tables, ids, max_seats, end_day)
    frames["truth"] = truth_frame(truth, ids)
    write_set(frames, out)
    return DemoSummary(
        accounts=len(kept),
        churned=int((history.churn_day != MISSING_DAY).sum()),
        rows={name: len(frame) for name, frame in frames.items() if name != "truth"},
        truth_rows=len(truth.p_true),
        base_rate=float(truth.churned.mean()) if len(truth.churned) else float("nan"),
        truth_auc=roc_auc(truth.p_true, truth.churned),
        seconds=time.perf_counter() - began,
    )
