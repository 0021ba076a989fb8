"""A progress bar that costs nothing when disabled."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from lightning_dataprops.functional.config import resolve_progress

T = TypeVar("T")


def progress_bar(
    items: Iterable[T], *, enabled: bool | None, desc: str, total: int | None = None
) -> Iterator[T]:
    """Iterate over ``items``, with a tqdm bar on stderr when ``enabled`` (``None``: the
    ``progress`` setting of :func:`~lightning_dataprops.config_context`)."""
    if not resolve_progress(enabled):
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=desc, total=total, leave=False, dynamic_ncols=True)
