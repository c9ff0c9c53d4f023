"""Real `churn serve` processes (a parent and its uvicorn workers) driven over HTTP with httpx."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from features.schema import AccountSnapshot, records_to_columns
from models.bundle import ChurnModel

from .conftest import (
    ADMIN_KEY,
    AS_OF,
    KEY,
    Served,
    accounts,
    corrupt,
    fit_model,
    register,
    serve_refused,
    snapshot,
    start_server,
)

AUTH = {"X-API-Key": KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture(scope="module")
def served(bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    """Two workers serving a bundle file, API keys on, a small batch limit."""
    tmp = tmp_path_factory.mktemp("served")
    server = start_server(
        tmp,
        "--workers",
        "2",
        "--model",
        str(bundle),
        env={"CHURN_API_KEYS": KEY, "CHURN_BATCH_LIMIT": "50", "CHURN_MODEL_POLL_SECONDS": "0"},
    )
    server.wait_until_every_worker_is_ready(2)
    yield server
    server.stop()


def test_every_worker_loads_the_published_bundle(served: Served) -> None:
    assert len(served.worker_pids()) == 2
    assert served.ready_workers() == {str(pid) for pid in served.worker_pids()}


def test_workers_never_load_pandas_or_scikit_learn(served: Served) -> None:
    """The shared objects mapped into each real worker: LightGBM's, none of pandas' or
    scikit-learn's (their compiled modules load with them), and a lean worker."""
    for pid in served.worker_pids():
        maps = Path(f"/proc/{pid}/maps").read_text()
        libraries = {
            line.split()[-1] for line in maps.splitlines() if line.endswith(".so") or ".so." in line
        }
        assert any("lightgbm" in lib for lib in libraries)
        assert not [lib for lib in libraries if "/pandas/" in lib or "/sklearn/" in lib]
        rss_kb = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))
        assert rss_kb < 200_000


def test_ready_once_the_bundle_is_loaded(served: Served, bundle: Path) -> None:
    response = served.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "model": {"name": "bundle", "version": None, "run_id": None},
    }


def test_scores_over_http_equal_predict_proba(served: Served, model: ChurnModel) -> None:
    bodies = accounts(30)
    response = served.post("/v1/score/batch", json={"accounts": bodies}, headers=AUTH)
    assert response.status_code == 200
    records = [AccountSnapshot.model_validate(b) for b in bodies]
    expected = model.predict_proba(records_to_columns(records, dt.date.fromisoformat(AS_OF)))
    got = [a["churn_probability"] for a in response.json()["accounts"]]
    assert [a["account_id"] for a in response.json()["accounts"]] == [
        b["account_id"] for b in bodies
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_prioritize_over_http(served: Served) -> None:
    payload = {
        "accounts": accounts(20),
        "capacity": 3,
        "cost_per_action": 10.0,
        "expected_save_rate": 0.3,
    }
    response = served.post("/v1/prioritize", json=payload, headers=AUTH)
    assert response.status_code == 200
    ranked = response.json()["accounts"]
    assert len(ranked) == 3 and [a["rank"] for a in ranked] == [1, 2, 3]
    assert ranked[0]["expected_saved_profit"] >= ranked[-1]["expected_saved_profit"] > 0


def test_model_info_over_http(served: Served, model: ChurnModel) -> None:
    response = served.get("/v1/model", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["features"] == model.spec.names and response.json()["horizon_days"] == 90


def test_batch_above_the_limit_is_413(served: Served) -> None:
    response = served.post("/v1/score/batch", json={"accounts": accounts(51)}, headers=AUTH)
    assert response.status_code == 413
    assert response.json() == {
        "detail": "batch of 51 accounts is above the limit of 50 (CHURN_BATCH_LIMIT); split it into batches of at most 50"
    }


def test_invalid_field_is_422_over_http(served: Served) -> None:
    response = served.post("/v1/score", json=snapshot(nps_last=12), headers=AUTH)
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", "nps_last"],
                "msg": "Input should be less than or equal to 10",
                "type": "less_than_equal",
            }
        ]
    }


def test_missing_key_is_401_over_http(served: Served) -> None:
    assert served.post("/v1/score", json=snapshot()).status_code == 401


def test_request_id_is_echoed(served: Served) -> None:
    response = served.get("/health", headers={"X-Request-ID": "crm-42"})
    assert response.headers["x-request-id"] == "crm-42"


def test_metrics_aggregate_every_worker(served: Served) -> None:
    before = health_count(served.get("/metrics").text)
    for _ in range(30):  # a new connection each time: both workers answer some
        with httpx.Client() as fresh:
            assert fresh.get(served.url + "/health").status_code == 200
    text = served.get("/metrics").text
    assert health_count(text) == before + 30
    pids = set(re.findall(r'churn_model_info\{[^}]*pid="(\d+)"', text))
    assert len(pids) == 2  # the answering worker reports the other one's series too


def health_count(text: str) -> float:
    match = re.search(
        r'churn_http_requests_total\{method="GET",route="/health",status="200"\} ([0-9.e+]+)', text
    )
    return float(match.group(1)) if match else 0.0


def test_concurrent_burst_has_no_5xx(served: Served) -> None:
    bodies = [orjson.dumps(b) for b in accounts(20)]

    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=16)
        headers = {**AUTH, "Content-Type": "application/json"}
        async with httpx.AsyncClient(
            base_url=served.url, limits=limits, timeout=30, headers=headers
        ) as client:
            calls = [client.post("/v1/score", content=bodies[i % len(bodies)]) for i in range(300)]
            return [r.status_code for r in await asyncio.gather(*calls)]

    assert set(asyncio.run(burst())) == {200}


def test_logs_are_json_with_ids_and_never_the_payload(served: Served) -> None:
    served.post(
        "/v1/score",
        json=snapshot("log-me", mrr=4321.5, plan="secret-plan"),
        headers={**AUTH, "X-Request-ID": "log-test-1"},
    )
    served.wait(
        lambda: "log-test-1" in served.log.read_text(), timeout=10, what="the request's log line"
    )
    lines = [
        orjson.loads(line) for line in served.log.read_text().splitlines() if "log-test-1" in line
    ]
    assert (
        lines[0]["route"] == "/v1/score"
        and lines[0]["status"] == 200
        and lines[0]["account_ids"] == ["log-me"]
    )
    assert lines[0]["latency_ms"] > 0
    text = served.log.read_text()
    assert "4321.5" not in text and "secret-plan" not in text


# --- a real MLflow store: no champion yet, polling, reload, a corrupt version ---------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("registry")
    (tmp / "home").mkdir()
    server = start_server(
        tmp,
        "--workers",
        "1",
        env={
            "CHURN_API_KEYS": KEY,
            "CHURN_ADMIN_KEYS": ADMIN_KEY,
            "CHURN_MODEL_POLL_SECONDS": "0.5",
            "CHURN_RELOAD_MIN_SECONDS": "0",
        },
    )
    yield server, tmp / "home"
    server.stop()


def version_served(server: Served) -> str | None:
    response = server.get("/ready")
    return response.json()["model"]["version"] if response.status_code == 200 else None


def test_registry_lifecycle(store, model: ChurnModel) -> None:
    """Not ready without a champion; polling picks up the first and a promoted one; a corrupt
    champion is refused (old model keeps serving, error in /v1/model); a good one swaps in."""
    server, home = store
    server.wait(
        lambda: "last attempt failed" in server.get("/v1/model", headers=AUTH).text,
        timeout=60,
        what="a first failed load",
    )
    assert server.get("/ready").json() == {
        "detail": "no model loaded yet; GET /v1/model (with a key) says why"
    }
    ready = server.get("/v1/model", headers=AUTH)
    assert ready.status_code == 503
    assert ready.json()["detail"].startswith(
        "no model loaded yet (models:/churn-model@champion): last attempt failed: "
        "model 'churn-model' has no alias 'champion' in the registry at sqlite:///"
    )

    assert register(model, home, promote=True) == "1"
    server.wait(lambda: version_served(server) == "1", timeout=60, what="version 1 via polling")
    served_sha = server.get("/v1/model", headers=AUTH).json()["sha256"]
    assert (home / "model-cache" / f"{served_sha}.churn").is_file()  # fetched once by the parent

    register(fit_model(seed=4), home, promote=True)
    server.wait(lambda: version_served(server) == "2", timeout=60, what="version 2 via polling")

    register(fit_model(seed=6), home, promote=False)
    corrupt(home, "3")
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
        "churn-model", "champion", "3"
    )
    reload = server.post("/admin/reload", headers=ADMIN)
    assert reload.status_code == 503
    assert "failed (still serving version 2)" in reload.json()["detail"]
    assert "SHA-256" in reload.json()["detail"] and "refusing to load" in reload.json()["detail"]
    info = server.get("/v1/model", headers=AUTH).json()
    assert (
        info["version"] == "2"
        and info["last_reload"]["ok"] is False
        and info["last_reload"]["version"] == "3"
    )
    assert server.post("/v1/score", json=snapshot(), headers=AUTH).json()["model"]["version"] == "2"

    register(fit_model(seed=8), home, promote=True)
    reload = server.post("/admin/reload", headers=ADMIN)
    assert reload.status_code == 200 and reload.json()["model"]["version"] == "4"
    assert server.post("/v1/score", json=snapshot(), headers=AUTH).json()["model"]["version"] == "4"


def test_invalid_configuration_stops_the_server_with_the_reason(
    tmp_path: Path, bundle: Path
) -> None:
    done = serve_refused(
        tmp_path,
        "--workers",
        "2",
        "--model",
        str(bundle),
        env={"CHURN_PLAYBOOK": str(tmp_path / "absent.toml")},
    )
    assert done.returncode == 1
    assert (
        f"cannot start: playbook {tmp_path / 'absent.toml'} does not exist (CHURN_PLAYBOOK)"
        in done.stderr
    )
    assert "error: the server could not start: see the error logged above" in done.stderr


def test_a_killed_workers_gauges_leave_metrics(served: Served) -> None:
    """Runs last with `served`: a worker killed outright never removes its live gauges
    itself; the supervisor does when it replaces it."""
    import os
    import signal

    victim = served.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    served.wait(
        lambda: str(victim) not in served.ready_workers() and len(served.ready_workers()) == 2,
        timeout=90,
        what="the replacement worker, and the killed one's gauges gone",
    )
    assert f'pid="{victim}"' not in served.get("/metrics").text
