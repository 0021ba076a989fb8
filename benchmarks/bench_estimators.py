"""Benchmark: our intrinsic-dimension estimators beside scikit-dimension's, on the same points.

Prints markdown tables of the mean relative error ``|estimate - true| / true`` on
scikit-dimension's 24 benchmark manifolds (Hein & Audibert; ``BenchmarkManifolds``), over all 24,
their median, and those with true ID >= 10, with the seconds each estimator took for all of them;
then the same on off-benchmark families (flat tori ``(S^1)^d`` in ``R^2d``, spheres, rotated
cubes, Gaussians with unequal scales, d = 5-50) for ours against raw TwoNN, and on non-uniform
densities that no calibration uses (Laplace, Student-t with 8 and 1.5 degrees of freedom, rotated
lognormal, exponential and Beta(2, 5) coordinates).

Usage::

    python benchmarks/bench_estimators.py [--n 2000] [--seeds 0 1 2] [--ours mle twonn ...]
        [--peers MLE TwoNN ...] [--slow] [--no-off] [--off-d 5 10 20 30 40 50]

``--slow`` adds scikit-dimension's DANCo and ESS (about 300 s and 180 s for the 24 manifolds at
n = 2000 on one core). Our estimators share one exact neighbour pass: each one's time is that
pass plus its own step. DADApy's TwoNN (``compute_id_2NN``) and GRIDE (``return_id_scaling_gride``,
the scale n1 = 8, n2 = 16 as ours and scikit-dimension's) run with ``--dadapy-python PY``: an
interpreter that imports dadapy, which needs ``numpy<2`` (see ``bench_dataset_properties.py``);
the points go to it in one ``.npz`` file and the estimates and seconds come back as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lightning_dataprops.functional.estimators import get_estimator, unique_neighbours

OURS = ("mle", "twonn", "gride", "calibrated", "mle_k5", "mle_k10", "abid")
FAST_PEERS = (
    "MLE",
    "TwoNN",
    "DANCoFit",
    "MiND_ML",
    "TLE",
    "lPCA",
    "MADA",
    "CorrInt",
    "FisherS",
    "GRIDE",
)
SLOW_PEERS = ("DANCo", "ESS")
OFF_FAMILIES = ("torus", "sphere", "rotated_cube", "gaussian_unequal")
DENSITY_FAMILIES = ("laplace", "student_t8", "student_t1.5", "lognormal_rot", "exponential", "beta")
"""Non-uniform densities that no calibration uses: the guard against a family that fits the
benchmark's non-uniform manifolds by accident (a family must not make any of these worse)."""


def peer(name: str) -> Callable[[np.ndarray], float]:
    """scikit-dimension's estimator ``name`` as ``x -> dimension`` (k = 20 where it has a k)."""
    import skdim

    fits: dict[str, Callable[[np.ndarray], float]] = {
        "MLE": lambda x: skdim.id.MLE().fit(x, n_neighbors=20).dimension_,
        "TwoNN": lambda x: skdim.id.TwoNN().fit(x).dimension_,
        "DANCo": lambda x: skdim.id.DANCo(k=10).fit(x).dimension_,
        "DANCoFit": lambda x: skdim.id.DANCo(k=10, ver="DANCoFit").fit(x).dimension_,
        "ESS": lambda x: skdim.id.ESS().fit(x, n_neighbors=20).dimension_,
        "MiND_ML": lambda x: skdim.id.MiND_ML(k=20, D=max(10, x.shape[1])).fit(x).dimension_,
        "TLE": lambda x: skdim.id.TLE().fit(x, n_neighbors=20).dimension_,
        "lPCA": lambda x: skdim.id.lPCA(verbose=False).fit(x).dimension_,
        "MADA": lambda x: skdim.id.MADA().fit(x, n_neighbors=20).dimension_,
        "CorrInt": lambda x: skdim.id.CorrInt().fit(x).dimension_,
        "FisherS": lambda x: skdim.id.FisherS().fit(x).dimension_,
        "GRIDE": lambda x: skdim.id.GRIDE(n1=8, n2=16).fit(x).dimension_,
    }
    return lambda x: float(fits[name](x))


def benchmark_sets(n: int, seeds: list[int]) -> list[tuple[str, int, np.ndarray]]:
    """``(name, true ID, points)`` of the 24 benchmark manifolds for each seed."""
    import skdim

    sets = []
    for seed in seeds:
        manifolds = skdim.datasets.BenchmarkManifolds(random_state=seed)
        truth = manifolds._dict_truth  # (ID, ambient dimension, description) per name
        for name, x in manifolds.generate(n=n).items():
            sets.append((f"{name}/{seed}", int(truth[name][0]), np.asarray(x, np.float64)))
    return sets


def _density_set(family: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points of a non-uniform density of :data:`DENSITY_FAMILIES` in ``R^d``."""
    if family == "laplace":
        return rng.laplace(0.0, 1.0, (n, d))
    if family.startswith("student_t"):
        dof = float(family.removeprefix("student_t"))
        return rng.standard_normal((n, d)) / np.sqrt(rng.chisquare(dof, (n, 1)) / dof)
    if family == "lognormal_rot":
        rotation, _ = np.linalg.qr(rng.standard_normal((2 * d, 2 * d)))
        return np.exp(1.5 * rng.standard_normal((n, d))) @ rotation[:d]
    if family == "exponential":
        return rng.exponential(1.0, (n, d))
    if family == "beta":
        return rng.beta(2.0, 5.0, (n, d))
    raise ValueError(family)


def off_benchmark_sets(
    n: int, dims: list[int], seed: int, families: tuple[str, ...] = OFF_FAMILIES
) -> list[tuple[str, int, np.ndarray]]:
    """Flat tori, spheres, rotated cubes and unequal-scale Gaussians (or ``families``, as
    :data:`DENSITY_FAMILIES`) of dimension ``d``."""
    sets = []
    for family in families:
        for d in dims:
            rng = np.random.default_rng(seed * 1000 + d)
            if family in DENSITY_FAMILIES:
                x = _density_set(family, n, d, rng)
            elif family == "torus":
                angles = rng.random((n, d)) * 2 * math.pi
                x = np.concatenate([np.cos(angles), np.sin(angles)], axis=1)
            elif family == "sphere":
                g = rng.standard_normal((n, d + 1))
                x = g / np.linalg.norm(g, axis=1, keepdims=True)
            elif family == "rotated_cube":
                rotation, _ = np.linalg.qr(rng.standard_normal((2 * d, 2 * d)))
                x = rng.random((n, d)) @ rotation[:d]
            else:
                x = rng.standard_normal((n, d)) * np.linspace(1.0, 3.0, d)
            sets.append((f"{family}{d}", d, x))
    return sets


def run_ours(
    sets: list[tuple[str, int, np.ndarray]], names: list[str]
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Each of our estimators on each set: one exact pass (k = 20) per set, shared."""
    values: dict[str, list[float]] = {name: [] for name in names}
    seconds = dict.fromkeys(names, 0.0)
    k_max = max(get_estimator(name).neighbours_needed(20) for name in names)
    for _, _, x in sets:
        started = time.perf_counter()
        neighbours = unique_neighbours(torch.as_tensor(x, dtype=torch.float32), k_max, k_call=20)
        shared = time.perf_counter() - started
        for name in names:
            started = time.perf_counter()
            values[name].append(get_estimator(name).run(neighbours).value)
            seconds[name] += shared + time.perf_counter() - started
    return values, seconds


def run_peers(
    sets: list[tuple[str, int, np.ndarray]], names: list[str]
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Each scikit-dimension estimator on each set (NaN where it fails)."""
    values: dict[str, list[float]] = {name: [] for name in names}
    seconds = dict.fromkeys(names, 0.0)
    for name in names:
        fit = peer(name)
        for _, _, x in sets:
            started = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    values[name].append(fit(x))
            except Exception:  # a peer failing on one manifold is a result, not a crash
                values[name].append(math.nan)
            seconds[name] += time.perf_counter() - started
    return values, seconds


DADAPY_WORKER = """
import json, math, sys, time, warnings
import numpy as np
from dadapy import Data
arrays = np.load(sys.argv[1])
values = {"2NN": [], "GRIDE": []}
seconds = {"2NN": 0.0, "GRIDE": 0.0}
for key in sorted(arrays.files, key=lambda name: int(name.split("_")[1])):
    x = arrays[key]
    for name in values:
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = Data(x, maxk=20, verbose=False)
                if name == "2NN":
                    value = data.compute_id_2NN()[0]
                else:  # scales n1 = 1, 2, 4, 8 (n2 = 2 n1); the fourth is n1 = 8, n2 = 16
                    value = data.return_id_scaling_gride(range_max=16)[0][3]
            values[name].append(float(value))
        except Exception:
            values[name].append(math.nan)
        seconds[name] += time.perf_counter() - started
print("RESULT " + json.dumps({"values": values, "seconds": seconds}))
"""


def run_dadapy(
    sets: list[tuple[str, int, np.ndarray]], python: str
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """DADApy's TwoNN and GRIDE on each set, under ``python`` (an interpreter with dadapy)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sets.npz"
        np.savez(path, *[x for _, _, x in sets])  # arr_0, arr_1, ... in order
        done = subprocess.run(
            [python, "-c", DADAPY_WORKER, str(path)], capture_output=True, text=True, check=False
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"DADApy under {python} failed: {last}")
    result = json.loads(lines[-1][len("RESULT ") :])
    return result["values"], result["seconds"]


def errors(values: list[float], truth: list[int]) -> list[float]:
    return [
        abs(v - t) / t if math.isfinite(v) else math.inf for v, t in zip(values, truth, strict=True)
    ]


def table(
    title: str,
    truth: list[int],
    results: dict[str, list[float]],
    seconds: dict[str, float],
    n_repeats: int,
) -> str:
    high = [t >= 10 for t in truth]
    lines = [
        f"### {title}",
        "",
        "| estimator | all | median | true ID >= 10 | seconds (per repeat) |",
        "|---|---|---|---|---|",
    ]
    rows = []
    for name, values in results.items():
        err = errors(values, truth)
        err_high = [e for e, h in zip(err, high, strict=True) if h]
        rows.append(
            (
                statistics.mean(err),
                f"| {name} | {statistics.mean(err):.3f} | {statistics.median(err):.3f} | "
                f"{statistics.mean(err_high) if err_high else math.nan:.3f} | "
                f"{seconds[name] / n_repeats:.1f} |",
            )
        )
    lines += [row for _, row in sorted(rows)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ours", nargs="+", default=list(OURS))
    parser.add_argument("--peers", nargs="*", default=list(FAST_PEERS))
    parser.add_argument("--slow", action="store_true", help="add DANCo and ESS (minutes)")
    parser.add_argument("--no-off", action="store_true", help="skip the off-benchmark families")
    parser.add_argument("--off-d", type=int, nargs="+", default=[5, 10, 20, 30, 40, 50])
    parser.add_argument("--off-seed", type=int, default=7)
    parser.add_argument(
        "--dadapy-python", default=None, help="an interpreter that imports dadapy (numpy<2)"
    )
    args = parser.parse_args()
    peers = list(args.peers) + (list(SLOW_PEERS) if args.slow else [])
    for n in args.n:
        sets = benchmark_sets(n, args.seeds)
        truth = [t for _, t, _ in sets]
        ours, ours_s = run_ours(sets, args.ours)
        theirs, theirs_s = run_peers(sets, peers)
        results = {f"ours {k}": v for k, v in ours.items()}
        results.update({f"skdim {k}": v for k, v in theirs.items()})
        seconds = {f"ours {k}": v for k, v in ours_s.items()}
        seconds.update({f"skdim {k}": v for k, v in theirs_s.items()})
        if args.dadapy_python:
            dadapy, dadapy_s = run_dadapy(sets, args.dadapy_python)
            results.update({f"DADApy {k}": v for k, v in dadapy.items()})
            seconds.update({f"DADApy {k}": v for k, v in dadapy_s.items()})
        title = f"24 benchmark manifolds, n = {n}, seeds {args.seeds}"
        print(table(title, truth, results, seconds, len(args.seeds)))
        print()
        if args.no_off:
            continue
        off = off_benchmark_sets(n, args.off_d, args.off_seed)
        off_truth = [t for _, t, _ in off]
        off_ours, off_s = run_ours(off, args.ours)
        print(
            table(
                f"off-benchmark families (tori, spheres, rotated cubes, unequal Gaussians; "
                f"d = {args.off_d}), n = {n}",
                off_truth,
                {f"ours {k}": v for k, v in off_ours.items()},
                {f"ours {k}": v for k, v in off_s.items()},
                1,
            )
        )
        print()
        print("| set | true | " + " | ".join(args.ours) + " |")
        print("|---|---|" + "---|" * len(args.ours))
        for i, (name, d, _) in enumerate(off):
            cells = " | ".join(f"{off_ours[e][i]:.1f}" for e in args.ours)
            print(f"| {name} | {d} | {cells} |")
        print()
        dense = off_benchmark_sets(n, args.off_d, args.off_seed, DENSITY_FAMILIES)
        dense_ours, dense_s = run_ours(dense, args.ours)
        print(
            table(
                f"non-uniform densities no calibration uses ({', '.join(DENSITY_FAMILIES)}; "
                f"d = {args.off_d}), n = {n}",
                [t for _, t, _ in dense],
                {f"ours {k}": v for k, v in dense_ours.items()},
                {f"ours {k}": v for k, v in dense_s.items()},
                1,
            )
        )
        print()


if __name__ == "__main__":
    main()
