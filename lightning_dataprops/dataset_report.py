"""The one fit-start measurement: a sample's properties and its sharp-label check, together.

:func:`measure_dataset` is what both the fit-start callback
(:class:`~lightning_dataprops.callbacks.DatasetPropertiesMonitor`) and the command line
(``dataprops measure``) run on a :class:`~lightning_dataprops.data.Sample`:

0. a known ``Normalize(mean, std)`` (``normalization=``) is undone first, so that every value
   is in pixel space: the space of the references and of ``dataprops measure`` (which reads
   uint8 files as ``pixels / 255`` in ``[0, 1]``), whatever normalisation the training pipeline
   applies;
1. one exact neighbour pass (:func:`~lightning_dataprops.functional.dataset_properties`) gives
   ``d_data`` (MLE, TwoNN) and exact ``K_F``;
2. with class targets and image inputs, the sharp-label check
   (:func:`~lightning_dataprops.references.check_label_sharpness`) compares the median sharpness
   under the reference protocol with natural images, on a stratified subsample of at most
   ``check_samples`` items (the references' sample size); without image inputs only the label
   conflicts of the raw inputs are reported; otherwise the check is skipped, and
   :attr:`DatasetReport.check_skipped` says why.

The :class:`DatasetReport` carries the dataset index of every sample position once, so its
text, its metrics and its JSON document name training samples, not sample positions. What a
user sees of the verdict is the callers' to decide (the callback's ``SharpLabelsWarning``, the
command line's report); only problems with the input itself warn here (a ``Normalize`` found
in the Dataset that does not fit its inputs, float targets that look like class ids).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import torch

from lightning_dataprops import names
from lightning_dataprops.data import Sample
from lightning_dataprops.data.find_normalize import auto_normalization
from lightning_dataprops.data.normalization import Normalization, check_normalization, pixel_inputs
from lightning_dataprops.findings.format import format_label
from lightning_dataprops.functional._validation import ByteImagesWarning, nonfinite_items
from lightning_dataprops.functional.constants import (
    DEFAULT_CHECK_SAMPLES,
    DEFAULT_K,
)
from lightning_dataprops.functional.dataset_properties import dataset_properties
from lightning_dataprops.functional.results import (
    DatasetProperties,
    LabelSharpnessResult,
    SharpPair,
)
from lightning_dataprops.functional.robust_sharpness import conflicts_said_elsewhere
from lightning_dataprops.functional.targets import TargetType, normalize_targets, unlabelled_mask
from lightning_dataprops.references import SharpnessCheck, check_label_sharpness

__all__ = ["DatasetReport", "measure_dataset"]


@dataclass(frozen=True)
class DatasetReport:
    """What the fit-start measurement found on one sample.

    Attributes:
        properties: ``d_data`` (every estimator computed), exact ``K_F`` and their details, in
            pixel space when :attr:`normalization` was undone, else in the units of the inputs
            as given.
        check: the sharp-label check (:class:`~lightning_dataprops.references.SharpnessCheck`,
            in the reference protocol's units), or ``None`` when it was skipped.
        check_skipped: why the check was skipped (``None`` when it ran).
        raw_conflicts: for inputs that are not images (no reference protocol exists): the
            near-identical, differently-labelled pairs of the raw inputs; empty otherwise.
        indices: ``(n,)`` dataset index of every sample position.
        check_indices: the sample positions the check was measured on (a stratified subsample
            when the sample holds more than ``check_samples`` items).
        n_source: the number of items in the source (``None``: unknown, a stream).
        normalization: the ``(mean, std)`` undone before every measurement, if any.
    """

    properties: DatasetProperties
    check: SharpnessCheck | None
    check_skipped: str | None
    raw_conflicts: tuple[SharpPair, ...]
    indices: tuple[int, ...]
    check_indices: tuple[int, ...] = ()
    n_source: int | None = None
    normalization: Normalization | None = field(default=None, compare=False)

    @property
    def check_index_map(self) -> list[int]:
        """Dataset index of every sample position: the check's pairs index the sample (also when
        the check measured a subsample of it, :attr:`check_indices`)."""
        return list(self.indices)

    @property
    def is_sharp(self) -> bool:
        """The check fired (sharp labels or label conflicts), or the raw inputs of a non-image
        sample hold label conflicts."""
        if self.check is not None:
            return self.check.is_sharp
        return bool(self.raw_conflicts)

    def message(self) -> str | None:
        """The paragraph a user reads when :attr:`is_sharp` (dataset indices), else ``None``."""
        if not self.is_sharp:
            return None
        if self.check is not None:
            return self.check.explain(index_map=self.check_index_map)
        shown = ", ".join(
            f"{self.indices[p.i]} and {self.indices[p.j]} "
            f"(labels {format_label(p.label_i)} vs {format_label(p.label_j)})"
            for p in self.raw_conflicts[:5]
        )
        return (
            f"Label conflicts: {len(self.raw_conflicts)} pair(s) of near-identical training "
            f"samples carry different labels: {shown}. These are often labelling errors or "
            "duplicated samples; check them."
        )

    def metrics(self) -> dict[str, float]:
        """The logged scalars: ``d_data`` (the default estimator's), ``d_data_<name>`` of every
        other estimator computed (``d_data_twonn``, ...), their spread, ``K_F``, the check's
        statistic, its ratio to the natural maximum and the number of label conflicts, the
        sample size and its number of duplicates."""
        props = self.properties
        out: dict[str, float] = {
            names.D_DATA: props.d_data,
            names.D_DATA_TWONN: props.d_data_twonn,
        }
        for name, result in props.estimates.items():
            if name != props.default_estimator:
                out[names.d_data_estimate(name)] = result.value
        if props.spread is not None:
            out[names.D_DATA_SPREAD] = props.spread.relative
        out[names.N_SAMPLES] = float(props.n)
        out[names.N_DUPLICATES] = float(props.duplicates.n_duplicates)
        if props.K_F is not None:
            out[names.K_F] = props.K_F
        if self.check is not None:
            out[names.K_F_MEDIAN] = self.check.value
            out[names.K_F_RATIO] = self.check.ratio
            out[names.N_LABEL_CONFLICTS] = float(len(self.check.conflicts))
        return out

    def pairs(self) -> list[dict[str, Any]]:
        """The sharpest pairs of exact ``K_F`` as JSON, with their dataset indices."""
        sharpness = self.properties.label_sharpness_result
        return [] if sharpness is None else pairs_json(sharpness, self.indices)

    def check_dict(self) -> dict[str, Any]:
        """The check as JSON (dataset indices), or ``{"skipped": reason}``."""
        if self.check is None:
            return {"skipped": self.check_skipped}
        return self.check.to_dict(self.check_index_map)

    @property
    def estimators_disagree(self) -> str | None:
        """The paragraph a user reads when the intrinsic-dimension estimators disagree beyond
        their uncertainty (see :class:`~lightning_dataprops.functional.results.EstimatorSpread`),
        else ``None``."""
        spread = self.properties.spread
        return None if spread is None or not spread.disagree else spread.message

    @property
    def estimator_notes(self) -> dict[str, str]:
        """``{estimator name: note}`` for each intrinsic-dimension estimate that carries one: what
        a reader of its value must know (the calibrated estimator fell back to raw TwoNN, a
        sample size outside its table, families that fit equally well)."""
        return {
            name: result.note
            for name, result in self.properties.estimates.items()
            if result.note is not None
        }

    def _repr_html_(self) -> str:
        """Notebook cards: the properties' and the sharp-label check's
        (:func:`lightning_dataprops.findings.cards.result_card`)."""
        from lightning_dataprops.findings.cards import result_card

        return result_card(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document: the properties' fields (:meth:`DatasetProperties.to_dict`,
        the estimators' ``spread`` among them), ``sharp_label_check``, ``is_sharp``,
        ``message``, ``estimators_disagree`` and ``indices``."""
        document = self.properties.to_dict()
        document["estimators_disagree"] = self.estimators_disagree
        document["sharp_label_check"] = self.check_dict()
        document["is_sharp"] = self.is_sharp
        document["message"] = self.message()
        document["indices"] = list(self.indices)
        return document


def _check(
    inputs: torch.Tensor,
    targets: torch.Tensor | None,
    *,
    check_samples: int,
    seed: int,
    memory_budget_mb: float | None,
    device: torch.device | str | None,
    distributed: bool,
    progress: bool | None,
) -> tuple[SharpnessCheck | None, str | None, tuple[int, ...]]:
    """(check, why it was skipped, the positions it measured) on pixel-space ``inputs``."""
    if targets is None:
        return None, "no labels", ()
    if targets.is_floating_point():
        return None, "regression targets (the check needs class labels)", ()
    if inputs.ndim < 3:
        return None, "inputs are not images (no natural-image reference exists)", ()
    try:
        check = check_label_sharpness(
            inputs,
            targets,
            max_samples=check_samples,
            seed=seed,
            memory_budget_mb=memory_budget_mb,
            device=device,
            distributed=distributed,
            progress=progress,
        )
    except ValueError as error:  # e.g. a single class, or no reference at this size
        return None, str(error), ()
    if check.positions is not None:
        return check, None, check.positions
    # Every labelled sample (negative class ids are not a class).
    return check, None, tuple((~unlabelled_mask(targets)).nonzero().flatten().tolist())


def _single_class(targets: torch.Tensor | None) -> str | None:
    """Why ``K_F`` cannot be measured on class targets of fewer than 2 classes (else ``None``)."""
    if targets is None:
        return None
    norm = normalize_targets(targets)
    if norm.kind != "class" or (norm.n_classes or 0) >= 2:
        return None
    labelled = norm.values if norm.labelled is None else norm.values[norm.labelled]
    if labelled.numel() == 0:
        return (
            f"all {norm.values.numel()} samples are unlabelled (negative class ids): K_F and the "
            "sharp-label check need labelled samples of at least 2 classes"
        )
    return (
        f"all {labelled.numel()} labelled samples have the same label ({int(labelled[0])}): "
        "K_F and the sharp-label check need at least 2 classes; d_data is measured without "
        "them. If the training set holds other classes, the sample did not reach them: a "
        "subset taken from a dataset sorted by label (such as its first N items) holds one class"
    )


def pairs_json(sharpness: LabelSharpnessResult, indices: Sequence[int]) -> list[dict[str, Any]]:
    """The sharpest pairs of a ``K_F`` result as JSON, with the dataset ``indices`` of their
    sample positions (``index_i``, ``index_j``)."""
    return [
        {**pair.to_dict(), "index_i": indices[pair.i], "index_j": indices[pair.j]}
        for pair in sharpness.pairs
    ]


def _check_finite(inputs: torch.Tensor, indices: torch.Tensor) -> None:
    """Refuse NaN or infinite inputs naming the dataset items (the functions underneath can
    only name positions in the sample)."""
    found = nonfinite_items(inputs, indices)
    if found is not None:
        raise ValueError(
            f"{found[1]}; fix or remove those items (a corrupt file, a transform dividing by "
            "zero) before measuring."
        )


def measure_dataset(
    sample: Sample,
    *,
    k: int = DEFAULT_K,
    estimators: Sequence[str] | None = None,
    top_pairs: int = 8,
    n_bootstrap: int = 0,
    seed: int = 0,
    normalization: Normalization | Literal["auto"] | None = "auto",
    check_samples: int = DEFAULT_CHECK_SAMPLES,
    memory_budget_mb: float | None = None,
    device: torch.device | str | None = None,
    distributed: bool = False,
    progress: bool | None = None,
) -> DatasetReport:
    """Measure a sample's ``d_data``, ``K_F`` and sharp-label verdict: the fit-start measurement.

    Args:
        sample: a :class:`~lightning_dataprops.data.Sample` (``sample_dataset`` of a dataset,
            tensors or arrays); its ``indices`` name the dataset items in every result.
        k: neighbours of the MLE estimate (20 in the paper).
        estimators: registered estimators computed besides MLE and TwoNN, from the same pass
            (``None``: the default ones; see
            :func:`~lightning_dataprops.functional.dataset_properties`).
        top_pairs: how many of the sharpest pairs to keep.
        n_bootstrap: subsampling-bootstrap resamples for the ID standard errors (0: none).
        seed: seed of the bootstrap and of the check's stratified subsample.
        normalization: the ``(mean, std)`` of a ``Normalize`` applied to the inputs (one value,
            or one per channel). It is undone (``x * std + mean``) before every measurement, so
            ``d_data``, ``K_F`` and the check are in pixel space, as the references, the
            callbacks and ``dataprops measure`` are. ``"auto"`` (default): the one
            ``sample_dataset`` found in the Dataset (:attr:`Sample.normalization
            <lightning_dataprops.data.Sample.normalization>`), none for tensors and arrays.
            ``None``: the inputs are measured as given.
        check_samples: the check's sample size (the shipped references were measured at 1000).
        memory_budget_mb: working-memory bound of every neighbour search, in MiB.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (512 MiB unless changed).
        device: where to compute (default: where the inputs are).
        distributed: share each neighbour pass among the ranks of the default process group
            (every rank calls this with the same sample and gets the same report).
        progress: show progress bars.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (off unless changed).

    Returns:
        A :class:`DatasetReport`.

    Raises:
        ValueError: a ``normalization`` that does not fit the inputs
            (:func:`~lightning_dataprops.data.normalization.pixel_inputs`); bad inputs or
            targets for the measurement itself (too few samples for ``k``, NaN, mismatched
            lengths): see
            :func:`~lightning_dataprops.functional.dataset_properties`. A check that cannot run
            is skipped, with its reason in ``check_skipped``; class targets of a single class
            (or none labelled) give ``d_data`` without ``K_F`` and say so there.

    Example:
        >>> import torch
        >>> from lightning_dataprops.data import sample_dataset
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.rand(300, 1, 8, 8, generator=g)
        >>> sample = sample_dataset(x, torch.arange(300) % 2, max_samples=200)
        >>> report = measure_dataset(sample, k=10)
        >>> report.check.protocol, report.is_sharp, len(report.indices)
        ('gray28', False, 200)
    """
    if isinstance(normalization, str):
        if normalization != "auto":
            raise ValueError(
                f"normalization must be (mean, std), 'auto' or None, got {normalization!r}."
            )
        undone = auto_normalization(sample.normalization, sample.inputs, "measure_dataset")
    else:
        undone = None if normalization is None else check_normalization(normalization)
    inputs = pixel_inputs(sample.inputs, undone)
    _check_finite(inputs, sample.indices)
    one_class = _single_class(sample.targets)
    targets = None if one_class is not None else sample.targets
    with conflicts_said_elsewhere(), warnings.catch_warnings():
        # The units were settled above (a found Normalize undone, or the range said once).
        warnings.simplefilter("ignore", ByteImagesWarning)
        props = dataset_properties(
            inputs,
            targets,
            k=k,
            estimators=estimators,
            top_pairs=top_pairs,
            n_bootstrap=n_bootstrap,
            seed=seed,
            memory_budget_mb=memory_budget_mb,
            device=device,
            distributed=distributed,
            progress=progress,
            target_type=cast(TargetType, sample.target_type),
        )
        check, skipped, check_positions = _check(
            inputs,
            targets,
            check_samples=check_samples,
            seed=seed,
            memory_budget_mb=memory_budget_mb,
            device=device,
            distributed=distributed,
            progress=progress,
        )
    skipped = one_class or skipped
    raw_conflicts: tuple[SharpPair, ...] = ()
    sharpness = props.label_sharpness_result
    not_images = check is None and len(sample.input_shape) < 2
    if not_images and sharpness is not None and sharpness.target_type == "class":
        raw_conflicts = tuple(sharpness.conflicts)
    return DatasetReport(
        properties=props,
        check=check,
        check_skipped=skipped,
        raw_conflicts=raw_conflicts,
        indices=tuple(int(i) for i in sample.indices.tolist()),
        check_indices=check_positions,
        n_source=sample.n_source,
        normalization=undone,
    )
