"""GET /v1/model, /health and /ready."""

from __future__ import annotations

import pytest

from features.errors import ModelError
from service.schemas import ModelInfo


def test_model_info_describes_the_served_model(client, model) -> None:
    response = client.get("/v1/model")
    assert response.status_code == 200
    info = response.json()
    ModelInfo.model_validate(info)
    assert (info["name"], info["version"], info["run_id"]) == ("churn-model", "1", "run1")
    assert info["horizon_days"] == 90
    assert info["training_window"] == {"data_start": "2023-01-01", "data_end": "2025-05-31"}
    assert info["test_metrics"] == {"test_roc_auc": 0.81, "test_brier": 0.1}
    assert info["features"] == model.spec.names and info["inputs"] == model.spec.inputs
    assert list(info["risk_tier_cutoffs"]) == ["medium", "high", "critical"]
    assert info["last_reload"]["ok"] is True and info["last_reload"]["error"] is None


def test_model_info_is_503_before_a_model_is_loaded(make_client) -> None:
    response = make_client(load=False).get("/v1/model")
    assert response.status_code == 503
    assert response.json() == {"detail": "no model loaded yet (models:/churn-model@champion)"}


def test_health_is_up_without_a_model(make_client) -> None:
    response = make_client(load=False).get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_ready_is_503_until_a_model_is_loaded(make_client) -> None:
    response = make_client(load=False).get("/ready")
    assert response.status_code == 503
    assert response.json() == {"detail": "no model loaded yet; GET /v1/model (with a key) says why"}


def test_ready_says_nothing_of_the_failure_and_model_info_says_it_redacted(
    make_client, registry
) -> None:
    registry.publish(ModelError("cannot reach http://alice:s3cret@mlflow:5000/api"), "2")
    client = make_client(load=False)
    with pytest.raises(ModelError):
        client.app.state.services.holder.load_blocking(force=True)
    ready = client.get("/ready")
    assert ready.json() == {"detail": "no model loaded yet; GET /v1/model (with a key) says why"}
    info = client.get("/v1/model")
    assert info.status_code == 503
    assert info.json() == {
        "detail": "no model loaded yet (models:/churn-model@champion): last attempt failed: "
        "cannot reach http://mlflow:5000/api"
    }


def test_ready_names_the_model_once_loaded(client) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "model": {"name": "churn-model", "version": "1", "run_id": "run1"},
    }


def test_docs_document_request_and_response_schemas(client) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/score/batch"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert body == {"$ref": "#/components/schemas/ScoreBatchRequest"}
    components = schema["components"]["schemas"]
    assert {
        "AccountSnapshot",
        "ScoreBatchRequest",
        "PrioritizeRequest",
        "AccountScore",
        "ModelInfo",
    } <= set(components)
    assert components["AccountSnapshot"]["examples"]
    assert client.get("/docs").status_code == 200
