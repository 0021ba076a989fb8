"""torch thread counts for tests: a scoped count, and one computation on one thread then two."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

T = TypeVar("T")


@contextlib.contextmanager
def torch_threads(n_threads: int) -> Iterator[None]:
    """``n_threads`` torch threads for the block; the caller's count restored after, whatever
    happens."""
    threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def on_one_and_two_threads(compute: Callable[[], T]) -> tuple[T, T]:
    """``(compute() on 1 torch thread, compute() on 2)``; each must leave the thread count it
    found."""
    results = []
    for n_threads in (1, 2):
        with torch_threads(n_threads):
            results.append(compute())
            assert torch.get_num_threads() == n_threads, "the thread count was not restored"
    return results[0], results[1]
