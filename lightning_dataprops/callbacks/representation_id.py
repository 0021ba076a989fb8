"""RepresentationIDMonitor: intrinsic dimension d_repr of chosen layers' outputs, per epoch."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from lightning_dataprops import names
from lightning_dataprops.callbacks._base import DataPropsCallback, DataPropsOptions, untouched_rng
from lightning_dataprops.callbacks._data_source import FALLBACK_FORWARD_BATCH, forward_batch_size
from lightning_dataprops.callbacks._deprecated import deprecated_attribute, deprecated_keywords
from lightning_dataprops.callbacks._layers import example_batch, layer_depths
from lightning_dataprops.findings import ReprProfileFinding
from lightning_dataprops.functional.constants import DEFAULT_K
from lightning_dataprops.functional.head_input import HeadInput, find_head_input
from lightning_dataprops.functional.representations import (
    ForwardTrace,
    capture_representations,
    module_name,
    resolve_layers,
    trace_forward,
)
from lightning_dataprops.metrics import IntrinsicDimension


class RepresentationIDMonitor(DataPropsCallback):
    r"""Measure the intrinsic dimension ``d_repr`` of layer outputs while the network trains.

    Every ``every_n_epochs`` epochs (at the end of the training epoch, after its validation),
    the outputs of ``layers`` on a fixed, seeded probe sample of the training dataset are
    captured with forward hooks (eval mode, ``no_grad``, through the options' ``forward_fn``
    and the trainer's precision context) and their intrinsic dimension is estimated by MLE
    (Konz & Mazurowski, ICLR 2024: ``d_repr <= d_data``, and the test loss scales with
    ``N^(-1/d_repr)``). The model's training mode, BatchNorm statistics, gradients, hooks and
    the global random state are left untouched, so training is bit-identical with and without
    it. Each output is captured as the layer returned it, also when a later in-place operation
    (``ReLU(inplace=True)``, ``out += identity``) rewrites it. Exactly one row per probe input
    is captured and checked: a ``torch.compile``d model is run through its original module
    (names are those of the uncompiled model: ``net.pool``, never ``net._orig_mod.pool``), and
    a module called several times per forward pass (a shared activation) is refused in
    ``setup`` unless ``layer_call`` says which call is meant.

    By default the measured layer is what the output head (the last module with parameters to
    run) reads, captured by a hook on the head's input: right also when the head reads the
    second call of a shared activation or a functional ``F.relu``. It is named after the
    module call that produced it, or ``"<head>.input"``; ``setup`` says which and why.
    Under DDP each rank captures its share of the probe and the neighbour search is sharded;
    every rank gets the same value.

    Logged (to every logger and to ``trainer.callback_metrics``):

    - ``dataprops/d_repr/<layer>``: ``d_repr`` (MLE, k neighbours) of each layer, every
      ``every_n_epochs`` epochs, layers in the order the forward pass runs them;
    - ``dataprops/d_repr_head_input``: the same value for the layer the head reads (always for
      the default layer; for listed layers when one outputs exactly what the head reads): the
      ``d_repr`` that :class:`ScalingForecastMonitor` uses;
    - ``dataprops/time/d_repr``: seconds spent.

    The values are in ``trainer.callback_metrics`` only on the epochs that measured them (see
    ``docs/callbacks.md`` for ``EarlyStopping`` and ``ModelCheckpoint`` on them). After each
    measured epoch every logger gets the d_repr profile plot (``docs/loggers.md``); with a
    ``WandbLogger``, also a table (``dataprops/d_repr_profile``) and a line plot
    (``dataprops/d_repr_plot``) of ``d_repr`` per layer over epochs.

    Cost: one forward pass over ``max_samples`` inputs and one neighbour search per layer, per
    measured epoch (a fraction of a second for 500 inputs and a small CNN on a CPU).

    Args:
        options: shared options (seed, how to read items, ``forward_fn``, memory budget).
        layers: module names or glob patterns (``"features.*"``) whose outputs are measured;
            default: what the output head reads (the penultimate representation).
        every_n_epochs: measure every this many epochs (0: never, the callback is disabled).
        max_samples: size of the fixed probe sample (fewer when the dataset is smaller).
            Deprecated name: ``n_samples``.
        k: neighbours of the MLE estimate (paper: 20).
        pool: ``"avg"``/``"max"`` pooling over the spatial dimensions of a layer's output, or
            ``None`` to flatten it.
        batch_size: probe inputs per forward pass; ``None``: the training loader's batch size
            (what the model runs at, in memory and speed), 64 when the loader has none.
        layer_call: for a module that runs several times per forward pass, which call to
            capture (0-based, ``-1`` the last); ``None`` refuses such modules in ``setup``.
            Applies to ``layers``; the default layer is read at the head's own call.

    Raises:
        ValueError: in ``__init__`` for impossible arguments; in ``setup`` for unknown layers
            (the message lists the model's modules), layers that never run, layers that run
            several times per forward pass without ``layer_call``, or unreadable items.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_dataprops.callbacks import RepresentationIDMonitor
        >>> monitor = RepresentationIDMonitor(layers=["features.3", "head"], every_n_epochs=2)
        >>> trainer = Trainer(callbacks=[monitor], logger=False)
    """

    MONITORED_PREFIX = f"{names.PREFIX}/d_repr/"
    TIMED_WORK = ("d_repr",)

    def __init__(
        self,
        options: DataPropsOptions | None = None,
        *,
        layers: str | Sequence[str] | None = None,
        every_n_epochs: int = 1,
        max_samples: int = 500,
        k: int = DEFAULT_K,
        pool: Literal["avg", "max"] | None = None,
        batch_size: int | None = None,
        layer_call: int | None = None,
        **deprecated: Any,
    ) -> None:
        super().__init__(options)
        max_samples = deprecated_keywords(
            deprecated, {"n_samples": "max_samples"}, "RepresentationIDMonitor"
        ).get("max_samples", max_samples)
        self.check_sample_size(k, max_samples, "max_samples")
        if isinstance(every_n_epochs, bool) or every_n_epochs < 0:
            raise ValueError(
                f"every_n_epochs must be >= 0 (0: never measure), got {every_n_epochs}."
            )
        if pool not in (None, "avg", "max"):
            raise ValueError(f"pool must be None, 'avg' or 'max', got {pool!r}.")
        if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
            raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}.")
        given = [layers] if isinstance(layers, str) else (list(layers) if layers else None)
        # Names of the uncompiled model everywhere, state keys included.
        self.layers = None if given is None else [module_name(layer) for layer in given]
        self.every_n_epochs = every_n_epochs
        self.max_samples = max_samples
        self.k = k
        self.pool = pool
        self.batch_size = batch_size
        self.layer_call = layer_call
        self.history: list[dict[str, Any]] = []
        """One row per measurement: ``epoch``, ``layer``, ``depth``, ``d_repr``."""
        self.layer_names: list[str] = []
        """The measured layers, in the order the forward pass runs them (set in ``setup``)."""
        self.head_input: HeadInput | None = None
        """The output head and what it reads, found in ``setup`` (``None`` when not found)."""
        self._depths: dict[str, int] = {}
        self._dataset: Any = None
        self._probe: Tensor | None = None
        self._batch_size = FALLBACK_FORWARD_BATCH

    # ------------------------------------------------------------------ state
    def _state_key_parts(self) -> dict[str, Any]:
        # Several monitors on different layers can share a trainer (and its checkpoints).
        return {"layers": self.layers, "every_n_epochs": self.every_n_epochs}

    def _get_state(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.history = [
            {**row, "layer": module_name(row["layer"])} if "layer" in row else row
            for row in state.get("history", [])
        ]

    # ------------------------------------------------------------------ setup
    @property
    def n_samples(self) -> int:
        """Deprecated name of :attr:`max_samples`."""
        deprecated_attribute(self, "n_samples", "max_samples")
        return self.max_samples

    def _setup_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Per fit: the next fit may bring other data or another model (a resumed fit gets its
        # history back from the checkpoint, which Lightning loads after setup).
        self._probe = None
        self._dataset = None
        self.head_input = None
        self.history = []
        self.layer_names = []
        self._depths = {}
        if not self.every_n_epochs:
            return
        self._dataset, first_input, train_loader = self.training_data(trainer)
        self._batch_size = forward_batch_size(self.batch_size, train_loader)
        named = [] if self.layers is None else resolve_layers(pl_module, self.layers)
        example = example_batch(first_input[None].expand(2, *first_input.shape), pl_module.device)
        with untouched_rng():
            # One hooked forward pass answers every question setup asks. The model may not
            # run on what the options read (an input_fn meant for another model): d_repr is
            # then off for this fit, said once, and training goes on.
            trace = self.guarded(
                "d_repr",
                trace_forward,
                pl_module,
                example,
                self.forward(trainer),
                watch=[name for name, _ in named],
            )
        if trace is None:
            return
        for name, _ in named:
            # Layers that never run, or run several times without layer_call, fail here.
            trace.check(name, self.layer_call)
        self.head_input = self._find_head_input(trace, listed=bool(named))
        order = trace.execution_order()
        if self.layers is None:
            assert self.head_input is not None
            names_found = [self.head_input.name]
            chosen = (
                f"{type(self).__name__}: d_repr is measured on {self.head_input.name!r}: "
                f"{self.head_input.describe()}."
            )
            # A possible functional head after the chosen one deserves a warning, not a note.
            (rank_zero_warn if self.head_input.used_after else rank_zero_info)(chosen)
        else:
            names_found = [name for name, _ in named]
        self._depths = layer_depths(order, names_found)
        if self.layers is None and self.head_input is not None:
            # The head's input sits just before the head, whichever call produced it.
            head = self.head_input.head
            self._depths = {names_found[0]: max(layer_depths(order, [head])[head] - 1, 0)}
        if self.layer_call is not None:
            for name, count in trace.counts(names_found).items():
                if count > 1:
                    rank_zero_info(
                        f"{type(self).__name__}: {name!r} runs {count} times per forward "
                        f"pass; d_repr is measured on call {self.layer_call} "
                        f"(layer_call={self.layer_call})."
                    )
        self.layer_names = sorted(names_found, key=lambda name: self._depths.get(name, 0))

    def _find_head_input(self, trace: ForwardTrace, *, listed: bool) -> HeadInput | None:
        """The head and what it reads. Without listed layers a failure is a setup error; with
        them it only leaves out ``dataprops/d_repr_head_input``."""
        if not listed:
            return find_head_input(trace)
        try:
            return find_head_input(trace)
        except (TypeError, ValueError) as error:
            rank_zero_info(
                f"{type(self).__name__}: the output head's input was not found ({error}); "
                f"{names.D_REPR_HEAD_INPUT} is not logged."
            )
            return None

    def _head_input_layer(self) -> str | None:
        """The measured layer whose output the head reads (the deepest one if several)."""
        if self.head_input is None:
            return None
        if self.layers is None:
            return self.head_input.name
        matches = [name for name in self.layer_names if name in self.head_input.layers]
        return matches[-1] if matches else None

    # ------------------------------------------------------------------ per epoch
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.active or trainer.sanity_checking or not self.every_n_epochs:
            return
        if not self.layer_names or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        with untouched_rng():
            metrics = self.budgeted(trainer, "d_repr", self._measure, trainer, pl_module)
        if metrics:
            self.log_metrics(trainer, metrics)
            self.publish(
                trainer,
                ReprProfileFinding.from_rows(self.history),
                step=self.epoch_end_step(trainer),
            )

    def _measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        started = time.perf_counter()
        if self._probe is None:
            self._probe = self.sample(self._dataset, self.max_samples).inputs
        probe = self._probe[trainer.global_rank :: trainer.world_size]
        head = self.head_input
        # A rank whose share is empty (fewer probe samples than ranks) captures nothing but
        # still takes part in every metric's sync below.
        captured: dict[str, Tensor] = {}
        if len(probe) > 0 and self.layers is None and head is not None:
            # What the head reads, captured at the head: right whatever produced it.
            (features,) = capture_representations(
                pl_module,
                probe,
                [head.head],
                batch_size=self._batch_size,
                pool=self.pool,
                device=pl_module.device,
                forward=self.forward(trainer),
                layer_call=head.head_call,
                read="input",
            ).values()
            captured = {head.name: features}
        elif len(probe) > 0:
            captured = capture_representations(
                pl_module,
                probe,
                self.layer_names,
                batch_size=self._batch_size,
                pool=self.pool,
                device=pl_module.device,
                forward=self.forward(trainer),
                layer_call=self.layer_call,
            )
        head_layer = self._head_input_layer()
        metrics: dict[str, float] = {}
        rows = []
        for layer in self.layer_names:
            # Each rank holds its share of the probe; the metric gathers the shares and shards
            # the neighbour search, so every rank computes the same value.
            metric = IntrinsicDimension(
                estimator="mle",
                k=self.k,
                max_samples=len(self._probe),
                seed=self.options.seed,
                memory_budget_mb=self.options.memory_budget_mb,
            ).to(pl_module.device)
            if layer in captured:
                metric.update(captured[layer].to(pl_module.device))
            value = float(metric.compute())
            metrics[names.d_repr(layer)] = value
            if layer == head_layer:
                metrics[names.D_REPR_HEAD_INPUT] = value
            rows.append(
                {
                    "epoch": trainer.current_epoch,
                    "layer": layer,
                    "depth": self._depths.get(layer, 0),
                    "d_repr": value,
                }
            )
        self.history.extend(rows)
        metrics[names.seconds(self.TIMED_WORK[0])] = time.perf_counter() - started
        return metrics
