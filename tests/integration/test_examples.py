"""The example training script runs end to end (digits, one epoch, W&B offline)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_with_monitor.py"


def test_example_trains_with_the_monitor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
    for name in ("dataprops/data_id", "dataprops/label_sharpness", "dataprops/forecast/bound"):
        assert name in metrics, name
    assert any(name.startswith("dataprops/repr_id/") for name in metrics)
    assert list(tmp_path.rglob("run-*.wandb")), "the offline W&B run was not written"
