"""Findings drawn as curves: the d_repr profile, the data-scaling forecast, d_data against k."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lightning_dataprops.findings._jsonable import to_jsonable
from lightning_dataprops.findings.format import format_number
from lightning_dataprops.functional.scaling_law import ScalingForecast, loss_ratio, scaling_bound

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ForecastCurve",
    "ForecastFinding",
    "KCurveFinding",
    "ReprProfileFinding",
    "ReprProfileRow",
]


@dataclass(frozen=True)
class ReprProfileRow:
    """``d_repr`` of one layer at one epoch (``depth``: the layer's position, 0 = first)."""

    epoch: int
    layer: str
    depth: int
    d_repr: float


@dataclass(frozen=True)
class ReprProfileFinding:
    """The representation intrinsic dimension ``d_repr`` per layer and epoch.

    Attributes:
        rows: one row per (epoch, layer).
        key: file and tag name.
        title: a heading for people.
    """

    rows: tuple[ReprProfileRow, ...]
    key: str = "d_repr_profile"
    title: str = "Representation intrinsic dimension d_repr"

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any] | ReprProfileRow]) -> ReprProfileFinding:
        """From rows or dicts with ``epoch``, ``layer``, ``depth`` and ``d_repr``."""
        parsed = []
        for row in rows:
            if isinstance(row, ReprProfileRow):
                parsed.append(row)
                continue
            missing = {"epoch", "layer", "depth", "d_repr"} - set(row)
            if missing:
                raise ValueError(
                    f"a d_repr profile row needs epoch, layer, depth and d_repr; {dict(row)} "
                    f"lacks {sorted(missing)}"
                )
            parsed.append(
                ReprProfileRow(
                    int(row["epoch"]), str(row["layer"]), int(row["depth"]), float(row["d_repr"])
                )
            )
        return cls(rows=tuple(parsed))

    @property
    def layers(self) -> tuple[str, ...]:
        """Layer names, shallowest first."""
        depth = {row.layer: row.depth for row in self.rows}
        return tuple(sorted(depth, key=lambda layer: (depth[layer], layer)))

    @property
    def epochs(self) -> tuple[int, ...]:
        """Epochs with a value, in order."""
        return tuple(sorted({row.epoch for row in self.rows}))

    def figure(self, **options: Any) -> Figure | None:
        """``d_repr`` against epoch and depth (:func:`~.render.render_repr_profile`)."""
        del options
        from lightning_dataprops.findings.render import render_repr_profile

        return render_repr_profile(self)

    def to_markdown(self) -> None:
        """The profile is read as a picture and JSON, not as text."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return to_jsonable(
            {
                "key": self.key,
                "title": self.title,
                "rows": [dataclasses.asdict(row) for row in self.rows],
            }
        )


@dataclass(frozen=True)
class ForecastCurve:
    """A forecast curve: ``y`` at each training-set size ``n``; ``kind`` says what ``y`` is.

    ``kind`` is ``"predicted_loss"`` (``C K_F N^(-1/d_data)``, needs a constant) or
    ``"loss_ratio"`` (``L(N) / L(N0) = (N / N0)^(-1/d_data)``, parameter-free).
    """

    n: tuple[float, ...]
    y: tuple[float, ...]
    kind: str
    label: str


@dataclass(frozen=True)
class ForecastFinding:
    """The data-scaling forecast ``L(N) <~ C K_F N^(-1/d_data)`` of a run.

    Attributes:
        n_train: the run's training-set size ``N0``.
        d_data: intrinsic dimension of the data (the law's exponent is ``-1/d_data``).
        K_F: label sharpness, if known and finite (a predicted loss needs it).
        constant: the calibrated ``C``, if any; ``constant_source`` says where it came from.
        observed: observed validation losses as ``(N, loss)`` pairs (e.g. the current one at
            ``N0``).
        key: file and tag name.
        title: a heading for people.
    """

    n_train: int
    d_data: float
    K_F: float | None = None
    constant: float | None = None
    constant_source: str | None = None
    observed: tuple[tuple[int, float], ...] = ()
    key: str = "forecast"
    title: str = "Data-scaling forecast"

    @classmethod
    def from_forecast(
        cls, prediction: ScalingForecast, observed_loss: float | None = None
    ) -> ForecastFinding:
        """The finding of a :func:`~lightning_dataprops.functional.forecast` result, with the
        run's observed validation loss at its ``N`` if given.

        Example:
            >>> from lightning_dataprops.functional import forecast
            >>> finding = ForecastFinding.from_forecast(forecast(0.5, 1000, 10.0), 0.3)
            >>> finding.observed[0], finding.curve([1000]).kind
            ((1000, 0.3), 'loss_ratio')
        """
        observed = () if observed_loss is None else ((prediction.n_train, float(observed_loss)),)
        return cls(
            n_train=prediction.n_train,
            d_data=prediction.d_data,
            K_F=prediction.label_sharpness,
            constant=prediction.constant,
            constant_source=prediction.constant_source,
            observed=observed,
        )

    @property
    def calibrated(self) -> bool:
        """Whether a predicted loss can be drawn (a constant and a finite ``K_F``)."""
        return (
            self.constant is not None
            and self.K_F is not None
            and math.isfinite(self.K_F)
            and self.K_F > 0
        )

    def curve(self, sizes: Sequence[float] | None = None) -> ForecastCurve:
        """The curve at ``sizes`` (default: ``N0 * 2^p`` for ``p = -3 .. 4``).

        Example:
            >>> f = ForecastFinding(n_train=1000, d_data=10.0)
            >>> c = f.curve([1000, 2000])
            >>> c.kind, [round(v, 4) for v in c.y]
            ('loss_ratio', [1.0, 0.933])
        """
        if sizes is None:
            sizes = [self.n_train * 2.0**power for power in range(-3, 5)]
        n = tuple(float(size) for size in sizes)
        if self.calibrated:
            assert self.constant is not None and self.K_F is not None
            y = tuple(self.constant * scaling_bound(self.K_F, size, self.d_data) for size in n)
            source = f", {self.constant_source}" if self.constant_source else ""
            label = f"predicted loss C K_F N^(-1/d) (C = {format_number(self.constant, 3)}{source})"
            return ForecastCurve(n, y, "predicted_loss", label)
        y = tuple(loss_ratio(self.d_data, size / self.n_train) for size in n)
        return ForecastCurve(n, y, "loss_ratio", f"L(N) / L({self.n_train}) = (N/N0)^(-1/d)")

    def figure(self, **options: Any) -> Figure | None:
        """The curve, log-log, observed losses marked (:func:`~.render.render_forecast`)."""
        del options
        from lightning_dataprops.findings.render import render_forecast

        return render_forecast(self)

    def to_markdown(self) -> None:
        """The forecast is read as a picture and JSON, not as text."""

    def observed_on_curve_scale(self) -> tuple[tuple[int, float], ...]:
        """The observed losses on the curve's scale: as they are for a predicted loss, divided
        by the observed loss at ``N0`` for the ratio curve (none without one at ``N0``)."""
        if self.calibrated:
            return self.observed
        at_n0 = [loss for size, loss in self.observed if size == self.n_train and loss > 0]
        if not at_n0:
            return ()
        return tuple((size, loss / at_n0[-1]) for size, loss in self.observed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary, with the curve."""
        curve = self.curve()
        return to_jsonable(
            {
                "key": self.key,
                "title": self.title,
                "n_train": self.n_train,
                "d_data": self.d_data,
                "K_F": self.K_F,
                "constant": self.constant,
                "constant_source": self.constant_source,
                "observed": [list(point) for point in self.observed],
                "curve": {"kind": curve.kind, "label": curve.label, "n": curve.n, "y": curve.y},
            }
        )


@dataclass(frozen=True)
class KCurveFinding:
    """The MLE estimate of ``d_data`` against the number of neighbours ``k``.

    Attributes:
        ks: neighbour counts, increasing.
        values: the MLE estimate at each ``k``.
        k_default: the ``k`` the reported value uses (marked on the plot), if any.
    """

    ks: tuple[int, ...]
    values: tuple[float, ...]
    k_default: int | None = None
    key: str = "d_data_k_curve"
    title: str = "MLE estimate of d_data against k"

    def __post_init__(self) -> None:
        if len(self.ks) != len(self.values):
            raise ValueError(
                f"ks and values must have the same length, got {len(self.ks)} and "
                f"{len(self.values)}"
            )

    def figure(self, **options: Any) -> Figure | None:
        """The estimate against k (:func:`~.render.render_k_curve`)."""
        del options
        from lightning_dataprops.findings.render import render_k_curve

        return render_k_curve(self)

    def to_markdown(self) -> None:
        """The curve is read as a picture and JSON, not as text."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return to_jsonable(
            {
                "key": self.key,
                "title": self.title,
                "ks": self.ks,
                "values": self.values,
                "k_default": self.k_default,
            }
        )
