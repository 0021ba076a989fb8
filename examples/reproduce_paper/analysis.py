"""From the runs to the numbers the report states: fits, correlations, ID comparisons, C."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from lightning_dataprops.functional import Calibration, fit_constant

from .experiment import CSV_NAME, Run
from .stats import LineFit, line_fit, mean_sd, pearson, pearson_ci, spearman
from .tasks import Config, Task


@dataclass
class ScalingRow:
    """Section 1, one dataset: the fitted log-log slope against the predicted ``-1/d_data``."""

    dataset: str
    domain: str
    sizes: list[int]
    n_runs: int
    fit: LineFit
    d_data: float
    predicted: float
    bound_slope: float
    within: bool | None


@dataclass
class Analysis:
    """Everything the report and the figures state, computed once."""

    scaling: list[ScalingRow]
    slope_rank_rho: float
    matched_n: int | None
    kf_at_matched: dict[str, list[float]]
    kf_growth: dict[str, float]
    r_all: float
    r_all_ci: tuple[float, float]
    rho_all: float
    r_matched: float
    n_matched: int
    n_finite: int
    id_rows: list[dict[str, Any]]
    r_loss: float
    r_partial: float
    sharpest: tuple[str, float]
    calibration: Calibration | None
    c_by_dataset: dict[str, float]
    excluded: list[Run]


def usable(run: Run) -> bool:
    """Whether a run enters the K_F statistics and the fit (finite K_F, positive loss)."""
    return math.isfinite(run.label_sharpness) and run.test_loss > 0


def _scaling(tasks: list[Task], by: dict[str, list[Run]]) -> list[ScalingRow]:
    rows = []
    for task in tasks:
        rs = by[task.name]
        sizes = sorted({r.n_train for r in rs})
        fit = line_fit([math.log(r.n_train) for r in rs], [math.log(r.test_loss) for r in rs])
        d_max = mean_sd([r.d_data for r in rs if r.n_train == sizes[-1]])[0]
        predicted = -1.0 / d_max
        bound = line_fit(
            [math.log(r.n_train) for r in rs if usable(r)],
            [math.log(r.label_sharpness) - math.log(r.n_train) / r.d_data for r in rs if usable(r)],
        ).slope
        low, high = fit.ci95()
        within = None if not math.isfinite(low) else bool(low <= predicted <= high)
        rows.append(
            ScalingRow(task.name, task.domain, sizes, len(rs), fit, d_max, predicted, bound, within)
        )
    return rows


def _id_rows(
    tasks: list[Task], by: dict[str, list[Run]], probe_d_data: dict[str, float]
) -> list[dict[str, Any]]:
    rows = []
    for task in tasks:
        rs = by[task.name]
        top = [r for r in rs if r.n_train == max(r.n_train for r in rs)]
        d_probe = probe_d_data[task.name]
        repr_mean = mean_sd([r.d_repr for r in top])[0]
        rows.append(
            {
                "dataset": task.name,
                "n_max": top[0].n_train,
                "d_data_train": [r.d_data for r in top],
                "d_data_probe": d_probe,
                "n_probe": len(task.probe_y),
                "d_repr": [r.d_repr for r in top],
                "holds": bool(repr_mean <= d_probe),
                "runs_below_train": sum(r.d_repr <= r.d_data for r in rs),
                "n_runs": len(rs),
            }
        )
    return rows


def regime(runs: list[Run], names: list[str], cfg: Config) -> str:
    """Where the fitted constant holds, in words."""
    return (
        f"binary 28x28 grayscale tasks in [0, 1] ({', '.join(names)}); SmallCNN of "
        f"examples/reproduce_paper (2 conv layers, Adam lr {cfg.lr:g}, {cfg.steps} steps of "
        f"batch {cfg.batch_size}); N {min(r.n_train for r in runs)}-"
        f"{max(r.n_train for r in runs)}; mean test cross-entropy; d_data = MLE k={cfg.k}"
    )


def analyse(
    runs: list[Run], tasks: list[Task], cfg: Config, probe_d_data: dict[str, float]
) -> Analysis:
    """All statistics of the report; ``probe_d_data`` maps a task name to its probe's d_data."""
    finite = [r for r in runs if usable(r)]
    names = [t.name for t in tasks]
    by: dict[str, list[Run]] = {name: [r for r in runs if r.dataset == name] for name in names}
    scaling = _scaling(tasks, by)

    common = set.intersection(*({r.n_train for r in by[name]} for name in names))
    matched_n = max(common) if common else None
    kf_growth = {
        name: line_fit(
            [math.log(r.n_train) for r in by[name] if usable(r)],
            [math.log(r.label_sharpness) for r in by[name] if usable(r)],
        ).slope
        for name in names
    }

    kf = [r.label_sharpness for r in finite]
    inc = [r.fgsm_loss_increase for r in finite]
    r_all = pearson(kf, inc)
    r_kl = pearson(kf, [r.test_loss for r in finite])
    r_loss = pearson([r.test_loss for r in finite], inc)
    denominator = math.sqrt(max((1 - r_kl**2) * (1 - r_loss**2), 0.0))
    top_run = max(finite, key=lambda r: r.label_sharpness) if finite else None
    matched = [r for r in finite if r.n_train == matched_n]

    calibration = (
        fit_constant(
            [asdict(r) for r in finite],
            source=f"examples/reproduce_paper ({CSV_NAME})",
            regime=regime(runs, names, cfg),
        )
        if finite
        else None
    )
    return Analysis(
        scaling=scaling,
        slope_rank_rho=spearman([s.predicted for s in scaling], [s.fit.slope for s in scaling]),
        matched_n=matched_n,
        kf_at_matched={
            name: [r.label_sharpness for r in by[name] if r.n_train == matched_n] for name in names
        },
        kf_growth=kf_growth,
        r_all=r_all,
        r_all_ci=pearson_ci(kf, inc),
        rho_all=spearman(kf, inc),
        r_matched=pearson(
            [r.label_sharpness for r in matched], [r.fgsm_loss_increase for r in matched]
        ),
        r_loss=r_loss,
        r_partial=(r_all - r_kl * r_loss) / denominator if denominator > 0 else math.nan,
        sharpest=("", math.nan) if top_run is None else (top_run.dataset, top_run.label_sharpness),
        n_matched=len(matched),
        n_finite=len(finite),
        id_rows=_id_rows(tasks, by, probe_d_data),
        calibration=calibration,
        c_by_dataset={
            name: fit_constant([asdict(r) for r in finite if r.dataset == name]).constant
            for name in names
            if any(r.dataset == name for r in finite)
        },
        excluded=[r for r in runs if not usable(r)],
    )
