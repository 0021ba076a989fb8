"""A fit with the default callbacks, as a script so that ``strategy="ddp"`` can launch ranks.

    python tests/integration/ddp_fit.py --strategy ddp --devices 2 --out result.json

Uses scikit-learn's digits (always present) and a learning rate of 0 without BatchNorm, so the
weights stay at their seeded initial values and d_repr is comparable across strategies.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


import lightning.pytorch as pl
import torch

from lightning_dataprops import default_callbacks
from lightning_dataprops.data import load_digits_data
from tests.integration.lightning_models import TensorDataModule, TinyCNN


class ReleaseProcessGroup(pl.Callback):
    """Destroy the gloo process group when the fit is over.

    Lightning's ddp_spawn workers exit with the process group still alive; gloo's threads then
    occasionally abort the worker at interpreter shutdown ("terminate called without an active
    exception", seen once in CI after a completed fit). Nothing runs collectives after teardown.
    """

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def run(strategy: str, devices: int, root: str) -> dict[str, float]:
    pl.seed_everything(3, verbose=False)
    digits = load_digits_data()
    model = TinyCNN(lr=0.0, n_classes=10, batch_norm=False)
    # Every measurement on schedule: an overhead budget would decide by this process's timing.
    callbacks = default_callbacks(
        max_samples=800, repr_max_samples=400, robustness_every_n_epochs=1, overhead_budget=None
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=strategy,
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=[*callbacks, ReleaseProcessGroup()],
    )
    trainer.fit(model, datamodule=TensorDataModule(digits.inputs, digits.targets))
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("dataprops/")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result = run(args.strategy, args.devices, str(Path(args.out).parent))
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
