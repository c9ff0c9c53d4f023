"""The scoring path's shortcuts give the same answers as the plain path they stand in for."""

from __future__ import annotations

import asyncio

import pytest

from features.schema import AccountSnapshot
from features.settings import Settings
from service import scoring
from service.actions import Playbook
from service.holder import ModelHolder, RegistrySource, Serving
from service.metrics import Metrics
from service.scoring import Coalescer, Scorer

from .conftest import FakeRegistry, accounts, snapshot


@pytest.fixture
def serving(registry: FakeRegistry, tmp_path) -> Serving:
    settings = Settings(home=tmp_path, model_poll_seconds=0)
    holder = ModelHolder(
        settings, RegistrySource(settings, registry.load, registry.peek), threads=1
    )
    return holder.load_blocking(force=True)[1]


@pytest.fixture
def scorer() -> Scorer:
    return Scorer(Playbook.load(), Metrics(), gross_margin=1.0)


def snapshots(bodies: list[dict]) -> list[AccountSnapshot]:
    return [AccountSnapshot.model_validate(b) for b in bodies]


# --- requests waiting together are scored together -----------------------------------------


class CountingScorer(Scorer):
    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__(Playbook.load(), Metrics(), gross_margin=1.0)
        self.calls: list[int] = []
        self.fail_on = fail_on

    def score(self, serving, snapshots, endpoint, explain=True):
        self.calls.append(len(snapshots))
        if any(s.account_id == self.fail_on for s in snapshots):
            raise ValueError(f"cannot score {self.fail_on}")
        return super().score(serving, snapshots, endpoint, explain)


def test_waiting_requests_are_scored_in_one_call_with_the_same_results(serving, scorer) -> None:
    counting = CountingScorer()
    coalescer = Coalescer(counting)
    batch = snapshots(accounts(6))

    async def together() -> list[dict]:
        return list(await asyncio.gather(*(coalescer.score(serving, s, True) for s in batch)))

    results = asyncio.run(together())
    assert counting.calls == [6]
    alone = [scorer.score(serving, [s], "score")[0] for s in batch]
    assert results == alone


def test_requests_with_and_without_explanations_are_scored_apart(serving) -> None:
    counting = CountingScorer()
    coalescer = Coalescer(counting)
    batch = snapshots(accounts(4))

    async def mixed() -> list[dict]:
        calls = [coalescer.score(serving, s, i % 2 == 0) for i, s in enumerate(batch)]
        return list(await asyncio.gather(*calls))

    results = asyncio.run(mixed())
    assert sorted(counting.calls) == [2, 2]
    assert [bool(r["top_drivers"]) for r in results] == [True, False, True, False]


def test_an_account_that_fails_fails_alone(serving) -> None:
    counting = CountingScorer(fail_on="acc-0002")
    coalescer = Coalescer(counting)
    batch = snapshots(accounts(4))

    async def together() -> list:
        calls = [coalescer.score(serving, s, True) for s in batch]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    results = asyncio.run(together())
    assert [type(r).__name__ for r in results] == ["dict", "dict", "ValueError", "dict"]
    assert counting.calls == [4, 1, 1, 1, 1]


def test_a_request_alone_is_scored_at_once(serving) -> None:
    counting = CountingScorer()
    coalescer = Coalescer(counting)
    result = asyncio.run(coalescer.score(serving, snapshots([snapshot("solo")])[0], True))
    assert counting.calls == [1] and result["account_id"] == "solo"


# --- large batches predict with two threads, with the same results ---------------------------


def test_a_large_batch_uses_the_wide_model_with_the_same_scores(
    serving, scorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = snapshots(accounts(12))
    narrow = scorer.score(serving, batch, "score_batch")
    monkeypatch.setattr(scoring, "WIDE_BATCH", 10)
    assert scoring._model_for(serving, 12) is serving.wide and serving.wide.threads == 2
    assert scorer.score(serving, batch, "score_batch") == narrow


# --- category codes by dict lookup for a few rows ----------------------------------------------
