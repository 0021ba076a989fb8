"""Reproduce the main findings of Konz & Mazurowski (ICLR 2024) on small binary tasks, on a CPU.

Trains one fixed small CNN recipe (a LightningModule, Lightning ``Trainer``) on natural (MNIST
and Fashion-MNIST class pairs) and medical (PneumoniaMNIST, BreastMNIST) binary tasks, all 28x28
grayscale in [0, 1], at several training-set sizes N and seeds, and measures per run (with
Lightning callbacks, see ``measure.py``): test loss and accuracy on a fixed held-out test set,
d_data (MLE, k=20) and exact K_F of the training subset, d_repr of the penultimate layer on a
fixed probe sample, and the FGSM (eps = 2/255) loss increase on the test set. It then writes
``reproduction.md`` (tables, verdicts and interpretation, all generated from the numbers), PNG
figures and the raw runs as CSV into ``--out`` (default ``docs``, figures in ``docs/figures``).

    python -m examples.reproduce_paper                 # the documented run (about 10-20 minutes)
    python -m examples.reproduce_paper --quick         # a tiny smoke run (< 1 minute), to /tmp
    python -m examples.reproduce_paper --tasks mnist-3v8 breast --sizes 250 500 --seeds 0 1

(``python examples/reproduce_paper`` works as well.) Data: ``mnist5k.npz`` and
``medmnist/*.npz`` from ``../shared/data`` beside the repository (``--data-dir``), Fashion-MNIST
from the Debian package ``dataset-fashion-mnist`` (``--fashion-dir``). The CSV has the columns
``dataprops calibrate`` reads, so the scaling constant can be refitted from it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from lightning_dataprops.data import LoadedData
from lightning_dataprops.data.loaders import DEFAULT_FASHION_MNIST_ROOT

from . import measure
from .analysis import analyse
from .experiment import CSV_NAME, Run, run_one, write_csv
from .figures import FIGURES, plot_all
from .report import write_report
from .tasks import (
    DEFAULT_SEEDS,
    DEFAULT_SIZES,
    DEFAULT_TASKS,
    QUICK_SEEDS,
    QUICK_SIZES,
    QUICK_TASKS,
    Config,
    load_task,
    sizes_for,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "docs"
QUICK_OUT = Path(tempfile.gettempdir()) / "reproduce_paper_quick"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m examples.reproduce_paper", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny configuration (< 1 minute)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"folder for reproduction.md and figures/ (default {DEFAULT_OUT}; --quick: "
        f"{QUICK_OUT})",
    )
    parser.add_argument("--tasks", nargs="+", default=None, help=f"default {DEFAULT_TASKS}")
    parser.add_argument("--sizes", nargs="+", type=int, default=None, help="training-set sizes")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default 300)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"folder with mnist5k.npz and medmnist/ (default {DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--fashion-dir",
        type=Path,
        default=Path(DEFAULT_FASHION_MNIST_ROOT),
        help="folder with the Fashion-MNIST IDX files",
    )
    return parser.parse_args(argv)


def config(args: argparse.Namespace) -> Config:
    """The experiment the arguments ask for (``--quick`` changes the defaults)."""
    quick = bool(args.quick)
    cfg = Config(
        tasks=tuple(args.tasks or (QUICK_TASKS if quick else DEFAULT_TASKS)),
        sizes=tuple(args.sizes or (QUICK_SIZES if quick else DEFAULT_SIZES)),
        seeds=tuple(
            args.seeds if args.seeds is not None else (QUICK_SEEDS if quick else DEFAULT_SEEDS)
        ),
        steps=args.steps or (40 if quick else 300),
        batch_size=args.batch_size,
        max_test=200 if quick else 1000,
        n_probe=100 if quick else 500,
        threads=args.threads,
        quick=quick,
    )
    if min(cfg.sizes) <= cfg.k:
        raise SystemExit(f"every size must exceed k = {cfg.k} (MLE neighbours)")
    return cfg


def _quiet_lightning() -> None:
    """One Trainer per run: keep Lightning's per-Trainer banners out of the progress log."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    cfg = config(args)
    data_dir = args.data_dir.resolve()
    if not data_dir.is_dir():
        raise SystemExit(
            f"data folder {data_dir} not found: it holds mnist5k.npz and medmnist/*.npz and lives "
            "beside the repository in ../shared/data; pass --data-dir."
        )
    torch.set_num_threads(cfg.threads)
    _quiet_lightning()
    out = (args.out or (QUICK_OUT if cfg.quick else DEFAULT_OUT)).resolve()
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)

    cache: dict[str, LoadedData] = {}
    tasks = [load_task(key, data_dir, args.fashion_dir, cache, cfg) for key in cfg.tasks]
    cache.clear()
    runs: list[Run] = []
    plan = [(t, n) for t in tasks for n in sizes_for(len(t.pool_y), cfg.sizes)]
    total = len(plan) * len(cfg.seeds)
    for task, n in plan:
        for seed in cfg.seeds:
            run = run_one(task, n, seed, cfg)
            runs.append(run)
            print(
                f"[{len(runs)}/{total} {time.perf_counter() - started:6.0f}s] {task.name:<34} "
                f"N={run.n_train:<5} seed={seed} loss={run.test_loss:.4f} acc={run.test_acc:.3f} "
                f"d_data={run.d_data:.1f} K_F={run.label_sharpness:.3f} d_repr={run.d_repr:.1f} "
                f"FGSM+={run.fgsm_loss_increase:.3f}",
                flush=True,
            )
    write_csv(figures / CSV_NAME, runs)
    probe_d_data = {task.name: measure.probe_d_data(task, cfg) for task in tasks}
    result = analyse(runs, tasks, cfg, probe_d_data)
    plot_all(runs, tasks, result, figures)
    command = "python -m examples.reproduce_paper " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
    report = write_report(
        out, runs, tasks, result, cfg, time.perf_counter() - started, command.strip()
    )
    print(f"wrote {report}, {figures / CSV_NAME} and {len(FIGURES)} figures in {figures}")
    return 0
