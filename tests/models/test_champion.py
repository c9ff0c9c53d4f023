"""The alias owner and the registry lease against a real `mlflow server` process."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from mlflow import MlflowClient

from features.errors import ConflictError, ModelError, RegistryError
from models.champion import PREVIOUS_TAG, PROMOTION_TAG, AliasOwner
from models.lease import HOST_TAG, PID_TAG, Lease
from models.registry import Registry
from tests.conftest import free_port


@pytest.fixture
def registry(mlflow_server: str) -> Registry:
    return Registry(mlflow_server, mlflow_server)


@pytest.fixture
def versions(registry: Registry):
    """A fresh registered model with three versions (no artifacts: aliases only)."""
    name = f"alias-{uuid.uuid4().hex[:8]}"
    client: MlflowClient = registry.client
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, source="s3://churn-tests/nowhere")
    return name


def owner(registry: Registry, name: str, **kwargs) -> AliasOwner:
    return AliasOwner(registry, name, "champion", **{"seconds": 60.0, "wait": 0.0, **kwargs})


def tags(registry: Registry, name: str, version: str) -> dict[str, str]:
    return registry.client.get_model_version(name, version).tags


def test_only_a_missing_model_or_alias_reads_as_no_champion(
    registry: Registry, versions: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert registry.alias_version("no-such-model", "champion") is None
    assert registry.alias_version(versions, "champion") is None
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    silent = Registry(f"http://127.0.0.1:{free_port()}", f"http://user:pw@127.0.0.1:{free_port()}")
    with pytest.raises(RegistryError, match="cannot read no-such-model@champion") as error:
        silent.alias_version("no-such-model", "champion")
    assert "pw" not in str(error.value)


def test_a_move_records_what_it_replaced_and_why(registry: Registry, versions: str) -> None:
    alias = owner(registry, versions)
    assert alias.move("1", "first model", judged=None).previous is None
    move = alias.move("2", "beats the champion", judged="1")
    assert (move.previous, alias.current()) == ("1", "2")
    recorded = tags(registry, versions, "2")
    assert recorded[PROMOTION_TAG] == "promoted" and recorded[PREVIOUS_TAG] == "1"
    assert recorded["churn.promotion.reason"] == "beats the champion"


def test_a_move_refuses_when_the_alias_changed_since_it_was_judged(
    registry: Registry, versions: str
) -> None:
    alias = owner(registry, versions)
    alias.move("1", "first", judged=None)
    registry.client.set_registered_model_alias(versions, "champion", "3")  # e.g. by hand
    with pytest.raises(ConflictError, match="names version 3 now, not version 1 that this job"):
        alias.move("2", "judged against 1", judged="1")
    assert alias.current() == "3" and PROMOTION_TAG not in tags(registry, versions, "2")


def test_a_rollback_tags_the_demoted_version(registry: Registry, versions: str) -> None:
    alias = owner(registry, versions)
    alias.move("1", "first", judged=None)
    alias.move("2", "better", judged="1")
    assert alias.rollback_target() == ("2", "1")
    alias.move("1", "rollback", judged="2", rollback=True)
    assert alias.current() == "1"
    assert tags(registry, versions, "2")["rolled_back_to"] == "1"
    with pytest.raises(ModelError, match="records no previous champion"):
        alias.rollback_target()  # 1 keeps its own history: a second rollback goes further back


def test_a_move_settles_what_a_crashed_move_left_promoting(
    registry: Registry, versions: str
) -> None:
    alias = owner(registry, versions)
    alias.move("1", "first", judged=None)
    client = registry.client
    client.set_model_version_tag(versions, "2", PROMOTION_TAG, "promoting")  # died before moving
    client.set_model_version_tag(versions, "1", PROMOTION_TAG, "promoting")  # died after moving
    alias.move("3", "next", judged="1")
    assert tags(registry, versions, "2")[PROMOTION_TAG] == "interrupted"
    assert tags(registry, versions, "1")[PROMOTION_TAG] == "promoted"


# --- the lease ----------------------------------------------------------------------------------


def test_a_held_lease_refuses_a_second_job_until_released(
    registry: Registry, versions: str
) -> None:
    first = Lease(registry, versions, "retrain", 60, holder="job one")
    with first.hold():
        second = Lease(registry, versions, "retrain", 60, holder="job two")
        with pytest.raises(ConflictError, match=r"holds the retrain lease .*\(job one, for"):
            second.acquire()
        first.check()
    second.acquire()
    assert second.current().tags["churn.lease.holder"] == "job two"
    second.release()
    assert second.current() is None


def test_an_expired_lease_is_taken_over_and_its_holder_knows(
    registry: Registry, versions: str
) -> None:
    stale = Lease(registry, versions, "retrain", 0.5, holder="stalled job")
    stale.acquire()
    import time

    time.sleep(0.6)
    fresh = Lease(registry, versions, "retrain", 60, holder="next job")
    fresh.acquire()
    assert fresh.generation == stale.generation + 1
    with pytest.raises(ConflictError, match="taken over by next job"):
        stale.check()
    fresh.release()


def test_a_lease_of_a_dead_process_on_this_host_is_taken_at_once(
    registry: Registry, versions: str
) -> None:
    process = subprocess.Popen(["true"])
    process.wait()
    orphan = Lease(registry, versions, "retrain", 600, holder="killed job")
    orphan.acquire()
    registry.client.set_registered_model_tag(
        orphan.name_of(orphan.generation), PID_TAG, str(process.pid)
    )
    assert registry.client.get_registered_model(orphan.name_of(1)).tags[HOST_TAG]
    Lease(registry, versions, "retrain", 60).acquire()


def test_a_registry_that_does_not_answer_is_not_a_free_lease(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    silent = Registry(f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RegistryError, match="cannot read the retrain lease"):
        Lease(silent, "m", "retrain", 60).acquire()
