"""The example training script runs end to end (digits, one epoch, W&B offline)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from lightning_dataprops import names

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_with_monitor.py"


@pytest.mark.slow
def test_example_trains_with_the_default_callbacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sklearn", reason="the example's default data is scikit-learn's digits")
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    spec = importlib.util.spec_from_file_location("train_with_monitor", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "train_with_monitor", module)
    spec.loader.exec_module(module)
    trainer = module.main(["--epochs", "1", "--output", str(tmp_path)])
    metrics = trainer.callback_metrics
    for name in (names.D_DATA, names.K_F, names.N_TRAIN, names.forecast("bound")):
        assert name in metrics, name
    assert any(name.startswith(names.d_repr("")) for name in metrics)
    n_train = int(metrics[names.N_TRAIN])
    assert abs(n_train - 0.85 * 1797) < 2, "digits has no validation split: 15% are held out"
    assert list(tmp_path.rglob("run-*.wandb")), "the offline W&B run was not written"
