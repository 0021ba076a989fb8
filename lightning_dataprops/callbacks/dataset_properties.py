"""DatasetPropertiesMonitor: d_data and K_F of the training set, measured once at fit start."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info

from lightning_dataprops import names
from lightning_dataprops._warnings import warn_each_time
from lightning_dataprops.callbacks._base import DataPropsCallback, DataPropsOptions, untouched_rng
from lightning_dataprops.callbacks._fit_start_state import (
    fit_start_state,
    pair_inputs,
    plain_pairs,
)
from lightning_dataprops.callbacks._k_f_alone import k_f_alone
from lightning_dataprops.callbacks._normalize import (
    NormalizationOption,
    check_normalization_option,
    resolve_normalization,
)
from lightning_dataprops.data import Sample, class_names_of
from lightning_dataprops.data.find_normalize import auto_normalization
from lightning_dataprops.data.normalization import Normalization, pixel_inputs
from lightning_dataprops.dataset_report import DatasetReport, measure_dataset, pairs_json
from lightning_dataprops.findings import (
    PairExample,
    RunSummaryFinding,
    SharpPairsFinding,
    TextFinding,
)
from lightning_dataprops.functional._validation import TooFewSamplesError
from lightning_dataprops.functional.constants import DEFAULT_CHECK_SAMPLES, DEFAULT_K
from lightning_dataprops.functional.estimators import chosen_estimators
from lightning_dataprops.functional.results import LabelSharpnessResult

SHARP_LABELS_TITLE = "Sharp labels in the training set"


class SharpLabelsWarning(UserWarning):
    """The training set's labels are sharp compared with natural-image references."""


class EstimatorsDisagreeWarning(UserWarning):
    """The intrinsic-dimension estimators of the training set disagree beyond their uncertainty."""


ESTIMATORS_DISAGREE_TITLE = "Intrinsic-dimension estimators disagree"
ESTIMATOR_NOTES_TITLE = "Intrinsic-dimension estimator notes"


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
    neighbour search is sharded across ranks and every rank gets the same values.

    Every value is in pixel space, the space of the references and of ``dataprops measure``
    (which reads uint8 files as ``pixels / 255``): a ``Normalize(mean, std)`` in the Dataset
    (found by ``normalization="auto"``, torchvision-style with ``.mean``/``.std``) or stated
    with ``normalization=(mean, std)`` is undone before the measurement, so the same images give
    the same ``K_F`` and ``d_data`` whatever normalisation the pipeline applies. Image inputs
    outside ``[0, 1]`` with no known normalisation (a hand-written one, e.g. a lambda) are
    measured in their own units, with one :class:`UnknownNormalizationWarning` saying to pass
    ``normalization=(mean, std)``.

    The results are kept in the callback's checkpoint state, with the inputs of the sharpest
    pairs: a resumed fit does not recompute them, and hands the values, the pairs' picture and
    the warning text to the resumed run's loggers at the resumed step.

    Logged once at fit start (at the resumed step when resuming; to every logger and to
    ``trainer.callback_metrics``, where
    ``EarlyStopping``, ``ModelCheckpoint`` and :class:`ScalingForecastMonitor` read them; put
    back at train start after Lightning clears them):

    - ``dataprops/d_data``: ``d_data`` by MLE (k neighbours, MacKay-Ghahramani pooling);
    - ``dataprops/d_data_twonn``: ``d_data`` by TwoNN (Facco et al. 2017);
    - ``dataprops/d_data_<name>``: ``d_data`` by each estimator chosen with ``estimators=``
      (:func:`~lightning_dataprops.functional.estimators.available_estimators`, or one you
      registered with :func:`~lightning_dataprops.functional.register_estimator`), from the same
      neighbour pass;
    - ``dataprops/d_data_spread``: the spread of the estimators computed,
      ``(highest - lowest) / median``; when they disagree beyond their uncertainty, one
      :class:`EstimatorsDisagreeWarning` says so (and the loggers get its text);
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
        estimators: registered intrinsic-dimension estimators to compute besides MLE and TwoNN
            (names; an unknown name is refused here); ``None``: the default ones (GRIDE and the
            calibrated estimator, :data:`~lightning_dataprops.functional.dataset_properties.
            DEFAULT_EXTRA`), ``()``: MLE and TwoNN only.
        top_pairs: how many of the sharpest pairs to report.
        warn_sharp_labels: warn (and alert in W&B) when the labels are sharp.
        alert_wait_s: at most one W&B alert per this many seconds.
        n_train: the training-set size ``N`` when the dataset has no ``len`` (a stream).
        normalization: ``"auto"`` (undo a ``Normalize(mean, std)`` found in the Dataset),
            ``(mean, std)`` (the normalisation your pipeline applies, one value or one per
            channel, e.g. for a hand-written transform or data normalised before a
            ``TensorDataset``), or ``None`` (measure the inputs as given).

    Raises:
        ValueError: in ``__init__`` for impossible arguments (a ``normalization`` that is not
            ``(mean, std)``); in ``setup`` when the fit has no
            training data or its items cannot be read as configured.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_dataprops.callbacks import DatasetPropertiesMonitor
        >>> trainer = Trainer(callbacks=[DatasetPropertiesMonitor(max_samples=500)], logger=False)
    """

    STATE_VERSION = 2  # 2: values in pixel space, the sharpest pairs' inputs kept
    TIMED_WORK = ("fit_start",)

    def __init__(
        self,
        options: DataPropsOptions | None = None,
        *,
        max_samples: int | None = DEFAULT_CHECK_SAMPLES,
        k: int = DEFAULT_K,
        estimators: Sequence[str] | None = None,
        top_pairs: int = 8,
        warn_sharp_labels: bool = True,
        alert_wait_s: float = 3600.0,
        n_train: int | None = None,
        normalization: NormalizationOption = "auto",
    ) -> None:
        super().__init__(options)
        self.check_sample_size(k, max_samples, "max_samples")
        if top_pairs < 0:
            raise ValueError(f"top_pairs must be >= 0, got {top_pairs}.")
        if n_train is not None and n_train < 1:
            raise ValueError(f"n_train must be >= 1, got {n_train}.")
        check_normalization_option(normalization)
        self.max_samples = max_samples
        self.k = k
        self.estimators = None if estimators is None else chosen_estimators((), estimators)
        self.top_pairs = top_pairs
        self.warn_sharp_labels = warn_sharp_labels
        self.alert_wait_s = alert_wait_s
        self.n_train = n_train
        self.normalization = normalization
        self.fit_start_state: dict[str, Any] | None = None
        """Everything measured at fit start, in plain types (it goes into checkpoints)."""
        self.recomputed = False
        """Whether the last fit measured the properties (``False`` when restored on resume)."""
        self._dataset: Any = None
        self._stats: tuple[list[float], list[float]] | None = None
        self._pairs: SharpPairsFinding | None = None
        self._pair_inputs: torch.Tensor | None = None
        self._unpublished = False

    # ------------------------------------------------------------------ state
    def _state_key_parts(self) -> dict[str, Any]:
        parts: dict[str, Any] = {"max_samples": self.max_samples, "k": self.k}
        if self.estimators is not None:
            parts["estimators"] = ",".join(self.estimators)
        parts["seed"] = self.options.seed
        return parts

    def _get_state(self) -> dict[str, Any]:
        # The pairs' inputs (a few images) travel beside the plain values, so that a resumed run
        # can show the same picture without reading or measuring anything again.
        return {"fit_start": self.fit_start_state, "pair_inputs": self._pair_inputs}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.fit_start_state = state.get("fit_start")
        inputs = state.get("pair_inputs")
        self._pair_inputs = inputs if isinstance(inputs, torch.Tensor) else None

    # ------------------------------------------------------------------ setup
    def _setup_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Per fit: a reused callback measures this fit's data. A resumed fit gets its values
        # back from the checkpoint, which Lightning loads after setup.
        self.fit_start_state = None
        self.recomputed = False
        self._pairs = None
        self._dataset = self.training_data(trainer).dataset
        self._stats = None
        if self.fit_start_state is None:  # restored values need no data
            owner = type(self).__name__
            self._stats = resolve_normalization(self.normalization, self._dataset, owner)

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
        self._unpublished = False
        if self.fit_start_state is not None:
            rank_zero_info(
                f"{type(self).__name__}: fit-start values restored from the checkpoint; they go "
                "to the loggers at the resumed step."
            )
            self._pairs = self._restored_pairs(self.fit_start_state)
            self._publish_or_defer(trainer, self.fit_start_state)
            return
        with untouched_rng():
            state = self.guarded("dataset properties", self._measure, trainer, pl_module)
        if state is None:
            return
        self.recomputed = True
        self.fit_start_state = state
        cost = float(state["metrics"][names.seconds("fit_start")])
        self.budget.charge(trainer, "fit_start", cost)
        self._publish_or_defer(trainer, state)

    def _measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        started = time.perf_counter()
        self._pairs, self._pair_inputs = None, None
        sample = self.sample(self._dataset, self.max_samples)
        if isinstance(self.normalization, str):  # "auto"
            self._stats = auto_normalization(self._stats, sample.inputs, type(self).__name__)
        sharpness: LabelSharpnessResult | None
        normalization: Normalization | None
        try:
            report = measure_dataset(
                sample,
                k=self.k,
                estimators=self.estimators,
                top_pairs=self.top_pairs,
                seed=self.options.seed,
                normalization=self._stats,
                memory_budget_mb=self.options.memory_budget_mb,
                device=pl_module.device,
                distributed=trainer.world_size > 1,
                progress=self.show_progress(trainer),
            )
        except TooFewSamplesError as error:  # no d_data; K_F needs only two labelled samples
            metrics, sharpness = k_f_alone(
                sample, self._stats, error, top_pairs=self.top_pairs, owner=type(self).__name__
            )
            normalization, index_map = self._stats, tuple(sample.indices.tolist())
            pairs = pairs_json(sharpness, index_map)
            state = fit_start_state(metrics, len(sample), sample.input_shape, pairs, normalization)
        else:
            state = self._state_of(report)
            sharpness = report.properties.label_sharpness_result
            normalization, index_map = report.normalization, report.indices
        if sharpness is not None:
            # For the loggers' image grid only (it holds inputs): not in the checkpointed state.
            self._pairs = self.guarded(
                "sharpest-pairs image",
                SharpPairsFinding.from_label_sharpness,
                sharpness,
                pixel_inputs(sample.inputs, normalization),
                index_map=index_map,
                class_names=class_names_of(self._dataset),
            )
            state["sharpest_pairs"] = None if self._pairs is None else plain_pairs(self._pairs)
            self._pair_inputs = None if self._pairs is None else pair_inputs(self._pairs)
        n_train = self._training_set_size(sample)
        if n_train is not None:
            state["metrics"][names.N_TRAIN] = float(n_train)
        state["metrics"][names.seconds("fit_start")] = time.perf_counter() - started
        return state

    def _state_of(self, report: DatasetReport) -> dict[str, Any]:
        """The checkpointed state: plain values of the one :class:`DatasetReport`."""
        props = report.properties
        if props.label_sharpness_result is None and report.check_skipped != "no labels":
            warn_each_time(
                f"{type(self).__name__}: K_F is not measured ({report.check_skipped}).",
                UserWarning,
            )
        elif props.label_sharpness_result is None:
            rank_zero_info(
                f"{type(self).__name__}: the training data has no targets; K_F is not measured."
            )
        elif report.check is None and report.check_skipped is not None:
            also = "; only label conflicts are checked" if len(props.input_shape) < 2 else ""
            rank_zero_info(
                f"{type(self).__name__}: the sharp-label check is skipped "
                f"({report.check_skipped}){also}."
            )
        duplicates = props.duplicates
        if duplicates.n_duplicates >= max(1, props.n // 100):
            rank_zero_info(
                f"{type(self).__name__}: {duplicates.n_duplicates} of the {props.n} sampled "
                f"inputs duplicate others ({duplicates.n_groups} groups); d_data is measured on "
                f"the {props.n - duplicates.n_duplicates} distinct ones, K_F on all of them "
                "(dataprops/n_duplicates)."
            )
        return fit_start_state(
            report.metrics(),
            props.n,
            props.input_shape,
            report.pairs(),
            report.normalization,
            duplicates=props.duplicates.n_duplicates,
            message=report.message(),
            estimators_disagree=report.estimators_disagree,
            estimator_notes={  # by logged name
                names.D_DATA
                if name == props.default_estimator
                else names.d_data_estimate(name): note
                for name, note in report.estimator_notes.items()
            },
        )

    def _restored_pairs(self, state: dict[str, Any]) -> SharpPairsFinding | None:
        """The sharpest-pairs finding of a restored state, with the inputs it kept."""
        plain = state.get("sharpest_pairs")
        if plain is None:
            return None
        inputs = self._pair_inputs
        if inputs is not None and len(inputs) != len(plain["pairs"]):
            inputs = None  # not this state's inputs: the numbers without the picture
        pairs = tuple(
            PairExample(
                **fields,
                input_i=None if inputs is None else inputs[row, 0],
                input_j=None if inputs is None else inputs[row, 1],
            )
            for row, fields in enumerate(plain["pairs"])
        )
        return SharpPairsFinding(
            pairs, K_F=plain["K_F"], n=plain["n"], n_conflicts=plain["n_conflicts"]
        )

    def _publish(self, trainer: pl.Trainer, state: dict[str, Any]) -> None:
        """The values, the pairs' picture and the warning text, to every logger at the
        trainer's step (0 at fit start, the resumed step when called at train start), with the
        overhead ledger on the same row when this fit measured them."""
        ledger = self.budget.report(trainer) if self.recomputed else {}
        self.log_fit_start(trainer, {**state["metrics"], **ledger})
        message = self._sharp_message(state)
        if message is not None and self.warn_sharp_labels:
            warn_each_time(message, SharpLabelsWarning)
        disagree = state.get("estimators_disagree")
        if disagree:
            warn_each_time(disagree, EstimatorsDisagreeWarning)
        notes = state.get("estimator_notes") or {}
        for name, note in notes.items():
            rank_zero_info(f"{type(self).__name__}: {name}: {note}")
        context = {
            "n": state["n"],
            "input_shape": state["input_shape"],
            "k": self.k,
            "seed": self.options.seed,
            "normalization_undone": state.get("normalization"),
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
        if disagree:
            self.publish(
                trainer,
                TextFinding(ESTIMATORS_DISAGREE_TITLE, disagree, key="estimators_disagree"),
            )
        if notes:
            body = "\n".join(f"- {name}: {note}" for name, note in notes.items())
            self.publish(trainer, TextFinding(ESTIMATOR_NOTES_TITLE, body, key="estimator_notes"))

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
            if self._unpublished:  # a resumed fit: now at the resumed step
                self._publish_deferred(trainer)
            for name, value in self.fit_start_state["metrics"].items():
                trainer.callback_metrics[name] = torch.tensor(float(value))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A resumed fit with nothing left to train never reaches on_train_start.
        if self.active and self.fit_start_state is not None and self._unpublished:
            self._publish_deferred(trainer)

    def _publish_or_defer(self, trainer: pl.Trainer, state: dict[str, Any]) -> None:
        """Publish now, or, in a fit resumed from a checkpoint (whose global step is restored
        only after ``on_fit_start``), put the values into ``callback_metrics`` now and hand
        everything to the loggers at train start, at the resumed step."""
        if getattr(trainer, "ckpt_path", None) is None:
            self._publish(trainer, state)
            return
        for name, value in state["metrics"].items():
            trainer.callback_metrics[name] = torch.tensor(float(value))
        self._unpublished = True

    def _publish_deferred(self, trainer: pl.Trainer) -> None:
        self._unpublished = False
        assert self.fit_start_state is not None
        self._publish(trainer, self.fit_start_state)
