"""ABID, the angle-based intrinsic dimension (Thordsen & Schubert 2022).

For a sample ``x`` with neighbour vectors ``v_i = x_i - x`` (its ``k`` nearest neighbours), the
squared cosines ``cos^2(v_i, v_j)`` of pairs of distinct neighbours have mean ``1 / d`` when the
directions are isotropic in ``d`` dimensions. Pooled over the samples:

    d = 1 / mean_{x, i != j} cos^2(v_i, v_j)

Only the angles enter, not the distances: a boundary, curvature or non-uniform density shows up
differently here than in the distance-ratio estimators (MLE, TwoNN, GRIDE), which makes ABID a
useful second opinion. It needs the neighbour indices and the points (offsets in the points'
precision, their Gram matrices normalised in float64, in chunks of a few tens of MB).

Source: Thordsen & Schubert, "ABID: Angle Based Intrinsic Dimensionality -- Theory and
analysis", Information Systems 108 (2022); the pooling over pairs of distinct neighbours is the
unbiased form of their ``k^2 / sum_{i,j} cos^2``.
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor

from lightning_dataprops.functional._parallel import run_tasks
from lightning_dataprops.functional.estimators.neighbours import Neighbours
from lightning_dataprops.functional.estimators.registry import Estimate, register_estimator

__all__ = ["abid", "mean_squared_cosines"]


def mean_squared_cosines(neighbours: Neighbours, k: int) -> Tensor:
    """``(m,)`` float64 mean ``cos^2`` over the pairs of distinct neighbours of each kept sample
    (its ``k`` nearest)."""
    if k < 2:
        raise ValueError(f"ABID needs pairs of neighbours: k >= 2, got {k}.")
    device = neighbours.points.device
    out = torch.empty(neighbours.n, dtype=torch.float64, device=device)
    dtype = neighbours.points.dtype
    dim = int(neighbours.points.shape[1])
    local = threading.local()

    def cosines(rows: slice) -> None:
        # The Gram matrix of the offsets in the points' precision (one gather into memory this
        # worker reuses, one subtraction, one batched product: the memory traffic is the cost),
        # normalised in float64.
        size = (rows.stop - rows.start) * k * dim
        buffer = getattr(local, "buffer", None)
        if buffer is None or buffer.numel() < size:
            buffer = local.buffer = torch.empty(size, dtype=dtype, device=device)
        v = neighbours.offsets(rows, k, dtype=dtype, out=buffer)
        gram = torch.bmm(v, v.transpose(1, 2)).double()
        norms = gram.diagonal(dim1=1, dim2=2)
        cos2 = (gram.square() / (norms[:, :, None] * norms[:, None, :])).sum(dim=(1, 2))
        out[rows] = (cos2 - k) / (k * (k - 1))

    run_tasks(neighbours.row_chunks(k), cosines, device)
    return out


def abid(neighbours: Neighbours) -> Estimate:
    """Pooled ABID with the call's ``k`` neighbours."""
    k = neighbours.k
    per_sample = mean_squared_cosines(neighbours, k)
    return Estimate(1.0 / float(per_sample.mean()), None, "pooled", k)


register_estimator(
    "abid", abid, description="angle-based ID (Thordsen & Schubert 2022), 1 / mean cos^2"
)
