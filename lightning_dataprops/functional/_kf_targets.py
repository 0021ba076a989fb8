"""The targets ``K_F`` is measured on: the labelled rows, by the one target rule.

:func:`~lightning_dataprops.functional.targets.normalize_targets` decides what a target is and
which rows are unlabelled (negative class ids, e.g. scikit-learn's ``-1``). Every ``K_F`` path
(the functional ``label_sharpness`` and ``dataset_properties``, the ``LabelSharpness`` metric, and
through them the paper API, the callbacks and the command line) takes its targets from
:func:`kf_targets`, measures the labelled rows only, and :meth:`KFTargets.restore` gives the
result back in the caller's indices, with the count of rows left out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from lightning_dataprops._warnings import warn_from_rank_zero
from lightning_dataprops.functional.results import LabelSharpnessResult, pairs_at
from lightning_dataprops.functional.targets import normalize_targets


@dataclass(frozen=True)
class KFTargets:
    """Targets of the labelled rows, ready for ``K_F``.

    Attributes:
        values: ``(m,)`` int64 class ids (at least two classes) or ``(m, t)`` float64 values.
        kind: ``"class"`` or ``"regression"``.
        n_classes: the class count (``None`` for regression).
        index: ``(m,)`` positions of these rows among the ``n_given`` rows, ``None`` when all
            rows are labelled.
        n_given: rows given.
    """

    values: Tensor
    kind: str
    n_classes: int | None
    index: Tensor | None
    n_given: int

    @property
    def n_unlabelled(self) -> int:
        """Rows left out (negative class ids)."""
        return self.n_given - int(self.values.shape[0])

    def rows(self, points: Tensor) -> Tensor:
        """The labelled rows of ``points`` (``(n_given, ...)``)."""
        return points if self.index is None else points[self.index.to(points.device)]

    def restore(self, result: LabelSharpnessResult) -> LabelSharpnessResult:
        """``result`` (measured on :meth:`rows`) with pair indices among the rows given, the
        number of rows left out recorded, and one warning saying so."""
        if self.index is None:
            return result
        positions = self.index.tolist()
        robust = result.robust
        if robust is not None:
            robust = replace(robust, conflicts=pairs_at(robust.conflicts, positions))
        warn_from_rank_zero(
            f"K_F left out {self.n_unlabelled} of {self.n_given} samples whose class id is "
            "negative (unlabelled, e.g. scikit-learn's -1): they are not a class. Measurements "
            "without labels (d_data) keep them.",
            UserWarning,
            stacklevel=4,
        )
        return replace(
            result,
            pairs=pairs_at(result.pairs, positions),
            conflicts=pairs_at(result.conflicts, positions),
            robust=robust,
            n_unlabelled=self.n_unlabelled,
        )


def kf_targets(y: Any, n: int, target_type: str = "auto") -> KFTargets:
    """The targets of ``K_F`` by the package's one rule, unlabelled rows left out.

    Raises:
        ValueError: see :func:`~lightning_dataprops.functional.targets.normalize_targets`;
            also when fewer than two classes remain among the labelled rows.
        TypeError: complex or object targets.
    """
    norm = normalize_targets(y, n, target_type, name="`y`", min_classes=2, warn_class_ids=True)
    if norm.is_class:
        index = norm.labelled_indices()
        values = norm.values if index is None else norm.values[index]
        return KFTargets(values, "class", norm.n_classes, index, n)
    values = norm.values.to(torch.float64)
    values = values if values.ndim == 2 else values[:, None]
    return KFTargets(values, "regression", None, None, n)
