"""Reach the datasets behind a fit without iterating the user's loaders."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any, NamedTuple

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torch.utils.data import DataLoader

from lightning_dataprops.data import Sample, read_first_item, sample_dataset


def _loaders(loaders: Any) -> list[Any]:
    """Every loader of a loader, a CombinedLoader or a (nested) collection of loaders, in order."""
    iterables = getattr(loaders, "iterables", None)  # lightning's CombinedLoader
    if iterables is not None:
        return _loaders(iterables)
    if isinstance(loaders, Mapping):
        return [found for value in loaders.values() for found in _loaders(value)]
    if isinstance(loaders, (list, tuple)):
        return [found for value in loaders for found in _loaders(value)]
    return [loaders]


_told_first: weakref.WeakKeyDictionary[pl.Trainer, set[str]] = weakref.WeakKeyDictionary()
"""Trainer -> the stages whose several loaders were said (once per trainer, not per callback)."""


def _say_first_of(trainer: pl.Trainer, stage: str, count: int) -> None:
    told = _told_first.setdefault(trainer, set())
    if stage in told:
        return
    told.add(stage)
    also = " and N, the training-set size of the forecast" if stage == "train" else ""
    rank_zero_info(
        f"The fit's {stage} data has {count} loaders (a list, dict or CombinedLoader): the "
        f"dataprops callbacks measure the first one's dataset{also}. Give the first loader the "
        "data to measure" + (", or n_train= for the total N." if stage == "train" else ".")
    )


def dataset_of(loader: Any) -> Any:
    """The dataset behind a loader (the loader itself if it has none, e.g. a plain iterable;
    ``None`` for ``None``)."""
    if isinstance(loader, DataLoader):
        return loader.dataset
    return getattr(loader, "dataset", loader)


FALLBACK_FORWARD_BATCH = 64
"""Inputs per forward pass of a callback's own passes when the training loader does not say."""


def fit_loader(trainer: pl.Trainer, stage: str = "train") -> Any | None:
    """The fit's first ``train`` (or ``val``) loader, requested from its source (each call asks
    the source again: a ``train_dataloader()`` method is called), or ``None``."""
    loop = trainer.fit_loop if stage == "train" else trainer.fit_loop.epoch_loop.val_loop
    source = getattr(loop, "_data_source", None)
    if source is None or not source.is_defined():
        return None
    found = _loaders(source.dataloader())
    if len(found) > 1:
        _say_first_of(trainer, stage, len(found))
    return found[0] if found else None


def _loader_batch_size(loader: Any) -> int | None:
    """The batch size a loader yields: ``batch_size``, else its batch sampler's or its
    sampler's (``DataLoader(sampler=BatchSampler(...), batch_size=None)``); ``None`` if none."""
    for owner in (loader, getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None)):
        size = getattr(owner, "batch_size", None)
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            return size
    return None


def forward_batch_size(given: int | None, train_loader: Any) -> int:
    """Inputs per forward pass of a callback's own passes (d_repr, the robustness probe).

    ``given`` when set; else the training loader's batch size, which the model is known to run
    at in memory and which is fast where the model trains (one 512-input pass of a small CNN on
    a CPU took 2.4x the time of eight 64-input passes: the activations leave the caches); else
    :data:`FALLBACK_FORWARD_BATCH`.
    """
    if given is not None:
        return given
    size = _loader_batch_size(train_loader)
    return FALLBACK_FORWARD_BATCH if size is None else size


def fit_dataset(trainer: pl.Trainer, stage: str = "train") -> Any | None:
    """The dataset behind the fit's ``train`` (or ``val``) data source, or ``None`` if it has none.

    The loader is requested from its source (``train_dataloader()`` of the datamodule or module,
    or the loader passed to ``fit``) but never iterated: it may be shuffled, augmented or
    distributed-sampled; only its dataset is used.
    """
    return dataset_of(fit_loader(trainer, stage))


class TrainingData(NamedTuple):
    """What a callback reads of the fit's training data in ``setup``."""

    dataset: Any
    first_input: Tensor
    loader: Any


class DataSampling:
    """``sample`` and ``training_data``: the data a callback measures, read as the options say."""

    options: Any  # DataPropsOptions

    def sample(self, dataset: Any, max_samples: int | None) -> Sample:
        """A seeded, class-stratified sample of ``dataset``, items read as the options say."""
        return sample_dataset(
            dataset,
            max_samples=max_samples,
            seed=self.options.seed,
            input_key=self.options.input_key,
            target_key=self.options.target_key,
            input_fn=self.options.input_fn,
            target_fn=self.options.target_fn,
            max_stream_items=self.options.max_stream_items,
        )

    def training_data(self, trainer: pl.Trainer) -> TrainingData:
        """The dataset behind the fit's training data source, the input of its first item and
        the loader itself (requested once, never iterated).

        Raises a ValueError (in ``setup``) when the fit has no training data or an item cannot
        be read as the options say.
        """
        loader = fit_loader(trainer, "train")
        dataset = dataset_of(loader)
        if dataset is None:
            raise ValueError(
                f"{type(self).__name__} found no training data: define train_dataloader() on the "
                "LightningModule or DataModule, or pass train_dataloaders to fit()."
            )
        first_input, _ = read_first_item(
            dataset,
            input_key=self.options.input_key,
            target_key=self.options.target_key,
            input_fn=self.options.input_fn,
            target_fn=self.options.target_fn,
        )
        return TrainingData(dataset, first_input, loader)

    @staticmethod
    def check_sample_size(k: int, n_samples: int | None, name: str) -> None:
        """``k >= 2`` neighbours, and more samples than ``k`` (``None``: all of them)."""
        if k < 2:
            raise ValueError(f"k must be >= 2, got {k}.")
        if n_samples is not None and n_samples < k + 1:
            raise ValueError(f"{name}={n_samples} must exceed k={k}; raise it or lower k.")
