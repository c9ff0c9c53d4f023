"""The hidden monthly state of every account, its one transition function and the churn
hazard at a contract decision: the only place where what happens is decided.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Self

import numpy as np

from training.demo.draws import Bools, Codes, Floats, Ints, choice, details, sigmoid, uniform
from training.demo.parameters import (
    ADOPTION_HAZARD,
    ADOPTION_HAZARD_FLOOR,
    ADOPTION_NOISE_SD,
    ADOPTION_SPEED,
    ADOPTION_TARGET,
    ANNUAL_SEAT_EXPOSURE,
    BUDGET_HAZARD,
    CHAMPION_GAP_MONTHS,
    CHAMPION_HAZARD,
    COMPETITOR_HAZARD,
    CONTACT_LIFT,
    CONTACT_LIFT_CAP,
    CONTACT_RATE,
    DEPARTURE_HIT,
    DEPARTURE_RATE,
    DOWNGRADE_CENTER,
    DOWNGRADE_CUT,
    DOWNGRADE_MAX_RATE,
    EARLY_MONTHS,
    EARLY_SUPPORT_EPISODE_RATE,
    ESCALATION_CONTACTS,
    FAILED_ADOPTION_LEVEL,
    HEALTH_INNOVATION_SD,
    HEALTH_PERSISTENCE,
    LATE_ADOPTION_WEIGHT,
    NEGLECT_DRAG,
    NEGLECT_ENTER,
    NEGLECT_EXIT,
    NEGLECT_GRACE_MONTHS,
    NO_CSM_CONTACT_RATE,
    NO_VALUE_HAZARD,
    NO_VALUE_SLOPE,
    NO_VALUE_STAGE,
    PLAN_DOWN_SEATS,
    PLAN_UP_SEATS,
    PRICE_PER_SEAT,
    RECOVERED_ADOPTION_LEVEL,
    REPLACED_FACTOR,
    REPLACEMENT_RATE,
    ROLE_MIX,
    SEAT_CHANGE_SLOPE,
    SEATS_CAP,
    SHOCK_MONTHS,
    SHOCK_RATE_EARLY,
    SHOCK_RATE_LATE,
    SHOCK_USAGE_DROP,
    SHOCK_VISIBLE_SHARE,
    SLOW_RESOLUTION_SHARE,
    SLOW_SUPPORT_DRAG,
    SUPPORT_DRAG,
    SUPPORT_EPISODE_MONTHS,
    SUPPORT_EPISODE_RATE,
    TERM_EXPOSURE,
    UPGRADE_CENTER,
    UPGRADE_GROWTH,
    UPGRADE_MAX_RATE,
)


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
    detail = details(rng, episode_starts, 2)
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
    role = choice(details(rng, departed, 1)[0], ROLE_MIX)
    gap_role = np.where(departed, role, state.gap_role).astype(np.int8)
    gap_left = np.where(departed, CHAMPION_GAP_MONTHS, np.maximum(state.gap_left - 1, 0))
    joined = ~departed & (gap_left > 0) & ~state.replaced & (u[3] < REPLACEMENT_RATE)
    replaced = np.where(departed, False, state.replaced | joined)

    shock_left = np.maximum(state.shock_left - 1, 0)
    shock_rate = np.where(tenure >= 12, SHOCK_RATE_LATE, SHOCK_RATE_EARLY)
    shock_starts = (shock_left == 0) & (u[4] < shock_rate)
    detail = details(rng, shock_starts, 3)
    low, high = SHOCK_MONTHS
    shock_left = np.where(
        shock_starts, low + (detail[0] * (high - low + 1)).astype(np.int64), shock_left
    )
    visible = detail[1] < SHOCK_VISIBLE_SHARE
    visible_drop = np.where(visible, uniform(detail[2], SHOCK_USAGE_DROP), 0.0)
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


def _seat_changes(
    state: AccountState, health: Floats, tenure: Ints, u_event: Floats, rng: np.random.Generator
) -> tuple[Codes, Ints, Codes]:
    """Downgrades when health is low, upgrades when high; plans follow seat thresholds.

    Annual contracts can only shrink at a renewal, where a year of intent is weighed.
    """
    down_rate = DOWNGRADE_MAX_RATE * sigmoid(-SEAT_CHANGE_SLOPE * (health - DOWNGRADE_CENTER))
    renewal = (tenure > 0) & (tenure % 12 == 0)
    annual_rate = 1.0 - (1.0 - down_rate) ** ANNUAL_SEAT_EXPOSURE
    down_rate = np.where(state.annual, np.where(renewal, annual_rate, 0.0), down_rate)
    up_rate = UPGRADE_MAX_RATE * sigmoid(SEAT_CHANGE_SLOPE * (health - UPGRADE_CENTER))
    eligible = tenure >= 1
    down = eligible & (u_event < down_rate)
    up = eligible & ~down & (u_event < down_rate + up_rate)
    u_size = details(rng, down | up, 1)[0]
    cut = np.round(state.seats * (1.0 - uniform(u_size, DOWNGRADE_CUT))).astype(np.int64)
    grown = np.ceil(state.seats * (1.0 + uniform(u_size, UPGRADE_GROWTH))).astype(np.int64)
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
