"""The model holder: canary before swap, polling, and swaps that no request notices."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import numpy as np
import pytest

from features.errors import ModelError
from features.settings import Settings
from service.app import create_app
from service.holder import ModelHolder, RegistrySource, canary

from .conftest import FakeRegistry, fit_model, snapshot


def holder_for(registry: FakeRegistry, tmp_path, poll_seconds: float = 0.05) -> ModelHolder:
    settings = Settings(home=tmp_path, model_poll_seconds=poll_seconds)
    return ModelHolder(settings, RegistrySource(settings, registry.load, registry.peek))


class Overconfident:
    def transform(self, margin: np.ndarray) -> np.ndarray:
        return np.full(len(margin), 2.0)


def test_canary_accepts_a_good_model(model) -> None:
    canary(model)


def test_canary_refuses_a_model_that_cannot_score(model) -> None:
    other = fit_model(seed=5)
    broken = dataclasses.replace(
        other, spec=dataclasses.replace(other.spec, indicators=other.spec.indicators[:-2])
    )
    with pytest.raises(ModelError, match="canary scoring failed: LightGBMError"):
        canary(broken)


def test_canary_refuses_probabilities_outside_0_1(model) -> None:
    with pytest.raises(ModelError, match=r"canary scoring returned probabilities outside \[0, 1\]"):
        canary(dataclasses.replace(model, calibrator=Overconfident()))


def test_a_model_failing_the_canary_is_not_swapped_in(registry, model, tmp_path) -> None:
    holder = holder_for(registry, tmp_path)
    holder.load_blocking(force=True)
    registry.publish(dataclasses.replace(model, calibrator=Overconfident()), "2")
    with pytest.raises(ModelError, match="still serving version 1"):
        holder.load_blocking(force=True)
    assert holder.current.ref["version"] == "1" and holder.last_reload.ok is False


def test_first_load_waits_for_a_champion_then_takes_it(registry, model, tmp_path) -> None:
    registry.publish(ModelError("model 'churn-model' has no alias 'champion'"), "")
    holder = holder_for(registry, tmp_path)

    async def scenario() -> None:
        task = asyncio.create_task(holder.watch())
        await asyncio.sleep(0.3)
        assert holder.current is None and "no alias" in holder.last_reload.error
        registry.publish(model, "1")
        for _ in range(100):
            await asyncio.sleep(0.05)
            if holder.current is not None:
                break
        task.cancel()

    asyncio.run(scenario())
    assert holder.current.ref["version"] == "1"


def test_polling_picks_up_a_new_champion(registry, tmp_path) -> None:
    holder = holder_for(registry, tmp_path)
    holder.load_blocking(force=True)
    registry.publish(fit_model(seed=2), "2")
    asyncio.run(holder.poll_once())
    assert holder.current.ref["version"] == "2"


def test_polling_does_not_reload_the_served_version(registry, tmp_path) -> None:
    holder = holder_for(registry, tmp_path)
    holder.load_blocking(force=True)
    loads = registry.loads
    asyncio.run(holder.poll_once())
    assert registry.loads == loads


def test_polling_does_not_retry_a_version_that_failed(registry, tmp_path) -> None:
    holder = holder_for(registry, tmp_path)
    holder.load_blocking(force=True)
    registry.publish(ModelError("checksum mismatch"), "2")
    asyncio.run(holder.poll_once())
    loads = registry.loads
    asyncio.run(holder.poll_once())
    assert registry.loads == loads and holder.current.ref["version"] == "1"


def test_polling_survives_a_registry_outage(registry, tmp_path) -> None:
    holder = holder_for(registry, tmp_path)
    holder.load_blocking(force=True)

    def down(settings: Settings) -> str:
        raise ConnectionError("registry unreachable")

    holder.source = RegistrySource(holder.settings, registry.load, down)
    asyncio.run(holder.poll_once())
    assert holder.current.ref["version"] == "1"
    assert (
        holder.last_reload.error
        == "cannot look up models:/churn-model@champion: ConnectionError: registry unreachable"
    )


def test_no_request_fails_while_models_are_swapped(registry, model, tmp_path) -> None:
    holder = holder_for(registry, tmp_path, poll_seconds=0)
    holder.load_blocking(force=True)
    other = fit_model(seed=7, rounds=80)
    app = create_app(holder.settings, holder=holder, poll=False)

    async def scenario() -> tuple[list[int], set[str]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            done = asyncio.Event()

            async def swaps() -> None:
                for i in range(10):
                    registry.publish(other if i % 2 == 0 else model, str(i + 2))
                    await holder.reload()
                done.set()

            async def requests() -> list[httpx.Response]:
                out = []
                while not done.is_set() or len(out) < 50:
                    out.append(
                        await client.post(
                            "/v1/score/batch", json={"accounts": [snapshot(f"a{len(out)}")]}
                        )
                    )
                    await asyncio.sleep(
                        0
                    )  # in-process transport: let the loading thread report back
                return out

            _, responses = await asyncio.gather(swaps(), requests())
        return [r.status_code for r in responses], {r.json()["model"]["version"] for r in responses}

    statuses, versions = asyncio.run(scenario())
    assert set(statuses) == {200}
    assert len(versions) > 1
