"""The model card: what a fitted model is, where it came from and how good it was.

A typed, frozen record stored as ``card.json`` in the bundle, in place of a free dict: a
typo in a field name fails at training, not at a customer's first request. Every field
but ``base_rate`` is optional, so adding one (with a default) keeps older bundles
loadable; a field a newer Churn wrote that this one does not know is ignored on load.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.errors import ModelError

log = logging.getLogger(__name__)


class ModelCard(BaseModel):
    """Horizon, base rate, tier cut-offs, mode, mapping, window, metrics, fitting report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_rate: float = Field(ge=0, le=1, description="Churn rate of the training rows.")
    horizon_days: int | None = Field(
        None, description="Days ahead the probability covers; None for a table-mode model."
    )
    mode: Literal["events", "table"] = "events"
    tier_cutoffs: tuple[float, float, float] | None = Field(
        None, description="Where medium, high, critical start; default multiples of base_rate."
    )
    # where the rows came from
    window: dict[str, str] = Field(default_factory=dict)
    observation_every: str | None = None
    split_plan: dict[str, int] = Field(default_factory=dict)
    split: str | None = None
    exclude_columns: tuple[str, ...] = ()
    mapping: dict[str, Any] | None = Field(None, description="Table mode: the column mapping.")
    source: str | None = None
    as_of: str | None = None
    warnings: tuple[str, ...] = ()
    cleaning_report: tuple[str, ...] = ()
    # how it was fitted
    model_form: str | None = None
    validation_log_loss: dict[str, float] = Field(default_factory=dict)
    early_stopping_trees: int | None = None
    trees: int | None = None
    calibration: dict[str, float | str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    # how good it was
    metrics: dict[str, float] = Field(default_factory=dict)
    baseline_metrics: dict[str, float] = Field(default_factory=dict)

    def replace(self, **changes: Any) -> ModelCard:
        """A copy with ``changes``, validated like a new card."""
        return build_card({**self.model_dump(), **changes})

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, document: Any, bundle: str = "the bundle") -> ModelCard:
        """Read a stored card; fields this Churn does not know are skipped (and logged)."""
        if not isinstance(document, dict):
            raise ModelError(f"{bundle}: card.json is not an object")
        unknown = sorted(set(document) - set(cls.model_fields))
        if unknown:
            log.info("%s: model card fields %s are unknown to this Churn: ignored", bundle, unknown)
        known = {key: value for key, value in document.items() if key in cls.model_fields}
        try:
            return cls.model_validate(known)
        except ValidationError as exc:
            raise ModelError(f"{bundle}: its model card is invalid: {exc}") from None


def build_card(fields: dict[str, Any]) -> ModelCard:
    """A card from training's fields; a ModelError names any field that is wrong."""
    try:
        return ModelCard.model_validate(fields)
    except ValidationError as exc:
        raise ModelError(f"the model card cannot be built: {exc}") from None
