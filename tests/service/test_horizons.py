"""Time to churn over HTTP: probabilities by horizon, months and value left, lifetime ranking."""

from __future__ import annotations

import numpy as np
import pytest

from models.value import expected_remaining_value
from service.schemas import AccountScore, ModelInfo, PrioritizeResponse

from .conftest import accounts, snapshot
from .test_prioritize import ask
from .test_score import columns_of

HORIZONS = ["30", "90", "180", "365"]


def test_score_gives_probabilities_by_horizon_months_and_value(timed_client) -> None:
    body = timed_client.post("/v1/score", json=snapshot()).json()
    AccountScore.model_validate(body)
    by_horizon = body["churn_probability_by_horizon"]
    assert list(by_horizon) == HORIZONS
    assert np.all(np.diff([by_horizon[h] for h in HORIZONS]) >= 0)
    assert 0 < body["expected_months_remaining"] <= 12
    assert body["expected_remaining_value"] > 0


def test_the_batch_answers_what_the_model_computes(timed_client, timed_model) -> None:
    bodies = accounts(25)
    found = timed_client.post("/v1/score/batch", json={"accounts": bodies}).json()["accounts"]
    features = timed_model.matrix(columns_of(bodies))
    survival = timed_model.survival(features)
    within = survival.churn_within(timed_model.horizons)
    got = np.array([[a["churn_probability_by_horizon"][h] for h in HORIZONS] for a in found])
    np.testing.assert_allclose(got, within, rtol=1e-12)
    months = [a["expected_months_remaining"] for a in found]
    np.testing.assert_allclose(months, survival.expected_months(), rtol=1e-12)


def test_remaining_value_is_discounted_at_the_configured_rate(
    make_client, registry, timed_model
) -> None:
    registry.publish(timed_model, "2")
    body = snapshot()
    plain = make_client(discount_rate=0.0).post("/v1/score", json=body).json()
    discounted = (
        make_client(discount_rate=0.2, gross_margin=0.5).post("/v1/score", json=body).json()
    )
    features = timed_model.matrix(columns_of([body]))
    months = timed_model.survival(features).expected_months(0.2)
    expected = expected_remaining_value(months, np.array([body["mrr"]]), 0.5)[0]
    assert discounted["expected_remaining_value"] == pytest.approx(expected, rel=1e-12)
    assert plain["expected_remaining_value"] == pytest.approx(
        plain["expected_months_remaining"] * body["mrr"], rel=1e-12
    )


def test_a_model_without_horizons_answers_null_and_says_why(client) -> None:
    body = client.post("/v1/score", json=snapshot()).json()
    assert body["churn_probability_by_horizon"] is None
    assert body["expected_months_remaining"] is None and body["expected_remaining_value"] is None
    info = client.get("/v1/model").json()
    ModelInfo.model_validate(info)
    assert info["horizons"] is None and "--horizons none" in info["horizons_absent_reason"]


def test_model_info_names_the_horizons_and_the_months_valued(timed_client) -> None:
    info = timed_client.get("/v1/model").json()
    assert info["horizons"] == [30, 90, 180, 365] and info["value_months"] == 12
    assert info["horizons_absent_reason"] is None


def test_lifetime_ranks_by_the_saved_share_of_remaining_value(timed_client) -> None:
    bodies = accounts(30)
    found = ask(timed_client, bodies, capacity=30, cost=10.0, value="lifetime")
    PrioritizeResponse.model_validate(found)
    assert found["value"] == "lifetime"
    scored = {
        a["account_id"]: a
        for a in timed_client.post("/v1/score/batch", json={"accounts": bodies}).json()["accounts"]
    }
    for account in found["accounts"]:
        own = scored[account["account_id"]]
        expected = own["churn_probability"] * 0.3 * own["expected_remaining_value"] - 10.0
        assert account["expected_saved_profit"] == pytest.approx(expected, rel=1e-9)
    profits = [a["expected_saved_profit"] for a in found["accounts"]]
    assert profits == sorted(profits, reverse=True)


def test_lifetime_and_arr_rank_differently(timed_client) -> None:
    bodies = accounts(40)
    arr = ask(timed_client, bodies, capacity=40, cost=0.0, value="arr")
    lifetime = ask(timed_client, bodies, capacity=40, cost=0.0, value="lifetime")
    assert arr["value"] == "arr"
    assert [a["account_id"] for a in arr["accounts"]] != [
        a["account_id"] for a in lifetime["accounts"]
    ]


def prioritize_one(client, value: str):
    body = {"accounts": [snapshot()], "capacity": 1, "cost_per_action": 1, "value": value}
    return client.post("/v1/prioritize", json={**body, "expected_save_rate": 0.2})


def test_lifetime_without_a_time_to_churn_model_is_422_naming_the_field(client) -> None:
    response = prioritize_one(client, "lifetime")
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "value"] and "use 'arr'" in detail["msg"]


def test_an_unknown_value_is_422(client) -> None:
    response = prioritize_one(client, "forever")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "value"]
