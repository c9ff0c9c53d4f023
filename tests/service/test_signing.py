"""Signed bundles in real `churn serve` processes: a bundle signed with another key is refused
while the model already served keeps answering; without a key the server says bundles are
not authenticated."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.archive import key_id
from models.bundle import ChurnModel

from .conftest import ADMIN_KEY, KEY, fit_model, snapshot, start_server

AUTH = {"X-API-Key": KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}
SIGNING_KEY = "s" * 40
OTHER_KEY = "o" * 40


@pytest.fixture(scope="module")
def signed_server(model: ChurnModel, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("signed")
    path = model.save(tmp / "bundle.churn", signing_key=SIGNING_KEY.encode())
    server = start_server(
        tmp,
        "--workers",
        "1",
        "--model",
        str(path),
        env={
            "CHURN_API_KEYS": KEY,
            "CHURN_ADMIN_KEYS": ADMIN_KEY,
            "CHURN_RELOAD_MIN_SECONDS": "0",
            "CHURN_SIGNING_KEY": SIGNING_KEY,
            "CHURN_MODEL_POLL_SECONDS": "0.3",
        },
    )
    server.wait(lambda: server.get("/ready").status_code == 200, what="the signed model")
    yield server, path
    server.stop()


def test_a_bundle_signed_with_another_key_is_refused_and_the_old_model_keeps_serving(
    signed_server, tmp_path: Path
) -> None:
    server, path = signed_server
    first = server.get("/v1/model", headers=AUTH).json()["sha256"]
    fit_model(seed=5).save(path, signing_key=OTHER_KEY.encode())  # whoever lacks the key
    server.wait(
        lambda: (
            (server.get("/v1/model", headers=AUTH).json()["last_reload"] or {}).get("ok") is False
        ),
        what="the refused bundle",
    )
    info = server.get("/v1/model", headers=AUTH).json()
    assert info["sha256"] == first
    assert (
        f"signed with another key (key id {key_id(OTHER_KEY.encode())}"
        in (info["last_reload"]["error"])
    )
    reload = server.post("/admin/reload", headers=ADMIN)
    assert reload.status_code == 503 and "signed with another key" in reload.json()["detail"]
    scored = server.post("/v1/score", json=snapshot(), headers=AUTH)
    assert scored.status_code == 200 and 0 <= scored.json()["churn_probability"] <= 1
    assert "not authenticated" not in server.log.read_text()

    fit_model(seed=6).save(path, signing_key=SIGNING_KEY.encode())  # the key holder's next one
    reload = server.post("/admin/reload", headers=ADMIN)
    assert reload.status_code == 200 and reload.json()["reloaded"] is True
    assert server.get("/v1/model", headers=AUTH).json()["sha256"] != first


def test_without_a_key_serve_says_bundles_are_not_authenticated(
    bundle: Path, tmp_path: Path
) -> None:
    server = start_server(tmp_path, "--workers", "1", "--model", str(bundle))
    try:
        server.wait(lambda: server.get("/ready").status_code == 200, what="the model")
        assert "checked for integrity (SHA-256) but not authenticated" in server.log.read_text()
    finally:
        server.stop()
