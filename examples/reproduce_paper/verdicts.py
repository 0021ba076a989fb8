"""The report's verdicts in words: what each section's numbers say about the paper's claims."""

from __future__ import annotations

import math

import numpy as np

from .analysis import DOMAIN_STATISTICS, SHARPNESS, Analysis, Correlation, Domains, ScalingRow
from .stats import fmt, mean_sd
from .tasks import Task

PAPER_R = 0.70  # Pearson r between K_F and the FGSM loss increase in the paper
# An earlier measurement in this project (DESIGN.md section 1): exact K_F, 28x28 in [0, 1],
# binary tasks, N = 290; MNIST and Fashion-MNIST pairs as "natural".
EARLIER_KF = {"natural": "0.13-0.33", "PneumoniaMNIST": "0.50-0.55", "BreastMNIST": "0.38-1.8"}


def yes_no(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


def r_holds(correlation: Correlation) -> bool | None:
    """The correlation holds when its 95% interval lies above 0."""
    low = correlation.ci[0]
    return None if not math.isfinite(low) else low > 0


def scaling_text(result: Analysis) -> str:
    rows = [s for s in result.scaling if math.isfinite(s.fit.slope)]
    if not rows:
        return "Too few sizes to fit a slope."
    within = [s.dataset for s in rows if s.within]
    steeper = [s.dataset for s in rows if s.fit.slope < s.predicted and not s.within]
    flatter = [s.dataset for s in rows if s.fit.slope > s.predicted and not s.within]
    rising = [s.dataset for s in rows if s.fit.slope > 0]
    parts = []
    if within:
        parts.append(
            f"The predicted exponent -1/d_data lies within the 95% interval of the fitted slope "
            f"for {', '.join(within)}."
        )
    else:
        parts.append("The predicted exponent -1/d_data lies outside every fitted 95% interval.")
    if steeper:
        ratio = float(np.median([s.fit.slope / s.predicted for s in rows]))
        parts.append(
            f"The test loss falls faster than N^(-1/d_data) for {', '.join(steeper)} (median "
            f"ratio fitted/predicted slope {ratio:.1f} over all datasets). The law is an upper "
            "bound up to a constant, so a faster fall does not contradict it, but -1/d_data does "
            "not predict the measured rate in this regime."
        )
    if flatter:
        parts.append(f"For {', '.join(flatter)} the loss falls slower than the predicted exponent.")
    vague = [s.dataset for s in rows if s.within and s.fit.ci95()[0] <= 0 <= s.fit.ci95()[1]]
    if vague:
        parts.append(
            f"For {', '.join(vague)} the interval also contains 0: the fit cannot tell the "
            "predicted exponent from no improvement at all, so agreement there is weak evidence."
        )
    if rising:
        parts.append(
            f"The test loss did not decrease with N for {', '.join(rising)} under this "
            "fixed-step recipe."
        )
    rho = result.slope_rank_rho
    if math.isfinite(rho):
        parts.append(
            f"Across datasets the ordering is what matters for the paper's argument (higher "
            f"d_data, slower improvement): Spearman ρ between -1/d_data and the fitted slope is "
            f"{rho:.2f} over {len(rows)} datasets"
            + (
                " (same direction as predicted)."
                if rho > 0.3
                else " (the ordering is not reproduced)."
                if rho < -0.3
                else " (no clear ordering)."
            )
        )
    return " ".join(parts)


def _range(values: dict[str, float]) -> str:
    return f"{min(values.values()):.3g}-{max(values.values()):.3g}"


def domain_sentence(domains: Domains) -> str:
    """One statistic's verdict: ranges, ratio and whether the domains separate."""
    label = SHARPNESS[domains.statistic]
    if not domains.available:
        return f"{label}: only one domain was run."
    text = (
        f"{label}: natural {_range(domains.natural)}, medical {_range(domains.medical)} "
        f"(medical/natural mean ratio {domains.ratio:.2f}); "
    )
    if domains.separated:
        return text + "every medical dataset is above every natural one: the claim holds."
    overlap = domains.overlapping()
    if domains.ratio > 1:
        return text + (
            f"medical is sharper on average, but {', '.join(overlap)} reach the least sharp "
            "medical dataset: the domains are not separated."
        )
    return text + "the medical datasets are not sharper: the claim fails."


def domain_text(result: Analysis, baseline: Analysis | None) -> str:
    parts = []
    if baseline is not None:
        parts.append(
            "Without the RGB photos (28x28 grayscale datasets only): "
            + " ".join(domain_sentence(baseline.domains[f]) for f in DOMAIN_STATISTICS)
        )
        parts.append("With the CIFAR-10 photos:")
    parts.extend(domain_sentence(result.domains[f]) for f in DOMAIN_STATISTICS)
    name, value = result.sharpest
    if math.isfinite(value):
        parts.append(
            f"Exact K_F is a maximum, set by one pair: the largest value, {value:.3g} ({name}), "
            f"means two differently-labelled training images only {1 / value:.2f} apart in L2 "
            "distance (28x28 grayscale in [0, 1]); such a pair enters every subset that "
            "contains both images, so exact K_F jumps between subsets. K_F(0.5) is set by the "
            "typical point instead (the median distance to the nearest differently-labelled "
            "point), so one coincidence cannot decide it."
        )
    return " ".join(parts)


def correlation_sentence(c: Correlation) -> str:
    if not math.isfinite(c.r):
        return f"{SHARPNESS[c.statistic]}: too few runs for a correlation."
    low, high = c.ci
    verdict = (
        "positive, as in the paper"
        if low > 0
        else "negative, the opposite of the paper"
        if high < 0
        else "not distinguishable from 0"
    )
    return (
        f"{SHARPNESS[c.statistic]}: r = {c.r:.2f} (95% CI {fmt(low, 2)} to {fmt(high, 2)}, "
        f"{c.n} runs), {verdict}; at matched N r = {fmt(c.r_matched, 2)}; given the clean test "
        f"loss r = {fmt(c.r_partial, 2)}."
    )


def fgsm_text(result: Analysis, baseline: Analysis | None, tasks: list[Task]) -> str:
    main = result.fgsm
    if not math.isfinite(main.r):
        return "Too few runs for a correlation."
    low, high = main.ci
    if low > 0:
        text = "The correlation is positive, as in the paper (sharper labels, more fragile models)"
        text += (
            f", and the paper's r = {PAPER_R:.2f} lies inside the 95% interval."
            if low <= PAPER_R <= high
            else f", but its size differs from the paper's r = {PAPER_R:.2f} (outside the "
            "interval)."
        )
    elif high < 0:
        text = "The correlation is negative: the opposite of the paper's finding."
    else:
        text = (
            "The 95% interval includes 0: no reliable correlation between K_F and the FGSM "
            "loss increase here, unlike the paper."
        )
    if math.isfinite(main.r_matched):
        text += f" At matched N the correlation is {main.r_matched:.2f}" + (
            ", so it does not come from K_F's growth with N alone."
            if main.r_matched > 0.3
            else ", so much of the pooled correlation may come from mixing sizes."
            if main.r > 0.3
            else "."
        )
    if math.isfinite(result.r_loss) and math.isfinite(main.r_partial):
        text += (
            f" The FGSM loss increase also tracks the clean test loss (r = {result.r_loss:.2f}): "
            "harder tasks lose more under attack. Holding the clean test loss fixed (partial "
            f"correlation), K_F and the loss increase correlate at r = {main.r_partial:.2f}"
            + (
                ", so K_F carries information beyond task difficulty."
                if main.r_partial > 0.3
                else ", so here much of the correlation goes through task difficulty."
                if main.r > 0.3
                else "."
            )
        )
    if baseline is not None and math.isfinite(baseline.fgsm.r):
        text += (
            f" Without the RGB photos the same correlation is r = {baseline.fgsm.r:.2f} (95% CI "
            f"{fmt(baseline.fgsm.ci[0], 2)} to {fmt(baseline.fgsm.ci[1], 2)}, "
            f"{baseline.fgsm.n} runs); with them, {main.r:.2f}. "
            + _photos_vs_grayscale(result, tasks)
        )
    return text


def _photos_vs_grayscale(result: Analysis, tasks: list[Task]) -> str:
    """Where the photos sit: their K_F and FGSM loss increase at matched N, against the rest."""

    def values(field: str, rgb: bool) -> dict[str, float]:
        return {
            t.name: mean_sd(result.at_matched[field][t.name])[0]
            for t in tasks
            if (t.image_shape[0] == 3) == rgb
        }

    text = (
        f"At N = {result.matched_n} the photos have exact K_F as trained "
        f"{_range(values('label_sharpness', True))} (28x28 grayscale datasets "
        f"{_range(values('label_sharpness', False))}; the photos' distances run over 3,072 "
        f"dimensions) and K_F(0.5) {_range(values('kf_median_protocol', True))} (grayscale "
        f"{_range(values('kf_median_protocol', False))}), and FGSM loss increases of "
        f"{_range(values('fgsm_loss_increase', True))} (grayscale "
        f"{_range(values('fgsm_loss_increase', False))})."
    )
    fragile = min(values("fgsm_loss_increase", True).values()) > max(
        values("fgsm_loss_increase", False).values()
    )
    sharpest = any(
        max(values(field, True).values()) >= max(values(field, False).values())
        for field in ("label_sharpness", "kf_median_protocol")
    )
    if fragile and not sharpest:
        text += (
            " The photos give the most fragile models here without having the sharpest labels "
            "by either statistic: label sharpness does not explain their fragility."
        )
    return text


def id_text(result: Analysis) -> str:
    holds = [row["dataset"] for row in result.id_rows if row["holds"]]
    fails = [row["dataset"] for row in result.id_rows if not row["holds"]]
    total_runs = sum(row["n_runs"] for row in result.id_rows)
    below = sum(row["runs_below"] for row in result.id_rows)
    text = f"d_repr <= d_data holds for {len(holds)} of {len(result.id_rows)} datasets"
    text += f" (fails for {', '.join(fails)})." if fails else ", as the paper reports."
    ratios = [mean_sd(row["d_repr"])[0] / mean_sd(row["d_data"])[0] for row in result.id_rows]
    text += (
        f" d_repr/d_data ranges from {min(ratios):.2f} to {max(ratios):.2f}; over all runs, "
        f"{below} of {total_runs} have d_repr at most their training subset's d_data."
    )
    return text


def rgb_names(tasks: list[Task]) -> list[str]:
    return [task.name for task in tasks if task.image_shape[0] == 3]


def _slope_verdict(row: ScalingRow) -> bool | None:
    """``None`` when the fitted interval holds both -1/d_data and 0 (it cannot tell)."""
    if row.within and row.fit.ci95()[0] <= 0 <= row.fit.ci95()[1]:
        return None
    return row.within


def where_claims_hold(result: Analysis, baseline: Analysis | None, tasks: list[Task]) -> str:
    """The plain statement: which claims survive natural RGB photos, and which do not."""
    rgb = rgb_names(tasks)
    if baseline is None or not rgb:
        return "No RGB photo task was run, so this run says nothing about natural RGB photos."
    verdicts: dict[bool | None, list[str]] = {True: [], False: [], None: []}
    for field in DOMAIN_STATISTICS:
        before, after = baseline.domains[field].separated, result.domains[field].separated
        claim = (
            f"medical > natural by {SHARPNESS[field]} at N = {result.matched_n} (natural "
            f"{_range(result.domains[field].natural)}, medical "
            f"{_range(result.domains[field].medical)})"
        )
        if after is None:
            continue
        if not after:
            overlap = result.domains[field].overlapping()
            claim += (
                f": it holds on the grayscale datasets alone, but {', '.join(overlap)} "
                + ("reaches" if len(overlap) == 1 else "reach")
                + " the medical range"
                if before
                else ": it fails already on the grayscale datasets"
            )
        verdicts[after].append(claim)
    for c_all, c_gray in zip(result.correlations, baseline.correlations, strict=True):
        if c_all.statistic == "kf_protocol":
            continue
        claim = (
            f"{SHARPNESS[c_all.statistic]} correlates with the FGSM loss increase: r = "
            f"{fmt(c_all.r, 2)} (95% CI {fmt(c_all.ci[0], 2)} to {fmt(c_all.ci[1], 2)}; given "
            f"the clean test loss {fmt(c_all.r_partial, 2)}) with the photos"
            + (", positive but weak," if r_holds(c_all) and c_all.r < 0.3 else "")
            + f" against {fmt(c_gray.r, 2)} ({fmt(c_gray.ci[0], 2)} to {fmt(c_gray.ci[1], 2)}; "
            f"given the loss {fmt(c_gray.r_partial, 2)}) without"
        )
        verdicts[r_holds(c_all)].append(claim)
    for row in result.id_rows:
        if row["dataset"] in rgb:
            verdicts[bool(row["holds"])].append(
                f"d_repr <= d_data on {row['dataset']} ({mean_sd(row['d_repr'])[0]:.3g} vs "
                f"{mean_sd(row['d_data'])[0]:.3g})"
            )
    for scaling in result.scaling:
        if scaling.dataset in rgb:
            low, high = scaling.fit.ci95()
            verdicts[_slope_verdict(scaling)].append(
                f"the loss slope on {scaling.dataset} equals -1/d_data = "
                f"{scaling.predicted:.3f} (fitted {scaling.fit.slope:.3f}, 95% CI "
                f"{fmt(low)} to {fmt(high)}"
                + (
                    ": the loss falls faster, which a bound allows, but the rate is not predicted)"
                    if high < scaling.predicted
                    else ")"
                )
            )
    return (
        f"Natural RGB photos included ({', '.join(rgb)}).\n\n"
        + f"- **Holds**: {'; '.join(verdicts[True]) or 'none'}.\n"
        + f"- **Does not hold**: {'; '.join(verdicts[False]) or 'none'}.\n"
        + (f"- **Cannot tell**: {'; '.join(verdicts[None])}.\n" if verdicts[None] else "")
    )
