"""What a real export shows of the hidden state: the event tables, from their own random
stream, never feeding back into what happens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from features.timeline import EPOCH, MISSING_DAY, next_term_end
from training.demo.draws import Bools, Codes, Floats, Ints, choice, sigmoid
from training.demo.dynamics import AccountState
from training.demo.history import History, last_event_day
from training.demo.months import month_end, month_of, month_start
from training.demo.parameters import (
    ANSWER_HEALTH_SLOPE,
    ANSWER_LOGIT,
    AUGUST_FACTOR,
    BACKGROUND_PRIORITY_MIX,
    BACKGROUND_TICKET_RATE,
    COMPLAINER_SHARE,
    CONTACT_CHANNEL_MIX,
    DAU_BASE,
    DAU_CAP,
    DAU_ENGAGEMENT_SLOPE,
    DAU_HEALTH_SLOPE,
    DUPLICATE_USAGE_SHARE,
    EPISODE_PRIORITY_MIX,
    EPISODE_TICKET_RATE,
    EVENT_TABLES,
    JOINED_RECORDED,
    LEFT_RECORDED,
    MAU_ADOPTION_SLOPE,
    MAU_BASE_LOGIT,
    MAU_HEALTH_SLOPE,
    NPS_BASE,
    NPS_HEALTH_SLOPE,
    NPS_NOISE_SD,
    NPS_RESPONDENT_SD,
    ONBOARDING_SURVEY_DAYS,
    QBR_SURVEY_SHARE,
    RENEWAL_SURVEY_DAYS,
    RESOLUTION_MEDIAN_DAYS,
    RESOLUTION_SIGMA,
    SUPPORT_SURVEY_DELAY_DAYS,
    SUPPORT_SURVEY_SHARE,
    TICKET_SEAT_POWER,
    USER_ENGAGEMENT_SD,
    WEEKEND_FACTOR,
    YEAR_END_FACTOR,
)


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
    return rng.random(len(health)) < sigmoid(ANSWER_LOGIT + ANSWER_HEALTH_SLOPE * health)


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
    monthly = sigmoid(logit) * (1.0 - state.shock_drop[account])
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
        choice(rng.random(len(account)), np.asarray(CONTACT_CHANNEL_MIX)[state.plan[account]]) + 1
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
            priority = choice(rng.random(len(account)), BACKGROUND_PRIORITY_MIX)
        else:
            slow = state.support_slow[account]
            median = np.where(slow, RESOLUTION_MEDIAN_DAYS[2], RESOLUTION_MEDIAN_DAYS[1])
            priority = choice(rng.random(len(account)), EPISODE_PRIORITY_MIX)
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
