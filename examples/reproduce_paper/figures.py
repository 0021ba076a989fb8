"""The report's five figures (matplotlib, written as PNG)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import SHARPNESS, Analysis
from .experiment import Run
from .stats import fmt, mean_sd
from .tasks import Task

FIGURES = {
    "scaling": "reproduction_loss_vs_n.png",
    "sharpness": "reproduction_label_sharpness.png",
    "fgsm": "reproduction_kf_vs_fgsm.png",
    "ids": "reproduction_repr_vs_data_id.png",
    "calibration": "reproduction_calibration.png",
}
DOMAIN_COLORS = {"natural": "tab:blue", "medical": "tab:red"}
MARKERS = {"natural": "o", "medical": "s", "photos": "^"}


def _marker(task: Task) -> str:
    return MARKERS["photos"] if task.image_shape[0] == 3 else MARKERS[task.domain]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _size_ticks(ax: Any, sizes: Sequence[int]) -> None:
    """Log x axis labelled with the sizes themselves (no overlapping minor labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sorted(set(sizes))))
    ax.xaxis.set_major_formatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _log_labels(axis: Any) -> None:
    """Plain numbers on a log axis, minor ticks unlabelled (no overlapping 10^x labels)."""
    from matplotlib.ticker import LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0, 7.0)))
    axis.set_major_formatter(lambda value, _: f"{value:g}")
    axis.set_minor_formatter(NullFormatter())


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def _scatter_by_task(
    ax: Any,
    runs: list[Run],
    tasks: list[Task],
    x: Callable[[Run], float],
    y: Callable[[Run], float],
) -> None:
    """One colour and marker per dataset, the runs with a finite K_F."""
    colors = _dataset_colors(tasks)
    for task in tasks:
        rs = [r for r in runs if r.dataset == task.name and math.isfinite(r.label_sharpness)]
        ax.scatter(
            [x(r) for r in rs],
            [y(r) for r in rs],
            color=colors[task.name],
            marker=_marker(task),
            label=task.name.split(" (")[0],
            alpha=0.8,
        )


def _dataset_colors(tasks: list[Task]) -> dict[str, Any]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    return {task.name: cmap(i % 10) for i, task in enumerate(tasks)}


def plot_scaling(runs: list[Run], tasks: list[Task], result: Analysis, folder: Path) -> None:
    """Test loss against N per dataset, the fitted line and the law's exponent."""
    plt = _pyplot()
    cols = min(3, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.6 * rows), squeeze=False)
    for ax, row in zip(axes.flat, result.scaling, strict=False):
        rs = [r for r in runs if r.dataset == row.dataset]
        ns = np.array([r.n_train for r in rs], float)
        losses = np.array([r.test_loss for r in rs], float)
        ax.scatter(ns, losses, s=18, alpha=0.6, color=DOMAIN_COLORS[row.domain], label="runs")
        grid = np.geomspace(ns.min(), ns.max(), 20)
        if math.isfinite(row.fit.slope):
            ax.plot(
                grid,
                np.exp(row.fit.intercept) * grid**row.fit.slope,
                color="k",
                label=f"fit: slope {row.fit.slope:.2f} ± {fmt(row.fit.stderr, 2)}",
            )
            center_x, center_y = (
                np.log(ns).mean(),
                row.fit.intercept + row.fit.slope * np.log(ns).mean(),
            )
            ax.plot(
                grid,
                np.exp(center_y) * (grid / np.exp(center_x)) ** row.predicted,
                "--",
                color="tab:green",
                label=f"-1/d_data = {row.predicted:.3f}",
            )
        _size_ticks(ax, row.sizes)
        ax.set_yscale("log")
        _log_labels(ax.yaxis)
        ax.set_title(row.dataset, fontsize=10)
        ax.set_xlabel("training-set size N")
        ax.set_ylabel("test loss (cross-entropy)")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(result.scaling) :]:
        ax.set_visible(False)
    fig.suptitle("Test loss vs N (log-log): fitted slope vs the law's exponent -1/d_data")
    _save(fig, folder / FIGURES["scaling"])


def _bars(ax: Any, tasks: list[Task], values: dict[str, list[float]], label: str) -> None:
    names = [t.name for t in tasks]
    sds = [mean_sd(values[name])[1] for name in names]
    ax.bar(
        range(len(names)),
        [mean_sd(values[name])[0] for name in names],
        yerr=[0.0 if not math.isfinite(s) else s for s in sds],
        capsize=4,
        color=[DOMAIN_COLORS[t.domain] for t in tasks],
        hatch=["//" if t.image_shape[0] == 3 else "" for t in tasks],
        edgecolor="white",
    )
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.split(" (")[0] for n in names], rotation=30, ha="right")
    ax.set_ylabel(label)


def plot_sharpness(runs: list[Run], tasks: list[Task], result: Analysis, folder: Path) -> None:
    """Exact K_F and K_F(0.5) at matched N by dataset (28x28 grayscale), and K_F against N."""
    plt = _pyplot()
    colors = _dataset_colors(tasks)
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.8))
    if result.matched_n is not None:
        _bars(left, tasks, result.at_matched["kf_protocol"], "exact K_F (28x28 grayscale)")
        left.set_title(f"exact K_F at N = {result.matched_n} (red medical, hatched RGB photos)")
        _bars(middle, tasks, result.at_matched["kf_median_protocol"], "K_F(0.5) (28x28 grayscale)")
        middle.set_title(f"median sharpness K_F(0.5) at N = {result.matched_n}")
    for task in tasks:
        rs = [r for r in runs if r.dataset == task.name and math.isfinite(r.kf_protocol)]
        sizes = sorted({r.n_train for r in rs})
        for field, style in (("kf_protocol", "-"), ("kf_median_protocol", ":")):
            right.plot(
                sizes,
                [mean_sd([getattr(r, field) for r in rs if r.n_train == n])[0] for n in sizes],
                style,
                marker=_marker(task),
                color=colors[task.name],
                label=task.name.split(" (")[0] if field == "kf_protocol" else None,
            )
    _size_ticks(right, [r.n_train for r in runs])
    right.set_yscale("log")
    _log_labels(right.yaxis)
    right.set_xlabel("training-set size N")
    right.set_ylabel("K_F, 28x28 grayscale (mean over seeds)")
    right.set_title("exact K_F (solid) grows with N; K_F(0.5) (dotted) barely")
    right.legend(fontsize=7)
    _save(fig, folder / FIGURES["sharpness"])


def plot_fgsm(runs: list[Run], tasks: list[Task], result: Analysis, folder: Path) -> None:
    """Exact K_F (as trained) and K_F(0.5) (28x28 grayscale) against the FGSM loss increase."""
    fig, axes = _pyplot().subplots(1, 2, figsize=(12, 4.8))
    for ax, correlation in zip(axes, (result.correlations[0], result.correlations[2]), strict=True):
        field = correlation.statistic
        _scatter_by_task(
            ax, runs, tasks, partial(_field, name=field), lambda r: r.fgsm_loss_increase
        )
        ax.set_xscale("log")
        _log_labels(ax.xaxis)
        ax.set_xlabel(f"{SHARPNESS[field]} (training subset)")
        ax.set_ylabel("FGSM (eps=2/255) test loss increase")
        ax.set_title(f"r = {fmt(correlation.r, 2)} over {correlation.n} runs (paper: 0.70)")
        ax.legend(fontsize=7)
    _save(fig, folder / FIGURES["fgsm"])


def plot_ids(runs: list[Run], tasks: list[Task], result: Analysis, folder: Path) -> None:
    """d_repr against d_data, both of the training subset at the largest N."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 4.6))
    idx = np.arange(len(result.id_rows))
    width = 0.38
    for offset, key, label, color in (
        (-width / 2, "d_data", "d_data, training subset (largest N)", "tab:blue"),
        (width / 2, "d_repr", "d_repr, same subset (penultimate layer)", "tab:orange"),
    ):
        ax.bar(
            idx + offset,
            [mean_sd(row[key])[0] for row in result.id_rows],
            width,
            yerr=[_sd(row[key]) for row in result.id_rows],
            capsize=3,
            label=label,
            color=color,
        )
    ax.set_xticks(idx)
    ax.set_xticklabels(
        [row["dataset"].split(" (")[0] for row in result.id_rows], rotation=30, ha="right"
    )
    tallest = max(mean_sd(row["d_data"])[0] for row in result.id_rows)
    ax.set_ylim(0, 1.3 * tallest)
    ax.set_ylabel("intrinsic dimension (MLE, k=20)")
    ax.set_title("Representation ID vs data ID, same training images")
    ax.legend(fontsize=8, loc="upper left", ncols=2)
    _save(fig, folder / FIGURES["ids"])


def _field(run: Run, name: str) -> float:
    return float(getattr(run, name))


def _sd(values: list[float]) -> float:
    sd = mean_sd(values)[1]
    return sd if math.isfinite(sd) else 0.0


def plot_calibration(runs: list[Run], tasks: list[Task], result: Analysis, folder: Path) -> None:
    """Observed against predicted test loss with the fitted C."""
    fig, ax = _pyplot().subplots(figsize=(6.4, 4.8))
    cal = result.calibration
    if cal is not None:
        constant = cal.constant

        def predicted(r: Run) -> float:
            return constant * r.label_sharpness * r.n_train ** (-1.0 / r.d_data)

        _scatter_by_task(ax, runs, tasks, predicted, lambda r: r.test_loss)
        everything = [r.test_loss for r in runs] + [
            predicted(r) for r in runs if math.isfinite(r.label_sharpness)
        ]
        span = np.geomspace(min(everything), max(everything), 10)
        ax.plot(span, span, "k-", label="observed = predicted")
        factor = math.exp(cal.rmse_log)
        ax.plot(span, span * factor, "k:", label=f"x/÷ exp(rmse) = {factor:.2f}")
        ax.plot(span, span / factor, "k:")
        ax.set_title(
            f"C = {cal.constant:.3g} fitted on {cal.n_runs} runs "
            f"(log-space rmse {cal.rmse_log:.2f})"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_labels(ax.xaxis)
    _log_labels(ax.yaxis)
    ax.set_xlabel("predicted test loss C · K_F · N^(-1/d_data)")
    ax.set_ylabel("observed test loss")
    ax.legend(fontsize=8)
    _save(fig, folder / FIGURES["calibration"])


def plot_all(runs: list[Run], tasks: list[Task], result: Analysis, folder: Path) -> None:
    """Write the five figures of the report into ``folder``."""
    for plot in (plot_scaling, plot_sharpness, plot_fgsm, plot_ids, plot_calibration):
        plot(runs, tasks, result, folder)
