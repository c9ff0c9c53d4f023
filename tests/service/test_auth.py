"""API keys: /v1/* guarded when keys are set, /admin/* always and by admin keys only."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from features.errors import ChurnError
from features.settings import Settings, settings_problems
from service.auth import check_exposure, is_loopback

from .conftest import ADMIN_KEY, KEY, snapshot

OTHER_KEY = "other-key-abcdefghij"


@pytest.fixture
def guarded(make_client):
    return make_client(api_keys=f"{OTHER_KEY},{KEY}", admin_keys=ADMIN_KEY)


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
    assert guarded.get("/v1/model", headers={"X-API-Key": OTHER_KEY}).status_code == 200


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


ADMIN_DISABLED = (
    "admin endpoints are disabled: no admin key is configured "
    "(set CHURN_ADMIN_KEYS or CHURN_ADMIN_KEYS_FILE)"
)


def test_admin_refuses_when_no_admin_key_is_configured(client) -> None:
    response = client.post("/admin/reload", headers={"X-API-Key": "anything"})
    assert response.status_code == 403
    assert response.json() == {"detail": ADMIN_DISABLED}


def test_an_api_key_never_opens_admin(make_client) -> None:
    client = make_client(api_keys=KEY)
    response = client.post("/admin/reload", headers={"X-API-Key": KEY})
    assert response.status_code == 403 and response.json() == {"detail": ADMIN_DISABLED}


def test_admin_needs_a_key(guarded) -> None:
    assert guarded.post("/admin/reload").status_code == 401


def test_admin_with_a_scoring_key_is_403(guarded) -> None:
    response = guarded.post("/admin/reload", headers={"X-API-Key": KEY})
    assert response.status_code == 403 and response.json() == {"detail": "invalid API key"}


def test_admin_with_the_admin_key_works(guarded) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert guarded.post("/admin/reload", headers=headers).status_code == 200


def test_an_admin_key_does_not_score(guarded) -> None:
    assert (
        guarded.post("/v1/score", json=snapshot(), headers={"X-API-Key": ADMIN_KEY}).status_code
        == 403
    )


def test_reloads_are_rate_limited_per_worker(make_client) -> None:
    client = make_client(admin_keys=ADMIN_KEY, reload_min_seconds=60)
    headers = {"X-API-Key": ADMIN_KEY}
    assert client.post("/admin/reload", headers=headers).status_code == 200
    again = client.post("/admin/reload?force=true", headers=headers)
    assert again.status_code == 429
    assert again.json()["detail"].startswith(
        "reloads are limited to one per 60 s per worker (CHURN_RELOAD_MIN_SECONDS); retry in "
    )
    assert 1 <= int(again.headers["retry-after"]) <= 60


def test_keys_file_is_read(make_client, tmp_path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# team keys\nfile-key-0123456789\n")
    client = make_client(api_keys_file=keys)
    assert client.get("/v1/model", headers={"X-API-Key": "file-key-0123456789"}).status_code == 200
    assert client.get("/v1/model", headers={"X-API-Key": KEY}).status_code == 403


def test_indented_comment_lines_are_comments_not_keys(tmp_path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("  # rotated 2025-06: old key below removed\n\tkey-0123456789abcdef\n")
    assert Settings(api_keys_file=keys).api_key_values() == ["key-0123456789abcdef"]


def test_a_keys_file_of_comments_only_configures_no_key(tmp_path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# no keys yet\n   # still none\n")
    assert Settings(api_keys_file=keys).api_key_values() == []


def test_admin_keys_file_is_read(tmp_path) -> None:
    keys = tmp_path / "admin"
    keys.write_text("# ops\nadmin-file-key-0123456\n")
    settings = Settings(admin_keys_file=keys, admin_keys="admin-env-key-0123456")
    assert settings.admin_key_values() == ["admin-env-key-0123456", "admin-file-key-0123456"]


def test_settings_split_comma_separated_keys() -> None:
    keys = f" {KEY} , {OTHER_KEY},,"
    assert Settings(api_keys=keys).api_key_values() == [KEY, OTHER_KEY]


@pytest.mark.parametrize("setting", ["api_keys", "admin_keys"])
def test_short_keys_are_refused_without_showing_them(setting: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**{setting: f"{KEY},short-secret"})
    shown = settings_problems(caught.value)
    name = setting.upper()
    assert shown == (
        f"CHURN_{name}: key 2 has 12 characters; keys need at least 16 "
        "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
    )
    assert "short-secret" not in shown and KEY not in shown


def test_settings_problems_never_quote_the_input(tmp_path) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(api_keys="supersecretkey-abcdefgh", api_keys_file=tmp_path / "absent", port="x")
    shown = settings_problems(caught.value)
    assert "supersecret" not in shown and "'x'" not in shown
    assert "CHURN_PORT: Input should be a valid integer" in shown


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("churn.internal", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_no_keys_on_a_network_address_refuses_to_start() -> None:
    with pytest.raises(ChurnError) as refused:
        check_exposure(Settings(host="0.0.0.0"))
    assert str(refused.value) == (
        "refusing to serve on 0.0.0.0 without API keys: anyone who reaches it could score "
        "accounts. Set CHURN_API_KEYS or CHURN_API_KEYS_FILE, or CHURN_ALLOW_ANONYMOUS=true "
        "when a gateway in front authenticates every request"
    )


def test_anonymous_on_a_network_address_is_allowed_when_asked(caplog) -> None:
    check_exposure(Settings(host="0.0.0.0", allow_anonymous=True))
    assert "no API keys configured: /v1/* answers anyone who can reach 0.0.0.0" in caplog.text


def test_no_keys_on_loopback_starts_with_a_warning(caplog) -> None:
    check_exposure(Settings(host="127.0.0.1"))
    assert "no API keys configured" in caplog.text


def test_keys_on_a_network_address_start_quietly(caplog) -> None:
    check_exposure(Settings(host="0.0.0.0", api_keys=KEY))
    assert caplog.text == ""
