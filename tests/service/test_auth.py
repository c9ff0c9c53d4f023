"""API keys: /v1/* guarded when keys are set, /admin/* always."""

from __future__ import annotations

import pytest

from features.settings import Settings

from .conftest import KEY, snapshot


@pytest.fixture
def guarded(make_client):
    return make_client(api_keys=f"other-key,{KEY}")


def test_no_key_is_401(guarded) -> None:
    response = guarded.post("/v1/score", json=snapshot())
    assert response.status_code == 401
    assert response.json() == {
        "detail": "missing API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'"
    }
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_wrong_key_is_403(guarded) -> None:
    response = guarded.post("/v1/score", json=snapshot(), headers={"X-API-Key": "nope"})
    assert response.status_code == 403
    assert response.json() == {"detail": "invalid API key"}


def test_x_api_key_header_is_accepted(guarded) -> None:
    assert guarded.post("/v1/score", json=snapshot(), headers={"X-API-Key": KEY}).status_code == 200


def test_bearer_token_is_accepted(guarded) -> None:
    assert (
        guarded.post(
            "/v1/score", json=snapshot(), headers={"Authorization": f"Bearer {KEY}"}
        ).status_code
        == 200
    )


def test_every_configured_key_works(guarded) -> None:
    assert guarded.get("/v1/model", headers={"X-API-Key": "other-key"}).status_code == 200


def test_model_info_is_guarded_too(guarded) -> None:
    assert guarded.get("/v1/model").status_code == 401


def test_operations_endpoints_stay_open(guarded) -> None:
    assert [guarded.get(p).status_code for p in ("/health", "/ready", "/metrics")] == [
        200,
        200,
        200,
    ]


def test_api_is_open_without_configured_keys(client) -> None:
    assert client.post("/v1/score", json=snapshot()).status_code == 200


def test_admin_refuses_when_no_key_is_configured(client) -> None:
    response = client.post("/admin/reload", headers={"X-API-Key": "anything"})
    assert response.status_code == 403
    assert response.json() == {
        "detail": "admin endpoints are disabled: no API key is configured (set CHURN_API_KEYS or CHURN_API_KEYS_FILE)"
    }


def test_admin_needs_a_key(guarded) -> None:
    assert guarded.post("/admin/reload").status_code == 401


def test_admin_with_a_wrong_key_is_403(guarded) -> None:
    assert guarded.post("/admin/reload", headers={"X-API-Key": "nope"}).status_code == 403


def test_admin_with_the_key_works(guarded) -> None:
    assert (
        guarded.post("/admin/reload", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    )


def test_keys_file_is_read(make_client, tmp_path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# team keys\nfile-key\n")
    client = make_client(api_keys_file=keys)
    assert client.get("/v1/model", headers={"X-API-Key": "file-key"}).status_code == 200
    assert client.get("/v1/model", headers={"X-API-Key": KEY}).status_code == 403


def test_settings_split_comma_separated_keys() -> None:
    assert Settings(api_keys=" a , b,,").api_key_values() == ["a", "b"]
