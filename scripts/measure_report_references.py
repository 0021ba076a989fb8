"""The reference values the dataset report draws beside a dataset's own: ``d_data`` of natural
and medical images, and the medical datasets' median sharpness ``K_F(0.5)``.

``d_data`` (MLE, k = 20, the product's default; and TwoNN) is measured by
:func:`lightning_dataprops.functional.dataset_properties` on seeded, class-stratified samples
(:func:`lightning_dataprops.sample_dataset`) of MNIST (``mnist5k.npz``), Fashion-MNIST (train),
CIFAR-10 (train; RGB 32x32), PneumoniaMNIST and BreastMNIST (train), as the command line loads
them (``load_source``: pixels in [0, 1]), at N = 500, 1000, 2000 and 5000 (capped by the pool),
seeds 0-2. The medical ``K_F(0.5)`` values are copied from the sharp-label study's draws
(``docs/reference_study.csv``, written by ``scripts/measure_reference_values.py``), so the
report's chart and the check's references come from one measurement.

Output: ``lightning_dataprops/references/report_references.json`` (package data).

Usage (from the repository root, with ``../shared/data`` and Debian's
``dataset-fashion-mnist``; about 3 minutes on a 2-core machine)::

    python scripts/measure_report_references.py
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from lightning_dataprops import sample_dataset
from lightning_dataprops.data import load_source
from lightning_dataprops.functional import dataset_properties

SCRIPT_VERSION = "1.0"
SIZES = (500, 1000, 2000, 5000)
SEEDS = (0, 1, 2)
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "lightning_dataprops/references/report_references.json"
STUDY = ROOT / "docs/reference_study.csv"


def _sources(data: Path) -> dict[str, tuple[str, str]]:
    """``{dataset: (path, domain)}``."""
    return {
        "MNIST": (str(data / "mnist5k.npz"), "natural"),
        "Fashion-MNIST": ("/usr/share/datasets/fashion-mnist", "natural"),
        "CIFAR-10": (str(data / "cifar10/cifar10.npz"), "natural"),
        "PneumoniaMNIST": (str(data / "medmnist/pneumoniamnist.npz"), "medical"),
        "BreastMNIST": (str(data / "medmnist/breastmnist.npz"), "medical"),
    }


def _d_data_rows(data: Path) -> list[dict[str, Any]]:
    rows = []
    for name, (path, domain) in _sources(data).items():
        loaded = load_source(path)
        pool = int(loaded.inputs.shape[0])
        shape = list(loaded.inputs.shape[1:])
        for n in sorted({min(size, pool) for size in SIZES}):
            mle, twonn = [], []
            for seed in SEEDS:
                sample = sample_dataset(loaded.inputs, loaded.targets, max_samples=n, seed=seed)
                props = dataset_properties(sample.inputs, None, k=20)
                mle.append(props.d_data)
                twonn.append(props.d_data_twonn)
            rows.append(
                {
                    "dataset": name,
                    "domain": domain,
                    "input_shape": shape,
                    "n": n,
                    "d_data": statistics.median(mle),
                    "d_data_min": min(mle),
                    "d_data_max": max(mle),
                    "d_data_twonn": statistics.median(twonn),
                    "seeds": len(SEEDS),
                }
            )
            print(f"{name:15s} N={n:5d}  d_data {rows[-1]['d_data']:.2f}", flush=True)
    return rows


def _medical_sharpness() -> list[dict[str, Any]]:
    """Median over seeds of each medical dataset's K_F(0.5), per protocol and N."""
    groups: dict[tuple[str, str, int, int], list[float]] = {}
    with STUDY.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["domain"] != "medical":
                continue
            key = (row["dataset"], row["protocol"], int(row["n_classes"]), int(row["n"]))
            groups.setdefault(key, []).append(float(row["K_F_q50"]))
    return [
        {
            "dataset": dataset,
            "protocol": protocol,
            "n_classes": n_classes,
            "n": n,
            "K_F_q50": statistics.median(values),
            "draws": len(values),
        }
        for (dataset, protocol, n_classes, n), values in sorted(groups.items())
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data"))
    args = parser.parse_args()
    torch.manual_seed(0)
    started = time.perf_counter()
    d_data = _d_data_rows(Path(args.data))
    document = {
        "description": (
            "Values the dataset report draws beside a dataset's own: d_data (MLE k=20, TwoNN) "
            "of natural and medical images as the command line loads them (pixels in [0, 1]), "
            "median over seeds; and the medical datasets' median sharpness K_F(0.5) from the "
            "sharp-label study (docs/reference_study.csv)."
        ),
        "script": "scripts/measure_report_references.py",
        "script_version": SCRIPT_VERSION,
        "measured_on": dt.date.today().isoformat(),
        "machine": f"{platform.system()} {platform.machine()}, torch {torch.__version__}",
        "runtime_s": round(time.perf_counter() - started, 1),
        "d_data": d_data,
        "medical_K_F_q50": _medical_sharpness(),
    }
    OUT.write_text(json.dumps(document, indent=1) + "\n")
    print(f"written {OUT}")


if __name__ == "__main__":
    main()
