"""Every measurement of a run, behind one small interface.

* :func:`callbacks`: the Lightning callbacks a run's Trainer gets (:func:`.model.fit` runs them);
* :func:`collect`: the finished run's values, read from ``trainer.callback_metrics`` by the
  names in :data:`METRICS`;
* :func:`probe_d_data`: d_data of a task's fixed probe sample (once per task, for section 4).

What is measured, per run: d_data (MLE and TwoNN, k = ``cfg.k``) and exact K_F of the
training subset when training starts; after the last step, the FGSM (eps ``cfg.eps``)
robustness on the test set (eval mode) and d_repr (MLE) of the penultimate layer ``embed`` on
the task's probe sample.
The test and training losses come from the model's own validation loop (:mod:`.model`).

Today one local callback, :class:`FunctionalMeasurements`, computes these with the functional
API of ``lightning_dataprops`` at the hooks where the product's focused callbacks measure.
:data:`METRICS` already uses the product's names (``lightning_dataprops.names``), so switching
to those callbacks is a change in :func:`callbacks` only.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import TensorDataset

from lightning_dataprops import names
from lightning_dataprops.functional import dataset_properties, intrinsic_dimension
from lightning_dataprops.functional.attacks import make_attack, robustness
from lightning_dataprops.functional.representations import capture_representations

from .model import EVAL_BATCH, TEST_ACC, TEST_LOSS, TRAIN_LOSS
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


class FunctionalMeasurements(Callback):
    """The run's dataset, representation and robustness measurements via the functional API.

    Publishes each value in ``trainer.callback_metrics`` under its name in :data:`METRICS`.
    """

    def __init__(self, task: Task, cfg: Config) -> None:
        self.task = task
        self.cfg = cfg

    @staticmethod
    def _publish(trainer: pl.Trainer, values: dict[str, float]) -> None:
        for field, value in values.items():
            trainer.callback_metrics[METRICS[field]] = torch.tensor(
                float(value), dtype=torch.float64
            )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loader = trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if not isinstance(dataset, TensorDataset):
            raise TypeError("the reproduction trains on a TensorDataset of (images, labels)")
        x, y = dataset.tensors
        props = dataset_properties(x, y, k=self.cfg.k)
        kf = props.K_F
        self._publish(
            trainer,
            {
                "d_data": props.d_data,
                "d_data_twonn": props.d_data_twonn,
                "label_sharpness": math.nan if kf is None else float(kf),
            },
        )

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        attack = make_attack(ATTACK, pl_module, eps=self.cfg.eps)
        rob = robustness(
            pl_module, self.task.test_x, self.task.test_y, attack, batch_size=EVAL_BATCH
        )
        feats = capture_representations(pl_module, self.task.probe_x, [REPR_LAYER])[REPR_LAYER]
        self._publish(
            trainer,
            {
                "d_repr": intrinsic_dimension(feats, "mle", k=self.cfg.k).value,
                "fgsm_clean_loss": rob.clean_loss,
                "fgsm_adv_loss": rob.adv_loss,
                "fgsm_loss_increase": rob.loss_increase,
                "fgsm_robust_acc": rob.robust_acc,
            },
        )


def callbacks(task: Task, cfg: Config, n_train: int) -> list[Callback]:
    """The callbacks that measure one run of ``task`` on ``n_train`` training items."""
    return [FunctionalMeasurements(task, cfg)]


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


def probe_d_data(task: Task, cfg: Config) -> float:
    """d_data (MLE, k = ``cfg.k``) of the task's probe sample: the points d_repr is measured on."""
    return dataset_properties(task.probe_x, task.probe_y, k=cfg.k).d_data
