"""Every probe of a hostile or careless client (issue 11) gets its 4xx, never a 5xx.

One table: what was sent, the status that must come back and the field or words the answer
must name. Before the fix each of these answered 500, 200 with nulls, a body that echoed
megabytes, or took seconds to gigabytes; the cases that need a real server (slow clients,
connection limits, worker memory) are in test_protocol.py and test_schemathesis.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import orjson
import pytest

from models.bundle import ChurnModel

from .conftest import accounts, snapshot

BIG = "1" + "0" * 400
JSON = {"Content-Type": "application/json"}
PRIORITIZE = {"capacity": 3, "cost_per_action": 10.0, "expected_save_rate": 0.3}


def raw(template: str, **values: Any) -> bytes:
    return template.format(**values).encode()


@dataclasses.dataclass(frozen=True)
class Probe:
    name: str
    path: str
    body: bytes
    status: int
    names: str  # the field (as loc joined with dots) or words the answer must contain
    headers: dict[str, str] = dataclasses.field(default_factory=lambda: dict(JSON))


def batch(*extra: dict[str, Any], good: int = 3) -> bytes:
    return orjson.dumps({"accounts": [*accounts(good), *extra]})


PROBES = [
    Probe(
        "signup in year 1, annual, no renewal date",
        "/v1/score",
        orjson.dumps(snapshot(signup_date="0001-01-01", renewal_date=None)),
        422,
        "body.signup_date",
    ),
    Probe(
        "as_of in year 9999",
        "/v1/score",
        orjson.dumps(snapshot(as_of="9999-12-31", renewal_date=None)),
        422,
        "body.as_of",
    ),
    Probe(
        "tenure of 24,000 months, annual, no renewal date",
        "/v1/score",
        orjson.dumps(snapshot(signup_date=None, renewal_date=None, tenure_months=24_000)),
        422,
        "body.tenure_months",
    ),
    Probe(
        "seats 10^400",
        "/v1/score",
        raw('{{"account_id": "a", "seats": {n}}}', n=BIG),
        422,
        "body.seats",
    ),
    Probe(
        "mau 10^400",
        "/v1/score",
        raw('{{"account_id": "a", "mau": [1, {n}]}}', n=BIG),
        422,
        "body.mau.1",
    ),
    Probe("mrr Infinity", "/v1/score", b'{"account_id": "a", "mrr": Infinity}', 422, "body.mrr"),
    Probe("mrr NaN", "/v1/score", b'{"account_id": "a", "mrr": NaN}', 422, "body.mrr"),
    Probe("mrr 1e309", "/v1/score", b'{"account_id": "a", "mrr": 1e309}', 422, "body.mrr"),
    Probe(
        "attribute 10^400",
        "/v1/score",
        raw('{{"account_id": "a", "attributes": {{"x": {n}}}}}', n=BIG),
        422,
        "body.attributes.x",
    ),
    Probe(
        "one overflowing account among valid ones",
        "/v1/score/batch",
        batch(snapshot("bad", tenure_months=24_000, signup_date=None)),
        422,
        "body.accounts.3.tenure_months",
    ),
    Probe(
        "capacity 10^30",
        "/v1/prioritize",
        orjson.dumps({"accounts": accounts(2), **PRIORITIZE, "capacity": 0}).replace(
            b'"capacity":0', f'"capacity":{10**30}'.encode()
        ),
        422,
        "body.capacity",
    ),
    Probe(
        "capacity above the batch limit",
        "/v1/prioritize",
        orjson.dumps({"accounts": accounts(2), **PRIORITIZE, "capacity": 10_001}),
        422,
        "body.capacity",
    ),
    Probe(
        "cost_per_action Infinity",
        "/v1/prioritize",
        raw(
            '{{"accounts": [{a}], "capacity": 1, "cost_per_action": Infinity, '
            '"expected_save_rate": 0.3}}',
            a=orjson.dumps(snapshot()).decode(),
        ),
        422,
        "body.cost_per_action",
    ),
    Probe(
        "a text/plain body (a browser form needs no preflight)",
        "/v1/score",
        orjson.dumps(snapshot()),
        415,
        "Content-Type: application/json",
        headers={"Content-Type": "text/plain"},
    ),
    Probe(
        "no Content-Type", "/v1/score/batch", batch(), 415, "no Content-Type was sent", headers={}
    ),
    Probe(
        "a form body",
        "/v1/prioritize",
        b"accounts=1",
        415,
        "application/x-www-form-urlencoded",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Probe(
        "1 MB contract_type in one account",
        "/v1/score",
        orjson.dumps(snapshot(contract_type="x" * 1_000_000)),
        413,
        "above the limit of 65536 bytes for one request",
    ),
    Probe(
        "300 characters of contract_type",
        "/v1/score/batch",
        batch(snapshot("long", contract_type="x" * 300)),
        422,
        "body.accounts.3.contract_type",
    ),
    Probe(
        "101 attributes",
        "/v1/score",
        orjson.dumps(snapshot(attributes={f"k{i}": i for i in range(101)})),
        422,
        "body.attributes",
    ),
    Probe(
        "an attribute named with 65 characters",
        "/v1/score",
        orjson.dumps(snapshot(attributes={"k" * 65: 1})),
        422,
        "body.attributes",
    ),
    Probe(
        "an attribute text of 1,025 characters",
        "/v1/score",
        orjson.dumps(snapshot(attributes={"note": "v" * 1025})),
        422,
        "body.attributes.note",
    ),
    Probe(
        "20,000 attribute keys in one account",
        "/v1/score",
        orjson.dumps(snapshot(attributes={f"k{i}": i for i in range(20_000)})),
        413,
        "for one request",
    ),
    Probe(
        "an unknown field named with 100 KB",
        "/v1/score/batch",
        batch({"account_id": "x", "k" * 100_000: 1}),
        422,
        "body.accounts.3." + "k" * 37 + "...",
    ),
    Probe(
        "a date in the wrong format",
        "/v1/score",
        orjson.dumps(snapshot(renewal_date="14/02/2026")),
        422,
        "body.renewal_date",
    ),
    Probe(
        "nested JSON a thousand levels deep",
        "/v1/score",
        b'{"account_id": "a", "attributes": {"x": ' + b"[" * 1000 + b"]" * 1000 + b"}}",
        422,
        "body",
    ),
]


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_probe_gets_its_4xx_naming_the_problem(make_client, probe: Probe) -> None:
    client = make_client()
    response = client.post(probe.path, content=probe.body, headers=probe.headers)
    assert response.status_code == probe.status, response.text[:300]
    detail = response.json()["detail"]
    if isinstance(detail, list):
        fields = [".".join(str(p) for p in error["loc"]) for error in detail]
        assert any(field.startswith(probe.names) for field in fields), fields
    else:
        assert probe.names in detail
    assert len(response.content) < 4096  # never an echo of what was sent


def test_a_1_mb_bad_value_comes_back_as_a_short_answer(make_client) -> None:
    client = make_client(batch_limit=1000)
    body = batch(snapshot("x", plan="p" * 1_000_000))
    response = client.post("/v1/score/batch", content=body, headers=JSON)
    assert response.status_code == 422 and len(response.content) < 300
    assert "ppppp" not in response.text


def test_ten_thousand_bad_accounts_list_only_the_first_twenty(make_client) -> None:
    client = make_client()
    bodies = [snapshot(f"a{i}", nps_last=11) for i in range(10_000)]
    response = client.post("/v1/score/batch", json={"accounts": bodies})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == 20 and detail[19]["loc"] == ["body", "accounts", 19, "nps_last"]


def test_a_million_minimal_accounts_are_counted_and_refused(make_client) -> None:
    body = b'{"accounts":[' + b",".join([b'{"account_id":"a"}'] * 1_000_000) + b"]}"
    response = make_client().post("/v1/score/batch", content=body, headers=JSON)
    assert response.status_code == 413
    assert response.json()["detail"].startswith("batch of 1000000 accounts is above the limit")


def test_distinct_attributes_per_account_cost_nothing_and_change_nothing(make_client) -> None:
    client = make_client()
    plain = accounts(200)
    noisy = [{**a, "attributes": {f"k{i}_{j}": j for j in range(10)}} for i, a in enumerate(plain)]
    scored = client.post("/v1/score/batch", json={"accounts": plain}).json()["accounts"]
    with_noise = client.post("/v1/score/batch", json={"accounts": noisy}).json()["accounts"]
    assert [a["churn_probability"] for a in with_noise] == [a["churn_probability"] for a in scored]


# --- an account that passes validation but cannot be scored fails alone -----------------------


@dataclasses.dataclass
class Fragile(ChurnModel):
    """A model that raises on 13 seats and answers NaN on 17: what no validation can foresee."""

    def score(self, data: Any, explain: bool = True) -> Any:
        seats = np.asarray(data["seats"])
        if np.any(seats == 13):
            raise ValueError("cannot score 13 seats")
        scores = super().score(data, explain)
        if np.any(seats == 17):
            probability = np.where(seats == 17, np.nan, scores.probability)
            return dataclasses.replace(scores, probability=probability)
        return scores


@pytest.fixture
def fragile(make_client, registry, model: ChurnModel):
    registry.publish(
        Fragile(**{f.name: getattr(model, f.name) for f in dataclasses.fields(model)}), "9"
    )
    return make_client()


def test_a_batch_answers_its_good_accounts_and_marks_the_bad_ones(fragile) -> None:
    bodies = accounts(40)
    bodies[7]["seats"], bodies[30]["seats"] = 13, 17
    response = fragile.post("/v1/score/batch", json={"accounts": bodies})
    assert response.status_code == 200
    results = response.json()["accounts"]
    assert [r["account_id"] for r in results] == [b["account_id"] for b in bodies]
    assert results[7] == {
        "account_id": bodies[7]["account_id"],
        "error": "this account could not be scored (ValueError); the others were",
    }
    assert "error" in results[30] and "churn_probability" not in results[30]
    assert all(0 <= r["churn_probability"] <= 1 for i, r in enumerate(results) if i not in (7, 30))


def test_one_account_that_cannot_be_scored_is_422(fragile) -> None:
    response = fragile.post("/v1/score", json=snapshot(seats=13))
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["body"],
                "msg": "this account could not be scored (ValueError); the others were",
                "type": "unscorable",
            }
        ]
    }


def test_prioritize_leaves_unscorable_accounts_out_and_lists_them(fragile) -> None:
    bodies = accounts(20)
    bodies[4]["seats"] = 13
    response = fragile.post("/v1/prioritize", json={"accounts": bodies, **PRIORITIZE})
    assert response.status_code == 200
    body = response.json()
    assert body["considered"] == 20 and [u["account_id"] for u in body["unscored"]] == [
        bodies[4]["account_id"]
    ]
    assert bodies[4]["account_id"] not in [a["account_id"] for a in body["accounts"]]
