"""The `churn serve` parent's publisher and a worker's PublishedSource: pointer, cache, reload."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from features.errors import ModelError
from features.files import file_sha256
from features.settings import Settings
from models.bundle import ChurnModel
from service.holder import ModelHolder, PublishedSource
from service.pointer import BundleRef, PointerFile
from service.publisher import Publisher

from .conftest import corrupt, fit_model, register


def serving_dir(tmp_path: Path, name: str = "serving") -> Path:
    directory = tmp_path / name
    directory.mkdir()
    return directory


def publisher_for(tmp_path: Path, uri: str | Path | None, name: str = "serving") -> Publisher:
    settings = Settings(
        home=tmp_path / "home", model_uri=str(uri) if uri else None, model_poll_seconds=0
    )
    return Publisher(settings, serving_dir(tmp_path, name))


def published(publisher: Publisher):
    pointer = PointerFile(publisher.directory).read()
    assert pointer is not None
    return pointer


# --- a bundle file ---------------------------------------------------------------------------


def test_a_bundle_file_is_published_with_its_sha256(bundle: Path, tmp_path: Path) -> None:
    publisher = publisher_for(tmp_path, bundle)
    publisher.resolve_and_publish()
    pointer = published(publisher)
    assert pointer.model == BundleRef(
        path=str(bundle.resolve()), sha256=file_sha256(bundle), uri=str(bundle), name="bundle"
    )
    assert pointer.error is None


def test_a_changed_bundle_file_is_published_again(model: ChurnModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "m.churn")
    publisher = publisher_for(tmp_path, path)
    publisher.resolve_and_publish()
    first = published(publisher)
    publisher.resolve_and_publish()
    assert published(publisher).seq == first.seq  # nothing changed: nothing rewritten
    fit_model(seed=9).save(path)
    publisher.resolve_and_publish()
    second = published(publisher)
    assert (
        second.seq == first.seq + 1
        and second.model.sha256 == file_sha256(path) != first.model.sha256
    )


def test_a_missing_bundle_file_is_published_as_the_error(tmp_path: Path) -> None:
    publisher = publisher_for(tmp_path, tmp_path / "absent.churn")
    publisher.resolve_and_publish()
    pointer = published(publisher)
    assert pointer.model is None
    assert pointer.error.message == (
        f"{tmp_path / 'absent.churn'} is neither a model bundle file nor a models:/name@alias URI"
    )


# --- a worker following the pointer ------------------------------------------------------------


def test_a_worker_follows_the_pointer_and_reload_asks_the_parent(
    model: ChurnModel, tmp_path: Path
) -> None:
    path = model.save(tmp_path / "m.churn")
    publisher = publisher_for(tmp_path, path)
    source = PublishedSource(publisher.directory, str(path), poll_seconds=0.05)
    holder = ModelHolder(publisher.settings, source, threads=1, wide_threads=2)

    async def scenario() -> None:
        watching = asyncio.create_task(holder.watch())
        publisher.start()
        try:
            for _ in range(200):
                if holder.current is not None:
                    break
                await asyncio.sleep(0.05)
            first = holder.current
            assert first is not None and first.ref["name"] == "m"
            assert first.model.threads == 1 and first.wide.threads == 2

            fit_model(seed=11).save(path)
            swapped, serving = await holder.reload()
            assert swapped and serving.identity == f":{file_sha256(path)}" != first.identity

            path.unlink()
            with pytest.raises(
                ModelError,
                match=r"failed \(still serving version None\): .* is neither a model bundle file",
            ):
                await holder.reload()
            assert holder.current is serving and holder.last_reload.ok is False
        finally:
            watching.cancel()
            publisher.stop()

    asyncio.run(scenario())


def test_a_reload_the_parent_never_answers_gives_up_and_withdraws(tmp_path: Path) -> None:
    directory = serving_dir(tmp_path)
    source = PublishedSource(directory, "models:/churn-model@champion", reply_seconds=1)
    with pytest.raises(
        ModelError, match="the `churn serve` parent did not answer the reload request within 1 s"
    ):
        asyncio.run(source.refresh())
    assert list(directory.iterdir()) == []


# --- a registered model: download once, verify, reuse -----------------------------------------


def test_a_registered_bundle_is_cached_and_reused_without_a_download(
    model: ChurnModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "home").mkdir()
    register(model, tmp_path / "home", promote=True)
    first = publisher_for(tmp_path, None, "first")
    first.resolve_and_publish()
    ref = published(first).model
    assert (ref.name, ref.version, ref.uri) == ("churn-model", "1", "models:/churn-model@champion")
    assert (
        Path(ref.path).parent == tmp_path / "home" / "model-cache"
        and file_sha256(Path(ref.path)) == ref.sha256
    )

    import mlflow.artifacts

    def no_download(**kwargs: object) -> str:
        raise ConnectionError("the artifact store is unreachable")

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", no_download)
    restarted = publisher_for(tmp_path, None, "restarted")
    restarted.resolve_and_publish()
    assert published(restarted).model == ref  # the cached file, no download

    Path(ref.path).write_bytes(b"tampered")  # a cached file that no longer matches is not trusted
    again = publisher_for(tmp_path, None, "again")
    again.resolve_and_publish()
    assert published(again).model is None
    assert published(again).error.message.startswith("cannot download churn-model version 1 from ")


def test_a_version_that_fails_verification_is_refetched_only_when_a_worker_asks(
    model: ChurnModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "home").mkdir()
    register(model, tmp_path / "home", promote=True)
    corrupt(tmp_path / "home", "1")
    import mlflow.artifacts

    downloads = []
    real = mlflow.artifacts.download_artifacts

    def counting(**kwargs: object) -> str:
        downloads.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", counting)
    publisher = publisher_for(tmp_path, None)
    publisher.resolve_and_publish()
    pointer = published(publisher)
    assert pointer.model is None and pointer.error.version == "1"
    assert "SHA-256" in pointer.error.message and pointer.error.message.endswith("refusing to load")
    assert len(downloads) == 1

    publisher.resolve_and_publish()  # polling: the same failed version is not fetched again
    assert len(downloads) == 1 and published(publisher).seq == pointer.seq

    publisher.resolve_and_publish(answered=["worker-1"])  # /admin/reload: try again, answer
    assert len(downloads) == 2
    answer = published(publisher)
    assert answer.answered == ("worker-1",) and answer.error.version == "1"


def test_a_store_that_needs_a_package_marked_unavailable_gets_it(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent marks pandas unavailable for MLflow; a store that needs it after all works."""
    import sys

    from service import worker

    monkeypatch.setattr(worker, "UNUSED_IN_WORKERS", ("churn_test_blocked",))
    monkeypatch.setitem(sys.modules, "churn_test_blocked", None)
    publisher = publisher_for(tmp_path, bundle)
    resolve = publisher.resolve
    calls = []

    def needs_it(attempt, retry_failed):
        calls.append(sys.modules.get("churn_test_blocked", "gone"))
        if len(calls) == 1:
            raise ModuleNotFoundError(
                "import of churn_test_blocked halted", name="churn_test_blocked"
            )
        return resolve(attempt, retry_failed)

    monkeypatch.setattr(publisher, "resolve", needs_it)
    publisher.resolve_and_publish()
    assert calls == [None, "gone"] and published(publisher).model.name == "bundle"


# --- a cache that repairs itself --------------------------------------------------------------


def test_a_damaged_cached_bundle_is_fetched_again_when_a_new_worker_cannot_load_it(
    model: ChurnModel, tmp_path: Path
) -> None:
    """A worker (re)started on a damaged cached copy asks the parent, which re-verifies,
    downloads the bundle again and republishes: the worker serves without a person."""
    (tmp_path / "home").mkdir()
    register(model, tmp_path / "home", promote=True)
    publisher = publisher_for(tmp_path, None)
    publisher.resolve_and_publish()
    cached = Path(published(publisher).model.path)
    good = file_sha256(cached)
    cached.write_bytes(b"damaged on disk")

    async def new_worker() -> ModelHolder:
        source = PublishedSource(publisher.directory, publisher.uri, poll_seconds=0.05)
        holder = ModelHolder(publisher.settings, source, threads=1)
        watching = asyncio.create_task(holder.watch())
        publisher.start()
        try:
            for _ in range(400):
                if holder.current is not None:
                    break
                await asyncio.sleep(0.05)
        finally:
            watching.cancel()
            publisher.stop()
        return holder

    holder = asyncio.run(new_worker())
    assert holder.current is not None and holder.current.ref["version"] == "1"
    assert file_sha256(cached) == good


def test_a_bundle_another_server_serves_is_never_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl
    import os

    from service import publisher as module

    publisher = publisher_for(tmp_path, None)
    publisher.cache.mkdir(parents=True)
    old, served_elsewhere, recent = (
        publisher.cache / f"{name}.churn" for name in ("old", "elsewhere", "recent")
    )
    for path in (old, served_elsewhere, recent):
        path.write_bytes(b"bundle")
    for path in (old, served_elsewhere):
        os.utime(path, (1, 1))  # last used long ago
    monkeypatch.setattr(module, "CACHE_KEEP", 0)
    with served_elsewhere.open("rb") as other_server:
        fcntl.flock(other_server, fcntl.LOCK_SH)
        publisher._prune(keep=publisher.cache / "kept.churn")
    assert not old.exists() and served_elsewhere.exists() and recent.exists()
