"""IDX files (the MNIST family's format): unsigned bytes behind a big-endian header."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["idx_file", "read_idx"]


def read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) of unsigned bytes."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4:
        raise ValueError(f"{path}: too short to be an IDX file ({len(raw)} bytes).")
    zero1, zero2, dtype_code, ndim = struct.unpack(">BBBB", raw[:4])
    if zero1 != 0 or zero2 != 0 or dtype_code != 0x08 or ndim != expected_ndim:
        magic = struct.unpack(">I", raw[:4])[0]
        raise ValueError(
            f"{path}: bad IDX magic number 0x{magic:08x}; expected 0x{0x800 + expected_ndim:08x} "
            f"(unsigned bytes, {expected_ndim} dimension(s))."
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(dims))
    if len(raw) - header != size:
        raise ValueError(
            f"{path}: IDX header announces {dims} = {size} bytes of data but the file holds "
            f"{len(raw) - header}."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def idx_file(root: Path, name: str) -> Path | None:
    """``root/name.gz`` or ``root/name``, whichever exists."""
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.is_file():
            return candidate
    return None
