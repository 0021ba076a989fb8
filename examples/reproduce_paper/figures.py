"""The report's five figures (matplotlib, written as PNG)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import Analysis
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
MARKERS = {"natural": "o", "medical": "s"}


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
            marker=MARKERS[task.domain],
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
        ax.set_title(row.dataset, fontsize=10)
        ax.set_xlabel("training-set size N")
        ax.set_ylabel("test loss (cross-entropy)")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(result.scaling) :]:
        ax.set_visible(False)
    fig.suptitle("Test loss vs N (log-log): fitted slope vs the law's exponent -1/d_data")
    _save(fig, folder / FIGURES["scaling"])


def plot_sharpness(runs: list[Run], tasks: list[Task], result: Analysis, folder: Path) -> None:
    """K_F at matched N by dataset, and K_F against N."""
    plt = _pyplot()
    colors = _dataset_colors(tasks)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    names = [t.name for t in tasks]
    if result.matched_n is not None:
        means = [mean_sd(result.kf_at_matched[name])[0] for name in names]
        sds = [mean_sd(result.kf_at_matched[name])[1] for name in names]
        sds = [0.0 if not math.isfinite(s) else s for s in sds]
        left.bar(
            range(len(names)),
            means,
            yerr=sds,
            capsize=4,
            color=[DOMAIN_COLORS[t.domain] for t in tasks],
        )
        left.set_xticks(range(len(names)))
        left.set_xticklabels([n.split(" (")[0] for n in names], rotation=30, ha="right")
        left.set_ylabel("label sharpness K_F (exact)")
        left.set_title(f"K_F at matched N = {result.matched_n} (blue natural, red medical)")
    for task in tasks:
        rs = [r for r in runs if r.dataset == task.name and math.isfinite(r.label_sharpness)]
        sizes = sorted({r.n_train for r in rs})
        kf = [mean_sd([r.label_sharpness for r in rs if r.n_train == n])[0] for n in sizes]
        right.plot(
            sizes,
            kf,
            marker=MARKERS[task.domain],
            color=colors[task.name],
            label=task.name.split(" (")[0],
        )
    _size_ticks(right, [r.n_train for r in runs])
    right.set_yscale("log")
    right.set_xlabel("training-set size N")
    right.set_ylabel("K_F (mean over seeds)")
    right.set_title("K_F grows with N (a maximum over pairs)")
    right.legend(fontsize=8)
    _save(fig, folder / FIGURES["sharpness"])


def plot_fgsm(runs: list[Run], tasks: list[Task], result: Analysis, folder: Path) -> None:
    """K_F against the FGSM loss increase, every run."""
    fig, ax = _pyplot().subplots(figsize=(6.4, 4.8))
    _scatter_by_task(ax, runs, tasks, lambda r: r.label_sharpness, lambda r: r.fgsm_loss_increase)
    ax.set_xscale("log")
    ax.set_xlabel("label sharpness K_F of the training set")
    ax.set_ylabel("FGSM (eps=2/255) test loss increase")
    ax.set_title(f"Pearson r = {fmt(result.r_all, 2)} over {result.n_finite} runs (paper: 0.70)")
    ax.legend(fontsize=8)
    _save(fig, folder / FIGURES["fgsm"])


def plot_ids(runs: list[Run], tasks: list[Task], result: Analysis, folder: Path) -> None:
    """d_repr against d_data (training subset and probe sample)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    idx = np.arange(len(result.id_rows))
    width = 0.27
    ax.bar(
        idx - width,
        [mean_sd(row["d_data_train"])[0] for row in result.id_rows],
        width,
        label="d_data, training subset (largest N)",
        color="tab:gray",
    )
    ax.bar(
        idx,
        [row["d_data_probe"] for row in result.id_rows],
        width,
        label="d_data, probe sample",
        color="tab:blue",
    )
    ax.bar(
        idx + width,
        [mean_sd(row["d_repr"])[0] for row in result.id_rows],
        width,
        label="d_repr, probe sample (penultimate layer)",
        color="tab:orange",
    )
    ax.set_xticks(idx)
    ax.set_xticklabels(
        [row["dataset"].split(" (")[0] for row in result.id_rows], rotation=30, ha="right"
    )
    tallest = max(
        [row["d_data_probe"] for row in result.id_rows]
        + [mean_sd(row["d_data_train"])[0] for row in result.id_rows]
    )
    ax.set_ylim(0, 1.35 * tallest)
    ax.set_ylabel("intrinsic dimension (MLE, k=20)")
    ax.set_title("Representation ID vs data ID")
    ax.legend(fontsize=8, loc="upper left", ncols=3)
    _save(fig, folder / FIGURES["ids"])


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
    ax.set_xlabel("predicted test loss C · K_F · N^(-1/d_data)")
    ax.set_ylabel("observed test loss")
    ax.legend(fontsize=8)
    _save(fig, folder / FIGURES["calibration"])


def plot_all(runs: list[Run], tasks: list[Task], result: Analysis, folder: Path) -> None:
    """Write the five figures of the report into ``folder``."""
    for plot in (plot_scaling, plot_sharpness, plot_fgsm, plot_ids, plot_calibration):
        plot(runs, tasks, result, folder)
