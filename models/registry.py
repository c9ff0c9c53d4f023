"""The MLflow model registry as Churn uses it: one place that makes clients and loads models.

``Registry.of(settings)`` resolves ``registry_uri or tracking_uri`` and the signing keys
once; every MLflow client of the model path comes from it. ``models:/<name>@<alias>`` and
``models:/<name>/<version>`` resolve through the registry; the bundle's checksum, recorded
as a version tag at registration, must match the downloaded file, and with signing keys
its signature must verify, before it is read. Errors name the registry with any
credentials stripped (``features.redact``).

Only "the model or alias does not exist" means "no champion" (``alias_version``): any
other answer, a timeout included, is a ``RegistryError`` that stops the job.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.errors import ChurnError, ModelError, RegistryError
from features.redact import redact
from models.archive import NO_KEYS, SigningKeys, signing_keys

if TYPE_CHECKING:  # models.bundle imports LightGBM: `churn serve`'s parent resolves without it
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from features.settings import Settings
    from models.bundle import ChurnModel

SHA_TAG = "bundle_sha256"
SIGNED_TAG = "bundle_signed_by"  # the signing key's id (public), for people reading the UI
BUNDLE_FILE = "bundle.churn"
MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"


@dataclass(frozen=True)
class LoadedModel:
    """A model and where it came from (what `/v1/model` reports)."""

    model: ChurnModel
    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Registry:
    """Where models are registered, and the keys their bundles must be signed with."""

    tracking_uri: str
    registry_uri: str
    keys: SigningKeys = NO_KEYS

    @classmethod
    def of(cls, settings: Settings) -> Registry:
        tracking = settings.resolved_tracking_uri
        return cls(
            tracking,
            settings.registry_uri or tracking,
            signing_keys(settings.signing_key_values()),
        )

    @cached_property
    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    @property
    def shown(self) -> str:
        """The registry's address as it may be shown (no credentials)."""
        return redact(self.registry_uri)

    def failed(self, what: str, exc: BaseException) -> RegistryError:
        """A RegistryError saying what could not be done, where, and MLflow's answer."""
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return RegistryError(f"cannot {what} in the registry at {self.shown}: {redact(message)}")

    @contextlib.contextmanager
    def reported(self, what: str) -> Iterator[None]:
        """MLflow's fluent calls inside: any failure but our own errors becomes a
        RegistryError naming ``what`` (a dead or refusing server exits 5, not a traceback)."""
        try:
            yield
        except ChurnError:
            raise
        except Exception as exc:
            raise self.failed(what, exc) from None

    def call(self, what: str, action: Any, *args: Any, **kwargs: Any) -> Any:
        """``action(*args, **kwargs)``, its failures reported as :meth:`reported` does."""
        with self.reported(what):
            return action(*args, **kwargs)

    # --- reading --------------------------------------------------------------------------

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version ``alias`` names; None only when the model or the alias does not exist.

        Read from the registered model's alias map, so no error message is interpreted:
        a timeout, a refusal or a server error is a RegistryError, never "no champion".
        """
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == NOT_FOUND:
                return None
            raise self.failed(f"read {name}@{alias}", exc) from None
        except Exception as exc:
            raise self.failed(f"read {name}@{alias}", exc) from None
        version = (model.aliases or {}).get(alias)
        return None if version is None else str(version)

    def version(self, name: str, alias: str | None = None, version: str | None = None):
        """The ModelVersion behind an alias or a version number."""
        from mlflow.exceptions import MlflowException

        if alias is not None:
            found = self.alias_version(name, alias)
            if found is None:
                raise ModelError(
                    f"model {name!r} has no alias {alias!r} in the registry at {self.shown}"
                )
            version = found
        try:
            return self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            if exc.error_code == NOT_FOUND:
                raise ModelError(
                    f"model {name!r} has no version {version} in the registry at {self.shown}"
                ) from None
            raise self.failed(f"read {name} version {version}", exc) from None
        except Exception as exc:
            raise self.failed(f"read {name} version {version}", exc) from None

    def download(self, name: str, version: str, into: Path) -> Path:
        """Fetch only the bundle of a registered version into ``into``; its path there.

        Uses the version's own artifact location, not "models:/..." (MLflow resolves those
        against the process-global registry, not the one asked for).
        """
        import mlflow.artifacts

        source = self.call(
            f"locate {name} version {version}",
            self.client.get_model_version_download_uri,
            name,
            version,
        ).rstrip("/")
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{source}/artifacts",
                dst_path=str(into),
                tracking_uri=self.tracking_uri,
            )
        except Exception as exc:
            raise ModelError(
                f"cannot download {name} version {version} from {redact(source)}: {redact(str(exc))}"
            ) from exc
        candidates = sorted(Path(local).rglob(BUNDLE_FILE))
        if not candidates:
            raise ModelError(
                f"no {BUNDLE_FILE} inside {name} version {version} ({redact(source)}/artifacts)"
            )
        return candidates[0]

    # --- loading --------------------------------------------------------------------------

    def load(self, uri: str) -> LoadedModel:
        """A bundle file path, or a ``models:/`` URI resolved in the registry; verified."""
        from features.files import file_sha256
        from models.bundle import ChurnModel

        match = MODEL_URI.match(uri)
        if match is None:
            path = Path(uri)
            if not path.exists():
                raise ModelError(
                    f"{redact(uri)} is neither a model bundle file nor a models:/name@alias URI"
                )
            sha = file_sha256(path)
            model = ChurnModel.load(path, keys=self.keys)
            return LoadedModel(model, uri=uri, name=path.stem, sha256=sha)
        name = match["name"]
        found = self.version(name, match["alias"], match["version"])
        expected = registered_sha(found)
        with tempfile.TemporaryDirectory(prefix="churn-model-") as scratch:
            bundle = self.download(name, str(found.version), Path(scratch))
            model = ChurnModel.load(bundle, sha256=expected, keys=self.keys)
        return LoadedModel(
            model,
            uri=uri,
            name=name,
            version=str(found.version),
            run_id=found.run_id,
            sha256=expected,
        )


def registered_sha(found: ModelVersion) -> str:
    """The SHA-256 recorded at registration; a version without one was not made by Churn."""
    expected = (found.tags or {}).get(SHA_TAG)
    if not expected:
        raise ModelError(
            f"{found.name} version {found.version} has no {SHA_TAG} tag: it was not registered by Churn"
        )
    return expected


def load_model(uri: str, settings: Settings) -> LoadedModel:
    """Load ``uri`` (a bundle path or ``models:/...``) from the configured registry."""
    return Registry.of(settings).load(uri)
