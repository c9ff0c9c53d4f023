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

One job per module, in the order data flows: parameters (every fixed number) ->
dynamics (the state and `step`, the hazards) -> history (population, the months lived)
-> emission (the event tables) and truth (p_true) -> frames (the contract's tables) ->
generate (`generate_demo`, the set written whole); months and draws hold the calendar
and the random draws they share.
"""

from training.demo.dynamics import AccountState, decision_probability, hazard_components, step
from training.demo.generate import DEMO_FILES, DEMO_TABLES, DemoSummary, generate_demo
from training.demo.history import History, Population, draw_population
from training.demo.months import decision_days, month_of
from training.demo.truth import Truth

__all__ = [
    "DEMO_FILES",
    "DEMO_TABLES",
    "AccountState",
    "DemoSummary",
    "History",
    "Population",
    "Truth",
    "decision_days",
    "decision_probability",
    "draw_population",
    "generate_demo",
    "hazard_components",
    "month_of",
    "step",
]
