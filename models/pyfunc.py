"""The MLflow pyfunc face of a ChurnModel, so the registered model also works with
``mlflow.pyfunc.load_model`` and ``mlflow models serve`` (input: snapshot columns).

Churn's own service does not use this wrapper: it loads the bundle directly and keeps
MLflow and pandas off the request path.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

BUNDLE_ARTIFACT = "bundle"


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """Snapshot frame in, ``account_id, churn_probability, risk_tier`` out."""

    def load_context(self, context: Any) -> None:
        from models.bundle import ChurnModel

        self.model = ChurnModel.load(context.artifacts[BUNDLE_ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        from features.schema import frame_to_columns

        columns = frame_to_columns(model_input)
        probability = self.model.predict_proba(columns)
        ids = (
            model_input["account_id"]
            if "account_id" in model_input
            else pd.Series(range(len(model_input)))
        )
        return pd.DataFrame(
            {
                "account_id": ids.astype(str).to_numpy(),
                "churn_probability": probability,
                "risk_tier": self.model.risk_tiers(probability),
            }
        )
