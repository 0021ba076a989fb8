"""The sharp-label decision: one function, used by the fit-start callback and the command line.

Exact ``K_F`` is a maximum set by one pair, so a single coincidence (two sky-blue photos, one an
airplane and one a bird) decides it; on natural photos it overlaps the medical values. The check
therefore compares the **median sharpness** ``K_F(0.5) = 1 / median_i d_i`` (``d_i``: the
distance from sample ``i`` to its nearest differently-labelled sample), measured under the
reference protocol, with the largest value measured on natural images under the same protocol,
class count and sample size; the statistic and its tolerance were chosen by the study in
``docs/reference_values.md``. Independently, **label conflicts** (near-identical inputs with
different labels) always make the check fire: they are often labelling errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lightning_dataprops.data.selection import check_max_samples, select_indices
from lightning_dataprops.findings.format import format_label
from lightning_dataprops.functional._validation import as_tensor
from lightning_dataprops.functional.constants import DEFAULT_CHECK_SAMPLES
from lightning_dataprops.functional.label_sharpness import label_sharpness
from lightning_dataprops.functional.results import LabelSharpnessResult, SharpPair, pairs_at
from lightning_dataprops.functional.robust_sharpness import conflicts_said_elsewhere
from lightning_dataprops.functional.targets import normalize_targets, unlabelled_mask
from lightning_dataprops.references.bands import ReferenceBand, reference_band, reference_rule
from lightning_dataprops.references.protocol import protocol_for, to_reference_protocol

__all__ = ["SharpnessCheck", "check_label_sharpness"]

_IMPLICATIONS = (
    "Sharp labels raise the test loss at every training-set size (the paper's bound scales like "
    "K_F * N^(-1/d_data)), so this task needs more training samples per unit of loss than a "
    "natural-image task of the same intrinsic dimension, and models trained on it tend to be "
    "more fragile under adversarial attack."
)
_ADVICE = (
    "Look at the closest differently-labelled pairs (listed here, and drawn as images in the "
    "loggers and in the HTML report): near-identical inputs with different labels are often "
    "labelling errors or duplicated images. Consider a label review, and more training data."
)


def _pair_dict(pair: SharpPair, index_map: Sequence[int] | None) -> dict[str, Any]:
    """A pair as JSON, with dataset indices beside the sample positions when they are known."""
    out = pair.to_dict()
    if index_map is not None:
        out["index_i"], out["index_j"] = int(index_map[pair.i]), int(index_map[pair.j])
    return out


def statistic_value(result: LabelSharpnessResult, statistic: str) -> float:
    """The value of a study statistic (``"K_F"``, ``"K_F_qXX"``, ``"scale_free_*"``)."""
    robust = result.robust
    if statistic == "K_F":
        return result.value
    if robust is None:
        raise ValueError(f"{statistic} needs class labels and the exact method.")
    if statistic.startswith("K_F_q"):
        return robust.quantiles[int(statistic[5:]) / 100]
    if statistic == "scale_free_K_F":
        return robust.scale * result.value
    if statistic == "scale_free_q50":
        return robust.scale * robust.median
    raise ValueError(f"unknown statistic {statistic!r}.")


_SPACE_NOTE = (
    ", of the checked images resized and min-max scaled as the references were; the K_F "
    "measured on the data as given (dataprops/K_F) can differ"
)


@dataclass(frozen=True)
class SharpnessCheck:
    """Are a sample's labels sharp compared with natural images? (All numbers in the protocol's
    space: distances between protocol images, sharpness in 1 / that distance.)

    Attributes:
        is_sharp: the statistic exceeds the threshold, or there are label conflicts.
        statistic: the statistic compared (``"K_F_q50"``: the median sharpness).
        value: its value on the sample.
        threshold: ``tolerance`` x the largest natural value (``band.maximum``).
        tolerance: the factor chosen by the study.
        ratio: ``value / band.maximum``.
        band: the natural-image references it was compared with.
        K_F: exact label sharpness of the sample under the protocol (``inf``: a conflict).
        pairs: the sharpest differently-labelled pairs (indices into the sample).
        conflicts: near-identical differently-labelled pairs (indices into the sample).
        per_class_pair: ``(a, b) -> (median sharpness, points)`` where classes meet.
        protocol: ``"gray28"`` or ``"rgb32"``.
        n: samples measured (the labelled ones, negative class ids left out, subsampled to
            ``max_samples``).
        n_classes: classes in the sample.
        input_shape: shape of one input as given.
        n_given: samples given.
        positions: the positions (into the inputs given) of the subsample measured, or ``None``
            when every labelled sample was.
    """

    is_sharp: bool
    statistic: str
    value: float
    threshold: float
    tolerance: float
    ratio: float
    band: ReferenceBand
    K_F: float
    pairs: tuple[SharpPair, ...]
    conflicts: tuple[SharpPair, ...]
    per_class_pair: dict[tuple[int, int], tuple[float, int]]
    protocol: str
    n: int
    n_classes: int
    input_shape: tuple[int, ...]
    n_given: int | None = None
    positions: tuple[int, ...] | None = None

    @property
    def statistic_is_sharp(self) -> bool:
        """The dataset-level statistic alone exceeds the threshold (conflicts aside)."""
        return self.value > self.threshold

    def _subsample_text(self) -> str:
        if self.positions is None or self.n_given is None:
            return ""
        return f" (a seeded class-stratified subsample of the {self.n_given} given)"

    def explain(self, index_map: Sequence[int] | None = None) -> str:
        """One paragraph: what was measured, against what, the verdict, what it implies and
        what to do. ``index_map`` turns sample positions into dataset indices in the text."""

        def index(i: int) -> int:
            return i if index_map is None else int(index_map[i])

        what = (
            f"Median label sharpness K_F(0.5) = {self.value:.3f} (1 / the median distance from a "
            f"sample to its nearest differently-labelled sample, distances between protocol "
            f"images scaled to [0, 1]), measured on {self.n} samples{self._subsample_text()} "
            f"({self.n_classes} classes) under the {self.protocol} protocol, against "
            f"{self.band.describe()}; the warning threshold is {self.threshold:.3f} "
            f"({self.tolerance:g} x the natural maximum)."
        )
        if self.statistic != "K_F_q50":
            what = what.replace("Median label sharpness K_F(0.5)", self.statistic)
        parts = [what]
        if self.statistic_is_sharp:
            parts.append(
                f"The labels are sharp: {self.ratio:.2f}x the sharpest natural-image draw, in the "
                f"same space (there, exact K_F = {self.K_F:.3f}{_SPACE_NOTE})."
            )
        else:
            parts.append(
                f"The labels are not sharper than natural images ({self.ratio:.2f}x the sharpest "
                f"natural draw; there, exact K_F = {self.K_F:.3f}{_SPACE_NOTE})."
            )
        if self.conflicts:
            shown = ", ".join(
                f"{index(p.i)} and {index(p.j)} "
                f"(labels {format_label(p.label_i)} vs {format_label(p.label_j)}, "
                f"distance {p.distance:.3g})"
                for p in self.conflicts[:5]
            )
            more = f" and {len(self.conflicts) - 5} more" if len(self.conflicts) > 5 else ""
            parts.append(
                f"Label conflicts: {len(self.conflicts)} pair(s) of near-identical samples carry "
                f"different labels: {shown}{more}."
            )
        elif self.pairs:
            top = self.pairs[0]
            parts.append(
                f"The closest differently-labelled pair is samples {index(top.i)} and "
                f"{index(top.j)} (labels "
                f"{format_label(top.label_i)} vs {format_label(top.label_j)}, "
                f"distance {top.distance:.3g} between protocol images)."
            )
        if self.statistic_is_sharp:
            parts += [_IMPLICATIONS, _ADVICE]
        elif self.conflicts:
            parts.append(
                "The check fires for these conflicts, not for the labels as a whole: look at the "
                "listed pairs, which are often labelling errors or duplicated images."
            )
        return " ".join(parts)

    def to_dict(self, index_map: Sequence[int] | None = None) -> dict[str, Any]:
        """A JSON-ready dictionary (``index_map``: as in :meth:`explain`, for the text)."""
        return {
            "is_sharp": self.is_sharp,
            "statistic": self.statistic,
            "value": self.value,
            "threshold": self.threshold,
            "tolerance": self.tolerance,
            "ratio": self.ratio,
            "band": {
                "datasets": list(self.band.datasets),
                "protocol": self.band.protocol,
                "n": self.band.measured_n,
                "n_classes": self.band.n_classes,
                "minimum": self.band.minimum,
                "median": self.band.median,
                "maximum": self.band.maximum,
            },
            "K_F": self.K_F if math.isfinite(self.K_F) else "inf",
            "pairs": [_pair_dict(p, index_map) for p in self.pairs],
            "conflicts": [_pair_dict(p, index_map) for p in self.conflicts],
            "per_class_pair": [
                {"classes": list(k), "median_sharpness": v, "count": c}
                for k, (v, c) in sorted(self.per_class_pair.items())
            ],
            "protocol": self.protocol,
            "n": self.n,
            "n_classes": self.n_classes,
            "input_shape": list(self.input_shape),
            "explanation": self.explain(index_map),
        }

    def _repr_html_(self) -> str:
        """A compact card for notebooks (:func:`lightning_dataprops.findings.cards.result_card`)."""
        from lightning_dataprops.findings.cards import result_card

        return result_card(self)


def check_label_sharpness(
    inputs: Any,
    targets: Any,
    *,
    tolerance: float | None = None,
    conflict_rtol: float | None = None,
    top_pairs: int = 8,
    max_samples: int | None = DEFAULT_CHECK_SAMPLES,
    seed: int = 0,
    memory_budget_mb: float | None = None,
    device: torch.device | str | None = None,
    distributed: bool = False,
    progress: bool | None = None,
) -> SharpnessCheck:
    """Decide whether a labelled sample of images has sharp labels, compared with natural images.

    The sample is brought to the reference protocol (:func:`to_reference_protocol`: colour
    images to 32x32 RGB, grayscale ones to 28x28, both min-max scaled to [0, 1], so any
    resolution, channel count and intensity range works), one exact neighbour pass measures the
    median sharpness ``K_F(0.5)``, exact ``K_F`` and the label conflicts, and ``K_F(0.5)`` is
    compared with natural images at the same protocol, class count and sample size. More
    labelled samples than ``max_samples`` (1000, the references' size) are first reduced to a
    seeded, class-stratified subsample, the one the callbacks, ``measure_dataset`` and
    ``dataprops measure`` check: the same images give the same verdict through every path.

    Args:
        inputs: ``(n, C, H, W)``, ``(n, H, W)`` or ``(n, H, W, C)`` images (tensor or array).
        targets: ``(n,)`` integer class ids or ``(n, C)`` one-hot rows (at least 2 classes).
        tolerance: factor over the natural maximum (default: the study's,
            :func:`~lightning_dataprops.references.reference_rule`).
        conflict_rtol: conflicts are pairs closer than this times the median nearest-neighbour
            distance (default: the study's).
        top_pairs: how many of the sharpest pairs to keep.
        max_samples: the check's sample size: more labelled samples are subsampled (seeded,
            class-stratified, :func:`~lightning_dataprops.sample_dataset`'s rule); ``None``:
            all of them (the references were measured at 1000, so the band is then
            extrapolated to another size). Pair indices stay indices into ``inputs``.
        seed: seed of that subsample.
        memory_budget_mb: working-memory bound of the neighbour search.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (512 MiB unless changed).
        device: where to compute (default: the inputs' device).
        distributed: share the neighbour pass among the ranks of the default process group
            (every rank passes the same sample and gets the same check).
        progress: show a progress bar.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (off unless changed).

    Returns:
        A :class:`SharpnessCheck`; ``explain()`` gives the paragraph a user reads.

    Raises:
        ValueError: non-image inputs (no reference exists), regression or single-class targets,
            mismatched lengths, NaN.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.rand(400, 1, 28, 28, generator=g)
        >>> y = torch.arange(400) % 2
        >>> check = check_label_sharpness(x, y)
        >>> check.protocol, check.is_sharp, check.conflicts
        ('gray28', False, ())
        >>> x[1] = x[0]  # a duplicated image with the other label
        >>> check_label_sharpness(x, y).is_sharp
        True
    """
    images = as_tensor(inputs, "inputs")
    if device is not None:
        images = images.to(device)
    n = int(images.shape[0]) if images.ndim else 0
    labels = normalize_targets(targets, n, "auto", name="targets", min_classes=2)
    if not labels.is_class:
        raise ValueError(
            "check_label_sharpness needs class targets (integer ids or one-hot rows); these are "
            "floating-point (regression) targets. Pass class ids, e.g. targets.long()."
        )
    rule = reference_rule()
    tolerance = float(rule["tolerance"] if tolerance is None else tolerance)
    rtol = float(rule["conflict_rtol"] if conflict_rtol is None else conflict_rtol)
    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive, got {tolerance!r}.")
    check_max_samples(max_samples)
    positions = _check_positions(labels.values, max_samples, seed)
    measured = images if positions is None else images[positions.to(images.device)]
    values = labels.values if positions is None else labels.values[positions]
    protocol = protocol_for(measured)
    points = to_reference_protocol(measured, protocol).flatten(1)
    with conflicts_said_elsewhere():
        result = label_sharpness(
            points,
            values,
            top_pairs=top_pairs,
            memory_budget_mb=memory_budget_mb,
            conflict_rtol=rtol,
            progress=progress,
        )
    robust = result.robust
    assert robust is not None and labels.n_classes is not None
    statistic = str(rule["statistic"])
    value = statistic_value(result, statistic)
    # Unlabelled samples (negative class ids) are left out of K_F: the band is the one of the
    # samples measured.
    band = reference_band(result.n, labels.n_classes, protocol, statistic)
    threshold = tolerance * band.maximum
    # Pair indices among the inputs given, also when a subsample was measured.
    given = None if positions is None else positions.tolist()
    pairs = tuple(result.pairs) if given is None else pairs_at(result.pairs, given)
    conflicts = tuple(result.conflicts) if given is None else pairs_at(result.conflicts, given)
    return SharpnessCheck(
        is_sharp=value > threshold or bool(conflicts),
        statistic=statistic,
        value=value,
        threshold=threshold,
        tolerance=tolerance,
        ratio=value / band.maximum,
        band=band,
        K_F=result.value,
        pairs=pairs,
        conflicts=conflicts,
        per_class_pair=dict(robust.per_class_pair),
        protocol=protocol,
        n=result.n,
        n_classes=labels.n_classes,
        input_shape=tuple(images.shape[1:]),
        n_given=n,
        positions=None if given is None else tuple(given),
    )


def _check_positions(
    values: torch.Tensor, max_samples: int | None, seed: int
) -> torch.Tensor | None:
    """The positions of the check's subsample of the labelled samples (``None``: all)."""
    labelled = (~unlabelled_mask(values)).nonzero().flatten().cpu()
    if max_samples is None or labelled.numel() <= max_samples:
        return None
    chosen = select_indices(labelled.numel(), values.cpu()[labelled], max_samples, True, seed)
    return labelled[torch.from_numpy(chosen)]
