"""Exact float32 math whatever the ambient precision settings (autocast, TF32, matmul precision)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["full_precision_matmul"]


def _precision_backends() -> list[Any]:
    """Backends with the ``fp32_precision`` setting (PyTorch >= 2.9) that affect matmul."""
    backends = [torch.backends.cuda.matmul]
    mkldnn_matmul = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    if mkldnn_matmul is not None:
        backends.append(mkldnn_matmul)
    return [b for b in backends if hasattr(b, "fp32_precision")]


@contextlib.contextmanager
def full_precision_matmul() -> Iterator[None]:
    """Exact float32 math inside the block, whatever the ambient settings.

    Switches off an ambient ``torch.autocast`` (CPU and CUDA, any dtype: a ``bf16-mixed``
    training step runs float32 matmuls in bfloat16 otherwise), TF32 on CUDA and bf16 on oneDNN.

    ``torch.set_float32_matmul_precision("medium")``, which Lightning users often call, lets
    float32 matmuls run in TF32 (CUDA) or bfloat16 (oneDNN, on the CPU); distances computed
    that way lose most of their digits. The previous settings are restored afterwards.
    """
    with contextlib.ExitStack() as stack:
        for device_type in _autocast_devices():
            stack.enter_context(torch.autocast(device_type, enabled=False))
        stack.enter_context(_ieee_matmul())
        yield


def _autocast_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    return devices


@contextlib.contextmanager
def _ieee_matmul() -> Iterator[None]:
    backends = _precision_backends()
    if backends:
        previous = [backend.fp32_precision for backend in backends]
        for backend in backends:
            backend.fp32_precision = "ieee"
        try:
            yield
        finally:
            for backend, value in zip(backends, previous, strict=True):
                backend.fp32_precision = value
        return
    previous_precision = torch.get_float32_matmul_precision()
    previous_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous_precision)
        torch.backends.cuda.matmul.allow_tf32 = previous_tf32
