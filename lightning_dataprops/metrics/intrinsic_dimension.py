"""``IntrinsicDimension``: a torchmetrics ``Metric`` over a bounded, seeded reservoir of samples."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from lightning_dataprops.functional._validation import check_choice
from lightning_dataprops.functional.constants import (
    DEFAULT_DUPLICATE_RTOL,
    DEFAULT_K,
)
from lightning_dataprops.functional.estimators import get_estimator
from lightning_dataprops.functional.intrinsic_dimension import (
    MLE_VARIANTS,
    TWONN_VARIANTS,
    Estimator,
    MLEVariant,
    TwoNNVariant,
    intrinsic_dimension,
)
from lightning_dataprops.functional.results import IntrinsicDimensionResult
from lightning_dataprops.metrics.reservoir import ReservoirMetric, float_rows


class IntrinsicDimension(ReservoirMetric):
    """Intrinsic dimension (MLE or TwoNN) of the samples seen: exact neighbours, no duplicates.

    ``update(x)`` adds a batch of samples ``(b, ...)`` (flattened to float32 rows; float64 inputs
    stay float64, so their range is kept) to a bounded, seeded reservoir (at most ``max_samples``
    rows per process, a uniform sample of everything seen; see :class:`ReservoirMetric`).
    ``compute()`` runs :func:`~lightning_dataprops.functional.intrinsic_dimension` on the reservoir
    (after torchmetrics' DDP sync: on the rows of every rank) and returns the estimate as a scalar
    tensor; the detailed :class:`~lightning_dataprops.functional.results.IntrinsicDimensionResult`
    (duplicates, ``n``, TwoNN's standard error) is kept in :attr:`last_result`.

    In DDP, with ``distributed_knn=True``, every rank takes an equal share of the neighbour
    queries (:func:`~lightning_dataprops.functional.distributed.sharded_knn_search`), so
    ``compute()`` must run on every rank, as Lightning and torchmetrics do; every rank gets the
    same value. Calling the metric (``forward``) adds the batch and returns the estimate of that
    batch alone, which needs more than ``k`` samples; prefer ``update`` in the steps and logging
    the metric object at epoch end.

    Args:
        estimator: ``"mle"`` (Levina-Bickel, ``k`` neighbours), ``"twonn"``, or any registered
            estimator (:func:`~lightning_dataprops.functional.estimators.available_estimators`).
        k: neighbours for MLE (20 in the paper).
        max_samples: reservoir size per process (memory: ``max_samples * D * 4`` bytes).
        seed: seed of the reservoir's private generator.
        mle_variant: ``"mackay_ghahramani"`` (default), ``"levina_bickel"`` or ``"paper"``.
        twonn_variant: ``"closed_form"`` (default) or ``"linear_fit"``.
        duplicate_rtol: relative (near-)duplicate threshold, see the functional interface.
        distributed_knn: in DDP, share the neighbour search among the ranks.
        memory_budget_mb: bound on the working memory of the neighbour search.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (512 MiB unless changed).
        kwargs: passed to :class:`torchmetrics.Metric` (``process_group``, ``sync_on_compute``,
            ``compute_on_cpu``, ...).

    Raises:
        ValueError: in ``compute`` when fewer than ``k + 1`` distinct samples were seen, or when
            nothing was.

    Example:
        >>> import torch
        >>> from lightning_dataprops.metrics import IntrinsicDimension
        >>> g = torch.Generator().manual_seed(0)
        >>> data = torch.randn(1200, 3, generator=g) @ torch.randn(3, 40, generator=g)
        >>> metric = IntrinsicDimension(estimator="twonn", max_samples=1000)
        >>> for batch in data.split(100):
        ...     metric.update(batch)
        >>> metric.stored_rows()
        1000
        >>> round(float(metric.compute()))
        3
        >>> metric.last_result.n
        1000
    """

    samples: list[Tensor] | Tensor

    def __init__(
        self,
        estimator: Estimator = "mle",
        k: int = DEFAULT_K,
        max_samples: int = 5000,
        seed: int = 0,
        mle_variant: MLEVariant = "mackay_ghahramani",
        twonn_variant: TwoNNVariant = "closed_form",
        duplicate_rtol: float = DEFAULT_DUPLICATE_RTOL,
        distributed_knn: bool = True,
        memory_budget_mb: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_samples=max_samples, seed=seed, **kwargs)
        get_estimator(estimator)  # a clear error for an unknown name
        check_choice(mle_variant, "MLE variant", MLE_VARIANTS)
        check_choice(twonn_variant, "TwoNN variant", TWONN_VARIANTS)
        if not isinstance(k, int) or isinstance(k, bool) or k < 2:
            raise ValueError(f"k must be an int >= 2, got {k!r}.")
        if max_samples < k + 1:
            raise ValueError(f"max_samples={max_samples} must be at least k+1={k + 1}.")
        if not (math.isfinite(duplicate_rtol) and duplicate_rtol >= 0):
            raise ValueError(f"duplicate_rtol must be finite and >= 0, got {duplicate_rtol}.")
        self.estimator: Estimator = estimator
        self.k = k
        self.mle_variant: MLEVariant = mle_variant
        self.twonn_variant: TwoNNVariant = twonn_variant
        self.duplicate_rtol = duplicate_rtol
        self.distributed_knn = distributed_knn
        self.memory_budget_mb = memory_budget_mb
        self.input_shape: tuple[int, ...] | None = None
        self.last_result: IntrinsicDimensionResult | None = None
        self.add_sample_state("samples")

    def _rows(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor of shape (batch, ...), got {type(x)}.")
        if x.ndim < 2:
            raise ValueError(
                f"x must have shape (batch, features...), got {tuple(x.shape)}; for scalar "
                "features use x.reshape(-1, 1)."
            )
        shape = tuple(int(s) for s in x.shape[1:])
        if self.input_shape is not None and math.prod(shape) != math.prod(self.input_shape):
            raise ValueError(
                f"samples of shape {shape} do not match the earlier samples' {self.input_shape}."
            )
        self.input_shape = shape
        rows = float_rows(x, self.gathered("samples"))
        return rows

    def reset(self) -> None:
        """Empty the reservoir (:attr:`last_result` is kept)."""
        super().reset()
        self.input_shape = None

    def update(self, x: Tensor) -> None:
        """Add a batch of samples ``(batch, ...)`` to the reservoir."""
        self.add_rows({"samples": self._rows(x)})

    def _estimate(self, points: Tensor, distributed: bool) -> IntrinsicDimensionResult:
        if self.input_shape is not None and points.shape[1] == math.prod(self.input_shape):
            points = points.reshape(int(points.shape[0]), *self.input_shape)
        return intrinsic_dimension(
            points,
            self.estimator,
            self.k,
            mle_variant=self.mle_variant,
            twonn_variant=self.twonn_variant,
            duplicate_rtol=self.duplicate_rtol,
            memory_budget_mb=self.memory_budget_mb,
            distributed=distributed,
            process_group=self.process_group,
        )

    def compute(self) -> Tensor:
        """The intrinsic dimension of the (gathered) reservoir, a scalar tensor."""
        points = self.gathered("samples")
        if points is None or points.shape[0] == 0:
            raise ValueError(
                "IntrinsicDimension.compute() found no samples: call update(x) first (in DDP, "
                "on every rank)."
            )
        result = self._estimate(points, self._shard_knn(self.distributed_knn))
        self.last_result = result
        return torch.tensor(result.value, dtype=torch.float32, device=points.device)

    def forward(self, x: Tensor) -> Tensor:
        """Add the batch to the reservoir and return the estimate of this batch alone."""
        self.update(x)
        rows = self._rows(x)
        value = torch.tensor(
            self._estimate(rows, distributed=False).value, dtype=torch.float32, device=rows.device
        )
        self._forward_cache = value  # type: ignore[assignment]  # torchmetrics types it None
        return value
