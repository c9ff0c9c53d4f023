"""Every fixed parameter of the demo business, in one place.

Population, dynamics, hazards and observation noise, each documented in
``docs/demo-data.md``. They were fixed from domain reasoning and must not be tuned to
make a model look good. Also the text values of the tables, by the integer codes the
simulation and the emitters use.
"""

from __future__ import annotations

from collections.abc import Mapping

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
