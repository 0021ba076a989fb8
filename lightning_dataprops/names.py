"""Every name the product logs, defined once.

All names start with ``dataprops/`` and use the field's symbols: ``d_data`` (intrinsic dimension
of the data), ``K_F`` (label sharpness), ``d_repr`` (intrinsic dimension of a layer's
representations). Callbacks talk to each other only through ``trainer.callback_metrics`` under
these names, the way ``EarlyStopping`` reads its monitored value.

Example:
    >>> from lightning_dataprops import names
    >>> names.D_DATA, names.K_F
    ('dataprops/d_data', 'dataprops/K_F')
    >>> names.d_data_estimate("gride")
    'dataprops/d_data_gride'
    >>> names.d_repr("encoder.fc1")
    'dataprops/d_repr/encoder.fc1'
    >>> names.adversarial("fgsm", "loss_increase")
    'dataprops/adv/fgsm/loss_increase'
"""

from __future__ import annotations

PREFIX = "dataprops"

D_DATA = f"{PREFIX}/d_data"
"""``d_data`` by MLE (Levina-Bickel, MacKay-Ghahramani pooling), k neighbours."""
D_DATA_TWONN = f"{PREFIX}/d_data_twonn"  # == d_data_estimate("twonn")
"""``d_data`` by TwoNN (Facco et al. 2017)."""
D_DATA_SPREAD = f"{PREFIX}/d_data_spread"
"""Spread of the intrinsic-dimension estimators computed, ``(highest - lowest) / median``."""
K_F = f"{PREFIX}/K_F"
"""Exact label sharpness ``K_F`` of the fit-start sample (``inf``: a label conflict)."""
K_F_MEDIAN = f"{PREFIX}/K_F_median"
"""Median sharpness ``K_F(0.5)`` of the sample under the reference protocol: the statistic the
sharp-label check compares with natural images (``lightning_dataprops.references``)."""
K_F_RATIO = f"{PREFIX}/K_F_ratio"
"""``K_F_median`` over the largest natural-image value at the same protocol, classes and N."""
N_LABEL_CONFLICTS = f"{PREFIX}/n_label_conflicts"
"""Near-identical differently-labelled pairs found by the sharp-label check."""
N_DUPLICATES = f"{PREFIX}/n_duplicates"
"""Samples of the fit-start sample that (near-)duplicate another one: collapsed for ``d_data``
(``K_F`` keeps them)."""
N_SAMPLES = f"{PREFIX}/n_samples"
"""Sample size the fit-start values were measured on."""
N_TRAIN = f"{PREFIX}/n_train"
"""Training-set size N used by the scaling law."""

D_REPR_HEAD_INPUT = f"{PREFIX}/d_repr_head_input"
"""``d_repr`` of the representation the output head reads (the penultimate layer): the
scaling law's ``d_repr``, under one name whatever the architecture. Logged beside
``d_repr/<layer>`` when a measured layer is the head's input (always for the default layer)."""

SHARPEST_PAIRS = f"{PREFIX}/sharpest_pairs"
"""W&B table of the sharpest differently-labelled pairs, both inputs side by side."""
D_REPR_PROFILE = f"{PREFIX}/d_repr_profile"
"""W&B table of ``d_repr`` per epoch and layer (with the layer's depth)."""
D_REPR_PLOT = f"{PREFIX}/d_repr_plot"
"""W&B line plot of ``d_repr`` per layer over epochs."""
DATA_SCALING_PLOT = f"{PREFIX}/forecast_plot/data_scaling"
"""W&B plot of the forecast test loss against the training-set size."""

ADVERSARIAL_QUANTITIES: tuple[str, ...] = (
    "clean_loss",
    "adv_loss",
    "loss_increase",
    "clean_acc",
    "robust_acc",
    "success_rate",
)
"""What the robustness probe logs for each attack (``loss_increase`` is the paper's measure)."""

FORECAST_QUANTITIES: tuple[str, ...] = (
    "bound",
    "loss_ratio_2x_data",
    "repr_loss_ratio_2x_data",
    "samples_for_target",
    "test_loss",
    "gap",
    "observed_val_loss",
)
"""What the scaling-law forecast logs (``test_loss``/``gap`` need a calibrated constant)."""

TIMED_WORK: tuple[str, ...] = ("setup", "fit_start", "d_repr", "adv", "forecast")
"""Measurements whose seconds are logged under :func:`seconds`."""

OVERHEAD_SECONDS = f"{PREFIX}/time/total"
"""Seconds all dataprops callbacks have spent in this fit (the overhead budget's total)."""
OVERHEAD_FRACTION = f"{PREFIX}/time/overhead"
"""That total over the fit's own time so far (the budget keeps it below ``overhead_budget``);
logged from the first training step on (before it, the fit's time is setup alone)."""


def d_data_estimate(estimator: str) -> str:
    """``d_data`` by the registered estimator named ``estimator`` (``"twonn"`` gives
    :data:`D_DATA_TWONN`); the default estimator's value is :data:`D_DATA`."""
    return f"{PREFIX}/d_data_{estimator}"


def d_repr(layer: str) -> str:
    """``d_repr`` (MLE) of the outputs of ``layer`` (its dotted module name)."""
    return f"{PREFIX}/d_repr/{layer}"


def adversarial(attack: str, quantity: str) -> str:
    """One of :data:`ADVERSARIAL_QUANTITIES` for the attack named ``attack``."""
    if quantity not in ADVERSARIAL_QUANTITIES:
        raise ValueError(
            f"unknown robustness quantity {quantity!r}; one of {ADVERSARIAL_QUANTITIES}"
        )
    return f"{PREFIX}/adv/{attack}/{quantity}"


def forecast(quantity: str) -> str:
    """One of :data:`FORECAST_QUANTITIES` of the scaling-law forecast."""
    if quantity not in FORECAST_QUANTITIES:
        raise ValueError(f"unknown forecast quantity {quantity!r}; one of {FORECAST_QUANTITIES}")
    return f"{PREFIX}/forecast/{quantity}"


def postponed(work: str) -> str:
    """How many times a periodic measurement (``"d_repr"``, ``"adv"``) was postponed by the
    overhead budget."""
    if work not in TIMED_WORK:
        raise ValueError(f"unknown timed work {work!r}; one of {TIMED_WORK}")
    return f"{PREFIX}/postponed/{work}"


def seconds(work: str) -> str:
    """Wall-clock seconds spent on one of :data:`TIMED_WORK`."""
    if work not in TIMED_WORK:
        raise ValueError(f"unknown timed work {work!r}; one of {TIMED_WORK}")
    return f"{PREFIX}/time/{work}"
