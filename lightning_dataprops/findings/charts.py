"""Charts of the reports: a dataset against its references, and a run's values against epoch.

* :func:`sharpness_chart`: a sample's median sharpness ``K_F(0.5)`` placed on the natural-image
  band (same protocol, class count and N), beside the medical datasets' values and the warning
  threshold;
* :func:`d_data_chart`: a sample's ``d_data`` with its interval beside the product's own
  measurements of MNIST, Fashion-MNIST, CIFAR-10 (and the medical sets) at about the same N;
* :func:`lines_chart`: named series against epoch (``d_repr`` per layer, robustness, overhead).

matplotlib is optional: every function returns ``None`` without it (see :mod:`.render`).

Example:
    >>> figure = lines_chart({"fc1": ([0, 1, 2], [9.0, 8.0, 7.5])}, ylabel="d_repr")
    >>> figure is None or len(figure.axes) == 1
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from lightning_dataprops.findings.format import format_number
from lightning_dataprops.findings.render import _new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lightning_dataprops.references import ReferenceBand
    from lightning_dataprops.references.report_values import KnownValue

__all__ = ["d_data_chart", "lines_chart", "sharpness_chart"]

_NATURAL, _MEDICAL, _YOURS, _LIMIT = "#4c78a8", "#e45756", "#111111", "#c05600"


def sharpness_chart(
    value: float,
    band: ReferenceBand,
    threshold: float,
    medical: Sequence[KnownValue] = (),
    *,
    label: str = "this dataset",
) -> Figure | None:
    """Where a sample's ``K_F(0.5)`` stands, one row each: the natural-image band (full range
    light, 10-90% dark, median tick), the medical datasets, and the sample (black diamond); the
    warning threshold as a dashed line across."""
    figure = _new_figure(6.4, 1.2 + 0.45 * (len(medical) + 2))
    if figure is None:
        return None
    ax = figure.subplots()
    names = [f"natural images ({band.count} samples)"]
    ax.barh(
        0, band.maximum - band.minimum, left=band.minimum, height=0.55, color=_NATURAL, alpha=0.25
    )
    ax.barh(0, band.high - band.low, left=band.low, height=0.55, color=_NATURAL, alpha=0.65)
    ax.plot([band.median, band.median], [-0.27, 0.27], color="white", linewidth=2)
    ax.annotate(
        f"max {format_number(band.maximum, 3)}",
        (band.maximum, 0),
        xytext=(4, -3),
        textcoords="offset points",
        fontsize=8,
        color=_NATURAL,
    )
    for y, known in enumerate(medical, start=1):
        names.append(f"{known.dataset} (N = {known.n})")
        ax.scatter(known.value, y, marker="o", s=55, color=_MEDICAL, zorder=3)
        ax.annotate(
            format_number(known.value, 3),
            (known.value, y),
            xytext=(7, -3),
            textcoords="offset points",
            fontsize=8,
            color=_MEDICAL,
        )
    y = len(names)
    names.append(label)
    shown = value if math.isfinite(value) else threshold
    ax.scatter(shown, y, marker="D", s=90, color=_YOURS, zorder=4)
    ax.annotate(
        format_number(value, 3),
        (shown, y),
        xytext=(8, -3),
        textcoords="offset points",
        fontsize=9,
        fontweight="bold",
    )
    ax.axvline(threshold, color=_LIMIT, linestyle="--", linewidth=1.2)
    ax.annotate(
        "warning threshold",
        (threshold, len(names) - 0.45),
        xytext=(3, 0),
        textcoords="offset points",
        fontsize=8,
        color=_LIMIT,
        va="top",
    )
    finite = [
        v
        for v in (value, band.minimum, band.maximum, threshold, *(m.value for m in medical))
        if math.isfinite(v)
    ]
    low, high = min(finite), max(finite)
    pad = 0.1 * (high - low or 1.0)
    ax.set_xlim(max(0.0, low - pad), high + 1.6 * pad)
    ax.set_yticks(range(len(names)), names, fontsize=9)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlabel("median label sharpness K_F(0.5)", fontsize=9)
    ax.set_title(
        f"K_F(0.5): {band.protocol} format, N = {band.measured_n}, {band.n_classes} classes",
        fontsize=10,
    )
    ax.grid(axis="x", alpha=0.3)
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)
    return figure


def d_data_chart(
    value: float,
    interval: tuple[float, float] | None,
    references: Sequence[KnownValue],
    *,
    n: int,
    label: str = "this dataset",
    twonn: float | None = None,
) -> Figure | None:
    """The sample's ``d_data`` (interval as an error bar, TwoNN as a hollow marker) beside the
    known datasets' values (their spread over seeds as error bars), one row each."""
    rows = [*references]
    figure = _new_figure(6.4, 1.2 + 0.45 * (len(rows) + 1))
    if figure is None:
        return None
    ax = figure.subplots()
    names = [f"{row.dataset} (N = {row.n})" for row in rows] + [f"{label} (N = {n})"]
    for y, row in enumerate(rows):
        colour = _MEDICAL if row.domain == "medical" else _NATURAL
        ax.errorbar(
            row.value,
            y,
            xerr=[[row.value - row.low], [row.high - row.value]],
            fmt="o",
            color=colour,
            capsize=3,
        )
        ax.annotate(
            format_number(row.value, 3),
            (row.value, y),
            xytext=(8, 4),
            textcoords="offset points",
            fontsize=8,
            color=colour,
        )
    y = len(rows)
    if interval is not None and all(math.isfinite(v) for v in interval):
        ax.errorbar(
            value,
            y,
            xerr=[[value - interval[0]], [interval[1] - value]],
            fmt="D",
            color=_YOURS,
            capsize=4,
            markersize=8,
        )
    else:
        ax.scatter(value, y, marker="D", s=70, color=_YOURS, zorder=3)
    ax.annotate(
        f"{format_number(value, 3)}",
        (value, y),
        xytext=(8, 4),
        textcoords="offset points",
        fontsize=9,
        fontweight="bold",
    )
    if twonn is not None and math.isfinite(twonn):
        ax.scatter(twonn, y, marker="D", s=60, facecolors="none", edgecolors=_YOURS, zorder=3)
        ax.annotate(
            "TwoNN",
            (twonn, y),
            xytext=(0, -13),
            textcoords="offset points",
            fontsize=7,
            ha="center",
        )
    ax.set_yticks(range(len(names)), names, fontsize=9)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlabel("intrinsic dimension d_data (MLE, k = 20)", fontsize=9)
    ax.set_title("d_data beside known datasets (blue: natural, red: medical)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)
    return figure


def lines_chart(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    ylabel: str,
    title: str = "",
    xlabel: str = "epoch",
    logy: bool = False,
) -> Figure | None:
    """One line per named series of ``(x, y)`` points (``None`` without points)."""
    drawn = {name: xy for name, xy in series.items() if len(xy[0])}
    if not drawn:
        return None
    figure = _new_figure(5.6, 3.4)
    if figure is None:
        return None
    ax = figure.subplots()
    for name, (xs, ys) in drawn.items():
        ax.plot(list(xs), list(ys), marker="o", markersize=4, label=name)
    if logy:
        ax.set_yscale("log")
    if xlabel == "epoch":
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # one epoch: one tick
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    if len(drawn) > 1 or next(iter(drawn)) != ylabel:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return figure
