"""POST /v1/prioritize: ranked by expected saved profit, positive only, at most capacity."""

from __future__ import annotations

import numpy as np
import pytest

from service.schemas import PrioritizeResponse

from .conftest import accounts, snapshot


def ask(client, bodies, capacity=10, cost=100.0, save_rate=0.3, **extra):
    payload = {
        "accounts": bodies,
        "capacity": capacity,
        "cost_per_action": cost,
        "expected_save_rate": save_rate,
        **extra,
    }
    response = client.post("/v1/prioritize", json=payload)
    assert response.status_code == 200, response.text
    PrioritizeResponse.model_validate(response.json())
    return response.json()


def expected_profit(client, bodies, save_rate, cost, margin=1.0):
    scores = client.post("/v1/score/batch?explain=false", json={"accounts": bodies}).json()[
        "accounts"
    ]
    p = np.array([s["churn_probability"] for s in scores])
    mrr = np.array([b.get("mrr", np.nan) for b in bodies], dtype=float)
    return p * save_rate * mrr * 12 * margin - cost


def test_ranked_by_expected_saved_profit(client) -> None:
    bodies = accounts(30)
    found = ask(client, bodies, capacity=30, cost=50.0)
    profits = [a["expected_saved_profit"] for a in found["accounts"]]
    assert profits == sorted(profits, reverse=True)
    assert [a["rank"] for a in found["accounts"]] == list(range(1, len(profits) + 1))


def test_profit_follows_the_money_formula(client) -> None:
    bodies = accounts(20)
    found = ask(client, bodies, capacity=20, cost=40.0, save_rate=0.25)
    expected = dict(
        zip(
            [b["account_id"] for b in bodies],
            expected_profit(client, bodies, 0.25, 40.0),
            strict=True,
        )
    )
    for account in found["accounts"]:
        assert account["expected_saved_profit"] == pytest.approx(
            expected[account["account_id"]], rel=1e-9
        )


def test_at_most_capacity(client) -> None:
    found = ask(client, accounts(30), capacity=4, cost=0.0)
    assert len(found["accounts"]) == 4 and found["capacity"] == 4 and found["considered"] == 30


def test_only_positive_expected_profit(client) -> None:
    bodies = accounts(30)
    profit = expected_profit(client, bodies, 0.3, 1500.0)
    found = ask(client, bodies, capacity=30, cost=1500.0)
    assert found["worth_acting"] == int((profit > 0).sum())
    assert len(found["accounts"]) == found["worth_acting"]
    assert all(a["expected_saved_profit"] > 0 for a in found["accounts"])


def test_nothing_worth_it_gives_an_empty_list(client) -> None:
    found = ask(client, accounts(5), capacity=5, cost=1e9)
    assert (
        found["accounts"] == []
        and found["worth_acting"] == 0
        and found["total_expected_saved_profit"] == 0.0
    )


def test_accounts_without_mrr_are_never_chosen(client) -> None:
    found = ask(client, [snapshot("no-mrr", mrr=None), snapshot("paying")], capacity=2, cost=0.0)
    assert [a["account_id"] for a in found["accounts"]] == ["paying"]


def test_gross_margin_scales_the_saved_profit(client) -> None:
    bodies = [snapshot()]
    full = ask(client, bodies, cost=0.0)["accounts"][0]["expected_saved_profit"]
    half = ask(client, bodies, cost=0.0, gross_margin=0.5)["accounts"][0]["expected_saved_profit"]
    assert half == pytest.approx(full / 2)


def test_gross_margin_defaults_to_the_setting(make_client) -> None:
    client = make_client(gross_margin=0.5)
    explicit = ask(client, [snapshot()], cost=0.0, gross_margin=0.5)["accounts"][0][
        "expected_saved_profit"
    ]
    default = ask(client, [snapshot()], cost=0.0)["accounts"][0]["expected_saved_profit"]
    assert default == pytest.approx(explicit)


def test_chosen_accounts_come_with_drivers_and_actions(client) -> None:
    account = ask(client, [snapshot(mau=[1, 20, 20], nps_last=2)], cost=0.0)["accounts"][0]
    assert account["top_drivers"] and account["churn_probability"] > 0


def test_capacity_must_be_positive(client) -> None:
    response = client.post(
        "/v1/prioritize",
        json={
            "accounts": [snapshot()],
            "capacity": 0,
            "cost_per_action": 1,
            "expected_save_rate": 0.2,
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", "capacity"],
            "msg": "Input should be greater than or equal to 1",
            "type": "greater_than_equal",
        }
    ]


def test_save_rate_above_one_is_422(client) -> None:
    response = client.post(
        "/v1/prioritize",
        json={
            "accounts": [snapshot()],
            "capacity": 1,
            "cost_per_action": 1,
            "expected_save_rate": 1.5,
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "expected_save_rate"]


def test_prioritize_respects_the_batch_limit(make_client) -> None:
    client = make_client(batch_limit=3)
    response = client.post(
        "/v1/prioritize",
        json={
            "accounts": accounts(4),
            "capacity": 1,
            "cost_per_action": 1,
            "expected_save_rate": 0.2,
        },
    )
    assert response.status_code == 413
