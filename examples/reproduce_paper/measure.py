"""Every measurement of a run, behind one small interface.

* :func:`callbacks`: the product's Lightning callbacks a run's Trainer gets (:func:`.model.fit`
  runs them): ``DatasetPropertiesMonitor``, ``RepresentationIDMonitor`` and
  ``RobustnessMonitor`` from ``lightning_dataprops.callbacks``, sharing one
  ``DataPropsOptions``;
* :func:`collect`: the finished run's values, read from ``trainer.callback_metrics`` by the
  product's names (:data:`METRICS`);
* :func:`protocol_sharpness`: exact K_F and the median sharpness K_F(0.5) of the training subset
  under the common preprocessing of the domain comparison.

What the callbacks measure, per run: at fit start, d_data (MLE and TwoNN, k = ``cfg.k``) and
exact K_F of the whole training subset; at the end of the last epoch (after the final step and
the model's validation), d_repr (MLE) of the penultimate layer ``embed`` on the same training
subset, and the FGSM (eps ``cfg.eps``) robustness on the whole test set, model in eval mode.
The test and training losses come from the model's own validation loop (:mod:`.model`).
"""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from lightning_dataprops import names
from lightning_dataprops.callbacks import (
    DataPropsOptions,
    DatasetPropertiesMonitor,
    RepresentationIDMonitor,
    RobustnessMonitor,
)
from lightning_dataprops.functional import label_sharpness
from lightning_dataprops.references import to_reference_protocol

from .model import TEST_ACC, TEST_LOSS, TRAIN_LOSS
from .tasks import Config, Task

REPR_LAYER = "embed"

ATTACK = "fgsm"

METRICS = {
    # field of the run's CSV row: name in trainer.callback_metrics
    "test_loss": TEST_LOSS,
    "test_acc": TEST_ACC,
    "train_loss": TRAIN_LOSS,
    "d_data": names.D_DATA,
    "d_data_twonn": names.D_DATA_TWONN,
    "label_sharpness": names.K_F,
    "d_repr": names.d_repr(REPR_LAYER),
    "fgsm_clean_loss": names.adversarial(ATTACK, "clean_loss"),
    "fgsm_adv_loss": names.adversarial(ATTACK, "adv_loss"),
    "fgsm_loss_increase": names.adversarial(ATTACK, "loss_increase"),
    "fgsm_robust_acc": names.adversarial(ATTACK, "robust_acc"),
}


def last_epoch(cfg: Config, n_train: int) -> int:
    """The number of epochs ``cfg.steps`` steps take (full batches of ``cfg.batch_size``)."""
    per_epoch = n_train // min(cfg.batch_size, n_train)
    return -(-cfg.steps // per_epoch)


def callbacks(task: Task, cfg: Config, n_train: int) -> list[Callback]:
    """The product's callbacks that measure one run of ``task`` on ``n_train`` training items.

    The recipe stops after ``cfg.steps`` steps, inside its last epoch: d_repr and the FGSM probe
    are measured at the end of that epoch only. d_repr is measured on the whole training subset,
    the points d_data and K_F are measured on (as in the paper).
    """
    every = last_epoch(cfg, n_train)
    # No overhead budget: the experiment measures once, at a fixed point, and must not postpone.
    options = DataPropsOptions(seed=0, progress=False, overhead_budget=None)
    return [
        DatasetPropertiesMonitor(options, max_samples=None, k=cfg.k, warn_sharp_labels=False),
        RepresentationIDMonitor(
            options, layers=[REPR_LAYER], every_n_epochs=every, n_samples=n_train, k=cfg.k
        ),
        RobustnessMonitor(
            options,
            every_n_epochs=every,
            n_samples=len(task.test_y),
            attacks={ATTACK: ATTACK},
            eps=cfg.eps,
            data_range=(0.0, 1.0),
            normalization=None,
        ),
    ]


def collect(trainer: pl.Trainer) -> dict[str, float]:
    """The finished run's values, by CSV field; a missing one is an error that names it."""
    metrics = trainer.callback_metrics
    missing = [name for name in METRICS.values() if name not in metrics]
    if missing:
        raise RuntimeError(
            f"the run finished without {', '.join(missing)}: a measurement failed or did not run "
            "(see the warnings above)"
        )
    return {field: float(metrics[name]) for field, name in METRICS.items()}


def protocol_sharpness(x: Tensor, y: Tensor) -> dict[str, float]:
    """Exact K_F and K_F(0.5) of ``(x, y)`` brought to 28x28 grayscale in [0, 1].

    The common preprocessing of the domain comparison (the product's grayscale reference
    protocol, ``to_reference_protocol(x, "gray28")``: mean over RGB, resized to 28x28, min-max
    scaled to [0, 1] over the subset), the same for every task. K_F(0.5) = 1 / the median, over
    points, of the distance to the nearest differently-labelled point; exact K_F = 1 / the
    smallest such distance. Both come from one exact neighbour pass.
    """
    common = to_reference_protocol(x, "gray28")
    if tuple(common.shape[1:]) != (1, 28, 28):
        raise RuntimeError(
            f"to_reference_protocol now gives {tuple(common.shape[1:])} images: the report "
            "describes 28x28 grayscale; update measure.py and the report together"
        )
    result = label_sharpness(common, y)
    assert result.robust is not None  # class targets
    return {"kf_protocol": result.value, "kf_median_protocol": result.robust.median}
