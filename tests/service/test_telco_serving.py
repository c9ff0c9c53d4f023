"""A model trained on the real Telco export, served by `churn serve`, answers a Telco row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from training.params import TrainParams
from training.pipeline import fit_and_evaluate
from training.progress import Steps
from training.table import TableMapping, clean_table, prepare_table, read_export

from .conftest import start_server

TELCO = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "datasets"
    / "telco"
    / "WA_Fn-UseC_-Telco-Customer-Churn.csv"
)
MAPPING = TableMapping(
    fields={"tenure": "tenure_months", "Contract": "contract_type", "MonthlyCharges": "mrr"},
    id_column="customerID",
    label="Churn",
)
ROW = {  # customer 7590-VHVEG of the export, in the snapshot vocabulary of the mapping
    "account_id": "7590-VHVEG",
    "tenure_months": 1,
    "contract_type": "Month-to-month",
    "mrr": 29.85,
    "attributes": {
        "gender": "Female",
        "SeniorCitizen": 0,
        "Partner": "Yes",
        "Dependents": "No",
        "PhoneService": "No",
        "MultipleLines": "No phone service",
        "InternetService": "DSL",
        "OnlineSecurity": "No",
        "OnlineBackup": "Yes",
        "DeviceProtection": "No",
        "TechSupport": "No",
        "StreamingTV": "No",
        "StreamingMovies": "No",
        "PaperlessBilling": "Yes",
        "PaymentMethod": "Electronic check",
        "TotalCharges": "29.85",
    },
}

pytestmark = [
    pytest.mark.quality,
    pytest.mark.skipif(
        not TELCO.is_file(), reason=f"Telco data set not found at {TELCO.resolve()}"
    ),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("telco")
    clean = clean_table(read_export(TELCO), MAPPING, dt.date(2024, 1, 1))
    model = fit_and_evaluate(
        prepare_table(clean, str(TELCO)), TrainParams(), Steps(enabled=False)
    ).model
    bundle = model.save(tmp / "telco.churn")
    server = start_server(tmp, "--workers", "1", "--model", str(bundle))
    server.wait(lambda: server.get("/ready").status_code == 200, what="/ready")
    yield server
    server.stop()


def test_a_telco_row_gets_a_risk_and_reasons_in_words(served) -> None:
    response = served.post("/v1/score", json=ROW)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["churn_probability"] > 0.5 and body["risk_tier"] in ("high", "critical")
    reasons = [driver["reason"] for driver in body["top_drivers"]]
    assert "month-to-month contract" in reasons or "tenure 1 month" in reasons, reasons
    assert body["revenue_at_risk"] == pytest.approx(body["churn_probability"] * 29.85 * 12)


def test_a_row_missing_columns_still_scores_and_lists_them(served) -> None:
    partial = {"account_id": "x", "tenure_months": 40, "contract_type": "Two year"}
    response = served.post("/v1/score", json=partial)
    assert response.status_code == 200, response.text
    missing = response.json()["missing_inputs"]
    assert "mrr" in missing and "attributes.InternetService" in missing
