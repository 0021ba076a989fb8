"""The seed paper's API (Konz & Mazurowski, ICLR 2024), same names and first arguments.

``compute_labelsharpness``, ``compute_intrinsic_datadim`` and ``compute_intrinsic_reprdim`` take
any dataset (``Dataset``, ``DataLoader``, tensors, arrays; tuple or dict items) and return plain
floats like the original, but computed exactly (label sharpness by an exact bichromatic
closest-pair search instead of ~2000 random pairs, with the multiclass case right), with
duplicates handled, on the CPU or GPU, without touching the model's state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lightning_dataprops.data import Sample, sample_dataset
from lightning_dataprops.functional._device import run_device
from lightning_dataprops.functional.constants import DEFAULT_K
from lightning_dataprops.functional.intrinsic_dimension import Estimator, intrinsic_dimension
from lightning_dataprops.functional.label_sharpness import Method, label_sharpness
from lightning_dataprops.functional.representations import (
    Pooling,
    capture_representations,
)
from lightning_dataprops.functional.targets import TargetType


def _sample(
    dataset: Any,
    *,
    max_samples: int | None,
    M: int | None,
    seed: int,
    input_fn: Callable[[Any], Any] | None,
    target_fn: Callable[[Any], Any] | None = None,
    target_type: str = "auto",
    require_targets: bool = False,
) -> Sample:
    if max_samples is not None and M is not None and max_samples != M:
        raise ValueError(f"Pass max_samples or its alias M, not both ({max_samples} vs {M}).")
    return sample_dataset(
        dataset,
        max_samples=max_samples if max_samples is not None else M,
        seed=seed,
        require_targets=require_targets,
        input_fn=input_fn,
        target_fn=target_fn,
        target_type=target_type,
    )


def compute_labelsharpness(
    dataset: Any,
    *,
    max_samples: int | None = None,
    M: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    method: Method = "exact",
    input_fn: Callable[[Any], Any] | None = None,
    target_fn: Callable[[Any], Any] | None = None,
    target_type: TargetType = "auto",
) -> float:
    """Label sharpness ``K_F`` of a dataset (exact by default).

    ``K_F = max over pairs with different labels of |y_i - y_j| / ||x_i - x_j||`` (Konz &
    Mazurowski, ICLR 2024, Eq. 2; class labels count a change of class as 1), in 1 / the units
    of the inputs as the dataset yields them: a Dataset that normalises gives normalised units,
    uint8 images give 1 / (0-255) units (255x smaller than for the same images in ``[0, 1]``,
    the paper's); ``inf`` when two identical inputs carry different labels.

    Args:
        dataset: a ``Dataset``, ``DataLoader``, tensor/array pair, with tuple or dict items.
        max_samples: seeded, class-stratified subsample size (``None``: the whole dataset).
        M: the original code's name for ``max_samples``.
        seed: sampling seed.
        device: where to compute (default: CPU).
        method: ``"exact"`` or ``"sampled"`` (the original random-pair estimate).
        input_fn: optional item -> input callable; target_fn: item -> target callable.
        target_type: ``"auto"`` (integer dtype or one-hot: classes; float: regression, also
            for whole numbers such as ages), ``"class"`` or ``"regression"``.

    Returns:
        ``K_F`` as a float (``inf`` for a label conflict).

    Raises:
        ValueError: no targets, a single class, NaN inputs, mismatched lengths, fewer than two
            labelled samples (the message says what to pass instead).

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> from lightning_dataprops import compute_labelsharpness
        >>> data = TensorDataset(torch.tensor([[0.0], [1.0], [3.0]]), torch.tensor([0, 0, 1]))
        >>> compute_labelsharpness(data)
        0.5
    """
    sample = _sample(
        dataset,
        max_samples=max_samples,
        M=M,
        seed=seed,
        input_fn=input_fn,
        target_fn=target_fn,
        target_type=target_type,
        require_targets=True,
    )
    return label_sharpness(
        sample.inputs, sample.targets, method=method, device=device, target_type=target_type
    ).value


def compute_intrinsic_datadim(
    dataset: Any,
    estimator: Estimator = "mle",
    k: int = DEFAULT_K,
    *,
    max_samples: int | None = None,
    M: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    input_fn: Callable[[Any], Any] | None = None,
) -> float:
    """Intrinsic dimension ``d_data`` of a dataset's inputs (MLE with k=20 by default).

    Each input is flattened to one point; duplicates are collapsed to one representative. The
    estimate is scale-free: the inputs' units do not change it. The default is the paper's MLE
    (Levina & Bickel 2004, pooled as MacKay & Ghahramani, equal to scikit-dimension's ``MLE``);
    ``estimator="twonn"`` is Facco et al. (2017).

    Args:
        dataset: a ``Dataset``, ``DataLoader``, tensor or array, with tuple or dict items
            (targets are not needed).
        estimator: ``"mle"``, ``"twonn"``, or any registered estimator
            (:func:`~lightning_dataprops.functional.estimators.available_estimators`).
        k: neighbours of the MLE (20 in the paper).
        max_samples: seeded, class-stratified subsample size (``None``: the whole dataset).
        M: the original code's name for ``max_samples``.
        seed: sampling seed.
        device: where to compute (default: CPU).
        input_fn: optional item -> input callable.

    Returns:
        ``d_data`` as a float.

    Raises:
        ValueError: fewer than ``k + 1`` distinct inputs (a
            :class:`~lightning_dataprops.functional.TooFewSamplesError`), NaN inputs, an
            unknown estimator (the message lists the valid ones).

    Example:
        >>> import torch
        >>> from lightning_dataprops import compute_intrinsic_datadim
        >>> g = torch.Generator().manual_seed(0)
        >>> plane = torch.randn(1500, 2, generator=g) @ torch.randn(2, 30, generator=g)
        >>> round(compute_intrinsic_datadim(plane, estimator="twonn"))
        2
    """
    sample = _sample(
        dataset,
        max_samples=max_samples,
        M=M,
        seed=seed,
        input_fn=input_fn,
    )
    return intrinsic_dimension(sample.inputs, estimator, k, device=device).value


def compute_intrinsic_reprdim(
    dataset: Any,
    model: nn.Module,
    layer: nn.Module | str,
    estimator: Estimator = "mle",
    k: int = DEFAULT_K,
    *,
    max_samples: int | None = None,
    M: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int = 256,
    pool: Pooling = None,
    input_fn: Callable[[Any], Any] | None = None,
) -> float:
    """Intrinsic dimension ``d_repr`` of a layer's outputs on a dataset.

    The representation pass runs in eval mode under ``no_grad`` on the model's device (or
    ``device``) and restores everything afterwards: training mode, buffers such as BatchNorm
    statistics, parameter gradients; no hook is left behind, also on error.

    Args:
        dataset: the inputs (any source :func:`~lightning_dataprops.data.sample_dataset` takes).
        model: the network.
        layer: a submodule of ``model`` or its dotted name (e.g. ``"layer4"``).
        estimator, k: as in :func:`compute_intrinsic_datadim`.
        max_samples, M, seed: seeded, stratified subsample.
        device: where to run the model's inputs (default: the model's device).
        batch_size: inputs per forward pass.
        pool: ``"avg"``/``"max"`` spatial pooling of the layer output, or ``None`` to flatten.
        input_fn: optional item -> input callable.

    Returns:
        ``d_repr`` of the layer's outputs as a float (the paper's MLE by default).

    Raises:
        ValueError: an unknown layer, a layer that does not run (or runs several times) in the
            forward pass, fewer than ``k + 1`` distinct representations.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_dataprops import compute_intrinsic_reprdim
        >>> model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 2))
        >>> x = torch.randn(500, 3) @ torch.randn(3, 30)
        >>> d = compute_intrinsic_reprdim(x, model, model[0], estimator="twonn")
        >>> 2.0 < d < 4.5
        True
    """
    sample = _sample(
        dataset,
        max_samples=max_samples,
        M=M,
        seed=seed,
        input_fn=input_fn,
    )
    where = run_device(device, model)
    features = capture_representations(
        model, sample.inputs, [layer], batch_size=batch_size, pool=pool, device=where
    )
    (representation,) = features.values()
    return intrinsic_dimension(representation, estimator, k, device=where).value
