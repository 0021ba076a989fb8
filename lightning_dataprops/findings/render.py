"""Draw each finding once with matplotlib, for every logger and the HTML report.

matplotlib is optional (the ``plots`` extra). Without it every ``render*`` function returns
``None`` and one :class:`PlotsUnavailableWarning` per process says that only scalars, texts and
JSON are logged. Figures are built with the object-oriented API on the Agg canvas
(``matplotlib.figure.Figure`` + ``FigureCanvasAgg``): no pyplot, no GUI backend, no global figure
registry to leak or close.

Example:
    >>> from lightning_dataprops.findings import KCurveFinding
    >>> figure = render(KCurveFinding(ks=(5, 10, 20), values=(8.0, 9.0, 9.5), k_default=20))
    >>> figure_to_png(figure)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor

from lightning_dataprops.findings.format import format_number

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lightning_dataprops.findings import (
        Finding,
        ForecastFinding,
        KCurveFinding,
        PairExample,
        ReprProfileFinding,
        SharpPairsFinding,
    )

__all__ = [
    "PlotsUnavailableWarning",
    "figure_to_array",
    "figure_to_png",
    "pair_display",
    "plots_available",
    "render",
    "render_forecast",
    "render_k_curve",
    "render_repr_profile",
    "render_sharp_pairs",
]


class PlotsUnavailableWarning(UserWarning):
    """matplotlib is not installed: loggers receive scalars, texts and JSON, no pictures."""


_warned = False


def _new_figure(width: float, height: float) -> Figure | None:
    """An Agg-backed figure of ``width`` x ``height`` inches, or ``None`` without matplotlib."""
    global _warned
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        if not _warned:
            _warned = True
            warnings.warn(
                "matplotlib is not installed, so dataprops logs scalars, texts and JSON only (no "
                "images of the sharpest pairs, the d_repr profile or the forecast). Install the "
                "plots extra: pip install 'lightning-dataprops[plots]'.",
                PlotsUnavailableWarning,
                stacklevel=3,
            )
        return None
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plots_available() -> bool:
    """Whether matplotlib can be imported (pictures are drawn)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def figure_to_png(figure: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def figure_to_array(figure: Figure, *, dpi: int = 100) -> np.ndarray:
    """The figure as an ``(H, W, 3)`` uint8 RGB array (what ``SummaryWriter.add_image`` takes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure.set_dpi(dpi)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _as_hwc(sample: Tensor) -> np.ndarray | None:
    """``(H, W, C)`` float64 with C in (1, 3), or ``None`` for inputs that are not images."""
    array = sample.detach().cpu().double().numpy()
    if array.ndim == 2:
        return array[..., None]
    if array.ndim != 3:
        return None
    if array.shape[0] in (1, 3, 4) or array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # channels first, torch's layout
    channels = array.shape[-1]
    if channels == 4:
        return array[..., :3]
    if channels in (1, 3):
        return array
    return array.mean(axis=-1, keepdims=True)


def pair_display(first: Tensor, second: Tensor) -> tuple[np.ndarray, np.ndarray] | None:
    """Both inputs of a pair as displayable ``(H, W, 3)`` arrays in ``[0, 1]``, scaled with the
    pair's joint minimum and maximum (so their difference stays visible), or ``None`` when the
    inputs are not images (1-D features) or differ in shape.

    Example:
        >>> import torch
        >>> a, b = pair_display(torch.zeros(1, 2, 2), torch.full((1, 2, 2), 255.0))
        >>> a.shape, float(a.max()), float(b.min())
        ((2, 2, 3), 0.0, 1.0)
    """
    left, right = _as_hwc(first), _as_hwc(second)
    if left is None or right is None or left.shape != right.shape:
        return None
    both = np.concatenate([left.ravel(), right.ravel()])
    finite = both[np.isfinite(both)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    span = high - low

    def scaled(image: np.ndarray) -> np.ndarray:
        image = np.nan_to_num(image, nan=low)
        unit = (image - low) / span if span > 0 else np.zeros_like(image)
        unit = np.clip(unit, 0.0, 1.0)
        return np.repeat(unit, 3, axis=-1) if unit.shape[-1] == 1 else unit

    return scaled(left), scaled(right)


def render_sharp_pairs(
    finding: SharpPairsFinding, *, max_rows: int = 8, columns: int | None = 1
) -> Figure | None:
    """The pairs as an image gallery, ``columns`` pairs a row (default one, what the loggers
    show; ``None``: up to 4, rows as full as they can be): input i |
    input j, captioned with the dataset indices, labels (with class names when the finding has
    them), distance and sharpness; label conflicts marked in red.

    Returns ``None`` without matplotlib, and when no pair has image-like inputs (1-D features,
    or inputs not kept): their numbers are in the finding's JSON and text.
    """
    shown_pairs: list[tuple[PairExample, tuple[np.ndarray, np.ndarray]]] = []
    for pair in finding.pairs[:max_rows]:
        if pair.input_i is None or pair.input_j is None:
            continue
        shown = pair_display(pair.input_i, pair.input_j)
        if shown is not None:
            shown_pairs.append((pair, shown))
    if not shown_pairs:
        return None
    n_rows = -(-len(shown_pairs) // (columns or 4))
    cols = columns or -(-len(shown_pairs) // n_rows)  # rows as full as they can be
    figure = _new_figure(max(4.4, 3.6 * cols), 0.2 + 2.35 * n_rows)
    if figure is None:
        return None
    grid = figure.subfigures(n_rows, cols, squeeze=False)
    for number, (pair, (left, right)) in enumerate(shown_pairs):
        subfigure = grid[number // cols, number % cols]
        what = "LABEL CONFLICT (identical)" if pair.conflict else f"pair {number + 1}"
        subfigure.suptitle(
            f"{what}: distance {format_number(pair.distance, 3)}",
            fontsize=8,
            color="firebrick" if pair.conflict else "black",
        )
        axes = subfigure.subplots(1, 2)
        for ax, image, index, label in (
            (axes[0], left, pair.index_i, pair.label_i),
            (axes[1], right, pair.index_j, pair.label_j),
        ):
            ax.imshow(image, interpolation="nearest")
            ax.set_title(f"#{index}\n{finding.label_text(label)}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    for number in range(len(shown_pairs), n_rows * cols):
        grid[number // cols, number % cols].set_visible(False)
    return figure


def render_repr_profile(finding: ReprProfileFinding) -> Figure | None:
    """``d_repr`` against epoch, one line per layer; beside it, against depth at the last epoch.

    With a single epoch only the plot against depth is drawn.
    """
    layers, epochs = finding.layers, finding.epochs
    if not finding.rows:
        return None
    by_depth_only = len(epochs) == 1
    figure = _new_figure(5.0 if by_depth_only else 9.5, 3.6)
    if figure is None:
        return None
    axes = figure.subplots(1, 1 if by_depth_only else 2, squeeze=False)[0]
    values = {(row.epoch, row.layer): row.d_repr for row in finding.rows}
    if not by_depth_only:
        ax = axes[0]
        for layer in layers:
            xs = [epoch for epoch in epochs if (epoch, layer) in values]
            ax.plot(xs, [values[(epoch, layer)] for epoch in xs], marker="o", label=layer)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel("d_repr (MLE)")
        ax.set_title("d_repr per layer over training", fontsize=9)
        ax.legend(fontsize=7)
    ax = axes[-1]
    last = epochs[-1]
    shown = [layer for layer in layers if (last, layer) in values]
    ax.plot(range(len(shown)), [values[(last, layer)] for layer in shown], marker="o")
    ax.set_xticks(range(len(shown)), shown, rotation=30, ha="right", fontsize=7)
    ax.set_xlabel("layer (by depth)")
    ax.set_ylabel("d_repr (MLE)")
    ax.set_title(f"d_repr across layers, epoch {last}", fontsize=9)
    return figure


def render_forecast(finding: ForecastFinding) -> Figure | None:
    """Predicted loss (or loss ratio) against training-set size N, log-log; observed
    validation losses marked; the run's N marked with a vertical line."""
    figure = _new_figure(5.0, 3.6)
    if figure is None:
        return None
    curve = finding.curve()
    ax = figure.subplots()
    ax.loglog(curve.n, curve.y, marker=".", label=curve.label)
    observed = finding.observed_on_curve_scale()
    if observed:
        ax.scatter(
            [size for size, _ in observed],
            [loss for _, loss in observed],
            color="crimson",
            zorder=3,
            label="observed validation loss",
        )
    ax.axvline(finding.n_train, color="grey", linestyle=":", label=f"N0 = {finding.n_train}")
    ax.set_xlabel("training-set size N")
    ax.set_ylabel("predicted test loss" if curve.kind == "predicted_loss" else "L(N) / L(N0)")
    ax.set_title(f"Data-scaling forecast, d_data = {format_number(finding.d_data, 3)}", fontsize=9)
    ax.legend(fontsize=7)
    return figure


def render_k_curve(finding: KCurveFinding) -> Figure | None:
    """The MLE estimate of ``d_data`` against the neighbour count k, the reported k marked."""
    figure = _new_figure(5.0, 3.4)
    if figure is None:
        return None
    ax = figure.subplots()
    ax.plot(finding.ks, finding.values, marker="o")
    if finding.k_default is not None:
        ax.axvline(finding.k_default, color="grey", linestyle=":", label=f"k = {finding.k_default}")
        ax.legend(fontsize=7)
    ax.set_xlabel("neighbours k")
    ax.set_ylabel("d_data (MLE)")
    ax.set_title(finding.title, fontsize=9)
    return figure


def render(finding: Finding, **options: Any) -> Figure | None:
    """The figure of any finding (its ``figure(**options)`` method), or ``None``: texts and
    hyperparameters have no figure, and without matplotlib nothing has one."""
    draw = getattr(finding, "figure", None)
    return None if draw is None else draw(**options)
