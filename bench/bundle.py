"""Bundle benchmark: size and load time of the plain-data archive (format 2) against the
joblib pickle it replaced (format 1), for the same fitted model, side by side in one run.

The model is fitted like `churn train` fits one (default parameters, both model forms,
refit, calibrator, feature profile) on the synthetic snapshots of bench/train.py.

    .venv/bin/python bench/bundle.py              # 100k training rows
    .venv/bin/python bench/bundle.py --rows 300000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import joblib
import numpy as np


def best_of(repeat: int, action) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    from bench.train import synthetic_prepared
    from models.archive import SigningKeys
    from models.bundle import ChurnModel
    from training.params import TrainParams
    from training.pipeline import fit_and_evaluate
    from training.progress import Steps

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    model = fit_and_evaluate(
        synthetic_prepared(args.rows), TrainParams(), Steps(enabled=False)
    ).model
    key = SigningKeys((b"k" * 32,))
    with tempfile.TemporaryDirectory() as scratch:
        pickled, archive = Path(scratch) / "bundle.joblib", Path(scratch) / "bundle.churn"
        write_pickle = best_of(
            args.repeat,
            lambda: joblib.dump({"format_version": 1, "model": model}, pickled, compress=3),
        )
        write_archive = best_of(args.repeat, lambda: model.save(archive, signing_key=key.signer))
        load_pickle = best_of(args.repeat, lambda: joblib.load(pickled))
        load_archive = best_of(args.repeat, lambda: ChurnModel.load(archive, keys=key))
        columns = {"plan": np.array(["growth"], dtype=object), "seats": np.array([10.0])}
        assert np.allclose(
            ChurnModel.load(archive).predict_proba(columns),
            joblib.load(pickled)["model"].predict_proba(columns),
        )
        sizes = pickled.stat().st_size, archive.stat().st_size
    print(
        f"model: {model.booster.num_trees()} trees, {len(model.spec.names)} features, "
        f"form {model.card.model_form}"
    )
    print(f"{'':22}{'joblib (v1)':>14}{'archive (v2)':>14}{'v2 / v1':>10}")
    print(
        f"{'size (KB)':22}{sizes[0] / 1024:14.1f}{sizes[1] / 1024:14.1f}{sizes[1] / sizes[0]:10.2f}"
    )
    for label, old, new in (
        ("write (ms, best of n)", write_pickle, write_archive),
        ("load (ms, best of n)", load_pickle, load_archive),
    ):
        print(f"{label:22}{old * 1000:14.1f}{new * 1000:14.1f}{new / old:10.2f}")


if __name__ == "__main__":
    main()
