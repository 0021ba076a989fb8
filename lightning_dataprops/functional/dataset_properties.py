"""d_data (MLE, TwoNN and any registered estimator) and label sharpness from ONE exact pass."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch

from lightning_dataprops.functional._kf_targets import KFTargets, kf_targets
from lightning_dataprops.functional._precision import full_precision_matmul
from lightning_dataprops.functional._validation import (
    as_points,
    check_choice,
    check_k,
    warn_if_byte_images,
)
from lightning_dataprops.functional.constants import (
    DEFAULT_DUPLICATE_RTOL,
    DEFAULT_K,
)
from lightning_dataprops.functional.distributed import checked_on_every_rank, sharded_knn_search
from lightning_dataprops.functional.estimators import (
    chosen_estimators,
    estimator_results,
    neighbours_needed,
)
from lightning_dataprops.functional.estimators.spread import estimator_spread
from lightning_dataprops.functional.intrinsic_dimension import (
    MLE_VARIANTS,
    TWONN_VARIANTS,
    MLEVariant,
    TwoNNVariant,
)
from lightning_dataprops.functional.knn import knn_search
from lightning_dataprops.functional.label_sharpness import label_sharpness, sharpness_from_graph
from lightning_dataprops.functional.results import DatasetProperties, LabelSharpnessResult
from lightning_dataprops.functional.targets import TargetType

ALWAYS: tuple[str, ...] = ("mle", "twonn")
"""The estimators every call computes (``d_data``, ``d_data_twonn``)."""
DEFAULT_ESTIMATOR = "mle"
"""The estimator behind ``d_data`` (the calibrated one did not meet its accuracy targets:
docs/benchmarks.md)."""
DEFAULT_EXTRA: tuple[str, ...] = ("gride", "calibrated")
"""Estimators computed by default besides MLE and TwoNN, for the spread."""


def dataset_properties(
    x: Any,
    y: Any = None,
    k: int = DEFAULT_K,
    *,
    estimators: Sequence[str] | None = None,
    mle_variant: MLEVariant = "mackay_ghahramani",
    twonn_variant: TwoNNVariant = "closed_form",
    target_type: TargetType = "auto",
    top_pairs: int = 10,
    duplicate_rtol: float = DEFAULT_DUPLICATE_RTOL,
    n_bootstrap: int = 0,
    bootstrap_fraction: float = 0.5,
    seed: int = 0,
    memory_budget_mb: float | None = None,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    distributed: bool = False,
    process_group: Any = None,
) -> DatasetProperties:
    """Intrinsic dimension by MLE, TwoNN and any chosen estimators and, given labels, label
    sharpness: one kNN pass.

    The neighbour search finds each sample's ``k`` nearest neighbours and, with class labels,
    its nearest differently-labelled neighbours in the same pass; duplicates are collapsed for
    the ID estimates and kept for ``K_F`` (a duplicate with another label is a label conflict).
    Regression targets need a separate all-pairs pass for ``K_F``.

    Args:
        x: ``(n, ...)`` inputs (tensor or array); each sample is flattened.
        y: optional targets (class ids, one-hot rows, class names with
            ``target_type="class"``, or float regression targets). Samples with a negative
            class id (``-1``: unlabelled) count for ``d_data`` and are left out of ``K_F``,
            with a warning (see :func:`~lightning_dataprops.functional.label_sharpness`).
        k: neighbours for MLE (20 in the paper).
        estimators: registered estimators to compute besides ``"mle"`` and ``"twonn"`` (see
            :func:`~lightning_dataprops.functional.estimators.available_estimators` and
            :func:`~lightning_dataprops.functional.estimators.register_estimator`), all from the
            same neighbour pass, which finds as many neighbours as the most demanding one needs.
            ``None`` (default): :data:`DEFAULT_EXTRA` (``"gride"``, ``"calibrated"``), each
            where the sample has enough distinct points for it; ``()``: MLE and TwoNN only.
        mle_variant: see :func:`~lightning_dataprops.functional.intrinsic_dimension`.
        twonn_variant: see :func:`~lightning_dataprops.functional.intrinsic_dimension`.
        target_type: ``"auto"``, ``"class"`` or ``"regression"``.
        top_pairs: how many of the sharpest pairs to report.
        duplicate_rtol: relative duplicate threshold (times the median k-th neighbour distance).
        n_bootstrap: subsampling-bootstrap resamples for every ID standard error (0: none).
        bootstrap_fraction: fraction of samples per resample.
        seed: seed of the bootstrap's private generator.
        memory_budget_mb: bound on the working memory of the neighbour search.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (512 MiB unless changed).
        device: where to compute (default: where ``x`` is).
        progress: show a progress bar.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (off unless changed).
        distributed: share the one neighbour pass (and the closest differently-labelled pairs)
            among the ranks of ``process_group`` (see :func:`~lightning_dataprops.functional.
            distributed.sharded_knn_search`): every rank must call this with the same ``x``,
            ``y`` and arguments, and every rank gets the same result; when one rank's inputs are
            refused (e.g. it holds no samples), every rank raises. The duplicate re-search,
            the regression ``K_F`` pass and the bootstrap run on every rank. Without an
            initialised group of more than one rank, this has no effect.
        process_group: the group for ``distributed`` (default: the world).

    Returns:
        A :class:`DatasetProperties` with float attributes ``d_data`` (MLE), ``d_data_twonn``
        and ``K_F`` (``None`` without labels) plus the detailed results ``mle_result``,
        ``twonn_result``, ``estimates`` (every estimator computed, by name) and
        ``label_sharpness_result``. Ambient precision settings (autocast,
        TF32, matmul precision) never change them: the computation runs in full precision.

    Example:
        >>> import torch
        >>> from lightning_dataprops.functional import dataset_properties
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.rand(1000, 3, generator=g) @ torch.randn(3, 20, generator=g)
        >>> y = (x[:, 0] > x[:, 0].median()).long()
        >>> props = dataset_properties(x, y, k=10)
        >>> round(props.d_data_twonn), props.K_F > 0
        (3, True)
    """
    check_choice(mle_variant, "MLE variant", MLE_VARIANTS)
    check_choice(twonn_variant, "TwoNN variant", TWONN_VARIANTS)
    names = chosen_estimators(ALWAYS, DEFAULT_EXTRA if estimators is None else estimators)
    optional = DEFAULT_EXTRA if estimators is None else ()
    with full_precision_matmul():
        return _dataset_properties(
            x,
            y,
            k=k,
            names=names,
            optional=optional,
            mle_variant=mle_variant,
            twonn_variant=twonn_variant,
            target_type=target_type,
            top_pairs=top_pairs,
            duplicate_rtol=duplicate_rtol,
            n_bootstrap=n_bootstrap,
            bootstrap_fraction=bootstrap_fraction,
            seed=seed,
            memory_budget_mb=memory_budget_mb,
            device=device,
            progress=progress,
            distributed=distributed,
            process_group=process_group,
        )


def _dataset_properties(
    x: Any,
    y: Any,
    *,
    k: int,
    names: tuple[str, ...],
    optional: tuple[str, ...],
    mle_variant: MLEVariant,
    twonn_variant: TwoNNVariant,
    target_type: TargetType,
    top_pairs: int,
    duplicate_rtol: float,
    n_bootstrap: int,
    bootstrap_fraction: float,
    seed: int,
    memory_budget_mb: float | None,
    device: Any,
    progress: bool | None,
    distributed: bool,
    process_group: Any,
) -> DatasetProperties:
    def validated() -> tuple[torch.Tensor, tuple[int, ...], KFTargets | None]:
        points, input_shape = as_points(x, device=device)
        n = int(points.shape[0])
        check_k(k, n, what="intrinsic dimension (mle)")
        return points, input_shape, None if y is None else kf_targets(y, n, target_type)

    # Distributed: a rank whose inputs are refused makes every rank raise (nobody waits).
    points, input_shape, labelled = checked_on_every_rank(
        validated, process_group, enabled=distributed
    )
    n = int(points.shape[0])
    if labelled is not None:
        warn_if_byte_images(points, input_shape, "dataset_properties")
    # Default extras that need more neighbours than this sample has are left out, not refused.
    names = tuple(
        name
        for name in names
        if name not in optional or neighbours_needed((name,), k) <= max(k, (n - 1) // 2)
    )
    k_max = neighbours_needed(names, k)
    check_k(k_max, n, what=f"the intrinsic-dimension estimators {', '.join(names)}")
    # One pass gives d_data and the class K_F when every sample is labelled; unlabelled samples
    # count for d_data only, so K_F then takes its own pass over the labelled ones.
    one_pass = labelled is not None and labelled.kind == "class" and labelled.index is None
    search = partial(sharded_knn_search, group=process_group) if distributed else knn_search
    graph = search(
        points,
        k_max,
        labels=labelled.values.to(points.device) if one_pass and labelled else None,
        n_pairs=top_pairs,
        memory_budget_mb=memory_budget_mb,
        progress=progress,
    )
    sharpness: LabelSharpnessResult | None = None
    if labelled is not None and labelled.kind == "class":
        assert labelled.n_classes is not None
        labels = labelled.values.to(points.device)
        class_graph = graph
        if not one_pass:
            class_graph = search(
                labelled.rows(points),
                1,
                labels=labels,
                n_pairs=top_pairs,
                memory_budget_mb=memory_budget_mb,
                progress=progress,
            )
        sharpness = labelled.restore(
            sharpness_from_graph(
                class_graph,
                labels,
                input_shape=input_shape,
                n_classes=labelled.n_classes,
                top_pairs=top_pairs,
            )
        )
    elif y is not None:
        sharpness = label_sharpness(
            points,
            y,
            target_type="regression",
            top_pairs=top_pairs,
            memory_budget_mb=memory_budget_mb,
            progress=progress,
        )
    results, neighbours = estimator_results(
        points,
        names,
        k=k,
        input_shape=input_shape,
        graph=graph,
        options={"mle_variant": mle_variant, "twonn_variant": twonn_variant},
        duplicate_rtol=duplicate_rtol,
        memory_budget_mb=memory_budget_mb,
        progress=progress,
        n_bootstrap=n_bootstrap,
        bootstrap_fraction=bootstrap_fraction,
        seed=seed,
    )
    return DatasetProperties(
        d_data=results[DEFAULT_ESTIMATOR].value,
        d_data_twonn=results["twonn"].value,
        K_F=None if sharpness is None else sharpness.value,
        n=n,
        input_shape=input_shape,
        mle_result=results["mle"],
        twonn_result=results["twonn"],
        label_sharpness_result=sharpness,
        duplicates=neighbours.duplicates,
        estimates=results,
        default_estimator=DEFAULT_ESTIMATOR,
        spread=estimator_spread(results, default=DEFAULT_ESTIMATOR),
    )
