"""Schemathesis over the service's own OpenAPI schema, against a real `churn serve`.

Every operation, with data that fits the schema and data that breaks it, a bounded number of
examples each: no answer may be a 5xx, and every answer must be documented (status, content
type, body schema). The schema is built from the app at collection time (schemathesis'
fixture-based loader does not run under pytest 9) and checked equal to the one the server
serves. Beside it, a refusal to start unprotected on a network address.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from features.settings import Settings
from service.app import create_app

from .conftest import KEY, Served, serve_refused, start_server

EXAMPLES = 25  # per operation in `make test`: bounded, so the suite stays fast
THOROUGH_EXAMPLES = 100  # per operation in `make quality`, after schemathesis' coverage phase
BATCH_LIMIT = 20  # small, so generated batches stay small
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SENT: dict[str, Counter[str]] = {"fast": Counter(), "thorough": Counter()}  # per operation
ANSWERED: dict[str, Counter[int]] = {"fast": Counter(), "thorough": Counter()}  # per status


@pytest.fixture(scope="module")
def fuzzed(bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    """One worker serving the test bundle; the same key opens /v1 and /admin; a small batch
    limit keeps generated batches small."""
    server = start_server(
        tmp_path_factory.mktemp("fuzzed"),
        "--workers",
        "1",
        "--model",
        str(bundle),
        env={
            "CHURN_API_KEYS": KEY,
            "CHURN_ADMIN_KEYS": KEY,
            "CHURN_BATCH_LIMIT": str(BATCH_LIMIT),
            "CHURN_MODEL_POLL_SECONDS": "0",
        },
    )
    server.wait(lambda: server.get("/ready").status_code == 200, what="a loaded model")
    yield server
    server.stop()


def openapi() -> dict:
    """The schema `churn serve` publishes with these settings (no model needed to build it)."""
    return create_app(Settings(batch_limit=BATCH_LIMIT), poll=False).openapi()


def fuzzing_schema(coverage: bool) -> schemathesis.schemas.BaseSchema:
    """``coverage``: also every boundary and negation of every constraint, deterministically
    (about a thousand requests: `make quality`)."""
    loaded = schemathesis.openapi.from_dict(openapi())
    loaded.config.phases.coverage.enabled = coverage
    return loaded


schema = fuzzing_schema(coverage=False)
thorough = fuzzing_schema(coverage=True)


def test_the_server_publishes_the_schema_that_is_fuzzed(fuzzed: Served) -> None:
    assert fuzzed.get("/openapi.json").json() == openapi()


def check(case, server: Served, run: str) -> None:
    SENT[run][f"{case.method} {case.path}"] += 1
    response = case.call_and_validate(
        base_url=server.url, headers={"X-API-Key": KEY}, checks=CHECKS
    )
    ANSWERED[run][response.status_code] += 1
    assert response.status_code < 500


def reached_every_operation(run: str) -> None:
    operations = {
        f"{result.ok().method.upper()} {result.ok().path}" for result in schema.get_all_operations()
    }
    assert operations <= set(SENT[run]), SENT[run]
    assert any(400 <= status < 500 for status in ANSWERED[run]), ANSWERED[run]  # negative data
    print(f"\nschemathesis ({run}): {sum(SENT[run].values())} requests {dict(SENT[run])}")
    print(f"answers: {dict(sorted(ANSWERED[run].items()))}")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_within_its_schema(case, fuzzed: Served) -> None:
    check(case, fuzzed, "fast")


def test_the_fuzzing_reached_every_operation() -> None:
    """Runs after the fuzzing (file order): every operation was called, negative data sent."""
    reached_every_operation("fast")


@pytest.mark.quality
@thorough.parametrize()
@settings(
    max_examples=THOROUGH_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_boundary_of_every_operation_answers_within_its_schema(case, fuzzed: Served) -> None:
    check(case, fuzzed, "thorough")


@pytest.mark.quality
def test_the_thorough_fuzzing_reached_every_operation() -> None:
    reached_every_operation("thorough")


def test_no_keys_on_a_network_address_refuses_to_start(tmp_path: Path) -> None:
    done = serve_refused(tmp_path, "--host", "0.0.0.0")
    assert done.returncode == 1
    assert "error: refusing to serve on 0.0.0.0 without API keys" in done.stderr
