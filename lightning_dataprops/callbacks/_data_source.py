"""Reach the datasets behind a fit without iterating the user's loaders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader


def _first_loader(loaders: Any) -> Any:
    """The first loader of a loader, a CombinedLoader or a (nested) collection of loaders."""
    iterables = getattr(loaders, "iterables", None)  # lightning's CombinedLoader
    if iterables is not None:
        return _first_loader(iterables)
    if isinstance(loaders, Mapping):
        return _first_loader(next(iter(loaders.values()))) if loaders else None
    if isinstance(loaders, (list, tuple)):
        return _first_loader(loaders[0]) if loaders else None
    return loaders


def _dataset_of(loader: Any) -> Any:
    """The dataset behind a loader (the loader itself if it has none, e.g. a plain iterable)."""
    if isinstance(loader, DataLoader):
        return loader.dataset
    return getattr(loader, "dataset", loader)


def fit_dataset(trainer: pl.Trainer, stage: str = "train") -> Any | None:
    """The dataset behind the fit's ``train`` (or ``val``) data source, or ``None`` if it has none.

    The loader is requested from its source (``train_dataloader()`` of the datamodule or module,
    or the loader passed to ``fit``) but never iterated: it may be shuffled, augmented or
    distributed-sampled; only its dataset is used.
    """
    loop = trainer.fit_loop if stage == "train" else trainer.fit_loop.epoch_loop.val_loop
    source = getattr(loop, "_data_source", None)
    if source is None or not source.is_defined():
        return None
    loader = _first_loader(source.dataloader())
    if loader is None:
        return None
    return _dataset_of(loader)
