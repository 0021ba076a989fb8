"""The generalization scaling law ``L(N) <~ C * K_F * N^(-1/d)`` (Konz & Mazurowski, 2024).

The law is a *bound up to an unknown constant*: ``C`` depends on the model, the training recipe
and the loss. What it predicts without ``C`` are ratios:

* ``bound = K_F * N^(-1/d_data)``: the parameter-free part; compare it across datasets or
  training-set sizes, not with a loss;
* ``loss_ratio(d, 2) = 2^(-1/d)``: the predicted test-loss ratio if the training set were
  doubled (0.93 for d=10: 7% lower loss; 0.97 for d=25);
* ``samples_for_target = N * (L / L*)^d``: the training-set size predicted to bring the loss
  from ``L`` to a target ``L*`` (the same law solved for N).

A predicted loss needs a calibrated ``C``: given by the user, fitted by :func:`fit_constant`
from earlier runs (least squares in log space), or taken from the project's reproduction
experiment; every :class:`ScalingForecast` says which. Reading and writing runs and
calibrations is :mod:`lightning_dataprops.calibration`'s job: this module does no file I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lightning_dataprops.functional._json import json_float

CALIBRATION_COLUMNS = ("n_train", "d_data", "label_sharpness", "test_loss")
"""What :func:`fit_constant` needs of each run (and the columns of a runs CSV)."""


def _positive(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}.")
    return value


def scaling_bound(label_sharpness: float, n_train: float, d: float) -> float:
    """``K_F * N^(-1/d)``, the parameter-free part of the bound.

    Example:
        >>> round(scaling_bound(0.5, 1000, 10), 4)
        0.2506
    """
    return _positive(label_sharpness, "label_sharpness") * _positive(n_train, "n_train") ** (
        -1.0 / _positive(d, "d")
    )


def loss_ratio(d: float, factor: float = 2.0) -> float:
    """Predicted test-loss ratio ``L(factor * N) / L(N) = factor^(-1/d)``.

    Example:
        >>> round(loss_ratio(10.0), 4)
        0.933
    """
    return _positive(factor, "factor") ** (-1.0 / _positive(d, "d"))


def samples_for_target(n_train: float, current_loss: float, target_loss: float, d: float) -> float:
    """Training-set size predicted to bring the loss from ``current_loss`` to ``target_loss``.

    Example:
        >>> round(samples_for_target(1000, 0.2, 0.1, 10))
        1024000
    """
    ratio = _positive(current_loss, "current_loss") / _positive(target_loss, "target_loss")
    return _positive(n_train, "n_train") * ratio ** _positive(d, "d")


@dataclass(frozen=True)
class Calibration:
    """A fitted constant ``C`` of ``L = C * K_F * N^(-1/d)``.

    Attributes:
        constant: the fitted ``C``.
        n_runs: how many runs it was fitted on.
        rmse_log: root-mean-square residual in ``log L`` (``exp(rmse_log)`` is the typical
            multiplicative error of a prediction).
        source: where it came from (a file, a list of runs, the reproduction experiment).
        regime: in which conditions it holds (datasets, sizes, model); free text.

    Saved and loaded by :func:`lightning_dataprops.calibration.save_calibration` and
    :func:`~lightning_dataprops.calibration.load_calibration`.
    """

    constant: float
    n_runs: int
    rmse_log: float
    source: str
    regime: str = ""


def fit_constant(
    runs: Iterable[Mapping[str, Any]], *, source: str = "runs", regime: str = ""
) -> Calibration:
    """Least-squares fit of ``log C`` in ``log L = log C + log(K_F N^(-1/d))``.

    Each run needs ``n_train``, ``d_data``, ``label_sharpness`` and ``test_loss``.

    Example:
        >>> runs = [
        ...     {"n_train": 500, "d_data": 10, "label_sharpness": 0.3, "test_loss": 0.2},
        ...     {"n_train": 2000, "d_data": 10, "label_sharpness": 0.3, "test_loss": 0.17},
        ... ]
        >>> round(fit_constant(runs).constant, 2)
        1.23
    """
    residuals = []
    for index, run in enumerate(runs):
        try:
            bound = scaling_bound(run["label_sharpness"], run["n_train"], run["d_data"])
            loss = _positive(run["test_loss"], "test_loss")
        except KeyError as error:
            raise ValueError(
                f"run {index} lacks {error.args[0]!r}; columns: {CALIBRATION_COLUMNS}"
            ) from None
        except ValueError as error:
            raise ValueError(f"run {index}: {error}") from None
        residuals.append(math.log(loss) - math.log(bound))
    if not residuals:
        raise ValueError("No runs to calibrate on: give at least one run with a test loss.")
    log_c = sum(residuals) / len(residuals)
    rmse = math.sqrt(sum((r - log_c) ** 2 for r in residuals) / len(residuals))
    return Calibration(math.exp(log_c), len(residuals), rmse, source, regime)


@dataclass(frozen=True)
class ScalingForecast:
    """What the scaling law says about a run.

    Attributes:
        n_train: training-set size ``N``.
        d_data: intrinsic dimension used for the exponent.
        label_sharpness: ``K_F``.
        bound: ``K_F * N^(-1/d_data)`` (parameter-free, not a loss).
        loss_ratio_2x_data: ``2^(-1/d_data)``, predicted loss ratio for twice the data.
        repr_loss_ratio_2x_data: ``2^(-1/d_repr)`` from the representation ID, if given.
        samples_for_target: ``N * (L/L*)^d_data``, if a current and a target loss are given.
        constant: the calibrated ``C``, if known; ``constant_source`` says where it came from.
        test_loss: ``C * bound``, the predicted test loss (needs ``C``).
        gap: predicted test loss minus the training loss (needs ``C`` and a training loss).
    """

    n_train: int
    d_data: float
    label_sharpness: float
    bound: float
    loss_ratio_2x_data: float
    repr_loss_ratio_2x_data: float | None = None
    samples_for_target: float | None = None
    constant: float | None = None
    constant_source: str | None = None
    test_loss: float | None = None
    gap: float | None = None

    def predicted_loss(self, n_train: float) -> float:
        """Predicted test loss at another training-set size (needs ``C``)."""
        if self.constant is None:
            raise ValueError(
                "No calibrated constant C: a predicted loss needs one (see fit_constant)."
            )
        return self.constant * scaling_bound(self.label_sharpness, n_train, self.d_data)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (non-finite floats as strings), e.g. for a pandas row."""
        return {
            name: json_float(value) if isinstance(value, float) else value
            for name, value in dataclasses.asdict(self).items()
        }

    def _repr_html_(self) -> str:
        """A compact card for notebooks (:func:`lightning_dataprops.findings.cards.result_card`)."""
        from lightning_dataprops.findings.cards import result_card

        return result_card(self)


def forecast(
    label_sharpness: float,
    n_train: int,
    d_data: float,
    *,
    d_repr: float | None = None,
    constant: float | Calibration | None = None,
    train_loss: float | None = None,
    current_loss: float | None = None,
    target_loss: float | None = None,
) -> ScalingForecast:
    """Everything the scaling law predicts for one run; see the module docstring.

    Example:
        >>> f = forecast(0.5, 1000, 10.0, constant=0.8, train_loss=0.1)
        >>> round(f.bound, 4), round(f.test_loss, 4), round(f.gap, 4)
        (0.2506, 0.2005, 0.1005)
    """
    bound = scaling_bound(label_sharpness, n_train, d_data)
    c_value: float | None = None
    c_source: str | None = None
    if isinstance(constant, Calibration):
        c_value, c_source = constant.constant, constant.source
    elif constant is not None:
        c_value, c_source = _positive(constant, "constant"), "given"
    test_loss = None if c_value is None else c_value * bound
    return ScalingForecast(
        n_train=int(n_train),
        d_data=float(d_data),
        label_sharpness=float(label_sharpness),
        bound=bound,
        loss_ratio_2x_data=loss_ratio(d_data),
        repr_loss_ratio_2x_data=None if d_repr is None else loss_ratio(d_repr),
        samples_for_target=(
            None
            if current_loss is None or target_loss is None
            else samples_for_target(n_train, current_loss, target_loss, d_data)
        ),
        constant=c_value,
        constant_source=c_source,
        test_loss=test_loss,
        gap=None if test_loss is None or train_loss is None else test_loss - float(train_loss),
    )
