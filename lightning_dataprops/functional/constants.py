"""One home for each constant of the package (imported by functional, metrics, data, callbacks)."""

from __future__ import annotations

__all__ = [
    "DEFAULT_CHECK_SAMPLES",
    "DEFAULT_CONFLICT_RTOL",
    "DEFAULT_DUPLICATE_RTOL",
    "DEFAULT_K",
    "DEFAULT_MAX_STREAM_ITEMS",
    "DEFAULT_MEMORY_BUDGET_MB",
    "DEFAULT_TIE_RTOL",
    "MAX_TIE_FRACTION",
    "MIN_STREAM_ITEMS",
    "PAPER_EPS",
    "STREAM_ITEMS_PER_SAMPLE",
]

PAPER_EPS: float = 2.0 / 255.0
"""L-inf budget of the paper's FGSM attack on ``[0, 1]`` inputs (Konz & Mazurowski, ICLR 2024)."""

DEFAULT_K: int = 20
"""Neighbours of the MLE intrinsic-dimension estimator (the paper's and Pope et al.'s k)."""

DEFAULT_MEMORY_BUDGET_MB: float = 512.0
"""Bound on the working memory of a neighbour search, in MiB."""

DEFAULT_DUPLICATE_RTOL: float = 1e-3
"""Samples closer than this times the median k-th neighbour distance are duplicates."""

DEFAULT_CHECK_SAMPLES: int = 1000
"""Sample size of the fit-start measurement and of the sharp-label check (the callback's and
``dataprops measure``'s), the middle of the shipped references' sample sizes."""

DEFAULT_CONFLICT_RTOL: float = 0.15
"""Differently-labelled inputs closer than this times the sample's median nearest-neighbour
distance are a label conflict (near-identical inputs). On natural images the closest
differently-labelled pair of any draw lies above 0.26 times that median
(docs/reference_values.md)."""

DEFAULT_TIE_RTOL: float = 1e-4
"""Neighbour distances within this relative difference are tied (discrete data: lattices,
quantised values), so float rounding never decides between an error and an absurd estimate."""

MAX_TIE_FRACTION: float = 0.1
"""An intrinsic-dimension estimate is refused when more than this fraction of samples is tied."""

STREAM_ITEMS_PER_SAMPLE: int = 20
"""A stream is read for at most this many items per requested sample item..."""

MIN_STREAM_ITEMS: int = 10_000
"""...but never fewer than this many (when the stream has them)."""

DEFAULT_MAX_STREAM_ITEMS: int = 1_000_000
"""The most items read from a stream when every item is requested (``max_samples=None``)."""
