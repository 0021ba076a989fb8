"""Reproduce the main findings of Konz & Mazurowski (ICLR 2024) on small binary tasks, on a CPU.

Trains one fixed small CNN recipe (a LightningModule, Lightning ``Trainer``) on natural binary
tasks (MNIST and Fashion-MNIST class pairs, 28x28 grayscale; CIFAR-10 class pairs, 32x32 RGB
photos) and medical ones (PneumoniaMNIST, BreastMNIST, 28x28 grayscale), all in [0, 1], at several
training-set sizes N and seeds. Each run is measured by the product's own Lightning callbacks
(``DatasetPropertiesMonitor``, ``RepresentationIDMonitor``, ``RobustnessMonitor``; see
``measure.py``): test loss and accuracy on a fixed held-out test set, d_data (MLE, k=20) and exact
K_F of the training subset, d_repr of the penultimate layer on that same subset, and the FGSM
(eps = 2/255) loss increase on the test set; plus exact K_F and the median sharpness K_F(0.5) of
the training subset under one common preprocessing (28x28 grayscale in [0, 1]) for the domain
comparison. It then writes ``reproduction.md`` (tables, verdicts and interpretation, all
generated from the numbers), PNG figures and the raw runs as CSV into ``--out`` (default
``docs``, figures in ``docs/figures``).

    python -m examples.reproduce_paper                 # default: 3 seeds, 108 runs
    python -m examples.reproduce_paper --full          # 5 seeds, 180 runs
    python -m examples.reproduce_paper --quick         # a tiny smoke run (< 1 minute), to /tmp
    python -m examples.reproduce_paper --tasks mnist-3v8 cifar-3v5 breast --sizes 250 500
    python -m examples.reproduce_paper --from-csv docs/figures/reproduction_runs.csv

On 2 idle CPU cores a grayscale run takes about 4.5 s and a CIFAR-10 run about 8 s, so the
default takes about 10 minutes and ``--full`` about 17; under heavy load from other jobs (load
average 6-7) ``--full`` took 38 minutes and its first three seeds 23. ``--quick`` takes under a
minute. (``python examples/reproduce_paper`` works as well.)

Data: ``mnist5k.npz``, ``cifar10/cifar10.npz`` and ``medmnist/*.npz`` from ``../shared/data``
beside the repository (``--data-dir``), Fashion-MNIST from the Debian package
``dataset-fashion-mnist`` (``--fashion-dir``); a task whose data is absent is left out with a
message (and the report says so). The CSV has the columns
``dataprops calibrate`` reads, so the scaling constant can be refitted from it; ``--from-csv``
rebuilds the report and figures from such a CSV without training.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from lightning_dataprops.data import LoadedData
from lightning_dataprops.data.loaders import DEFAULT_FASHION_MNIST_ROOT

from .analysis import analyse, grayscale_only
from .experiment import CSV_NAME, Run, read_csv, run_one, write_csv
from .figures import FIGURES, plot_all
from .report import Provenance, write_report
from .tasks import (
    DEFAULT_SEEDS,
    DEFAULT_SIZES,
    DEFAULT_TASKS,
    FULL_SEEDS,
    QUICK_SEEDS,
    QUICK_SIZES,
    QUICK_TASKS,
    Config,
    MissingDataError,
    Task,
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
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny configuration (< 1 minute)")
    size.add_argument(
        "--full", action="store_true", help=f"seeds {FULL_SEEDS} instead of {DEFAULT_SEEDS}"
    )
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
    parser.add_argument(
        "--from-csv",
        type=Path,
        default=None,
        help="rebuild the report and figures from the runs CSV of an earlier run (no training; "
        "give the options that run had)",
    )
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default 300)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"folder with mnist5k.npz, cifar10/ and medmnist/ (default {DEFAULT_DATA_DIR})",
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
            args.seeds
            if args.seeds is not None
            else (QUICK_SEEDS if quick else FULL_SEEDS if args.full else DEFAULT_SEEDS)
        ),
        steps=args.steps or (40 if quick else 300),
        batch_size=args.batch_size,
        max_test=200 if quick else 1000,
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


def _load_tasks(args: argparse.Namespace, cfg: Config, data_dir: Path) -> tuple[list[Task], Config]:
    """The tasks whose data is present; the others are left out with a message."""
    cache: dict[str, LoadedData] = {}
    tasks, omitted = [], []
    for key in cfg.tasks:
        try:
            tasks.append(load_task(key, data_dir, args.fashion_dir, cache, cfg))
        except MissingDataError as error:
            omitted.append(str(error))
            print(f"left out: {error}", file=sys.stderr, flush=True)
    if not tasks:
        raise SystemExit("no task has its data: " + "; ".join(omitted))
    return tasks, replace(cfg, omitted=tuple(omitted))


def _train(tasks: list[Task], cfg: Config, started: float, csv_path: Path) -> list[Run]:
    """Every run of the plan; the CSV is rewritten after each, so a stopped run keeps its runs."""
    runs: list[Run] = []
    plan = [(t, n) for t in tasks for n in sizes_for(len(t.pool_y), cfg.sizes)]
    total = len(plan) * len(cfg.seeds)
    for task, n in plan:
        for seed in cfg.seeds:
            run = run_one(task, n, seed, cfg)
            runs.append(run)
            write_csv(csv_path, runs)
            print(
                f"[{len(runs)}/{total} {time.perf_counter() - started:6.0f}s] {task.name:<34} "
                f"N={run.n_train:<5} seed={seed} loss={run.test_loss:.4f} acc={run.test_acc:.3f} "
                f"d_data={run.d_data:.1f} K_F={run.label_sharpness:.3f} "
                f"K_F(0.5)={run.kf_median_protocol:.3f} d_repr={run.d_repr:.1f} "
                f"FGSM+={run.fgsm_loss_increase:.3f}",
                flush=True,
            )
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    cfg = config(args)
    data_dir = args.data_dir.resolve()
    if not data_dir.is_dir():
        raise SystemExit(
            f"data folder {data_dir} not found: it holds mnist5k.npz, cifar10/ and medmnist/ and "
            "lives beside the repository in ../shared/data; pass --data-dir."
        )
    torch.set_num_threads(cfg.threads)
    _quiet_lightning()
    out = (args.out or (QUICK_OUT if cfg.quick else DEFAULT_OUT)).resolve()
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)

    tasks, cfg = _load_tasks(args, cfg, data_dir)
    if args.from_csv is None:
        runs = _train(tasks, cfg, started, figures / CSV_NAME)
        seconds = time.perf_counter() - started
    else:
        names = {task.key for task in tasks}
        runs = [run for run in read_csv(args.from_csv) if run.task in names]
        tasks = [task for task in tasks if any(run.task == task.key for run in runs)]
        if not tasks:
            raise SystemExit(f"{args.from_csv} holds no run of {', '.join(sorted(names))}")
        cfg = replace(cfg, seeds=tuple(sorted({run.seed for run in runs})))
        if args.from_csv.resolve() != (figures / CSV_NAME).resolve():
            write_csv(figures / CSV_NAME, runs)
        seconds = sum(run.train_seconds for run in runs)
    result = analyse(runs, tasks, cfg)
    baseline = grayscale_only(runs, tasks, cfg)
    plot_all(runs, tasks, result, figures)
    command = "python -m examples.reproduce_paper " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
    how = Provenance(command.strip(), seconds, rebuilt=args.from_csv is not None)
    report = write_report(out, runs, tasks, result, cfg, how, baseline)
    print(f"wrote {report}, {figures / CSV_NAME} and {len(FIGURES)} figures in {figures}")
    return 0
