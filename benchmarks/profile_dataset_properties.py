"""Where the time of one ``dataset_properties(x, y)`` call goes, stage by stage.

Runs the call once to warm up, once timed as it runs (every CPU), then once under ``cProfile``
on one thread and attributes the cumulative time of the engine's stage functions
(``lightning_dataprops.functional._block_search`` and friends). The engine spreads its blocks
and its exact recompute over a pool of single-threaded workers (``_parallel``), and ``cProfile``
sees one thread only: the profiled call runs with one worker, so the split is that of the work
itself, which the pool then divides between the CPUs:

* input: validation of ``x`` and the targets (``as_points``, ``kf_targets``);
* kernel setup: the centred, label-ordered operands (float32, bfloat16 or 8-bit codes);
* fast pass: the kernel's block distances (the matmul and the norms added to it); the
  selection (group minima, threshold filter, merging into the candidate lists); tracking each
  point's nearest differently-labelled point; the rest of the loop;
* exact recompute + certification of the candidates, and the re-search of uncertified rows;
* nearest other label: certifying (or re-searching) each point's nearest other-label point;
* closest pairs: the closest differently-labelled pairs behind K_F;
* estimators and the rest: duplicates, MLE, TwoNN, K_F statistics, Python glue.

Usage (from the repository root; the datasets are those of ``bench_dataset_properties.py``)::

    PYTHONPATH=. python benchmarks/profile_dataset_properties.py            # both datasets
    PYTHONPATH=. python benchmarks/profile_dataset_properties.py --only fashion

(``PYTHONPATH=.`` makes the checkout's package the one profiled, not an installed copy.)
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dataset_properties import load_fashion, make_manifold

STAGES: list[tuple[str, list[tuple[str, str]]]] = [
    ("input (validation)", [("_validation.py", "as_points"), ("_kf_targets.py", "kf_targets")]),
    ("kernel setup (operands, choice)", [("_gram.py", "make_gram")]),
    ("fast pass: matmul and norms", []),
    ("fast pass: selection", [("_block_search.py", "_merge")]),
    (
        "fast pass: other label",
        [("_other_label.py", "merge_rows"), ("_other_label.py", "merge_columns")],
    ),
    ("exact recompute + certification", [("_block_search.py", "_certify")]),
    ("re-search of uncertified rows", [("_block_search.py", "_exhaustive")]),
    ("nearest other label (certified)", [("_block_search.py", "_nearest_other")]),
    ("closest pairs (K_F)", [("_block_search.py", "_closest_pairs")]),
]
PASSES = [("_block_search.py", "_symmetric_block"), ("_block_search.py", "_query_block")]


def _cumulative(stats: pstats.Stats, functions: list[tuple[str, str]]) -> float:
    """Cumulative seconds of the functions ``(file suffix, name)``."""
    total = 0.0
    for (filename, _, name), values in stats.stats.items():  # type: ignore[attr-defined]
        if any(filename.endswith(f) and name == n for f, n in functions):
            total += values[3]
    return total


def _called_from(
    stats: pstats.Stats, function: tuple[str, str], callers: list[tuple[str, str]]
) -> float:
    """Cumulative seconds of ``function`` in its calls from ``callers`` only."""
    total = 0.0
    for (filename, _, name), values in stats.stats.items():  # type: ignore[attr-defined]
        if filename.endswith(function[0]) and name == function[1]:
            for (c_file, _, c_name), c_values in values[4].items():
                if any(c_file.endswith(f) and c_name == n for f, n in callers):
                    total += c_values[3]
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

    _block_search.make_gram = recording
    dataset_properties(x[:1000], y[:1000])
    start = time.perf_counter()
    dataset_properties(x, y)
    plain = time.perf_counter() - start
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        dataset_properties(x, y)
        one_thread = time.perf_counter() - start
        profiler = cProfile.Profile()
        profiler.enable()
        dataset_properties(x, y)
        profiler.disable()
    finally:
        torch.set_num_threads(threads)
    stats = pstats.Stats(profiler)
    total = _cumulative(stats, [("dataset_properties.py", "dataset_properties")])
    rows = []
    for label, functions in STAGES:
        if label == "fast pass: matmul and norms":
            seconds = _called_from(stats, ("_gram.py", "sq_dists"), PASSES)
        else:
            seconds = _cumulative(stats, functions)
        rows.append((label, seconds))
    in_pass = sum(seconds for label, seconds in rows if label.startswith("fast pass"))
    rows.insert(5, ("fast pass: the rest (loop, buffers)", _cumulative(stats, PASSES) - in_pass))
    rows.append(("estimators, duplicates, the rest", total - sum(s for _, s in rows)))
    lines = [
        f"#### {name}: {x.shape[0]:,} x {int(np.prod(x.shape[1:]))}, kernel `{kernels[-1]}`",
        "",
        f"One call {plain:.2f} s ({threads} threads), {one_thread:.2f} s on one thread, "
        f"{total:.2f} s on one thread under the profiler (the split below).",
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
