"""``LabelSharpness``: exact ``K_F`` of a bounded, seeded reservoir of labelled samples."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from lightning_dataprops.functional._validation import check_choice
from lightning_dataprops.functional.label_sharpness import label_sharpness
from lightning_dataprops.functional.results import LabelSharpnessResult
from lightning_dataprops.functional.targets import TARGET_TYPES, TargetType, normalize_targets
from lightning_dataprops.metrics.reservoir import ReservoirMetric, float_rows


class LabelSharpness(ReservoirMetric):
    """Label sharpness ``K_F = max |y_i - y_j| / ||x_i - x_j||`` of the samples seen, exact.

    ``update(x, y)`` adds a batch of inputs ``(b, ...)`` (flattened to float32 rows; float64 inputs
    stay float64, so their range is kept) and their targets to a bounded, seeded reservoir (at most
    ``max_samples`` pairs per process, a uniform sample of everything seen; see
    :class:`~lightning_dataprops.metrics.reservoir.ReservoirMetric`). Targets are ``(b,)`` class
    ids, ``(b, C)`` one-hot rows, or float regression targets ``(b,)`` / ``(b, t)``, read by the
    package's one target rule (:func:`~lightning_dataprops.functional.targets.normalize_targets`:
    float targets are regression, also whole-number ones, unless ``target_type="class"``) and stored
    as int64 class ids or float64 values; NaN targets are refused in ``update``. Samples with a
    negative class id (``-1``: unlabelled) are stored but left out of ``K_F``, with a warning.
    ``compute()`` returns the exact ``K_F`` of the (gathered) reservoir as a scalar float32 tensor
    (float64 for values beyond float32's range: never a silent inf or 0; ``inf`` when two identical
    inputs carry different labels, a label conflict, reported with a
    :class:`~lightning_dataprops.functional.LabelConflictWarning`); the detailed
    :class:`~lightning_dataprops.functional.results.LabelSharpnessResult` with the sharpest pairs
    (indices into the gathered reservoir) is kept in :attr:`last_result`.

    ``K_F`` is a maximum: it grows with the number of samples, so compare values at the same
    ``max_samples`` (and the same preprocessing). In DDP, with ``distributed_knn=True`` and class
    targets, every rank takes an equal share of the closest-pair search
    (:func:`~lightning_dataprops.functional.distributed.sharded_knn_search`), so ``compute()``
    must run on every rank, as Lightning and torchmetrics do; regression targets run the
    all-pairs pass on every rank. Calling the metric (``forward``) adds the batch and returns the
    ``K_F`` of that batch alone.

    Args:
        max_samples: reservoir size per process.
        seed: seed of the reservoir's private generator.
        top_pairs: how many of the sharpest pairs :attr:`last_result` reports.
        target_type: ``"auto"`` (integer dtype or one-hot rows: classes; float: regression),
            ``"class"`` or ``"regression"``.
        distributed_knn: in DDP, share the closest-pair search among the ranks.
        memory_budget_mb: bound on the working memory of the search.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (512 MiB unless changed).
        kwargs: passed to :class:`torchmetrics.Metric`.

    Raises:
        ValueError: in ``compute`` when nothing was seen, or all samples share one label.

    Example:
        >>> import torch
        >>> from lightning_dataprops.metrics import LabelSharpness
        >>> metric = LabelSharpness()
        >>> metric.update(torch.tensor([[0.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
        >>> metric.update(torch.tensor([[3.0, 0.0], [3.0, 0.5]]), torch.tensor([1, 1]))
        >>> metric.compute()  # 1 / distance between (0, 0) and (3, 0)
        tensor(0.3333)
        >>> pair = metric.last_result.pairs[0]
        >>> (pair.i, pair.j)
        (0, 2)
    """

    inputs: list[Tensor] | Tensor
    targets: list[Tensor] | Tensor

    def __init__(
        self,
        max_samples: int = 5000,
        seed: int = 0,
        top_pairs: int = 10,
        target_type: TargetType = "auto",
        distributed_knn: bool = True,
        memory_budget_mb: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_samples=max_samples, seed=seed, **kwargs)
        check_choice(target_type, "target_type", TARGET_TYPES)
        if not isinstance(top_pairs, int) or isinstance(top_pairs, bool) or top_pairs < 1:
            raise ValueError(f"top_pairs must be an int >= 1, got {top_pairs!r}.")
        self.top_pairs = top_pairs
        self.target_type: TargetType = target_type
        self.distributed_knn = distributed_knn
        self.memory_budget_mb = memory_budget_mb
        self.input_shape: tuple[int, ...] | None = None
        self.last_result: LabelSharpnessResult | None = None
        self.add_sample_state("inputs")
        self.add_sample_state("targets")

    def reset(self) -> None:
        """Empty the reservoir (:attr:`last_result` is kept)."""
        super().reset()
        self.input_shape = None

    def _rows(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if not isinstance(x, Tensor) or not isinstance(y, Tensor):
            raise TypeError(
                f"x and y must be torch.Tensors, got {type(x).__name__} and {type(y).__name__}."
            )
        if x.ndim < 2:
            raise ValueError(
                f"x must have shape (batch, features...), got {tuple(x.shape)}; for scalar "
                "features use x.reshape(-1, 1)."
            )
        batch = int(x.shape[0])
        if y.ndim == 0 or int(y.shape[0]) != batch or y.ndim > 2:
            raise ValueError(
                f"y must have shape (batch,) or (batch, C) with batch={batch}, got "
                f"{tuple(y.shape)}."
            )
        shape = tuple(int(s) for s in x.shape[1:])
        if self.input_shape is not None and math.prod(shape) != math.prod(self.input_shape):
            raise ValueError(
                f"inputs of shape {shape} do not match the earlier inputs' {self.input_shape}."
            )
        rows = float_rows(x, self.gathered("inputs"))
        norm = normalize_targets(y, batch, self.target_type, name="y")
        dtype = torch.long if norm.is_class else torch.float64
        values = norm.values if norm.values.ndim == 2 else norm.values[:, None]
        targets = values.to(device=y.device, dtype=dtype)
        previous = self.gathered("targets")
        if previous is not None and (
            previous.dtype != dtype or previous.shape[1:] != targets.shape[1:]
        ):
            raise ValueError(
                f"targets of dtype {y.dtype} and shape {tuple(y.shape)} do not match the earlier "
                f"targets (stored as {previous.dtype}, {tuple(previous.shape[1:])} per sample); "
                "pass the same kind of targets in every update."
            )
        self.input_shape = shape
        return rows, targets

    def update(self, x: Tensor, y: Tensor) -> None:
        """Add a batch of inputs ``(batch, ...)`` and targets ``(batch,)``/``(batch, C)``."""
        rows, targets = self._rows(x, y)
        self.add_rows({"inputs": rows, "targets": targets})

    def _estimate(self, rows: Tensor, targets: Tensor, distributed: bool) -> LabelSharpnessResult:
        points = rows
        if self.input_shape is not None and rows.shape[1] == math.prod(self.input_shape):
            points = rows.reshape(int(rows.shape[0]), *self.input_shape)
        # The gathered targets are read again here, so that float targets that look like
        # class ids are judged (and said) once, on all of them, not batch by batch.
        return label_sharpness(
            points,
            targets,
            target_type=self.target_type,
            top_pairs=self.top_pairs,
            memory_budget_mb=self.memory_budget_mb,
            distributed=distributed,
            process_group=self.process_group,
        )

    def compute(self) -> Tensor:
        """``K_F`` of the (gathered) reservoir, a scalar tensor (``inf`` for label conflicts)."""
        rows, targets = self.gathered("inputs"), self.gathered("targets")
        if rows is None or targets is None or rows.shape[0] == 0:
            raise ValueError(
                "LabelSharpness.compute() found no samples: call update(x, y) first (in DDP, on "
                "every rank)."
            )
        result = self._estimate(rows, targets, self._shard_knn(self.distributed_knn))
        self.last_result = result
        return _as_tensor(result.value, rows.device)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Add the batch to the reservoir and return the ``K_F`` of this batch alone."""
        self.update(x, y)
        rows, targets = self._rows(x, y)
        value = _as_tensor(self._estimate(rows, targets, distributed=False).value, rows.device)
        self._forward_cache = value  # type: ignore[assignment]  # torchmetrics types it None
        return value


def _as_tensor(value: float, device: torch.device) -> Tensor:
    """``K_F`` as a float32 scalar, or float64 where float32 would turn it into inf or 0."""
    single = torch.tensor(value, dtype=torch.float32, device=device)
    if math.isinf(float(single)) != math.isinf(value) or (float(single) == 0.0) != (value == 0.0):
        return torch.tensor(value, dtype=torch.float64, device=device)
    return single
