"""Load a ChurnModel from a path or an MLflow model URI, verifying its SHA-256.

``models:/<name>@<alias>`` and ``models:/<name>/<version>`` resolve through the
registry; the bundle's checksum, recorded as a version tag at registration, must match
the downloaded file before it is unpickled. Moving the champion alias records the
version it replaces, which is what a rollback returns to.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from features.errors import ModelError

if TYPE_CHECKING:  # models.bundle imports LightGBM: `churn serve`'s parent resolves without it
    from mlflow import MlflowClient

    from models.bundle import ChurnModel

SHA_TAG = "bundle_sha256"
BUNDLE_FILE = "bundle.joblib"
MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class LoadedModel:
    """A model and where it came from (what `/v1/model` reports)."""

    model: ChurnModel
    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    sha256: str | None = None


def load_model(
    uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
) -> LoadedModel:
    """A bundle file path, or a ``models:/`` URI resolved in the MLflow registry."""
    from features.files import file_sha256
    from models.bundle import ChurnModel

    registry_uri = registry_uri or tracking_uri
    match = MODEL_URI.match(uri)
    if match is None:
        path = Path(uri)
        if not path.exists():
            raise ModelError(f"{uri} is neither a model bundle file nor a models:/name@alias URI")
        sha = file_sha256(path)
        return LoadedModel(ChurnModel.load(path), uri=uri, name=path.stem, sha256=sha)
    return _load_registered(uri, match, tracking_uri, registry_uri)


def resolve_version(
    name: str,
    alias: str | None,
    version: str | None,
    tracking_uri: str | None,
    registry_uri: str | None,
):
    """The registry's ModelVersion behind an alias or a version number."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    try:
        if alias is not None:
            return client.get_model_version_by_alias(name, alias)
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        what = f"alias {alias!r}" if alias else f"version {version}"
        raise ModelError(
            f"model {name!r} has no {what} in the registry at {tracking_uri}: {exc.message}"
        ) from exc


def _load_registered(
    uri: str, match: re.Match[str], tracking_uri: str | None, registry_uri: str | None
) -> LoadedModel:
    from models.bundle import ChurnModel

    name, alias, version = match["name"], match["alias"], match["version"]
    found = resolve_version(name, alias, version, tracking_uri, registry_uri)
    expected = (found.tags or {}).get(SHA_TAG)
    if not expected:
        raise ModelError(
            f"{name} version {found.version} has no {SHA_TAG} tag: it was not registered by Churn"
        )
    with tempfile.TemporaryDirectory(prefix="churn-model-") as scratch:
        bundle = download_bundle(
            name, str(found.version), Path(scratch), tracking_uri, registry_uri
        )
        model = ChurnModel.load(bundle, sha256=expected)
    return LoadedModel(
        model, uri=uri, name=name, version=str(found.version), run_id=found.run_id, sha256=expected
    )


def download_bundle(
    name: str, version: str, into: Path, tracking_uri: str | None, registry_uri: str | None
) -> Path:
    """Fetch only the bundle of a registered version into ``into``; its path there.

    Uses the version's own artifact location, not "models:/..." (MLflow resolves those
    against the process-global registry, not the one asked for).
    """
    import mlflow.artifacts
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    source = client.get_model_version_download_uri(name, version).rstrip("/")
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{source}/artifacts", dst_path=str(into), tracking_uri=tracking_uri
        )
    except Exception as exc:
        raise ModelError(f"cannot download {name} version {version} from {source}: {exc}") from exc
    candidates = sorted(Path(local).rglob(BUNDLE_FILE))
    if not candidates:
        raise ModelError(f"no {BUNDLE_FILE} inside {name} version {version} ({source}/artifacts)")
    return candidates[0]


PREVIOUS_TAG = "previous_champion"


def move_alias(client: MlflowClient, name: str, alias: str, version: str) -> str | None:
    """Point ``alias`` at ``version``, tagging it with the version it replaces (what
    ``churn rollback`` returns to); the replaced version, or None if there was none."""
    from mlflow.exceptions import MlflowException

    try:
        previous = str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        previous = None
    if previous is not None and previous != str(version):
        client.set_model_version_tag(name, str(version), PREVIOUS_TAG, previous)
    client.set_registered_model_alias(name, alias, str(version))
    return previous


def rollback_target(
    client: MlflowClient, name: str, alias: str, to: str | None = None
) -> tuple[str, str]:
    """(current, target) for a rollback: ``to``, or the version the current one replaced."""
    from mlflow.exceptions import MlflowException

    try:
        current = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise ModelError(
            f"model {name!r} has no {alias!r} alias to roll back: {exc.message}"
        ) from exc
    target = to or (current.tags or {}).get(PREVIOUS_TAG)
    if not target:
        raise ModelError(
            f"{name} version {current.version} records no previous {alias}; give the version to return to (--to N)"
        )
    if str(target) == str(current.version):
        raise ModelError(f"version {target} already is the {alias}")
    return str(current.version), str(target)
