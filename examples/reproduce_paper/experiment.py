"""One run (train on a seeded subset, measure) and the runs' CSV."""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from . import measure
from .model import fit
from .tasks import Config, Task, stratified

CSV_NAME = "reproduction_runs.csv"


@dataclass
class Run:
    """One training run: the CSV row (its columns are those ``dataprops calibrate`` reads)."""

    task: str
    dataset: str
    domain: str
    n_train: int
    seed: int
    test_loss: float
    test_acc: float
    train_loss: float
    d_data: float
    d_data_twonn: float
    label_sharpness: float
    kf_protocol: float
    kf_median_protocol: float
    d_repr: float
    fgsm_clean_loss: float
    fgsm_adv_loss: float
    fgsm_loss_increase: float
    fgsm_robust_acc: float
    n_test: int
    train_seconds: float


CSV_COLUMNS = tuple(f.name for f in fields(Run))


def run_one(task: Task, n: int, seed: int, cfg: Config) -> Run:
    """Train on a seeded stratified subset of size ``n`` of the task's pool and measure it.

    ``train_seconds`` is the wall time of ``trainer.fit``, the callbacks' measurements included.
    """
    x, y, _ = stratified(task.pool_x, task.pool_y, n, seed)
    protocol = measure.protocol_sharpness(x, y)
    start = time.perf_counter()
    callbacks = measure.callbacks(task, cfg, len(y))
    trainer, _ = fit(x, y, task.test_x, task.test_y, cfg, seed, callbacks)
    seconds = time.perf_counter() - start
    return Run(
        task=task.key,
        dataset=task.name,
        domain=task.domain,
        n_train=len(y),
        seed=seed,
        n_test=len(task.test_y),
        train_seconds=seconds,
        **protocol,
        **measure.collect(trainer),
    )


def read_csv(path: Path) -> list[Run]:
    """The runs of a CSV written by :func:`write_csv` (an earlier run of the experiment)."""
    types = {f.name: f.type for f in fields(Run)}
    converters = {"int": int, "float": float, "str": str}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(CSV_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise SystemExit(f"{path} lacks the columns {', '.join(sorted(missing))}")
        return [
            Run(**{key: converters[str(types[key])](row[key]) for key in CSV_COLUMNS})
            for row in reader
        ]


def write_csv(path: Path, runs: list[Run]) -> None:
    """The runs as CSV, floats in full (shortest round-trip), so ``--from-csv`` is exact."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for run in runs:
            writer.writerow(
                {
                    key: repr(value) if isinstance(value, float) else value
                    for key, value in asdict(run).items()
                }
            )
