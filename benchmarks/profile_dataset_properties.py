"""Where the time of one ``dataset_properties(x, y)`` call goes, stage by stage.

Runs the call once to warm up, then once under ``cProfile`` and attributes the cumulative time
of the engine's stage functions (``lightning_dataprops.functional._block_search`` and friends):

* input: validation of ``x`` and the targets (``as_points``, ``prepare_targets``);
* kernel setup: the centred, label-ordered operands (float32, bfloat16 or 8-bit codes);
* matmul: the kernel's ``-2 q.r`` per block;
* norms: adding the squared norms to each block;
* selection: group minima, threshold filter, merging into the candidate lists;
* other label: tracking each point's nearest differently-labelled point during the pass;
* exact + certification: exact recompute of the candidates, ranking, certification and the
  re-searches of uncertified rows;
* nearest other label: certifying (or re-searching) each point's nearest other-label point;
* closest pairs: the closest differently-labelled pairs behind K_F;
* estimators and the rest: duplicates, MLE, TwoNN, K_F statistics, Python glue.

Usage (from the repository root; the datasets are those of ``bench_dataset_properties.py``)::

    python benchmarks/profile_dataset_properties.py            # both datasets
    python benchmarks/profile_dataset_properties.py --only fashion
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dataset_properties import load_fashion, make_manifold

STAGES: list[tuple[str, list[tuple[str, str]]]] = [
    ("input (validation)", [("_validation.py", "as_points"), ("targets.py", "prepare_targets")]),
    ("kernel setup (operands)", [("_gram.py", "make_gram")]),
    ("matmul (-2 q.r)", [("_gram.py", "product")]),
    ("selection", [("_block_search.py", "_merge")]),
    ("other label (during the pass)", [("_other_label.py", "merge")]),
    (
        "exact + certification",
        [("_block_search.py", "_certify"), ("_block_search.py", "_exhaustive")],
    ),
    ("nearest other label", [("_block_search.py", "_nearest_other")]),
    ("closest pairs (K_F)", [("_block_search.py", "_closest_pairs")]),
]


def _cumulative(stats: pstats.Stats, functions: list[tuple[str, str]]) -> float:
    total = 0.0
    for (filename, _, name), values in stats.stats.items():  # type: ignore[attr-defined]
        if any(filename.endswith(f) and name == n for f, n in functions):
            total += values[3]
    return total


def profile(name: str) -> str:
    """A markdown table of the stages of one call on the dataset ``name``."""
    from lightning_dataprops.functional import _block_search, dataset_properties

    x, y = make_manifold() if name == "manifold" else load_fashion()
    kernels: list[str] = []
    make_gram = _block_search.make_gram

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        kernel = make_gram(*args, **kwargs)
        kernels.append(kernel.name)
        return kernel

    _block_search.make_gram = recording  # type: ignore[assignment]
    dataset_properties(x[:1000], y[:1000])
    start = time.perf_counter()
    dataset_properties(x, y)
    plain = time.perf_counter() - start
    profiler = cProfile.Profile()
    profiler.enable()
    dataset_properties(x, y)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = _cumulative(stats, [("dataset_properties.py", "dataset_properties")])
    sq_dists = _cumulative(stats, [("_gram.py", "sq_dists")])
    rows = []
    accounted = 0.0
    for label, functions in STAGES:
        seconds = _cumulative(stats, functions)
        rows.append((label, seconds))
        accounted += seconds
        if label.startswith("matmul"):
            rows.append(("norms added to each block", sq_dists - seconds))
            accounted += sq_dists - seconds
    rows.append(("estimators and the rest", total - accounted))
    lines = [
        f"#### {name}: {x.shape[0]:,} x {int(np.prod(x.shape[1:]))}, kernel `{kernels[-1]}`",
        "",
        f"One call {plain:.2f} s without the profiler, {total:.2f} s under it.",
        "",
        "| stage | time (s) | share |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {label} | {seconds:.3f} | {100 * seconds / total:.1f}% |" for label, seconds in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("manifold", "fashion"))
    args = parser.parse_args()
    for name in ("manifold", "fashion"):
        if args.only in (None, name):
            print(profile(name) + "\n")


if __name__ == "__main__":
    main()
