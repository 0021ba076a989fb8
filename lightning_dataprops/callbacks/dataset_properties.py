"""DatasetPropertiesMonitor: d_data and K_F of the training set, measured once at fit start."""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lightning_dataprops import names
from lightning_dataprops.callbacks._base import DataPropsCallback, DataPropsOptions, untouched_rng
from lightning_dataprops.callbacks._normalize import find_normalize
from lightning_dataprops.data import Sample, class_names_of
from lightning_dataprops.dataset_report import DatasetReport, measure_dataset
from lightning_dataprops.findings import RunSummaryFinding, SharpPairsFinding, TextFinding
from lightning_dataprops.functional.constants import DEFAULT_CHECK_SAMPLES, DEFAULT_K

SHARP_LABELS_TITLE = "Sharp labels in the training set"


class SharpLabelsWarning(UserWarning):
    """The training set's labels are sharp compared with natural-image references."""


class DatasetPropertiesMonitor(DataPropsCallback):
    r"""Measure how hard the training set is to learn, once, at fit start.

    On a seeded, class-stratified sample of the training dataset (taken from the dataset behind
    the fit's data source, never by iterating your loader, which may be shuffled, augmented or
    distributed-sampled), one exact neighbour pass gives the intrinsic dimension ``d_data``
    (MLE and TwoNN) and the label sharpness ``K_F`` (Konz & Mazurowski, ICLR 2024). With class
    targets and image inputs, the sharp-label check
    (:func:`~lightning_dataprops.references.check_label_sharpness`) compares the sample's median
    sharpness under the reference protocol with natural-image datasets at the same ``N``, and
    looks for label conflicts (near-identical inputs with different labels): sharp labels or
    conflicts raise one :class:`SharpLabelsWarning` (and a rate-limited W&B alert) naming the
    references, the training samples to inspect and what to do. Under DDP the
    neighbour search is sharded across ranks and every rank gets the same values. The results
    are kept in the callback's checkpoint state: a resumed fit does not recompute them.

    Logged once at fit start (to every logger and to ``trainer.callback_metrics``, where
    ``EarlyStopping``, ``ModelCheckpoint`` and :class:`ScalingForecastMonitor` read them; put
    back at train start after Lightning clears them):

    - ``dataprops/d_data``: ``d_data`` by MLE (k neighbours, MacKay-Ghahramani pooling);
    - ``dataprops/d_data_twonn``: ``d_data`` by TwoNN (Facco et al. 2017);
    - ``dataprops/K_F``: exact ``K_F`` of the sample (``inf``: two differently-labelled
      identical inputs; absent without targets);
    - ``dataprops/K_F_median``: median sharpness ``K_F(0.5)`` under the reference protocol,
      the statistic the check compares (image inputs with class targets);
    - ``dataprops/K_F_ratio``: that value over the largest natural-image value;
    - ``dataprops/n_label_conflicts``: near-identical differently-labelled pairs;
    - ``dataprops/n_samples``: the sample size the values were measured on;
    - ``dataprops/n_train``: the training-set size ``N`` (``len`` of the dataset, or ``n_train``);
    - ``dataprops/time/fit_start``: seconds spent.

    To every logger (TensorBoard, MLflow, CSV files...; ``docs/loggers.md``) it also hands an image
    grid of the sharpest differently-labelled pairs and label conflicts (labels, distance,
    dataset indices) and the sharp-label warning text. With a ``WandbLogger`` it also writes the
    values to the run's summary and config and a table of the pairs with both inputs side by side
    (``dataprops/sharpest_pairs``).

    Cost: one sample read and one exact neighbour search over ``max_samples`` inputs at fit
    start (about a second for 1000 MNIST images on a CPU); nothing during training.

    Args:
        options: shared options (seed, how to read items, progress, memory budget).
        max_samples: size of the sample (``None``: the whole training set). The default
            matches the sample size of the shipped natural-image references.
        k: neighbours of the MLE estimate (paper: 20).
        top_pairs: how many of the sharpest pairs to report.
        warn_sharp_labels: warn (and alert in W&B) when the labels are sharp.
        alert_wait_s: at most one W&B alert per this many seconds.
        n_train: the training-set size ``N`` when the dataset has no ``len`` (a stream).

    Raises:
        ValueError: in ``__init__`` for impossible arguments; in ``setup`` when the fit has no
            training data or its items cannot be read as configured.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_dataprops.callbacks import DatasetPropertiesMonitor
        >>> trainer = Trainer(callbacks=[DatasetPropertiesMonitor(max_samples=500)], logger=False)
    """

    TIMED_WORK = ("fit_start",)

    def __init__(
        self,
        options: DataPropsOptions | None = None,
        *,
        max_samples: int | None = DEFAULT_CHECK_SAMPLES,
        k: int = DEFAULT_K,
        top_pairs: int = 8,
        warn_sharp_labels: bool = True,
        alert_wait_s: float = 3600.0,
        n_train: int | None = None,
    ) -> None:
        super().__init__(options)
        self.check_sample_size(k, max_samples, "max_samples")
        if top_pairs < 0:
            raise ValueError(f"top_pairs must be >= 0, got {top_pairs}.")
        if n_train is not None and n_train < 1:
            raise ValueError(f"n_train must be >= 1, got {n_train}.")
        self.max_samples = max_samples
        self.k = k
        self.top_pairs = top_pairs
        self.warn_sharp_labels = warn_sharp_labels
        self.alert_wait_s = alert_wait_s
        self.n_train = n_train
        self.fit_start_state: dict[str, Any] | None = None
        """Everything measured at fit start, in plain types (it goes into checkpoints)."""
        self.recomputed = False
        """Whether the last fit measured the properties (``False`` when restored on resume)."""
        self._dataset: Any = None
        self._pairs: SharpPairsFinding | None = None

    # ------------------------------------------------------------------ state
    def _state_key_parts(self) -> dict[str, Any]:
        return {"max_samples": self.max_samples, "k": self.k, "seed": self.options.seed}

    def _get_state(self) -> dict[str, Any]:
        return {"fit_start": self.fit_start_state}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.fit_start_state = state.get("fit_start")

    # ------------------------------------------------------------------ setup
    def _setup_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._dataset, _ = self.training_data(trainer)

    def _training_set_size(self, sample: Sample) -> int | None:
        """``N``: the option, else ``len`` of the dataset, else the items counted while sampling a
        stream that ended; ``None`` when unknown (a stream read only up to the bound)."""
        if self.n_train is not None:
            return self.n_train
        if hasattr(self._dataset, "__len__"):
            return len(self._dataset)
        if sample.n_source is not None and sample.n_source_how == "counted":
            rank_zero_info(
                f"{type(self).__name__}: the training data has no len(); N = {sample.n_source} "
                "items, counted while sampling the stream to its end."
            )
            return sample.n_source
        rank_zero_info(
            f"{type(self).__name__}: the training data has no len() and was read only up to its "
            f"bound, so the training-set size N is unknown ({len(sample)} items were sampled); "
            "pass n_train= to log it."
        )
        return None

    # ------------------------------------------------------------------ fit start
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)  # the configuration, to every logger
        if not self.active:
            return
        if self.fit_start_state is not None:
            rank_zero_info(f"{type(self).__name__}: fit-start values restored from the checkpoint.")
            self._publish(trainer, self.fit_start_state, None)
            return
        with untouched_rng():
            measured = self.guarded("dataset properties", self._measure, trainer, pl_module)
        if measured is None:
            return
        state, sample = measured
        self.recomputed = True
        self.fit_start_state = state
        self._publish(trainer, state, sample)
        cost = float(state["metrics"][names.seconds("fit_start")])
        self.log_fit_start(trainer, self.budget.charge(trainer, "fit_start", cost))

    def _measure(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> tuple[dict[str, Any], Sample]:
        started = time.perf_counter()
        sample = self.sample(self._dataset, self.max_samples)
        report = measure_dataset(
            sample,
            k=self.k,
            top_pairs=self.top_pairs,
            seed=self.options.seed,
            normalization=find_normalize(self._dataset),
            memory_budget_mb=self.options.memory_budget_mb,
            device=pl_module.device,
            distributed=trainer.world_size > 1,
            progress=self.show_progress(trainer),
        )
        state = self._state_of(report)
        sharpness = report.properties.label_sharpness_result
        if sharpness is not None:
            # For the loggers' image grid only (it holds inputs): not in the checkpointed state.
            self._pairs = self.guarded(
                "sharpest-pairs image",
                SharpPairsFinding.from_label_sharpness,
                sharpness,
                sample.inputs,
                index_map=report.indices,
                class_names=class_names_of(self._dataset),
            )
        n_train = self._training_set_size(sample)
        if n_train is not None:
            state["metrics"][names.N_TRAIN] = float(n_train)
        state["metrics"][names.seconds("fit_start")] = time.perf_counter() - started
        return state, sample

    def _state_of(self, report: DatasetReport) -> dict[str, Any]:
        """The checkpointed state: plain values of the one :class:`DatasetReport`."""
        props = report.properties
        if props.label_sharpness_result is None:
            rank_zero_info(
                f"{type(self).__name__}: the training data has no targets; K_F is not measured."
            )
        elif report.check is None and report.check_skipped is not None:
            also = "; only label conflicts are checked" if len(props.input_shape) < 2 else ""
            rank_zero_info(
                f"{type(self).__name__}: the sharp-label check is skipped "
                f"({report.check_skipped}){also}."
            )
        message = report.message()
        return {
            "metrics": report.metrics(),
            "n": props.n,
            "input_shape": list(props.input_shape),
            "duplicates": props.duplicates.n_duplicates,
            "pairs": report.pairs(),
            "assessment": None if message is None else {"is_sharp": True, "message": message},
        }

    def _publish(self, trainer: pl.Trainer, state: dict[str, Any], sample: Sample | None) -> None:
        del sample  # the pairs' inputs travel in self._pairs
        self.log_fit_start(trainer, state["metrics"])
        message = self._sharp_message(state)
        if message is not None and self.warn_sharp_labels:
            rank_zero_warn(message, category=SharpLabelsWarning)
        context = {
            "n": state["n"],
            "input_shape": state["input_shape"],
            "k": self.k,
            "seed": self.options.seed,
        }
        self.publish(trainer, RunSummaryFinding(dict(state["metrics"]), context))
        if self._pairs is not None:
            self.publish(trainer, self._pairs)
        if message is not None and self.warn_sharp_labels:
            warning = TextFinding(
                SHARP_LABELS_TITLE,
                message,
                key="sharp_labels",
                level="warning",
                alert_wait_s=self.alert_wait_s,
            )
            self.publish(trainer, warning)

    @staticmethod
    def _sharp_message(state: dict[str, Any]) -> str | None:
        assessment = state.get("assessment")
        if not assessment or not assessment["is_sharp"]:
            return None
        return str(assessment["message"])

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        # Lightning clears callback_metrics after the sanity check: put the values back so that
        # EarlyStopping, ModelCheckpoint and the forecast can read them.
        if self.active and self.fit_start_state is not None:
            for name, value in self.fit_start_state["metrics"].items():
                trainer.callback_metrics[name] = torch.tensor(float(value))
