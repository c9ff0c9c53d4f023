"""Drivers -> concrete retention actions, from a playbook that is data (``playbook.toml``).

A rule names the drivers it answers and conditions on *facts*: the risk tier or any
indicator of the stage-2 catalogue, computed from the same snapshot columns as the
model's features (so a rule works even for an indicator the model does not use). Facts
are computed lazily, once per batch and only when a rule needs them, which keeps a
single-account request to a few microseconds here.
"""

from __future__ import annotations

import operator
import tomllib
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.derive import ATTRIBUTE_FEATURE_PREFIX, INDICATORS, PLAN_FEATURE, View
from features.errors import ChurnError
from models.bundle import RISK_TIERS, Driver

RISK_TIER_FACT = "risk_tier"
Op = Literal["==", "!=", "<", "<=", ">", ">=", "in"]
Scalar = float | str
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda fact, values: fact in values,
}


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fact: str
    op: Op
    value: Scalar | list[Scalar]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str
    drivers: list[str] = Field(default_factory=list)
    when: list[Condition] = Field(default_factory=list)


class ActionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str
    detail: str
    owner: str


class PlaybookFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actions: dict[str, ActionSpec]
    rules: list[Rule]


def fact_levels(fact: str) -> tuple[str, ...]:
    """Text values a categorical fact takes (empty for numeric facts)."""
    if fact == RISK_TIER_FACT:
        return RISK_TIERS
    return INDICATORS[fact].categorical


class Facts:
    """Fact values of a batch, computed on first use: numbers, or level names for categoricals."""

    def __init__(self, columns: Mapping[str, np.ndarray], tiers: Sequence[str]) -> None:
        self._view = View(columns)
        self._values: dict[str, list[Any]] = {RISK_TIER_FACT: list(tiers)}

    def value(self, fact: str, row: int) -> Any:
        values = self._values.get(fact)
        if values is None:
            values = self._values[fact] = self._compute(fact)
        return values[row]

    def _compute(self, fact: str) -> list[Any]:
        raw = np.asarray(INDICATORS[fact].compute(self._view), dtype=np.float64).tolist()
        levels = fact_levels(fact)
        if levels:
            return [None if v != v else levels[int(v)] for v in raw]  # v != v: NaN
        return [None if v != v else v for v in raw]


class Playbook:
    """Validated rules, indexed by driver feature, ready to recommend actions per account."""

    def __init__(self, spec: PlaybookFile, source: str) -> None:
        self.source = source
        self.spec = spec
        _check(spec, source)
        self.actions = spec.actions
        self.by_driver: dict[str, list[Rule]] = {}
        for rule in spec.rules:
            for feature in rule.drivers:
                self.by_driver.setdefault(feature, []).append(rule)
        self.unconditional = [rule for rule in spec.rules if not rule.drivers]

    @classmethod
    def load(cls, path: Path | None = None) -> Playbook:
        """The packaged playbook, or the file CHURN_PLAYBOOK names (which replaces it whole)."""
        if path is None:
            text = resources.files("service").joinpath("playbook.toml").read_text(encoding="utf-8")
            source = "service/playbook.toml"
        else:
            if not path.is_file():
                raise ChurnError(f"playbook {path} does not exist (CHURN_PLAYBOOK)")
            text, source = path.read_text(encoding="utf-8"), str(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ChurnError(f"playbook {source} is not valid TOML: {exc}") from None
        try:
            spec = PlaybookFile.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ChurnError(f"playbook {source}: {where}: {first['msg']}") from None
        return cls(spec, source)

    def recommend(
        self,
        drivers: Sequence[Sequence[Driver]],
        tiers: Sequence[str],
        columns: Mapping[str, np.ndarray],
    ) -> list[list[dict[str, str]]]:
        """Per account: the actions its drivers and facts call for, most urgent first."""
        facts = Facts(columns, tiers)
        out: list[list[dict[str, str]]] = []
        for row, found in enumerate(drivers):
            chosen: dict[str, dict[str, str]] = {}
            for driver in found:
                for rule in self.by_driver.get(driver.feature, ()):
                    if rule.action not in chosen and _holds(rule, facts, row):
                        chosen[rule.action] = self._action(rule.action, driver.reason)
            for rule in self.unconditional:
                if rule.action not in chosen and _holds(rule, facts, row):
                    chosen[rule.action] = self._action(rule.action, _describe(rule, facts, row))
            out.append(list(chosen.values()))
        return out

    def _action(self, action: str, because: str) -> dict[str, str]:
        spec = self.actions[action]
        return {
            "id": action,
            "title": spec.title,
            "detail": spec.detail,
            "owner": spec.owner,
            "because": because,
        }


def _holds(rule: Rule, facts: Facts, row: int) -> bool:
    for condition in rule.when:
        value = facts.value(condition.fact, row)
        if value is None or not OPERATORS[condition.op](value, condition.value):
            return False
    return True


def _describe(rule: Rule, facts: Facts, row: int) -> str:
    """Words for the facts behind a rule without drivers ("high risk; renewal in 45 days")."""
    words: list[str] = []
    for fact in dict.fromkeys(c.fact for c in rule.when):
        value = facts.value(fact, row)
        if fact == RISK_TIER_FACT:
            words.append(f"{value} risk")
        elif fact_levels(fact):
            words.append(str(value))
        else:
            words.append(INDICATORS[fact].say(value))
    return "; ".join(words)


def _check(spec: PlaybookFile, source: str) -> None:
    """Refuse rules naming unknown actions, features or facts, or values a fact never takes."""
    for i, rule in enumerate(spec.rules):
        where = f"playbook {source}: rules[{i}]"
        if rule.action not in spec.actions:
            raise ChurnError(
                f"{where}: unknown action {rule.action!r}; defined: {', '.join(sorted(spec.actions))}"
            )
        for feature in rule.drivers:
            if not _is_feature(feature):
                raise ChurnError(
                    f"{where}: driver {feature!r} is not a feature (an indicator of the catalogue, "
                    f"'{PLAN_FEATURE}' or '{ATTRIBUTE_FEATURE_PREFIX}<attribute>')"
                )
        for j, condition in enumerate(rule.when):
            _check_condition(condition, f"{where}.when[{j}]")


def _check_condition(condition: Condition, where: str) -> None:
    if condition.fact != RISK_TIER_FACT and condition.fact not in INDICATORS:
        raise ChurnError(
            f"{where}: unknown fact {condition.fact!r}; facts are {RISK_TIER_FACT} and {', '.join(INDICATORS)}"
        )
    values = condition.value if isinstance(condition.value, list) else [condition.value]
    if (condition.op == "in") != isinstance(condition.value, list):
        raise ChurnError(f"{where}: operator 'in' takes a list of values, the others one value")
    levels = fact_levels(condition.fact)
    if levels:
        unknown = [v for v in values if v not in levels]
        if unknown or condition.op not in ("==", "!=", "in"):
            raise ChurnError(
                f"{where}: {condition.fact} is one of {', '.join(levels)}; compare it with ==, != or in"
            )
    elif any(isinstance(v, str) for v in values):
        raise ChurnError(f"{where}: {condition.fact} is a number; compare it with a number")


def _is_feature(name: str) -> bool:
    return name in INDICATORS or name == PLAN_FEATURE or name.startswith(ATTRIBUTE_FEATURE_PREFIX)
