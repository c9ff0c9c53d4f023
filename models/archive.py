"""The bundle archive: named plain-data parts in one zip, a manifest, an optional signature.

A part is JSON (``.json``), text (``.txt``: the LightGBM model) or a numpy array
(``.npy``, read with ``allow_pickle=False``); reading an archive never executes anything
from it, so a file from the registry can at worst be refused, never run code. The
manifest names the format and its version and lists every part with its SHA-256; with
signing keys, an HMAC-SHA256 of the manifest made with a key the registry does not hold
(``signature.json``) proves who wrote the bundle, and the part hashes carry that proof to
every byte.

Adding a part is adding a name: readers ask for the parts they need (``require``) and a
missing one is a clear error. A part that changes what a score means comes with a new
``FORMAT_VERSION``, which older readers refuse by name. Standard library only until an
array is read, so `churn serve`'s parent verifies bundles without numpy or LightGBM.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.errors import ModelError
from features.files import write_atomic

if TYPE_CHECKING:
    import numpy as np

FORMAT = "churn-model-bundle"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
SIGNATURE = "signature.json"
ALGORITHM = "HMAC-SHA256"
MAX_PART_BYTES = 512 * 1024 * 1024  # a part larger than this is refused before it is read
KINDS = (".json", ".txt", ".npy")


def key_id(key: bytes) -> str:
    """A short public name for a signing key (which key signed a bundle), not the key."""
    return hashlib.sha256(b"churn signing key id\x00" + key).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKeys:
    """Keys that verify bundles; the first also signs new ones (rotation: new key first)."""

    keys: tuple[bytes, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.keys)

    @property
    def signer(self) -> bytes | None:
        return self.keys[0] if self.keys else None

    @property
    def ids(self) -> dict[str, bytes]:
        return {key_id(key): key for key in self.keys}


NO_KEYS = SigningKeys()


@dataclass
class ArchiveWriter:
    """Collects named parts; ``write`` puts them, the manifest and a signature in one file."""

    parts: dict[str, bytes] = field(default_factory=dict)

    def add_json(self, name: str, value: Any) -> None:
        try:
            data = json.dumps(value, allow_nan=False).encode()  # key order kept: it can matter
        except ValueError as exc:  # NaN or infinity: JSON cannot carry them
            raise ModelError(f"the bundle part {name} cannot be written: {exc}") from None
        self._add(name, ".json", data)

    def add_text(self, name: str, text: str) -> None:
        self._add(name, ".txt", text.encode())

    def add_array(self, name: str, array: np.ndarray) -> None:
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        self._add(name, ".npy", buffer.getvalue())

    def _add(self, name: str, kind: str, data: bytes) -> None:
        if not name.endswith(kind) or "/" in name or name in (MANIFEST, SIGNATURE):
            raise ValueError(f"part name {name!r} must be a plain file name ending in {kind}")
        self.parts[name] = data

    def manifest(self, created_by: str) -> bytes:
        parts = {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in sorted(self.parts.items())
        }
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_by": created_by,
            "parts": parts,
        }
        return json.dumps(document, sort_keys=True, indent=1).encode()

    def write(self, path: str | Path, signing_key: bytes | None, created_by: str) -> Path:
        """One zip, written atomically; signed with ``signing_key`` when given."""
        manifest = self.manifest(created_by)

        def write(temp: Path) -> None:
            with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(MANIFEST, manifest)
                for name, data in sorted(self.parts.items()):
                    archive.writestr(name, data)
                if signing_key is not None:
                    archive.writestr(SIGNATURE, signature(manifest, signing_key))

        return write_atomic(path, write)


def signature(manifest: bytes, key: bytes) -> bytes:
    mac = hmac.new(key, manifest, hashlib.sha256).hexdigest()
    return json.dumps({"algorithm": ALGORITHM, "key_id": key_id(key), "mac": mac}).encode()


@dataclass(frozen=True)
class Archive:
    """A bundle archive read into memory and checked: format, part hashes, signature."""

    name: str
    format_version: int
    parts: Mapping[str, bytes]
    signed_by: str | None  # key id of a verified signature; None when not verified

    @classmethod
    def read(cls, path: str | Path, keys: SigningKeys = NO_KEYS) -> Archive:
        """Open and check a bundle; with ``keys``, refuse one not signed by one of them."""
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model bundle {path} does not exist")
        try:
            with zipfile.ZipFile(path) as archive:
                members = {info.filename: info for info in archive.infolist()}
                manifest = _member(archive, members, MANIFEST, path)
                document = _manifest(manifest, path)
                parts = {name: _member(archive, members, name, path) for name in document["parts"]}
                signed = (
                    _member(archive, members, SIGNATURE, path) if SIGNATURE in members else None
                )
                unlisted = set(members) - set(parts) - {MANIFEST, SIGNATURE}
        except zipfile.BadZipFile:
            raise ModelError(
                f"{path.name} is not a Churn model bundle (format {FORMAT_VERSION}, a zip of "
                "plain-data parts); bundles written before it (joblib pickles) are not loaded: "
                "retrain with `churn train`"
            ) from None
        except OSError as exc:
            raise ModelError(f"cannot read model bundle {path}: {exc}") from exc
        if unlisted:
            raise ModelError(
                f"model bundle {path.name} holds parts its manifest does not list: {sorted(unlisted)}"
            )
        for name, data in parts.items():
            expected = document["parts"][name].get("sha256")
            if hashlib.sha256(data).hexdigest() != expected:
                raise ModelError(
                    f"model bundle {path.name}: part {name} does not match its manifest "
                    "(the file was changed after it was written): refusing to load"
                )
        signed_by = verify_signature(manifest, signed, keys, path.name) if keys else None
        return cls(path.name, int(document["format_version"]), parts, signed_by)

    def has(self, name: str) -> bool:
        return name in self.parts

    def require(self, names: Iterable[str]) -> None:
        missing = [name for name in names if name not in self.parts]
        if missing:
            raise ModelError(
                f"model bundle {self.name} lacks the part(s) {missing} of format "
                f"{self.format_version} (it holds {sorted(self.parts)}): it is damaged or was "
                "not written by Churn"
            )

    def json(self, name: str) -> Any:
        self.require([name])
        try:
            return json.loads(self.parts[name])
        except ValueError as exc:
            raise ModelError(f"model bundle {self.name}: part {name} is not JSON: {exc}") from None

    def text(self, name: str) -> str:
        self.require([name])
        return self.parts[name].decode()

    def array(self, name: str) -> np.ndarray:
        import numpy as np

        self.require([name])
        try:
            return np.load(io.BytesIO(self.parts[name]), allow_pickle=False)
        except ValueError as exc:
            raise ModelError(
                f"model bundle {self.name}: part {name} is not a plain numpy array: {exc}"
            ) from None


def _member(
    archive: zipfile.ZipFile, members: Mapping[str, zipfile.ZipInfo], name: str, path: Path
) -> bytes:
    info = members.get(name)
    if info is None:
        what = "manifest" if name == MANIFEST else f"part {name} its manifest lists"
        raise ModelError(f"model bundle {path.name} has no {what}: it is damaged or not a bundle")
    if info.file_size > MAX_PART_BYTES:
        raise ModelError(
            f"model bundle {path.name}: part {name} unpacks to {info.file_size:,} bytes, "
            f"more than {MAX_PART_BYTES:,}: refusing to read it"
        )
    return archive.read(info)


def _manifest(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except ValueError:
        raise ModelError(f"model bundle {path.name}: its manifest is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelError(f"{path.name} is not a Churn model bundle (no {FORMAT} manifest)")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"model bundle {path.name} has format version {version}; this Churn reads version "
            f"{FORMAT_VERSION}. Retrain with `churn train` (or install the Churn release that wrote it)."
        )
    parts = document.get("parts")
    if not isinstance(parts, dict) or not all(
        isinstance(name, str) and "/" not in name and name.endswith(KINDS) for name in parts
    ):
        raise ModelError(f"model bundle {path.name}: its manifest lists malformed parts")
    return document


def verify_signature(manifest: bytes, signed: bytes | None, keys: SigningKeys, name: str) -> str:
    """The id of the key that signed ``manifest``; ModelError unless one of ``keys`` did."""
    if signed is None:
        raise ModelError(
            f"model bundle {name} is not signed, and a signing key is configured "
            "(CHURN_SIGNING_KEY / CHURN_SIGNING_KEY_FILE): only bundles signed with it are "
            "loaded. Register it again from a `churn train` run that has the key"
        )
    try:
        claim = json.loads(signed)
        algorithm, claimed_id, mac = claim["algorithm"], claim["key_id"], claim["mac"]
    except (ValueError, KeyError, TypeError):
        raise ModelError(f"model bundle {name}: its signature is malformed") from None
    key = keys.ids.get(claimed_id) if algorithm == ALGORITHM else None
    if key is None:
        raise ModelError(
            f"model bundle {name} is signed with another key (key id {claimed_id}; this "
            f"process knows {sorted(keys.ids)}): refusing to load it"
        )
    expected = hmac.new(key, manifest, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(mac)):
        raise ModelError(
            f"model bundle {name}: its signature does not match its contents (changed after "
            "signing): refusing to load it"
        )
    return claimed_id


def verify_bundle(path: str | Path, keys: SigningKeys) -> str | None:
    """Check a bundle's format, parts and (with keys) signature without building the model."""
    return Archive.read(path, keys).signed_by


def signing_keys(values: Sequence[bytes]) -> SigningKeys:
    return SigningKeys(tuple(values))
