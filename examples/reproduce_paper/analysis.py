"""From the runs to the numbers the report states: fits, correlations, ID comparisons, C."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from lightning_dataprops.functional import Calibration, fit_constant

from .experiment import CSV_NAME, Run
from .stats import LineFit, line_fit, mean_sd, pearson, pearson_ci, spearman
from .tasks import Config, Task

SHARPNESS = {
    # CSV field: what it is, in the report's words
    "label_sharpness": "exact K_F, as trained",
    "kf_protocol": "exact K_F, 28x28 grayscale",
    "kf_median_protocol": "K_F(0.5), 28x28 grayscale",
}
"""The label-sharpness statistics of a run (see ``measure.py``)."""
DOMAIN_STATISTICS = ("kf_protocol", "kf_median_protocol")
"""The statistics the domains are compared with: one common preprocessing for every task."""


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
class Domains:
    """Section 2, one statistic at matched N: do the medical datasets have sharper labels?"""

    statistic: str
    natural: dict[str, float]
    medical: dict[str, float]

    @property
    def available(self) -> bool:
        return bool(self.natural) and bool(self.medical)

    @property
    def separated(self) -> bool | None:
        """Every medical dataset above every natural one (``None``: one domain only)."""
        if not self.available:
            return None
        return min(self.medical.values()) > max(self.natural.values())

    @property
    def ratio(self) -> float:
        """Mean medical over mean natural value."""
        if not self.available:
            return math.nan
        return _mean(self.medical.values()) / _mean(self.natural.values())

    def overlapping(self) -> list[str]:
        """The natural datasets at or above the least sharp medical one."""
        if not self.available:
            return []
        floor = min(self.medical.values())
        return [name for name, value in self.natural.items() if value >= floor]


@dataclass
class Correlation:
    """Section 3: a sharpness statistic against the FGSM loss increase, over a set of runs."""

    statistic: str
    n: int
    r: float
    ci: tuple[float, float]
    rho: float
    r_matched: float
    n_matched: int
    r_partial: float


@dataclass
class Analysis:
    """Everything the report and the figures state, computed once."""

    scaling: list[ScalingRow]
    slope_rank_rho: float
    matched_n: int | None
    at_matched: dict[str, dict[str, list[float]]]
    growth: dict[str, dict[str, float]]
    domains: dict[str, Domains]
    correlations: list[Correlation]
    r_loss: float
    sharpest: tuple[str, float]
    id_rows: list[dict[str, Any]]
    calibration: Calibration | None
    c_by_dataset: dict[str, float]
    excluded: list[Run]
    protocol_gap: float
    """Largest relative change of exact K_F by the common preprocessing on grayscale tasks."""

    @property
    def fgsm(self) -> Correlation:
        """The paper's correlation: exact K_F of the training subset as the model sees it."""
        return self.correlations[0]


def _mean(values: Any) -> float:
    values = list(values)
    return sum(values) / len(values)


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


def _id_rows(tasks: list[Task], by: dict[str, list[Run]]) -> list[dict[str, Any]]:
    """d_repr against d_data, both of the same training subset (same points, same n)."""
    rows = []
    for task in tasks:
        rs = by[task.name]
        top = [r for r in rs if r.n_train == max(r.n_train for r in rs)]
        d_repr, d_data = mean_sd([r.d_repr for r in top])[0], mean_sd([r.d_data for r in top])[0]
        rows.append(
            {
                "dataset": task.name,
                "n_max": top[0].n_train,
                "d_data": [r.d_data for r in top],
                "d_repr": [r.d_repr for r in top],
                "holds": bool(d_repr <= d_data),
                "runs_below": sum(r.d_repr <= r.d_data for r in rs),
                "n_runs": len(rs),
            }
        )
    return rows


def _correlation(runs: list[Run], field: str, matched_n: int | None) -> Correlation:
    """Pearson r (Fisher CI), Spearman rho, r at matched N and r given the clean test loss."""
    finite = [r for r in runs if usable(r) and math.isfinite(getattr(r, field))]
    kf = [getattr(r, field) for r in finite]
    increase = [r.fgsm_loss_increase for r in finite]
    r_all = pearson(kf, increase)
    r_kl = pearson(kf, [r.test_loss for r in finite])
    r_loss = pearson([r.test_loss for r in finite], increase)
    denominator = math.sqrt(max((1 - r_kl**2) * (1 - r_loss**2), 0.0))
    matched = [r for r in finite if r.n_train == matched_n]
    return Correlation(
        statistic=field,
        n=len(finite),
        r=r_all,
        ci=pearson_ci(kf, increase),
        rho=spearman(kf, increase),
        r_matched=pearson(
            [getattr(r, field) for r in matched], [r.fgsm_loss_increase for r in matched]
        ),
        n_matched=len(matched),
        r_partial=(r_all - r_kl * r_loss) / denominator if denominator > 0 else math.nan,
    )


def regime(runs: list[Run], tasks: list[Task], cfg: Config) -> str:
    """Where the fitted constant holds, in words."""
    inputs = sorted({task.input_text for task in tasks})
    return (
        f"binary {' and '.join(inputs)} image tasks in [0, 1] "
        f"({', '.join(t.name for t in tasks)}); SmallCNN of examples/reproduce_paper (2 conv "
        f"layers, Adam lr {cfg.lr:g}, {cfg.steps} steps of batch {cfg.batch_size}); N "
        f"{min(r.n_train for r in runs)}-{max(r.n_train for r in runs)}; mean test "
        f"cross-entropy; d_data = MLE k={cfg.k} and K_F exact, of the inputs as trained"
    )


def analyse(runs: list[Run], tasks: list[Task], cfg: Config) -> Analysis:
    """All statistics of the report over ``runs`` of ``tasks``."""
    finite = [r for r in runs if usable(r)]
    names = [t.name for t in tasks]
    by: dict[str, list[Run]] = {name: [r for r in runs if r.dataset == name] for name in names}
    scaling = _scaling(tasks, by)

    common = set.intersection(*({r.n_train for r in by[name]} for name in names))
    matched_n = max(common) if common else None
    at_matched = {
        field: {
            name: [getattr(r, field) for r in by[name] if r.n_train == matched_n] for name in names
        }
        for field in (*SHARPNESS, "fgsm_loss_increase")
    }
    growth = {
        field: {
            name: line_fit(
                [math.log(r.n_train) for r in by[name] if usable(r)],
                [math.log(getattr(r, field)) for r in by[name] if usable(r)],
            ).slope
            for name in names
        }
        for field in SHARPNESS
    }
    domains = {
        field: Domains(
            field,
            natural={
                t.name: _mean(at_matched[field][t.name])
                for t in tasks
                if t.domain == "natural" and at_matched[field][t.name]
            },
            medical={
                t.name: _mean(at_matched[field][t.name])
                for t in tasks
                if t.domain == "medical" and at_matched[field][t.name]
            },
        )
        for field in SHARPNESS
    }
    top_run = max(finite, key=lambda r: r.kf_protocol) if finite else None
    calibration = (
        fit_constant(
            [asdict(r) for r in finite],
            source=f"examples/reproduce_paper ({CSV_NAME})",
            regime=regime(runs, tasks, cfg),
        )
        if finite
        else None
    )
    return Analysis(
        scaling=scaling,
        slope_rank_rho=spearman([s.predicted for s in scaling], [s.fit.slope for s in scaling]),
        matched_n=matched_n,
        at_matched=at_matched,
        growth=growth,
        domains=domains,
        correlations=[_correlation(runs, field, matched_n) for field in SHARPNESS],
        r_loss=pearson([r.test_loss for r in finite], [r.fgsm_loss_increase for r in finite]),
        sharpest=("", math.nan) if top_run is None else (top_run.dataset, top_run.kf_protocol),
        id_rows=_id_rows(tasks, by),
        calibration=calibration,
        c_by_dataset={
            name: fit_constant([asdict(r) for r in finite if r.dataset == name]).constant
            for name in names
            if any(r.dataset == name for r in finite)
        },
        excluded=[r for r in runs if not usable(r)],
        protocol_gap=max(
            (
                abs(r.kf_protocol / r.label_sharpness - 1)
                for r in finite
                if r.task in {t.key for t in tasks if t.image_shape[0] == 1}
            ),
            default=math.nan,
        ),
    )


def grayscale_only(runs: list[Run], tasks: list[Task], cfg: Config) -> Analysis | None:
    """The analysis without the RGB tasks (``None`` when there are none, or only those)."""
    gray = [task for task in tasks if task.image_shape[0] == 1]
    if not gray or len(gray) == len(tasks):
        return None
    keys = {task.key for task in gray}
    return analyse([run for run in runs if run.task in keys], gray, cfg)
