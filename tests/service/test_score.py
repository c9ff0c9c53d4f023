"""POST /v1/score and /v1/score/batch through the app (TestClient)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import orjson
import pytest

from features.schema import AccountSnapshot, records_to_columns
from models.value import revenue_at_risk
from service.schemas import AccountScore, ScoreBatchResponse
from training.scoring import score_frame

from .conftest import AS_OF, accounts, snapshot, today


def columns_of(bodies: list[dict]) -> dict[str, np.ndarray]:
    records = [AccountSnapshot.model_validate(b) for b in bodies]
    return records_to_columns(records, dt.date.fromisoformat(AS_OF))


def test_score_one_returns_every_documented_field(client) -> None:
    response = client.post("/v1/score", json=snapshot())
    assert response.status_code == 200
    body = response.json()
    AccountScore.model_validate(body)
    assert list(body) == [
        "account_id",
        "as_of",
        "churn_probability",
        "horizon_days",
        "risk_tier",
        "revenue_at_risk",
        "churn_probability_by_horizon",
        "expected_months_remaining",
        "expected_remaining_value",
        "top_drivers",
        "actions",
        "missing_inputs",
        "model",
    ]
    assert body["account_id"] == "A1" and body["as_of"] == AS_OF and body["horizon_days"] == 90
    assert body["model"] == {"name": "churn-model", "version": "1", "run_id": "run1"}


def test_score_equals_predict_proba_on_the_same_snapshot(client, model) -> None:
    body = client.post("/v1/score", json=snapshot()).json()
    expected = model.predict_proba(columns_of([snapshot()]))[0]
    assert body["churn_probability"] == pytest.approx(expected, rel=1e-12)


def test_risk_tier_and_revenue_follow_the_money_rules(client, model) -> None:
    body = client.post("/v1/score", json=snapshot()).json()
    p = body["churn_probability"]
    assert body["risk_tier"] == model.risk_tiers(np.array([p]))[0]
    assert body["revenue_at_risk"] == pytest.approx(
        revenue_at_risk(np.array([p]), np.array([1250.0]))[0]
    )
    assert body["revenue_at_risk"] == pytest.approx(p * 1250.0 * 12)


def test_revenue_at_risk_is_null_without_mrr(client) -> None:
    body = client.post("/v1/score", json=snapshot(mrr=None)).json()
    assert body["revenue_at_risk"] is None
    assert "mrr" in body["missing_inputs"]


def test_only_account_id_is_required_and_as_of_defaults_to_today(client) -> None:
    response = client.post("/v1/score", json={"account_id": "bare"})
    assert response.status_code == 200
    body = response.json()
    assert body["as_of"] == today()
    assert {"seats", "mau", "plan"} <= set(body["missing_inputs"])


def test_drivers_are_positive_contributions_in_words(client) -> None:
    drivers = client.post("/v1/score", json=snapshot(mau=[1, 20, 20], nps_last=1)).json()[
        "top_drivers"
    ]
    assert 1 <= len(drivers) <= 3
    assert all(d["contribution"] > 0 and d["reason"] for d in drivers)
    assert [d["contribution"] for d in drivers] == sorted(
        (d["contribution"] for d in drivers), reverse=True
    )


def test_explain_false_skips_drivers_but_keeps_the_score(client) -> None:
    full = client.post("/v1/score", json=snapshot()).json()
    lean = client.post("/v1/score?explain=false", json=snapshot()).json()
    assert lean["top_drivers"] == []
    assert lean["churn_probability"] == pytest.approx(full["churn_probability"], rel=1e-9)


def test_explain_that_is_not_a_boolean_is_422_naming_it(client) -> None:
    response = client.post("/v1/score?explain=maybe", json=snapshot())
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["query", "explain"],
                "msg": "Input should be a valid boolean, unable to interpret input",
                "type": "bool_parsing",
            }
        ]
    }


def test_explain_is_documented_on_both_score_endpoints(client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/score", "/v1/score/batch"):
        (parameter,) = paths[path]["post"]["parameters"]
        assert parameter["name"] == "explain" and parameter["schema"]["default"] is True


def test_batch_keeps_order_and_matches_predict_proba(client, model) -> None:
    bodies = accounts(40)
    response = client.post("/v1/score/batch", json={"accounts": bodies})
    assert response.status_code == 200
    ScoreBatchResponse.model_validate(response.json())
    results = response.json()["accounts"]
    assert [r["account_id"] for r in results] == [b["account_id"] for b in bodies]
    expected = model.predict_proba(columns_of(bodies))
    np.testing.assert_allclose([r["churn_probability"] for r in results], expected, rtol=1e-12)


def test_batch_equals_churn_score_output_for_the_same_snapshots(client, model) -> None:
    bodies = accounts(25)
    results = client.post("/v1/score/batch", json={"accounts": bodies}).json()["accounts"]
    scored = score_frame(model, columns_of(bodies), drivers=3)
    np.testing.assert_allclose(
        [r["churn_probability"] for r in results], scored["churn_probability"], rtol=1e-12
    )
    assert [r["risk_tier"] for r in results] == scored["risk_tier"].tolist()
    first_reasons = [r["top_drivers"][0]["reason"] if r["top_drivers"] else None for r in results]
    assert first_reasons == scored["driver_1"].tolist()


def test_batch_of_one_equals_single_score(client) -> None:
    single = client.post("/v1/score", json=snapshot()).json()
    batch = client.post("/v1/score/batch", json={"accounts": [snapshot()]}).json()
    assert batch["accounts"][0] == single


def test_batch_above_the_limit_is_413_with_the_limit(make_client) -> None:
    client = make_client(batch_limit=5)
    response = client.post("/v1/score/batch", json={"accounts": accounts(6)})
    assert response.status_code == 413
    assert response.json() == {
        "detail": "batch of 6 accounts is above the limit of 5 (CHURN_BATCH_LIMIT); split it into batches of at most 5"
    }


def test_batch_at_the_limit_is_scored(make_client) -> None:
    client = make_client(batch_limit=5)
    assert client.post("/v1/score/batch", json={"accounts": accounts(5)}).status_code == 200


def test_body_above_the_byte_limit_is_413(make_client) -> None:
    client = make_client(batch_limit=1)  # body limit 1 * 2048 + 64 KiB
    body = orjson.dumps({"accounts": [snapshot(attributes={"note": "x" * 70_000})]})
    response = client.post("/v1/score/batch", content=body)
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"request body of {len(body)} bytes is above the limit of 67584 bytes "
        "(about 2 KB per account of CHURN_BATCH_LIMIT); split the batch"
    }


def error(response) -> dict:
    assert response.status_code == 422
    (only,) = response.json()["detail"]
    return only


def test_nps_outside_0_10_names_the_field(client) -> None:
    bodies = accounts(5)
    bodies[3]["nps_last"] = 11
    assert error(client.post("/v1/score/batch", json={"accounts": bodies})) == {
        "loc": ["body", "accounts", 3, "nps_last"],
        "msg": "Input should be less than or equal to 10",
        "type": "less_than_equal",
    }


def test_negative_seats_names_the_field(client) -> None:
    assert error(client.post("/v1/score", json=snapshot(seats=-2))) == {
        "loc": ["body", "seats"],
        "msg": "Input should be greater than or equal to 0",
        "type": "greater_than_equal",
    }


def test_unknown_contract_type_names_the_field(client) -> None:
    found = error(client.post("/v1/score", json=snapshot(contract_type="lifetime")))
    assert found["loc"] == ["body", "contract_type"] and found["type"] == "value_error"
    assert found["msg"].startswith("Value error, unknown contract type 'lifetime'")


def test_wrong_date_format_names_the_field(client) -> None:
    assert error(client.post("/v1/score", json=snapshot(renewal_date="14/02/2026"))) == {
        "loc": ["body", "renewal_date"],
        "msg": "Input should be a valid date or datetime, invalid character in year",
        "type": "date_from_datetime_parsing",
    }


def test_empty_batch_is_422(client) -> None:
    assert error(client.post("/v1/score/batch", json={"accounts": []})) == {
        "loc": ["body", "accounts"],
        "msg": "List should have at least 1 item after validation, not 0",
        "type": "too_short",
    }


def test_malformed_json_is_422(client) -> None:
    body = b'{"account_id": "A1",'
    response = client.post("/v1/score", content=body, headers={"Content-Type": "application/json"})
    assert error(response) == {
        "loc": ["body"],
        "msg": "Invalid JSON: EOF while parsing a value at line 1 column 20",
        "type": "json_invalid",
    }


def test_missing_account_id_is_422(client) -> None:
    assert error(client.post("/v1/score", json={"seats": 3})) == {
        "loc": ["body", "account_id"],
        "msg": "Field required",
        "type": "missing",
    }


def test_unknown_field_is_422(client) -> None:
    assert error(client.post("/v1/score", json=snapshot(nps=9))) == {
        "loc": ["body", "nps"],
        "msg": "Extra inputs are not permitted",
        "type": "extra_forbidden",
    }


def test_errors_never_echo_the_input(client) -> None:
    response = client.post("/v1/score", json=snapshot(seats=-2, account_id="secret-customer"))
    assert "secret-customer" not in response.text and "-2" not in response.text


def test_not_ready_is_503(make_client) -> None:
    response = make_client(load=False).post("/v1/score", json=snapshot())
    assert response.status_code == 503
    assert response.json() == {"detail": "no model loaded yet (models:/churn-model@champion)"}
