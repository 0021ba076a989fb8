"""Plain-text reports of dataset properties, shared by the command line and the callbacks.

:func:`format_report` turns a :class:`~lightning_dataprops.functional.DatasetProperties` into a
readable multi-line report: the data, ``d_data`` by MLE and TwoNN with their uncertainty, label
sharpness ``K_F`` with its sharpest pairs, duplicates, label conflicts and the time taken.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lightning_dataprops.findings.format import format_label, format_number
from lightning_dataprops.functional.duplicates import DuplicateReport
from lightning_dataprops.functional.results import (
    DatasetProperties,
    IntrinsicDimensionResult,
    LabelSharpnessResult,
    SharpPair,
)

__all__ = ["format_report"]

_MAX_CONFLICTS = 10
_MAX_DUPLICATE_GROUPS = 5


def _number(value: float | None, digits: int = 4) -> str:
    """Aligned columns: ``digits`` decimals (:func:`~.format.format_number` with ``fixed``)."""
    return format_number(value, digits, fixed=True)


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + (",)" if len(shape) == 1 else ")")


def _index(i: int, index_map: Sequence[int] | None) -> int:
    return i if index_map is None else int(index_map[i])


def _id_line(name: str, result: IntrinsicDimensionResult) -> str:
    head = f"  {name + ' (' + result.variant + ')':<28} {_number(result.value, 3):>8}"
    ties = f"; {result.n_ties} sample(s) with tied neighbour distances" if result.n_ties else ""
    if result.stderr is None:
        return head + f"   (no stderr: --bootstrap N, or n_bootstrap=N in Python, gives one{ties})"
    kind = (
        f"bootstrap stderr, B={result.n_bootstrap}" if result.n_bootstrap else "asymptotic stderr"
    )
    line = f"{head} ± {_number(result.stderr, 3)} ({kind})"
    if result.ci95 is not None:
        low, high = result.ci95
        line += f", 95% CI [{_number(low, 3)}, {_number(high, 3)}]"
    return line + ties


def _pairs_table(pairs: Sequence[SharpPair], index_map: Sequence[int] | None) -> list[str]:
    header = (
        f"    {'rank':>4} {'i':>8} {'j':>8} {'label_i':>8} {'label_j':>8} "
        f"{'distance':>10} {'sharpness':>10}"
    )
    lines = [header]
    for rank, pair in enumerate(pairs, start=1):
        lines.append(
            f"    {rank:>4} {_index(pair.i, index_map):>8} {_index(pair.j, index_map):>8} "
            f"{format_label(pair.label_i):>8} {format_label(pair.label_j):>8} "
            f"{_number(pair.distance):>10} {_number(pair.sharpness):>10}"
        )
    return lines


def _sharpness_lines(
    result: LabelSharpnessResult | None, index_map: Sequence[int] | None
) -> list[str]:
    if result is None:
        return ["Label sharpness K_F: n/a (it needs labels of at least 2 classes)"]
    detail = [result.method, result.target_type]
    if result.n_classes is not None:
        detail.append(f"{result.n_classes} classes")
    if result.n_pairs_evaluated is not None:
        detail.append(f"{result.n_pairs_evaluated} pairs evaluated")
    value = _number(result.value)
    if math.isinf(result.value):
        value += " (label conflict: identical inputs with different labels)"
    lines = [f"Label sharpness K_F = {value}   ({', '.join(detail)})"]
    if result.pairs:
        lines.append(
            f"  sharpest pairs (K_F = 1 / distance for class labels), top {len(result.pairs)}:"
        )
        lines.extend(_pairs_table(result.pairs, index_map))
    return lines


def _duplicates_line(report: DuplicateReport, index_map: Sequence[int] | None) -> str:
    if not report.groups:
        return "Duplicates: none"
    if index_map is None:
        return f"Duplicates: {report.summary(max_groups=_MAX_DUPLICATE_GROUPS)}"
    groups = [[_index(i, index_map) for i in group] for group in report.groups]
    shown = "; ".join(str(group) for group in groups[:_MAX_DUPLICATE_GROUPS])
    more = (
        f" and {len(groups) - _MAX_DUPLICATE_GROUPS} more"
        if len(groups) > _MAX_DUPLICATE_GROUPS
        else ""
    )
    return (
        f"Duplicates: {report.n_duplicates} duplicate sample(s) in {report.n_groups} group(s) "
        f"(distance <= {format_number(report.threshold, 3)}; "
        f"{report.n_exact_pairs} exact pair(s)): "
        f"{shown}{more}"
    )


def _conflict_lines(
    result: LabelSharpnessResult | None, index_map: Sequence[int] | None
) -> list[str]:
    if result is None:
        return []
    if not result.conflicts:
        return ["Label conflicts: none"]
    lines = [
        f"Label conflicts: {len(result.conflicts)} pair(s) of identical inputs with different "
        "labels (check them for labelling errors):"
    ]
    for pair in result.conflicts[:_MAX_CONFLICTS]:
        lines.append(
            f"    {_index(pair.i, index_map)} (label {format_label(pair.label_i)}) vs "
            f"{_index(pair.j, index_map)} (label {format_label(pair.label_j)})"
        )
    if len(result.conflicts) > _MAX_CONFLICTS:
        lines.append(f"    ... and {len(result.conflicts) - _MAX_CONFLICTS} more")
    return lines


def format_report(
    props: DatasetProperties,
    *,
    description: str,
    elapsed: float,
    value_range: tuple[float, float] | None = None,
    index_map: Sequence[int] | None = None,
) -> str:
    """Format dataset properties as a readable plain-text report.

    Args:
        props: the result of :func:`~lightning_dataprops.functional.dataset_properties`.
        description: one line saying what data was measured (source, split, sampling).
        elapsed: seconds the measurement took.
        value_range: ``(min, max)`` of the inputs, shown when given.
        index_map: source index of every sample position; when given (a subsample), the
            indices shown in pairs, conflicts and duplicate groups are source indices.

    Returns:
        The report, lines joined by ``"\\n"``, without a trailing newline.

    Example:
        >>> import torch
        >>> from lightning_dataprops.functional import dataset_properties
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.rand(200, 5, generator=g)
        >>> props = dataset_properties(x, (x[:, 0] > 0.5).long(), k=10, top_pairs=2)
        >>> text = format_report(props, description="uniform cube", elapsed=0.1)
        >>> "samples (n)" in text and "K_F =" in text
        True
    """
    mle, twonn = props.mle_result, props.twonn_result
    lines = [
        "Dataset properties",
        f"  source        {description}",
        f"  samples (n)   {props.n}",
        f"  input shape   {_shape(props.input_shape)}",
    ]
    if value_range is not None:
        lines.append(
            f"  value range   [{format_number(value_range[0])}, {format_number(value_range[1])}]"
        )
    if index_map is not None:
        lines.append("  indices below refer to the source dataset")
    lines.append("")
    used = f"{mle.n} samples used" if mle.n == props.n else f"{mle.n} samples after de-duplication"
    lines.append(f"Intrinsic dimension d_data (k = {mle.k}; {used})")
    lines.append(_id_line("MLE", mle))
    lines.append(_id_line("TwoNN", twonn))
    lines.append("")
    lines.extend(_sharpness_lines(props.label_sharpness_result, index_map))
    lines.append("")
    lines.append(_duplicates_line(props.duplicates, index_map))
    lines.extend(_conflict_lines(props.label_sharpness_result, index_map))
    lines.append(f"Time: {format_number(elapsed, 2, fixed=True)} s")
    return "\n".join(lines)
