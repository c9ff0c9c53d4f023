"""The plain-data bundle archive: parts, manifest, format version, signatures."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from features.errors import ModelError
from models.archive import (
    FORMAT_VERSION,
    MANIFEST,
    SIGNATURE,
    Archive,
    ArchiveWriter,
    SigningKeys,
    key_id,
)
from models.bundle import ChurnModel
from models.calibration import Calibrator
from models.linear import LinearBase

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def rewrite(path: Path, change) -> None:
    """Rewrite the zip at ``path`` with ``change(name, data) -> bytes | None`` (None drops)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            new = change(name, data)
            if new is not None:
                archive.writestr(name, new)


def test_a_bundle_is_a_zip_of_plain_data_parts(model: ChurnModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "bundle.churn")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read(MANIFEST))
    assert {"card.json", "spec.json", "booster.txt", "calibrator.json", MANIFEST} <= names
    assert all(name.endswith((".json", ".txt", ".npy")) for name in names)
    assert manifest["format_version"] == FORMAT_VERSION
    assert set(manifest["parts"]) == names - {MANIFEST}


def test_linear_base_isotonic_calibrator_and_profile_round_trip(
    model: ChurnModel, make_columns, tmp_path: Path
) -> None:
    import dataclasses

    from models.profile import FeatureProfile

    columns = make_columns(400, seed=8)
    features = model.matrix(columns)
    label = (np.random.default_rng(8).random(400) < 0.3).astype(int)
    categorical = [model.spec.names.index(c) for c in model.spec.categorical]
    linear = LinearBase().fit(features, label, categorical)
    isotonic = Calibrator("isotonic").fit(model.margin(features), label)
    full = dataclasses.replace(
        model,
        linear=linear,
        calibrator=isotonic,
        profile=FeatureProfile.fit(features, model.spec.names),
    )
    loaded = ChurnModel.load(full.save(tmp_path / "full.churn"))
    scored, expected = loaded.score(columns), full.score(columns)
    np.testing.assert_array_equal(scored.probability, expected.probability)
    np.testing.assert_array_equal(scored.contributions, expected.contributions)
    assert loaded.profile == full.profile and loaded.card == full.card


def test_loading_never_unpickles(tmp_path: Path) -> None:
    """An old joblib/pickle bundle is refused without running what it holds."""
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "old.joblib"
    path.write_bytes(pickle.dumps({"format_version": 1, "model": Payload()}))
    with pytest.raises(ModelError, match=r"not a Churn model bundle .*\(joblib pickles\)"):
        ChurnModel.load(path)
    assert not marker.exists()


def test_another_format_version_is_refused_by_name(model: ChurnModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "bundle.churn")

    def older(name: str, data: bytes) -> bytes:
        if name != MANIFEST:
            return data
        return json.dumps({**json.loads(data), "format_version": 1}).encode()

    rewrite(path, older)
    with pytest.raises(ModelError, match="format version 1; this Churn reads version 2"):
        ChurnModel.load(path)


def test_a_missing_part_is_named(model: ChurnModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "bundle.churn")

    def without_booster(name: str, data: bytes) -> bytes | None:
        if name == MANIFEST:
            document = json.loads(data)
            del document["parts"]["booster.txt"]
            return json.dumps(document).encode()
        return None if name == "booster.txt" else data

    rewrite(path, without_booster)
    with pytest.raises(ModelError, match=r"lacks the part\(s\) \['booster.txt'\]"):
        ChurnModel.load(path)


def test_a_changed_part_is_refused(model: ChurnModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "bundle.churn")
    rewrite(path, lambda name, data: data.replace(b"0.", b"9.", 1) if name == "card.json" else data)
    with pytest.raises(ModelError, match=r"part card\.json does not match its manifest"):
        ChurnModel.load(path)


def test_a_part_the_manifest_does_not_list_is_refused(model: ChurnModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "bundle.churn")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("extra.json", b"{}")
    with pytest.raises(ModelError, match=r"parts its manifest does not list: \['extra.json'\]"):
        ChurnModel.load(path)


def test_an_extra_part_is_one_more_name(tmp_path: Path) -> None:
    writer = ArchiveWriter()
    writer.add_json("card.json", {"base_rate": 0.1})
    writer.add_array("hazard.baseline.npy", np.array([0.1, 0.2]))
    archive = Archive.read(writer.write(tmp_path / "b.churn", None, "test"))
    assert archive.json("card.json") == {"base_rate": 0.1}
    np.testing.assert_array_equal(archive.array("hazard.baseline.npy"), [0.1, 0.2])
    with pytest.raises(ModelError, match=r"lacks the part\(s\) \['hazard.json'\]"):
        archive.json("hazard.json")


def test_an_unknown_card_field_is_ignored(model: ChurnModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "bundle.churn")
    archive = Archive.read(path)
    writer = ArchiveWriter(dict(archive.parts))
    writer.add_json("card.json", {**archive.json("card.json"), "from_the_future": 1})
    loaded = ChurnModel.load(writer.write(path, None, "test"))
    assert loaded.card == model.card


# --- signatures ---------------------------------------------------------------------------------


def test_a_signed_bundle_loads_with_its_key(model: ChurnModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "signed.churn", signing_key=KEY)
    assert Archive.read(path, SigningKeys((KEY,))).signed_by == key_id(KEY)
    assert ChurnModel.load(path, keys=SigningKeys((OTHER_KEY, KEY))).card == model.card


def test_a_bundle_signed_with_another_key_is_refused(model: ChurnModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "signed.churn", signing_key=OTHER_KEY)
    with pytest.raises(ModelError, match=f"signed with another key \\(key id {key_id(OTHER_KEY)}"):
        ChurnModel.load(path, keys=SigningKeys((KEY,)))


def test_an_unsigned_bundle_is_refused_when_a_key_is_set(model: ChurnModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "plain.churn")
    with pytest.raises(ModelError, match="is not signed, and a signing key is configured"):
        ChurnModel.load(path, keys=SigningKeys((KEY,)))
    assert ChurnModel.load(path).card == model.card  # without keys: integrity only


def test_a_re_signed_manifest_without_the_key_is_refused(model: ChurnModel, tmp_path: Path) -> None:
    """Whoever changes a part and rewrites the manifest cannot make a matching signature."""
    path = model.save(tmp_path / "signed.churn", signing_key=KEY)
    archive = Archive.read(path)
    writer = ArchiveWriter(dict(archive.parts))
    writer.add_json("card.json", {**archive.json("card.json"), "base_rate": 0.9})
    forged = writer.manifest("forger")
    with zipfile.ZipFile(path) as original:
        claim = original.read(SIGNATURE)
    rewrite(path, lambda name, data: forged if name == MANIFEST else writer.parts.get(name, data))
    with zipfile.ZipFile(path, "a") as patched:
        assert SIGNATURE in patched.namelist() and patched.read(SIGNATURE) == claim
    with pytest.raises(ModelError, match="signature does not match its contents"):
        ChurnModel.load(path, keys=SigningKeys((KEY,)))
