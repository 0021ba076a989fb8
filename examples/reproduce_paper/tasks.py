"""The experiment's configuration and its binary tasks: a pool to train on and a test set."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from lightning_dataprops import sample_dataset
from lightning_dataprops.data import LoadedData, load_fashion_mnist, load_npz
from lightning_dataprops.functional.attacks import PAPER_EPS

DEFAULT_TASKS = (
    "mnist-3v8",
    "mnist-1v7",
    "fashion-0v1",
    "fashion-2v4",
    "cifar-0v2",
    "cifar-3v5",
    "pneumonia",
    "breast",
)
DEFAULT_SIZES = (125, 250, 500, 1000, 2000)
DEFAULT_SEEDS = (0, 1, 2)
FULL_SEEDS = (0, 1, 2, 3, 4)
QUICK_TASKS = ("mnist-3v8", "cifar-0v2", "breast")
QUICK_SIZES = (100, 200)
QUICK_SEEDS = (0, 1)

CIFAR_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
FASHION_CLASSES = (
    "T-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "boot",
)
MNIST_TEST_PER_CLASS = 125  # mnist5k has 500 images a digit and no test split
SPLIT_SEED = 12345  # seed of the fixed held-out test samples


@dataclass(frozen=True)
class Config:
    """Everything that defines an experiment (all of it is written into the report)."""

    tasks: tuple[str, ...]
    sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    eps: float = PAPER_EPS
    k: int = 20
    max_test: int = 1000
    threads: int = 1
    quick: bool = False
    omitted: tuple[str, ...] = ()
    """Why each task left out for lack of data was left out."""


@dataclass
class Task:
    """A binary task: a pool to draw training subsets from, and a fixed test set."""

    key: str
    name: str
    domain: str
    pool_x: Tensor
    pool_y: Tensor
    test_x: Tensor
    test_y: Tensor
    source: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of the inputs the model sees."""
        channels, height, width = self.pool_x.shape[1:]
        return int(channels), int(height), int(width)

    @property
    def input_text(self) -> str:
        """The input format in words, e.g. ``32x32 RGB``."""
        channels, height, width = self.image_shape
        return f"{height}x{width} {'RGB' if channels == 3 else 'grayscale'}"


class MissingDataError(Exception):
    """A task's data files are absent (the message says which and where they come from)."""


def stratified(x: Tensor, y: Tensor, n: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """A seeded, class-stratified sample of ``n`` items: inputs, targets, indices."""
    sample = sample_dataset(x, y, max_samples=n, seed=seed)
    assert sample.targets is not None
    return sample.inputs, sample.targets, sample.indices


def _pair(data: LoadedData, a: int, b: int) -> tuple[Tensor, Tensor]:
    """Images of classes ``a`` and ``b``, relabelled 0 and 1."""
    keep = (data.targets == a) | (data.targets == b)
    return data.inputs[keep].contiguous(), (data.targets[keep] == b).long()


def _parse_pair(key: str, prefix: str) -> tuple[int, int]:
    try:
        a_text, b_text = key[len(prefix) :].split("v")
        a, b = int(a_text), int(b_text)
    except ValueError:
        raise SystemExit(
            f"task {key!r}: expected {prefix}AvB with two digits, e.g. {prefix}3v8"
        ) from None
    if not (0 <= a <= 9 and 0 <= b <= 9 and a != b):
        raise SystemExit(f"task {key!r}: the two classes must be different digits 0-9")
    return a, b


def _split_pool(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A fixed held-out test set of ``MNIST_TEST_PER_CLASS`` images a class, the rest a pool."""
    test_x, test_y, test_idx = stratified(x, y, 2 * MNIST_TEST_PER_CLASS, SPLIT_SEED)
    rest = torch.ones(len(y), dtype=torch.bool)
    rest[test_idx] = False
    return x[rest], y[rest], test_x, test_y


def load_task(
    key: str, data_dir: Path, fashion_dir: Path, cache: dict[str, LoadedData], cfg: Config
) -> Task:
    """Build one task: ``mnist-AvB``, ``fashion-AvB``, ``cifar-AvB``, ``pneumonia`` or ``breast``.

    Raises:
        MissingDataError: the task's files are absent.
        SystemExit: an unknown or malformed task name.
    """

    def cached(name: str, loader: Callable[[], LoadedData]) -> LoadedData:
        if name not in cache:
            cache[name] = loader()
        return cache[name]

    def npz(name: str, path: Path, split: str) -> LoadedData:
        if not path.exists():
            raise MissingDataError(f"task {key}: {path} not found (see {data_dir / 'README.md'}).")
        return cached(name, lambda: load_npz(path, split))

    if key.startswith("mnist-"):
        a, b = _parse_pair(key, "mnist-")
        path = data_dir / "mnist5k.npz"
        pool_x, pool_y, test_x, test_y = _split_pool(*_pair(npz("mnist", path, "train"), a, b))
        name, domain, source = f"MNIST {a}v{b}", "natural", str(path)
    elif key.startswith("fashion-"):
        a, b = _parse_pair(key, "fashion-")
        try:
            train = cached("fashion-train", lambda: load_fashion_mnist(fashion_dir, "train"))
            test = cached("fashion-test", lambda: load_fashion_mnist(fashion_dir, "test"))
        except FileNotFoundError as error:
            raise MissingDataError(
                f"task {key}: {error} (Debian package dataset-fashion-mnist, or --fashion-dir)"
            ) from None
        pool_x, pool_y = _pair(train, a, b)
        test_x, test_y = _pair(test, a, b)
        name = f"Fashion {a}v{b} ({FASHION_CLASSES[a]}/{FASHION_CLASSES[b]})"
        domain, source = "natural", str(fashion_dir)
    elif key.startswith("cifar-"):
        a, b = _parse_pair(key, "cifar-")
        path = data_dir / "cifar10" / "cifar10.npz"
        pool_x, pool_y = _pair(npz("cifar-train", path, "train"), a, b)
        test_x, test_y = _pair(npz("cifar-test", path, "test"), a, b)
        name = f"CIFAR-10 {a}v{b} ({CIFAR_CLASSES[a]}/{CIFAR_CLASSES[b]})"
        domain, source = "natural", str(path)
    elif key in ("pneumonia", "breast"):
        path = data_dir / "medmnist" / f"{key}mnist.npz"
        train, test = npz(key, path, "train"), npz(f"{key}-test", path, "test")
        pool_x, pool_y, test_x, test_y = train.inputs, train.targets, test.inputs, test.targets
        name = {"pneumonia": "PneumoniaMNIST", "breast": "BreastMNIST"}[key]
        domain, source = "medical", str(path)
    else:
        raise SystemExit(
            f"unknown task {key!r}: use mnist-AvB, fashion-AvB, cifar-AvB (A, B class digits), "
            "pneumonia or breast"
        )
    if len(test_y) > cfg.max_test:
        test_x, test_y, _ = stratified(test_x, test_y, cfg.max_test, SPLIT_SEED)
    return Task(key, name, domain, pool_x, pool_y, test_x, test_y, source)


def sizes_for(pool: int, requested: Sequence[int]) -> list[int]:
    """Requested sizes capped at the pool size, dropping caps within 10% of a kept size."""
    kept: list[int] = []
    for size in sorted(set(requested)):
        size = min(size, pool)
        if all(abs(size - other) > 0.1 * other for other in kept):
            kept.append(size)
    return kept
