"""The report's numbered sections, each a list of Markdown lines generated from the analysis."""

from __future__ import annotations

import math

from .analysis import DOMAIN_STATISTICS, SHARPNESS, Analysis
from .experiment import CSV_NAME
from .figures import FIGURES
from .stats import fmt, fmt_pm
from .tasks import Task
from .verdicts import (
    EARLIER_KF,
    PAPER_R,
    correlation_sentence,
    domain_text,
    fgsm_text,
    id_text,
    scaling_text,
    yes_no,
)

HEADINGS = (
    "## 1. Scaling of the test loss with N",
    "## 2. Label sharpness by domain",
    "## 3. Label sharpness and adversarial fragility",
    "## 4. Representation ID versus data ID",
    "## 5. The scaling constant C",
)


def scaling(result: Analysis, tasks: list[Task]) -> list[str]:
    inputs = {task.name: task.input_text for task in tasks}
    lines = [
        HEADINGS[0],
        "",
        "Least-squares fit of log(test loss) on log N over all runs of a dataset (every seed a "
        "point), slope ± standard error and its 95% t-interval, next to the exponent the law "
        "predicts, -1/d_data with d_data measured on the training subset at the largest N "
        "(mean over seeds; for the photos, d_data of the 32x32 RGB inputs the model is trained "
        "on). 'bound slope' is the fitted slope of log(K_F N^(-1/d_data)) itself: K_F of the "
        "training subset grows with N, so the bound falls slower than N^(-1/d_data).",
        "",
        "| dataset | domain | input | N | runs | fitted slope ± SE | 95% CI | d_data (largest N) "
        "| -1/d_data | within CI? | bound slope |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result.scaling:
        low, high = s.fit.ci95()
        lines.append(
            f"| {s.dataset} | {s.domain} | {inputs[s.dataset]} | {', '.join(map(str, s.sizes))} "
            f"| {s.n_runs} | {fmt(s.fit.slope)} ± {fmt(s.fit.stderr, 2)} | [{fmt(low)}, "
            f"{fmt(high)}] | {fmt(s.d_data)} | {fmt(s.predicted)} | {yes_no(s.within)} | "
            f"{fmt(s.bound_slope)} |"
        )
    return [
        *lines,
        "",
        f"![test loss vs N](figures/{FIGURES['scaling']})",
        "",
        scaling_text(result),
        "",
    ]


def domains(result: Analysis, baseline: Analysis | None, tasks: list[Task]) -> list[str]:
    lines = [HEADINGS[1], ""]
    if result.matched_n is None:
        return [
            *lines,
            "No training-set size was run on every dataset, so K_F is not compared here.",
            "",
        ]
    lines += [
        f"Label sharpness of the training subset at the largest N run on every dataset, "
        f"N = {result.matched_n}, mean ± sd over seeds (different subsets). K_F depends on "
        "resolution, channel count and intensity range, so the domains are compared under one "
        "preprocessing for every task: **28x28 grayscale in [0, 1]** (the product's reference "
        'grayscale protocol, `to_reference_protocol(x, "gray28")`: mean over RGB, '
        "resized to 28x28 by block averaging and bilinear interpolation, min-max scaled over "
        "the subset). It turns the 32x32 RGB photos into 28x28 grayscale; on the 28x28 "
        "grayscale datasets it only rescales a subset whose pixels do not span [0, 1]"
        + (
            f" (measured: it changes their exact K_F by at most {100 * result.protocol_gap:.2g}%)"
            if math.isfinite(result.protocol_gap)
            else ""
        )
        + ". Two statistics from one exact neighbour pass: **exact "
        "K_F** = 1 / the smallest distance between differently-labelled images (the paper's, "
        "a maximum over pairs) and **K_F(0.5)** = 1 / the median, over images, of the distance "
        "to the nearest differently-labelled image (`label_sharpness(x, y).robust.median`). "
        "'K_F as trained' is exact K_F of the inputs the model sees (for the photos 32x32 RGB, "
        "not comparable with the others). 'growth' is the slope of log K_F on log N.",
        "",
        "| dataset | domain | input | K_F as trained | exact K_F (28x28 gray) | "
        "K_F(0.5) (28x28 gray) | growth, exact | growth, K_F(0.5) | exact K_F measured "
        "earlier (N = 290, DESIGN.md) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task in tasks:
        ref = EARLIER_KF.get(task.name, EARLIER_KF["natural"] if task.domain == "natural" else "")
        if task.image_shape[0] == 3:
            ref = "-"
        values = [fmt_pm(result.at_matched[field][task.name]) for field in SHARPNESS]
        growth = [fmt(result.growth[field][task.name], 2) for field in DOMAIN_STATISTICS]
        lines.append(
            f"| {task.name} | {task.domain} | {task.input_text} | {' | '.join(values)} | "
            f"{' | '.join(growth)} | {ref} |"
        )
    return [
        *lines,
        "",
        domain_text(result, baseline),
        "",
        f"![K_F by domain](figures/{FIGURES['sharpness']})",
        "",
    ]


def fgsm(result: Analysis, baseline: Analysis | None, tasks: list[Task]) -> list[str]:
    main = result.fgsm
    lines = [
        HEADINGS[2],
        "",
        f"Across all {main.n} runs (every dataset, N and seed): Pearson r between exact K_F of "
        f"the training subset (as trained) and the FGSM loss increase on the test set = "
        f"**{fmt(main.r, 2)}** (Fisher 95% CI {fmt(main.ci[0], 2)} to {fmt(main.ci[1], 2)}), "
        f"Spearman ρ = {fmt(main.rho, 2)}; at matched N = {result.matched_n} only "
        f"({main.n_matched} runs): r = {fmt(main.r_matched, 2)}. Paper: r = {PAPER_R:.2f}.",
        "",
        fgsm_text(result, baseline, tasks),
        "",
        "The same correlation for each sharpness statistic (r with its 95% CI; ρ Spearman; "
        "'matched' at N = " + f"{result.matched_n}; 'given loss' the partial correlation holding "
        "the clean test loss fixed):",
        "",
        "| statistic | runs | r (95% CI) | ρ | r matched | r given loss |",
        "|---|---|---|---|---|---|",
    ]
    for label, analysis in (("all tasks", result), ("grayscale only", baseline)):
        if analysis is None:
            continue
        for c in analysis.correlations:
            lines.append(
                f"| {SHARPNESS[c.statistic]} | {label} ({c.n}) | {fmt(c.r, 2)} "
                f"({fmt(c.ci[0], 2)} to {fmt(c.ci[1], 2)}) | {fmt(c.rho, 2)} | "
                f"{fmt(c.r_matched, 2)} | {fmt(c.r_partial, 2)} |"
            )
    lines += ["", " ".join(correlation_sentence(c) for c in result.correlations[1:]), ""]
    return [*lines, f"![K_F vs FGSM loss increase](figures/{FIGURES['fgsm']})", ""]


def ids(result: Analysis) -> list[str]:
    lines = [
        HEADINGS[3],
        "",
        "The paper measures both intrinsic dimensions on the training set, and so does this "
        "page: d_repr is the MLE (k = 20) of the penultimate layer's output (`embed`, 64 units) "
        "on the whole training subset after the last step (`RepresentationIDMonitor`), d_data "
        "the MLE of the same images (`DatasetPropertiesMonitor`): the same points and the same "
        "n, so the estimator's dependence on n cancels out of the comparison. Rows: the runs at "
        "the largest N of each dataset (mean ± sd over seeds); the last column counts all runs.",
        "",
        "| dataset | N | d_data (training subset) | d_repr (same subset) | d_repr <= d_data? | "
        "runs with d_repr <= d_data |",
        "|---|---|---|---|---|---|",
    ]
    for row in result.id_rows:
        lines.append(
            f"| {row['dataset']} | {row['n_max']} | {fmt_pm(row['d_data'])} | "
            f"{fmt_pm(row['d_repr'])} | {yes_no(row['holds'])} | {row['runs_below']} of "
            f"{row['n_runs']} |"
        )
    return [*lines, "", id_text(result), "", f"![d_repr vs d_data](figures/{FIGURES['ids']})", ""]


def calibration(result: Analysis) -> list[str]:
    lines = [HEADINGS[4], ""]
    cal = result.calibration
    if cal is None:
        lines.append("No run with a finite K_F: nothing to calibrate.")
    else:
        factor = math.exp(cal.rmse_log)
        spread = max(result.c_by_dataset.values()) / min(result.c_by_dataset.values())
        lines += [
            f"`fit_constant` over {cal.n_runs} runs (least squares in log space of "
            f"L = C K_F N^(-1/d_data), K_F and d_data of the inputs as trained): "
            f"**C = {cal.constant:.4g}**, log-space rmse {cal.rmse_log:.3f} (a prediction is "
            f"typically off by a factor {factor:.2f}).",
            "",
            f"Regime: {cal.regime}.",
            "",
            "C fitted on each dataset alone (the spread shows how far one C carries):",
            "",
            "| dataset | C |",
            "|---|---|",
            *(f"| {name} | {value:.4g} |" for name, value in result.c_by_dataset.items()),
            "",
            f"The per-dataset constants span a factor {spread:.1f}. "
            + (
                "One C describes these datasets reasonably well. "
                if factor < 1.5
                else "One C is only a coarse, order-of-magnitude calibration across datasets. "
            )
            + "Use it as the forecast's `scaling_constant` only in this regime (similar small "
            "CNNs, small image inputs in [0, 1], N in the range above, cross-entropy), either "
            "in the default set or in the forecast callback alone:",
            "",
            "```python",
            "from lightning_dataprops import default_callbacks",
            "from lightning_dataprops.callbacks import ScalingForecastMonitor",
            "",
            f"callbacks = default_callbacks(scaling_constant={cal.constant:.4g})",
            f"forecast = ScalingForecastMonitor(scaling_constant={cal.constant:.4g})",
            "```",
            "",
            "or refit it from this page's runs, or your own, with "
            f"`dataprops calibrate docs/figures/{CSV_NAME} --out calibration.json` and pass "
            '`scaling_constant="calibration.json"`.',
        ]
    return [*lines, "", f"![calibration](figures/{FIGURES['calibration']})", ""]


def caveats(tasks: list[Task]) -> list[str]:
    lines = [
        "## Caveats",
        "",
        "- One small CNN, one fixed recipe (fixed steps, no early stopping, no augmentation), "
        "binary tasks, N at most a few thousand; the paper trains larger models on more data. "
        "Small N means many epochs under a fixed step budget, so the overfitting regime changes "
        "with N.",
        "- The scaling law is an upper bound up to a constant; a fitted exponent is evidence "
        "about the bound only when the bound is tight.",
        "- K_F grows with N and depends on preprocessing, so the domains are compared at "
        "matched N and under one preprocessing only; the pooled correlation in section 3 mixes "
        "sizes (the matched-N r removes that).",
        "- MNIST here is a 5000-image subset (mnist5k), so its pool is small; BreastMNIST has "
        "546 training images.",
    ]
    if any(task.image_shape[0] == 3 for task in tasks):
        lines += [
            "- CIFAR-10 here has 1,000 training images a class (a pair's pool is 2,000, so every "
            "seed trains on the same 2,000 images at the largest N), decoded from JPEG copies. "
            "The common 28x28 grayscale preprocessing discards colour, which may carry what "
            "separates photos; K_F 'as trained' keeps it but lives in another space (3,072 "
            "instead of 784 dimensions) and cannot be compared with the grayscale datasets.",
        ]
    return [*lines, ""]
