"""Request and response shapes of the HTTP API, with examples: what `/docs` shows.

Requests are validated straight from the raw body by the module-level ``TypeAdapter``s
below (pydantic-core parses the JSON in Rust); responses are plain dicts serialised with
orjson, and the response models here document them (and are checked against real
responses in the tests) without costing a second validation per request.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from features.schema import MAX_MONEY, AccountSnapshot

SNAPSHOT_EXAMPLE: dict[str, Any] = AccountSnapshot.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
MINIMAL_EXAMPLE: dict[str, Any] = {
    "account_id": "A000043",
    "as_of": "2025-06-01",
    "tenure_months": 2,
    "contract_type": "monthly",
    "seats": 10,
    "mrr": 300.0,
    "mau": [2, 6, 7],
}


# --- requests ------------------------------------------------------------------------------


class ScoreBatchRequest(BaseModel):
    """Up to the batch limit (CHURN_BATCH_LIMIT, default 10,000) of account snapshots."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"accounts": [SNAPSHOT_EXAMPLE, MINIMAL_EXAMPLE]}]},
    )

    accounts: list[AccountSnapshot] = Field(
        min_length=1, description="Answers come back in this order."
    )


class PrioritizeRequest(BaseModel):
    """Accounts plus what the team can do: whom to call first, and whom not at all."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "accounts": [SNAPSHOT_EXAMPLE, MINIMAL_EXAMPLE],
                    "capacity": 25,
                    "cost_per_action": 150.0,
                    "expected_save_rate": 0.3,
                    "gross_margin": 0.8,
                }
            ]
        },
    )

    accounts: list[AccountSnapshot] = Field(min_length=1)
    capacity: int = Field(ge=1, description="How many accounts the team can work this period.")
    cost_per_action: float = Field(
        ge=0, le=MAX_MONEY, description="Cost of one intervention, in the currency of mrr."
    )
    expected_save_rate: float = Field(
        gt=0, le=1, description="Share of would-be churners an intervention keeps (e.g. 0.3)."
    )
    gross_margin: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Profit per unit of revenue; default CHURN_GROSS_MARGIN (1.0).",
    )
    value: Literal["arr", "lifetime"] = Field(
        "arr",
        description="What keeping an account is worth: a year of margin (`arr`: mrr * 12 * "
        "gross_margin), or its expected_remaining_value (`lifetime`; needs a time-to-churn model).",
    )


SNAPSHOT = TypeAdapter(AccountSnapshot)


@dataclass(frozen=True)
class BatchRequests:
    """The batch request models of one server, with its batch limit in their schema (and
    ``capacity`` at most that limit), and the validators that read them."""

    score_batch: TypeAdapter[ScoreBatchRequest]
    prioritize: TypeAdapter[PrioritizeRequest]
    models: tuple[type[BaseModel], ...]

    @classmethod
    def for_limit(cls, limit: int) -> BatchRequests:
        accounts: Any = (
            list[AccountSnapshot],
            Field(
                min_length=1,
                max_length=limit,
                description=f"At most {limit} (CHURN_BATCH_LIMIT); answers come back in this order.",
            ),
        )
        capacity: Any = (
            int,
            Field(
                ge=1,
                le=limit,
                description="How many accounts the team can work this period (at most the batch limit).",
            ),
        )
        score_batch = create_model(
            "ScoreBatchRequest",
            __base__=ScoreBatchRequest,
            __doc__=ScoreBatchRequest.__doc__,
            accounts=accounts,
        )
        prioritize = create_model(
            "PrioritizeRequest",
            __base__=PrioritizeRequest,
            __doc__=PrioritizeRequest.__doc__,
            accounts=accounts,
            capacity=capacity,
        )
        return cls(TypeAdapter(score_batch), TypeAdapter(prioritize), (score_batch, prioritize))


# --- responses -----------------------------------------------------------------------------


class Driver(BaseModel):
    """A reason behind a score, in the probability points it adds."""

    feature: str = Field(examples=["mau_pct_change_vs_prior_60d"])
    value: float | str | None = Field(
        description="The feature's value for this account.", examples=[-0.4]
    )
    contribution: float = Field(
        description="Probability points this feature adds.", examples=[0.0128]
    )
    reason: str = Field(examples=["active users down 40% vs prior 2 months"])


class Action(BaseModel):
    """A concrete retention step from the playbook, and the driver that called for it."""

    id: str = Field(examples=["onboarding_session"])
    title: str = Field(examples=["Run an onboarding / activation session"])
    detail: str
    owner: str = Field(examples=["csm"])
    because: str = Field(examples=["active users down 40% vs prior 2 months"])


class ModelRef(BaseModel):
    name: str | None = Field(examples=["churn-model"])
    version: str | None = Field(examples=["3"])
    run_id: str | None = Field(examples=["1dbef6152d0748eda1bbd25010841530"])


class AccountScore(BaseModel):
    """One account's churn risk over the model's horizon, why, and what to do."""

    account_id: str = Field(examples=["A000042"])
    as_of: dt.date = Field(description="The snapshot date (today, UTC, when not sent).")
    churn_probability: float = Field(
        ge=0, le=1, description="P(churn within horizon_days of as_of)."
    )
    horizon_days: int | None = Field(
        examples=[90], description="Days ahead; null for a model trained on one labelled export."
    )
    risk_tier: str = Field(
        description="low < b <= medium < 2b <= high < 4b <= critical; b = training base rate.",
        examples=["high"],
    )
    revenue_at_risk: float | None = Field(
        description="churn_probability * mrr * 12; null when mrr is unknown.", examples=[2340.5]
    )
    churn_probability_by_horizon: dict[str, float] | None = Field(
        None,
        description="P(churn within N days of as_of) for each horizon N (days, as text) of the "
        "time-to-churn model: one survival curve, so never decreasing in N. Null for a model "
        "with no time axis (trained on one labelled export; /v1/model says why).",
        examples=[{"30": 0.021, "90": 0.068, "180": 0.131, "365": 0.244}],
    )
    expected_months_remaining: float | None = Field(
        None,
        description="Expected months as a customer within the months the time-to-churn model "
        "covers (12 for a 365-day horizon; /v1/model: value_months): the area under its "
        "survival curve.",
        examples=[10.4],
    )
    expected_remaining_value: float | None = Field(
        None,
        description="Expected margin over those months: survival x mrr x gross margin, "
        "discounted at CHURN_DISCOUNT_RATE a year; null when mrr is unknown.",
        examples=[9870.0],
    )
    top_drivers: list[Driver]
    actions: list[Action]
    missing_inputs: list[str] = Field(
        description="Inputs the model uses that the snapshot did not provide."
    )
    model: ModelRef


class UnscoredAccount(BaseModel):
    """An account that passed validation but could not be scored: its neighbours are."""

    account_id: str = Field(examples=["A000042"])
    error: str = Field(examples=["this account could not be scored (ValueError); the others were"])


class ScoreBatchResponse(BaseModel):
    accounts: list[AccountScore | UnscoredAccount] = Field(
        description="One entry per account sent, in order; an account that could not be "
        "scored has an `error` instead of a score."
    )
    model: ModelRef


class PrioritizedAccount(AccountScore):
    rank: int = Field(ge=1)
    expected_saved_profit: float = Field(
        description="churn_probability * expected_save_rate * value - cost_per_action; value is "
        "mrr * 12 * gross_margin (`arr`) or expected_remaining_value (`lifetime`)."
    )


class PrioritizeResponse(BaseModel):
    accounts: list[PrioritizedAccount] = Field(
        description="Best first; only positive expected saved profit."
    )
    considered: int = Field(description="Accounts sent.")
    worth_acting: int = Field(description="Accounts whose expected saved profit is positive.")
    unscored: list[UnscoredAccount] = Field(
        description="Accounts that could not be scored (never chosen); usually empty."
    )
    capacity: int
    total_expected_saved_profit: float
    value: str = Field("arr", description="The value the ranking used: arr or lifetime.")
    model: ModelRef


class ReloadStatus(BaseModel):
    at: dt.datetime
    ok: bool
    version: str | None
    error: str | None


class ModelInfo(BaseModel):
    """What this worker serves, where it came from and how good it was on its test window."""

    name: str | None
    version: str | None
    run_id: str | None
    uri: str
    sha256: str | None
    loaded_at: dt.datetime
    horizon_days: int | None
    training_window: dict[str, Any] = Field(
        description="Data start/end, first/last observation date."
    )
    base_rate: float | None
    risk_tier_cutoffs: dict[str, float] = Field(description="Probability where each tier starts.")
    test_metrics: dict[str, float]
    horizons: list[int] | None = Field(
        None, description="Days of churn_probability_by_horizon; null without them."
    )
    horizons_absent_reason: str | None = Field(
        None, description="Why this model gives no probabilities by horizon."
    )
    value_months: int | None = Field(
        None, description="Months covered by expected_months_remaining and _value."
    )
    discount_rate: float = Field(description="CHURN_DISCOUNT_RATE, a year.")
    features: list[str]
    categorical_features: list[str]
    inputs: list[str] = Field(description="Snapshot fields the model reads.")
    last_reload: ReloadStatus | None = Field(
        description="The latest load attempt (its error if it failed)."
    )


class ReloadResponse(BaseModel):
    reloaded: bool = Field(description="False when the champion is the version already served.")
    previous_version: str | None
    model: ModelRef


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Ready(BaseModel):
    status: str = Field(examples=["ready"])
    model: ModelRef


class FieldError(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "accounts", 3, "nps_last"]])
    msg: str = Field(examples=["Input should be less than or equal to 10"])
    type: str = Field(examples=["less_than_equal"])


class ValidationFailure(BaseModel):
    detail: list[FieldError]


class Failure(BaseModel):
    detail: str
