"""Credentials in URIs never reach what is shown."""

from __future__ import annotations

import pytest

from features.redact import redact


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://alice:s3cret@mlflow:5000", "http://mlflow:5000"),
        ("postgresql://churn:pw@db:5432/mlflow", "postgresql://db:5432/mlflow"),
        (
            "cannot reach https://token@host/api (timeout)",
            "cannot reach https://host/api (timeout)",
        ),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("models:/churn-model@champion", "models:/churn-model@champion"),
        ("mail ops@example.com", "mail ops@example.com"),
    ],
)
def test_user_info_is_stripped_and_nothing_else(text: str, shown: str) -> None:
    assert redact(text) == shown
