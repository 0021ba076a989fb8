"""Shared fixtures: real data from ``../shared/data`` (skipped with a reason when absent)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

collect_ignore = [str(REPO_ROOT / "lightning_dataprops" / "__main__.py")]


def shared_file(relative: str) -> Path:
    """Path of a file in ../shared/data, or skip the test with a clear reason."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(
            f"real data {path} is absent (it lives beside the repository in ../shared/data)"
        )
    return path


def stratified_subset(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of ``per_class`` random samples of every class, sorted."""
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(
            np.flatnonzero(labels == c),
            size=min(per_class, int((labels == c).sum())),
            replace=False,
        )
        for c in np.unique(labels)
    ]
    return np.sort(np.concatenate(chosen))


@pytest.fixture(scope="session")
def mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5000-image MNIST subset, (n, 1, 28, 28) in [0, 1], with digit labels."""
    with np.load(shared_file("mnist5k.npz")) as data:
        images, labels = data["images"], data["labels"]
    x = torch.from_numpy(images.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


@pytest.fixture(scope="session")
def pneumonia() -> tuple[torch.Tensor, torch.Tensor]:
    """PneumoniaMNIST's training split (3882 images), (n, 1, 28, 28) in [0, 1]."""
    with np.load(shared_file("medmnist/pneumoniamnist.npz")) as data:
        images, labels = data["train_images"], data["train_labels"].ravel()
    x = torch.from_numpy(images.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


@pytest.fixture(scope="session")
def fashion() -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST's training set from Debian's dataset-fashion-mnist package."""
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST is absent: apt-get install dataset-fashion-mnist")
    from lightning_dataprops.data import load_fashion_mnist

    loaded = load_fashion_mnist(FASHION_MNIST)
    return loaded.inputs, loaded.targets


def sphere_in_ambient(n: int, intrinsic: int, ambient: int, seed: int = 0) -> torch.Tensor:
    """``n`` uniform points on the unit ``intrinsic``-sphere, isometric in ``ambient`` dims."""
    generator = torch.Generator().manual_seed(seed)
    points = torch.randn(n, intrinsic + 1, generator=generator, dtype=torch.float64)
    points = points / points.norm(dim=1, keepdim=True)
    basis, _ = torch.linalg.qr(
        torch.randn(ambient, intrinsic + 1, generator=generator, dtype=torch.float64)
    )
    return (points @ basis.T).float()


def brute_force_distances(x: torch.Tensor) -> torch.Tensor:
    """All pairwise distances in float64, difference-based, with an infinite diagonal."""
    flat = x.reshape(len(x), -1).double()
    dist = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")
    dist.fill_diagonal_(float("inf"))
    return dist


@pytest.fixture()
def lightning_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """``caplog`` that also sees Lightning's info lines (its logger does not propagate)."""
    logger = logging.getLogger("lightning.pytorch")
    # Lightning stops propagation only when it was imported before any logging was set up; a
    # second handler on a propagating logger would record every line twice.
    attach = not logger.propagate
    if attach:
        logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO):
            yield caplog
    finally:
        if attach:
            logger.removeHandler(caplog.handler)


@pytest.fixture()
def wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An offline W&B environment writing into ``tmp_path`` (no run left open)."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    import wandb

    if wandb.run is not None:  # a run left open elsewhere would swallow this test's records
        wandb.finish()
    return tmp_path
