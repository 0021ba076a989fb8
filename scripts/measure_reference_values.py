"""The sharp-label study: measure candidate statistics on natural and medical images, choose the
rule, and write the shipped references.

For every task (a labelled pool of images), protocol, sample size N and seed it draws a seeded,
class-stratified sample (``sample_dataset``), brings it to the protocol
(``to_reference_protocol``: ``gray28`` or ``rgb32``), runs the exact neighbour pass
(``label_sharpness``) and records every candidate statistic:

- ``K_F``: exact label sharpness, 1 / the closest differently-labelled pair;
- ``K_F_qXX``: 1 / the XX% quantile over points of the distance to the nearest
  differently-labelled point (``K_F_q50``: the median sharpness);
- ``scale_free_K_F`` and ``scale_free_q50``: those times the median nearest-neighbour distance
  (unit-free: how much closer differently-labelled points are than points in general);
- ``conflict_ratio``: the closest differently-labelled distance over the median
  nearest-neighbour distance (what the label-conflict rule compares with its threshold).

Natural tasks: the 45 class pairs and the 10-class set of MNIST (``mnist5k.npz``),
Fashion-MNIST (train split) and CIFAR-10 (train split; in RGB under ``rgb32`` and in grayscale
under ``gray28``). Medical tasks: PneumoniaMNIST and BreastMNIST (train splits). Held out, for
the false-alarm rate on natural photos the references never saw: the CIFAR-10 test split.

Outputs: ``lightning_dataprops/references/reference_values.json`` (package data: quantiles of
every statistic over the natural training draws per protocol, class count and N, plus the
chosen rule), and ``docs/reference_study.csv`` (every draw), which
``scripts/summarize_reference_study.py`` turns into the tables of ``docs/reference_values.md``.

Usage (from the repository root; about 10 minutes on a 2-core machine)::

    python scripts/measure_reference_values.py
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import json
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_dataprops import sample_dataset
from lightning_dataprops.data import load_fashion_mnist, load_npz
from lightning_dataprops.functional import label_sharpness
from lightning_dataprops.references import to_reference_protocol
from lightning_dataprops.references.check import statistic_value

SCRIPT_VERSION = "2.0"
SIZES = (500, 1000, 2000)
SEEDS = (0, 1, 2)
HELD_OUT_SEEDS = (0, 1)
QUANTILES = (0.05, 0.1, 0.25, 0.5)
STATISTICS = (
    "K_F",
    *(f"K_F_q{round(q * 100):02d}" for q in QUANTILES),
    "scale_free_K_F",
    "scale_free_q50",
    "conflict_ratio",
)
BAND_QUANTILES = {"min": 0.0, "q10": 0.1, "median": 0.5, "q90": 0.9, "max": 1.0}
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_FASHION = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_JSON = REPO_ROOT / "lightning_dataprops" / "references" / "reference_values.json"
DEFAULT_CSV = REPO_ROOT / "docs" / "reference_study.csv"


@dataclass(frozen=True)
class Pool:
    """A labelled image pool: name, domain (natural / medical / held_out), protocols."""

    name: str
    domain: str
    inputs: torch.Tensor
    targets: torch.Tensor
    protocols: tuple[str, ...]
    pairs: bool


def load_pools(data: Path, fashion: Path) -> list[Pool]:
    pools: list[Pool] = []
    mnist = load_npz(data / "mnist5k.npz")
    pools.append(Pool("MNIST", "natural", mnist.inputs, mnist.targets, ("gray28",), True))
    if (fashion / "train-images-idx3-ubyte.gz").exists():
        fm = load_fashion_mnist(fashion)
        pools.append(Pool("Fashion-MNIST", "natural", fm.inputs, fm.targets, ("gray28",), True))
    else:
        print(f"Fashion-MNIST is absent ({fashion}): skipped", file=sys.stderr)
    both = ("gray28", "rgb32")
    cifar = data / "cifar10" / "cifar10.npz"
    train, test = load_npz(cifar, "train"), load_npz(cifar, "test")
    pools.append(Pool("CIFAR-10", "natural", train.inputs, train.targets, both, True))
    pools.append(Pool("CIFAR-10 test", "held_out", test.inputs, test.targets, both, True))
    for name, file in (("PneumoniaMNIST", "pneumoniamnist"), ("BreastMNIST", "breastmnist")):
        med = load_npz(data / "medmnist" / f"{file}.npz")
        pools.append(Pool(name, "medical", med.inputs, med.targets, ("gray28",), False))
    return pools


def tasks(pool: Pool) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
    """(task name, inputs, targets): the whole pool, and each class pair for natural pools."""
    yield "all", pool.inputs, pool.targets
    if not pool.pairs:
        return
    for a, b in itertools.combinations(torch.unique(pool.targets).tolist(), 2):
        keep = (pool.targets == a) | (pool.targets == b)
        yield f"{a}v{b}", pool.inputs[keep], pool.targets[keep]


def statistics(points: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    result = label_sharpness(points, targets, top_pairs=1)
    robust = result.robust
    assert robust is not None
    # The check's own definitions of the statistics, so the study measures what it ships.
    row = {stat: statistic_value(result, stat) for stat in STATISTICS if stat != "conflict_ratio"}
    closest = float(robust.other_distances.min())
    row["conflict_ratio"] = closest / robust.scale if robust.scale > 0 else 0.0
    return row


def measure(pools: list[Pool]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for pool in pools:
        seeds = HELD_OUT_SEEDS if pool.domain == "held_out" else SEEDS
        sizes = (1000,) if pool.domain == "held_out" else SIZES
        started = time.perf_counter()
        for task, x, y in tasks(pool):
            n_classes = int(torch.unique(y).numel())
            for n in sorted({min(size, len(y)) for size in sizes}):
                for seed in seeds:
                    rows.extend(_draws(pool, task, x, y, n, seed, n_classes))
        print(f"{pool.name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows


def _draws(
    pool: Pool, task: str, x: torch.Tensor, y: torch.Tensor, n: int, seed: int, n_classes: int
) -> list[dict[str, Any]]:
    sample = sample_dataset(x, y, max_samples=n, seed=seed)
    assert sample.targets is not None
    rows = []
    for protocol in pool.protocols:
        points = to_reference_protocol(sample.inputs, protocol).flatten(1)
        rows.append(
            {
                "dataset": pool.name,
                "domain": pool.domain,
                "task": task,
                "n_classes": n_classes,
                "protocol": protocol,
                "n": len(sample),
                "seed": seed,
                **statistics(points, sample.targets),
            }
        )
    return rows


def bands(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Quantiles of every statistic over the natural training draws, per (protocol, C, N)."""
    out = []
    natural = [r for r in rows if r["domain"] == "natural"]
    keys = sorted({(r["protocol"], r["n_classes"], r["n"]) for r in natural})
    for protocol, n_classes, n in keys:
        group = [
            r
            for r in natural
            if (r["protocol"], r["n_classes"], r["n"]) == (protocol, n_classes, n)
        ]
        entry: dict[str, Any] = {
            "protocol": protocol,
            "n_classes": n_classes,
            "n": n,
            "count": len(group),
            "datasets": sorted({r["dataset"] for r in group}),
        }
        for stat in STATISTICS:
            values = np.array([r[stat] for r in group], dtype=np.float64)
            entry[stat] = {key: float(np.quantile(values, q)) for key, q in BAND_QUANTILES.items()}
        out.append(entry)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--fashion", type=Path, default=DEFAULT_FASHION)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    rows = measure(load_pools(args.data, args.fashion))
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    from summarize_reference_study import choose_rule  # the rule is chosen from the table

    rule = choose_rule(rows)
    payload = {
        "description": "Sharp-label references: statistics of natural images under the "
        "reference protocols (lightning_dataprops.references; docs/reference_values.md).",
        "script": "scripts/measure_reference_values.py",
        "script_version": SCRIPT_VERSION,
        "measured_on": dt.date.today().isoformat(),
        "machine": f"{platform.system()} {platform.machine()}, torch {torch.__version__}",
        "runtime_s": round(time.perf_counter() - started, 1),
        "protocols": {
            "gray28": "grayscale (mean over RGB), 28x28, min-max to [0, 1] over the sample",
            "rgb32": "RGB, 32x32, min-max to [0, 1] over the sample",
        },
        "sampling": "lightning_dataprops.sample_dataset(x, y, max_samples=N, seed=s): "
        "seeded, class-stratified",
        "natural_datasets": "MNIST (mnist5k), Fashion-MNIST (train), CIFAR-10 (train, 1000 per "
        "class): every class pair and the 10-class set; seeds 0-2",
        "rule": rule,
        "references": bands(rows),
    }
    args.json.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.json} and {args.csv} ({len(rows)} draws)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
