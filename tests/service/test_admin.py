"""POST /admin/reload: swap to a new champion, keep the old one when the new one fails."""

from __future__ import annotations

import pytest

from features.errors import ModelError

from .conftest import ADMIN_KEY, KEY, fit_model, snapshot

AUTH = {"X-API-Key": KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def admin(make_client):
    return make_client(api_keys=KEY, admin_keys=ADMIN_KEY)


def test_reload_swaps_to_the_new_champion(admin, registry) -> None:
    registry.publish(fit_model(seed=3, rounds=60), "2")
    response = admin.post("/admin/reload", headers=ADMIN)
    assert response.status_code == 200
    assert response.json() == {
        "reloaded": True,
        "previous_version": "1",
        "model": {"name": "churn-model", "version": "2", "run_id": "run2"},
    }
    assert admin.post("/v1/score", json=snapshot(), headers=AUTH).json()["model"]["version"] == "2"


def test_reload_of_the_served_version_changes_nothing(admin, registry) -> None:
    loads = registry.loads
    response = admin.post("/admin/reload", headers=ADMIN)
    assert response.json()["reloaded"] is False and registry.loads == loads


def test_forced_reload_loads_again(admin, registry) -> None:
    loads = registry.loads
    assert admin.post("/admin/reload?force=true", headers=ADMIN).json()["reloaded"] is True
    assert registry.loads == loads + 1


def test_failed_reload_keeps_the_old_model_and_says_why(admin, registry) -> None:
    registry.publish(
        ModelError("model bundle bundle.churn has SHA-256 abc, expected def: refusing to load"),
        "2",
    )
    response = admin.post("/admin/reload", headers=ADMIN)
    assert response.status_code == 503
    assert response.json() == {
        "detail": "loading models:/churn-model@champion failed (still serving version 1): "
        "model bundle bundle.churn has SHA-256 abc, expected def: refusing to load"
    }
    assert admin.post("/v1/score", json=snapshot(), headers=AUTH).json()["model"]["version"] == "1"


def test_failed_reload_is_visible_in_model_info(admin, registry) -> None:
    registry.publish(ModelError("checksum mismatch"), "2")
    admin.post("/admin/reload", headers=ADMIN)
    info = admin.get("/v1/model", headers=AUTH).json()
    assert info["version"] == "1"
    assert info["last_reload"]["ok"] is False
    assert (
        info["last_reload"]["version"] == "2"
        and info["last_reload"]["error"] == "checksum mismatch"
    )


def test_failed_reload_is_counted_in_metrics(admin, registry) -> None:
    registry.publish(ModelError("broken"), "2")
    admin.post("/admin/reload", headers=ADMIN)
    assert "churn_model_reload_failures_total 1.0" in admin.get("/metrics").text
