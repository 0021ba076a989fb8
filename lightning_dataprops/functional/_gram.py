"""Squared-distance kernels of the fast pass: float32, exact int8 for 8-bit data, bfloat16.

Each kernel turns blocks of points into float32 squared distances ``|q|^2 + |r|^2 - 2 q.r``
and gives a rigorous per-row bound on their error, which :class:`~._block_search.BlockSearch`
uses to certify its exact finish. The kernels differ only in the product ``q.r``:

* ``float32``: the product in float32 on mean-centred points (any device).
* ``int8``: for data on an 8-bit grid (``x = lo + step * k``, ``k`` in ``0..255``: pixels stored
  as ``uint8`` and scaled, before any per-channel normalisation), the product of the integer
  codes in int32 (``torch._int_mm``): exact, about 4x the float32 speed on CPUs with VNNI.
* ``bfloat16``: the operands rounded to bfloat16 and multiplied with float32 accumulation,
  about 2.3x the float32 speed on CPUs with AVX512-BF16; the bound grows to about
  ``1.5 * 2^-8 * (|q| + |r|)^2``, so the search keeps a few more candidates.

``"auto"`` picks ``int8`` on CPUs with VNNI when the data is on an 8-bit grid, ``bfloat16`` on
CPUs with AVX512-BF16 for larger continuous sets whose neighbours its bound can still tell
apart (checked on a sample, :func:`bfloat16_certifies`), and ``float32`` otherwise. The
choice depends only on the data and the CPU's features, never on timings, so it is the same on
every run; the results never depend on it (the finish is exact), only the speed does.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from lightning_dataprops.functional._parallel import map_tasks, row_ranges, run_tasks

__all__ = ["KERNELS", "GramKernel", "KernelName", "make_gram"]

KernelName = Literal["auto", "float32", "int8", "bfloat16"]
KERNELS: tuple[str, ...] = ("auto", "float32", "int8", "bfloat16")

_U32 = 2.0**-24
_U_BF16 = 2.0**-8
# int32 holds |c_i - c_j|^2 <= 4 * D * 128^2 for codes in [-128, 127] only up to this D.
_INT8_MAX_DIM = 32_000
# The bfloat16 kernel pays off only where the matmul dominates the pass.
_BF16_MIN_POINTS = 4096
_BF16_MIN_DIM = 256
# Values sampled to recognise an 8-bit grid before the full check.
_GRID_SAMPLE = 65_536
_GRID_TASK_ROWS = 1024
# Rows per pooled task when the operands are made (a few MB each).
_SETUP_ROWS = 256


def _converted(points: Tensor, dtype: torch.dtype) -> Tensor:
    """``points.to(dtype)``, row ranges converted on the pool's workers."""
    out = torch.empty(points.shape, dtype=dtype, device=points.device)

    def convert(rows: range) -> None:
        out[rows.start : rows.stop].copy_(points[rows.start : rows.stop])

    run_tasks(
        row_ranges(int(points.shape[0]), _SETUP_ROWS, _SETUP_ROWS * 16), convert, points.device
    )
    return out


def _fp32_gamma(dim: int) -> float:
    gamma = (dim + 16) * _U32
    return gamma / (1.0 - gamma)


class GramKernel:
    """Float32 kernel on mean-centred points; the base of the other kernels.

    Attributes:
        operands: ``(n, D)`` points in the kernel's representation, in the search's order.
        sq_norms: ``(n,)`` float32 squared norms, in the units of the distances.
        norms: ``(n,)`` float64 norms of the (centred) points, for the error bound.
        extra_candidates: candidates the search keeps beyond its own margin.
    """

    name = "float32"
    extra_candidates = 0

    def __init__(self, x: Tensor, order: Tensor | None) -> None:
        mean = x.mean(dim=0, keepdim=True)
        n, self.dim = int(x.shape[0]), int(x.shape[1])
        # Centring only translates the points but shrinks their norms, and with them the bound.
        points = torch.empty((n, self.dim), dtype=torch.float32, device=x.device)
        norms = torch.empty(n, dtype=torch.float32, device=x.device)

        def centre(rows: range) -> None:
            part = slice(rows.start, rows.stop)
            chunk = x[part] if order is None else torch.index_select(x, 0, order[part])
            if x.dtype == torch.float32:
                torch.sub(chunk, mean, out=points[part])
            else:
                points[part].copy_(chunk - mean)
            torch.linalg.vector_norm(points[part], dim=1, out=norms[part])

        run_tasks(row_ranges(n, _SETUP_ROWS, _SETUP_ROWS * 16), centre, x.device)
        self.norms = norms.double()
        self.sq_norms = norms.square_()
        self.max_norm = float(self.norms.max())
        self.operands = self._operands(points)

    def _operands(self, points: Tensor) -> Tensor:
        return points

    def _product_buffer(self, out: Tensor, dtype: torch.dtype) -> Tensor:
        """A reused ``dtype`` block shaped like ``out`` for the raw product, one per thread
        (blocks run concurrently; a fresh one per block would page-fault)."""
        n_rows, n_cols = out.shape
        local = self.__dict__.setdefault("_local", threading.local())
        scratch = getattr(local, "scratch", None)
        if scratch is None or scratch.numel() < n_rows * n_cols:
            scratch = local.scratch = torch.empty(n_rows * n_cols, dtype=dtype, device=out.device)
        return scratch[: n_rows * n_cols].view(n_rows, n_cols)

    def product(self, rows: Tensor, cols: slice, out: Tensor) -> Tensor:
        """``-2 q.r`` of a block into ``out`` (float32)."""
        return torch.mm(rows, self.operands[cols].T, out=out).mul_(-2.0)

    def sq_dists(self, rows: Tensor, row_sq_norms: Tensor, cols: slice, out: Tensor) -> Tensor:
        """Approximate squared distances of a block: rows given (operands and squared norms),
        columns a slice of the points. ``out`` is ``(len(rows), len(cols))`` float32.

        The product runs without the norms (a plain ``mm``), so that the rounding error of the
        matmul's accumulation is charged to ``|q.r|`` only, as :meth:`error_bound` assumes.
        """
        d2 = self.product(rows, cols, out)
        # In place, one rounding per addition (``torch.add(..., alpha=-2)`` with a broadcast
        # first operand takes a far slower path).
        d2.add_(row_sq_norms[:, None])
        return d2.add_(self.sq_norms[cols][None, :])

    def _scale(self, positions: Tensor) -> Tensor:
        """``M = (|q| + max |r|)^2``: bounds ``4 |q| |r|`` and ``|q|^2 + |r|^2`` for every ``r``."""
        return (self.norms[positions] + self.max_norm) ** 2

    def error_bound(self, positions: Tensor) -> Tensor:
        """Rigorous bound on the error of any squared distance of the rows ``positions``.

        With ``M = (|q| + |r|)^2`` and ``u = 2^-24``, first order: the squared norms (a float32
        norm, any order of summation, then a square root and a square) err by at most
        ``(gamma_D + 3u) (|q|^2 + |r|^2)``, the dot product (any order, with or without FMA) by
        ``gamma_D 2 |q.r|``: together ``(gamma_D + 3u) M``; the two additions add ``2u M``, the
        centring (one rounding per coordinate) ``2u M``. So ``gamma_(D+16) M`` bounds the error
        with room to spare. ``M`` is bounded with the computed norms, which may fall short of
        the true ones by a factor ``1 - gamma_(D+2)``; the factor ``(1 + gamma)^2`` covers that
        and the second-order terms.
        """
        gamma = _fp32_gamma(self.dim)
        return gamma * (1.0 + gamma) ** 2 * self._scale(positions)


def bfloat16_certifies(base: GramKernel, k: int, n_candidates: int) -> bool:
    """Whether the bfloat16 kernel's wider bound would still certify most rows of this search
    (``base``: the float32 kernel of the same points).

    A row is certified from its candidates when its ``k``-th squared distance is at least twice
    the bound below the last candidate's. On 64 evenly spaced sample queries (their float32
    distances to every point: an estimate) this must hold for 90% of them; otherwise most rows
    would be searched again and the float32 kernel is faster. Tightly packed points with large
    norms (relative to their neighbour distances) or a high intrinsic dimension (the ``k``-th
    and the last candidate nearly as far) fail it.
    """
    points = base.operands
    n = int(points.shape[0])
    last = min(n_candidates + BFloat16Kernel.extra_candidates, n - 1)
    if last <= k:
        return True
    sample = torch.arange(64, device=points.device) * (n - 1) // 63

    def distances(cols: range) -> Tensor:
        out = torch.empty(64, len(cols), device=points.device)
        return base.sq_dists(
            points[sample], base.sq_norms[sample], slice(cols.start, cols.stop), out
        )

    d2 = torch.cat(map_tasks(row_ranges(n, 1024), distances, points.device), dim=1)
    d2[torch.arange(64, device=points.device), sample] = math.inf
    nearest = torch.topk(d2, last, dim=1, largest=False).values.double()
    bound = BFloat16Kernel.widening * base._scale(sample) + base.error_bound(sample)
    ok = nearest[:, k - 1] <= nearest[:, last - 1] - 2.0 * bound
    return float(ok.double().mean()) >= 0.9


class BFloat16Kernel(GramKernel):
    """The product of bfloat16-rounded operands, accumulated in float32, rounded to bfloat16.

    Rounding ``q`` and ``r`` to bfloat16 (``u_b = 2^-8``) moves ``q.r`` by at most
    ``(2 u_b + u_b^2) |q| |r|``; the float32 accumulation adds ``gamma_D (1 + u_b)^2 |q| |r|``
    and the bfloat16 output ``u_b`` of the result. Doubled, with ``4 |q| |r| <= M``, that is
    ``(1.5 u_b + 2 u_b^2 + gamma_D / 2) M`` on top of the float32 kernel's terms for the norms
    (computed from the float32 points) and the additions.
    """

    name = "bfloat16"
    extra_candidates = 8
    widening = 1.5 * _U_BF16 + 4.0 * _U_BF16**2

    @classmethod
    def from_float32(cls, base: GramKernel) -> BFloat16Kernel:
        """The bfloat16 kernel of the points of a float32 kernel (no second centring)."""
        kernel = cls.__new__(cls)
        kernel.__dict__.update(base.__dict__)
        kernel.__dict__.pop("_local", None)  # the float32 kernel's product buffers
        kernel.operands = kernel._operands(base.operands)
        return kernel

    def _operands(self, points: Tensor) -> Tensor:
        return _converted(points, torch.bfloat16)

    def product(self, rows: Tensor, cols: slice, out: Tensor) -> Tensor:
        block = self._product_buffer(out, torch.bfloat16)
        torch.mm(rows, self.operands[cols].T, out=block)
        return torch.mul(block, -2.0, out=out)  # exact: a power of two, widened to float32

    def error_bound(self, positions: Tensor) -> Tensor:
        return self.widening * self._scale(positions) + super().error_bound(positions)


class Int8Kernel(GramKernel):
    """Exact integer products for data on an 8-bit grid ``x = lo + step * k``.

    The codes ``c = k - 128`` fit int8 and ``c_i . c_j`` is exact in int32, so the only errors
    are the float32 steps after it and the data's distance from the grid, ``eps`` per
    coordinate (float rounding when pixels were scaled to floats). With ``s = step``,
    ``M = s^2 (|c_i| + max |c|)^2`` and ``eta = 2 eps sqrt(D)``: the conversion, the scaling
    and the two additions err by at most ``8u M``, and ``|d - s |c_i - c_j|| <= eta`` gives
    ``|d^2 - s^2 |c_i - c_j|^2| <= eta (2 sqrt(M) + eta)``. The bound doubles the first term.
    """

    name = "int8"

    def __init__(self, grid: EightBitGrid, dim: int) -> None:
        self.dim = dim
        self.step = grid.step
        self.eta = 2.0 * grid.eps * math.sqrt(dim)
        self.norms = grid.code_sq.sqrt().mul_(grid.step)
        self.sq_norms = grid.code_sq.mul(grid.step * grid.step).to(torch.float32)
        self.max_norm = float(self.norms.max())
        self.operands = grid.codes

    def product(self, rows: Tensor, cols: slice, out: Tensor) -> Tensor:
        # The int32 product in ``out``'s own memory (same element size), then converted in
        # place, element by element: no second block of memory per worker.
        block = out.view(torch.int32)
        torch._int_mm(rows, self.operands[cols].T, out=block)
        return torch.mul(block, -2.0 * self.step * self.step, out=out)

    def error_bound(self, positions: Tensor) -> Tensor:
        scale = self._scale(positions)
        return 16.0 * _U32 * scale + self.eta * (2.0 * scale.sqrt() + self.eta)


class _OffGridError(Exception):
    """An entry of the data is off the 8-bit grid (raised by a task; stops the others)."""


@dataclass
class EightBitGrid:
    """Data on an 8-bit grid: every entry within ``eps`` of ``lo + step * k``, ``k`` in
    ``0..255``; ``codes`` are ``k - 128`` (int8, rows in the search's order, zero columns
    appended to a multiple of 8) and ``code_sq`` their exact squared norms (float64)."""

    lo: float
    step: float
    eps: float
    codes: Tensor
    code_sq: Tensor


def eight_bit_grid(x: Tensor, order: Tensor | None = None) -> EightBitGrid | None:
    """The 8-bit grid of ``x`` (rows taken in ``order``), or ``None`` when it has none (an
    entry farther from it than float rounding: ``16 u max|x|``, and at most ``1e-4 step``).

    A strided sample rejects continuous data cheaply (more than 256 distinct values); the grid
    it suggests is then checked on every entry while the codes are made, and ``eps`` is that
    check's maximum plus the rounding of the check itself.
    """
    if x.numel() == 0:
        return None
    lo_t, hi_t = torch.aminmax(x)
    lo, hi = float(lo_t), float(hi_t)
    if not hi > lo:
        return None
    flat = x.reshape(-1)
    count = min(flat.numel(), _GRID_SAMPLE)
    # Evenly spaced entries, in integer arithmetic (a float linspace overshoots large sizes).
    picks = torch.arange(count, device=x.device) * (flat.numel() - 1) // max(count - 1, 1)
    levels = torch.unique(flat[picks].double())
    if levels.numel() > 256 or levels.numel() < 2:
        return None
    # The smallest gap names the number of steps; the whole range then gives the step with
    # less rounding than any one gap.
    n_steps = round((hi - lo) / float(levels.diff().min()))
    if not 1 <= n_steps <= 255:
        return None
    step = (hi - lo) / n_steps
    n, dim = int(x.shape[0]), int(x.shape[1])
    # Zero columns change no product; a width that is a multiple of 8 also avoids CPU
    # ``_int_mm`` paths that are wrong (a single column gives garbage in torch 2.13).
    codes = torch.zeros((n, dim + -dim % 8), dtype=torch.int8, device=x.device)
    code_sq = torch.empty(n, dtype=torch.float64, device=x.device)
    # Float rounding only (scaling, an affine normalisation): data merely near a grid would
    # widen the bound until most rows needed the exhaustive re-search.
    unit = _U32 if x.dtype != torch.float64 else 2.0**-53
    tolerance = min(1e-4 * step, 16.0 * unit * max(abs(lo), abs(hi)))

    def encode(rows: range) -> float:
        """Codes of the rows; the largest distance of their entries from the grid."""
        chunk = x[rows.start : rows.stop] if order is None else x[order[rows.start : rows.stop]]
        level = chunk.sub(lo).div_(step).round_().to(torch.promote_types(x.dtype, torch.float32))
        miss = float(level.mul(step).add_(lo).sub_(chunk).abs_().max())
        if miss > tolerance:
            raise _OffGridError
        level.sub_(128.0)
        codes[rows.start : rows.stop, :dim] = level.to(torch.int8)
        code_sq[rows.start : rows.stop] = level.square_().sum(dim=1, dtype=torch.float64)
        return miss

    try:
        worst = max(map_tasks(row_ranges(n, max_rows=_GRID_TASK_ROWS), encode, x.device))
    except _OffGridError:
        return None
    # The check itself was rounded (a subtraction, a division, a product and a sum).
    eps = worst + 6.0 * unit * max(abs(lo), abs(hi))
    if eps > 1e-3 * step:  # a large offset: its rounding alone would widen the bound too far
        return None
    return EightBitGrid(lo, step, eps, codes, code_sq)


_INT_MM_CHECKED: dict[int, bool] = {}


def int_mm_is_exact(width: int) -> bool:
    """Whether ``torch._int_mm`` multiplies int8 matrices of this width exactly on the CPU
    (checked once per width against an int64 product; a kernel that cannot be trusted is not
    used)."""
    if width not in _INT_MM_CHECKED:
        generator = torch.Generator().manual_seed(0)
        a = torch.randint(-128, 128, (33, width), dtype=torch.int8, generator=generator)
        b = torch.randint(-128, 128, (17, width), dtype=torch.int8, generator=generator)
        try:
            product = torch._int_mm(a, b.T)
            exact = torch.equal(product.long(), a.long() @ b.long().T)
        except (RuntimeError, AttributeError):
            exact = False
        _INT_MM_CHECKED[width] = exact
    return _INT_MM_CHECKED[width]


def _cpu_has(feature: str) -> bool:
    check = getattr(torch.cpu, f"_is_{feature}_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def make_gram(
    x: Tensor,
    order: Tensor | None,
    kind: KernelName = "auto",
    *,
    k: int | None = None,
    n_candidates: int | None = None,
) -> GramKernel:
    """The kernel ``kind`` for the points ``x`` (visited in ``order``); see the module doc.

    ``k`` and ``n_candidates`` (the search's) let ``"auto"`` check that the bfloat16 kernel
    would pay (:func:`bfloat16_certifies`).

    ``"int8"`` asked for data off an 8-bit grid (or with more than 32,000 features) raises
    ``ValueError``; ``"int8"`` and ``"bfloat16"`` run on the CPU only.
    """
    if kind not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kind!r}.")
    n, dim = int(x.shape[0]), int(x.shape[1])
    on_cpu = x.device.type == "cpu"
    if kind == "auto":
        if not on_cpu:
            return GramKernel(x, order)
        if dim <= _INT8_MAX_DIM and _cpu_has("vnni") and int_mm_is_exact(dim + -dim % 8):
            grid = eight_bit_grid(x, order)
            if grid is not None:
                return Int8Kernel(grid, dim)
        base = GramKernel(x, order)
        if (
            n >= _BF16_MIN_POINTS
            and dim >= _BF16_MIN_DIM
            and _cpu_has("avx512_bf16")
            and (k is None or n_candidates is None or bfloat16_certifies(base, k, n_candidates))
        ):
            return BFloat16Kernel.from_float32(base)
        return base
    if kind != "float32" and not on_cpu:
        raise ValueError(f"kernel={kind!r} runs on the CPU only; use 'float32' or 'auto'.")
    if kind == "int8":
        grid = eight_bit_grid(x, order) if dim <= _INT8_MAX_DIM else None
        if not int_mm_is_exact(dim + -dim % 8):
            raise ValueError(
                "kernel='int8' needs an exact torch._int_mm, which this PyTorch build lacks; "
                "use 'auto' or 'float32'."
            )
        if grid is None:
            raise ValueError(
                "kernel='int8' needs data on an 8-bit grid (x = lo + step * k, k in 0..255, "
                f"at most {_INT8_MAX_DIM} features); use 'auto' or 'float32'."
            )
        return Int8Kernel(grid, dim)
    if kind == "bfloat16":
        return BFloat16Kernel(x, order)
    return GramKernel(x, order)
