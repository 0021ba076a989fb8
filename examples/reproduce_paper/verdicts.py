"""The report's verdicts in words: what each section's numbers say about the paper's claims."""

from __future__ import annotations

import math

import numpy as np

from .analysis import Analysis
from .stats import mean_sd
from .tasks import Task

PAPER_R = 0.70  # Pearson r between K_F and the FGSM loss increase in the paper
# DESIGN.md section 1: exact K_F, 28x28 in [0, 1], binary tasks, N = 290.
PAPER_KF = {"natural": "0.13-0.33", "PneumoniaMNIST": "0.50-0.55", "BreastMNIST": "0.38-1.8"}


def r_verdict(result: Analysis) -> bool | None:
    low = result.r_all_ci[0]
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
        ratio = float(np.median([s.fit.slope / s.predicted for s in rows if s in rows]))
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


def domain_text(result: Analysis, tasks: list[Task]) -> str:
    nat = {t.name: mean_sd(result.kf_at_matched[t.name])[0] for t in tasks if t.domain == "natural"}
    med = {t.name: mean_sd(result.kf_at_matched[t.name])[0] for t in tasks if t.domain == "medical"}
    if not nat or not med:
        return "Only one domain was run, so the domains are not compared."
    nat_mean, med_mean = float(np.mean(list(nat.values()))), float(np.mean(list(med.values())))
    text = (
        f"Mean K_F at N = {result.matched_n}: natural {nat_mean:.3g} (range "
        f"{min(nat.values()):.3g}-{max(nat.values()):.3g}), medical {med_mean:.3g} (range "
        f"{min(med.values()):.3g}-{max(med.values()):.3g}); medical/natural ratio "
        f"{med_mean / nat_mean:.2f}. "
    )
    if min(med.values()) > max(nat.values()):
        text += (
            "Every medical dataset has sharper labels than every natural one: the paper's "
            "finding holds here."
        )
    elif med_mean > nat_mean:
        text += (
            "On average the medical datasets have sharper labels, as in the paper, but the "
            f"domains overlap ({min(med, key=med.__getitem__)} is below "
            f"{max(nat, key=nat.__getitem__)})."
        )
    else:
        text += "The medical datasets do not have sharper labels here: the paper's finding fails."
    name, value = result.sharpest
    if math.isfinite(value):
        text += (
            f" K_F is a maximum, set by one pair: the largest value, {value:.3g} ({name}), means "
            f"two differently-labelled training images only {1 / value:.2f} apart in L2 distance "
            "(28x28 pixels in [0, 1]); such a pair enters every subset that contains both "
            "images, so K_F jumps between subsets rather than varying smoothly."
        )
    return text


def fgsm_text(result: Analysis) -> str:
    r, (low, high) = result.r_all, result.r_all_ci
    if not math.isfinite(r):
        return "Too few runs for a correlation."
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
    if math.isfinite(result.r_matched):
        text += f" At matched N the correlation is {result.r_matched:.2f}" + (
            ", so it does not come from K_F's growth with N alone."
            if result.r_matched > 0.3
            else ", so much of the pooled correlation may come from mixing sizes."
            if r > 0.3
            else "."
        )
    if math.isfinite(result.rho_all) and abs(result.rho_all - r) > 0.2:
        name, value = result.sharpest
        text += (
            f" The rank correlation (ρ = {result.rho_all:.2f}) differs from r by more than 0.2: "
            f"a few extreme values weigh heavily on r (the largest K_F, {value:.3g}, is "
            f"{name}'s)."
        )
    if math.isfinite(result.r_loss) and math.isfinite(result.r_partial):
        text += (
            f" The FGSM loss increase also tracks the clean test loss (r = {result.r_loss:.2f}): "
            "harder tasks lose more under attack. Holding the clean test loss fixed (partial "
            f"correlation), K_F and the loss increase correlate at r = {result.r_partial:.2f}"
            + (
                ", so K_F carries information beyond task difficulty."
                if result.r_partial > 0.3
                else ", so here much of the correlation goes through task difficulty."
                if r > 0.3
                else "."
            )
        )
    return text


def id_text(result: Analysis) -> str:
    holds = [row["dataset"] for row in result.id_rows if row["holds"]]
    fails = [row["dataset"] for row in result.id_rows if not row["holds"]]
    total_runs = sum(row["n_runs"] for row in result.id_rows)
    below = sum(row["runs_below_train"] for row in result.id_rows)
    text = f"d_repr <= d_data holds for {len(holds)} of {len(result.id_rows)} datasets"
    text += f" (fails for {', '.join(fails)})." if fails else ", as the paper reports."
    ratios = [mean_sd(row["d_repr"])[0] / row["d_data_probe"] for row in result.id_rows]
    text += (
        f" d_repr/d_data ranges from {min(ratios):.2f} to {max(ratios):.2f}; over all runs, "
        f"{below} of {total_runs} have d_repr at most their training subset's d_data."
    )
    return text
