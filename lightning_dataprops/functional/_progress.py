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
    ``progress`` setting of :func:`~lightning_dataprops.config_context`, read now, in the
    calling thread, whichever thread then consumes the items)."""
    if not resolve_progress(enabled):
        return iter(items)
    from tqdm.auto import tqdm

    return iter(tqdm(items, desc=desc, total=total, leave=False, dynamic_ncols=True))
