"""The torchmetrics metrics: same numbers as the functional layer, bounded seeded reservoirs."""

from __future__ import annotations

import copy
import math
import pickle
from typing import cast

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_dataprops.functional import (
    FloatClassIdsWarning,
    LabelConflictWarning,
    intrinsic_dimension,
    label_sharpness,
)
from lightning_dataprops.metrics import IntrinsicDimension, LabelSharpness
from tests.conftest import sphere_in_ambient


def _close(a: float, b: float, rtol: float = 1e-6) -> bool:
    return a == b or math.isclose(a, b, rel_tol=rtol)


def _feed(metric: IntrinsicDimension, x: torch.Tensor, batch: int) -> None:
    for chunk in x.split(batch):
        metric.update(chunk)


def _labelled(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    x = sphere_in_ambient(n, intrinsic=3, ambient=12, seed=seed)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0.3).long()


# ------------------------------------------------------------------ same numbers as functional
@pytest.mark.parametrize(
    ("estimator", "options"),
    [("mle", {"k": 10}), ("mle", {"k": 8, "mle_variant": "paper"}), ("twonn", {})],
)
def test_intrinsic_dimension_matches_functional(estimator: str, options: dict) -> None:
    x = sphere_in_ambient(500, intrinsic=4, ambient=20).reshape(500, 4, 5)
    x[450:460] = x[:10]  # duplicates, collapsed by both
    metric = IntrinsicDimension(estimator=estimator, **options)  # type: ignore[arg-type]
    _feed(metric, x, 64)
    value = metric.compute()
    reference = intrinsic_dimension(x, estimator, **options)  # type: ignore[arg-type]
    assert value.shape == () and _close(float(value), reference.value)
    result = metric.last_result
    assert result is not None and _close(result.value, reference.value, 1e-12)
    assert (result.n, result.n_input, result.input_shape) == (490, 500, (4, 5))
    assert result.duplicates.groups == reference.duplicates.groups
    assert int(metric.n_seen) == 500


@pytest.mark.parametrize("kind", ["ids", "one_hot", "regression"])
def test_label_sharpness_matches_functional(kind: str) -> None:
    x, labels = _labelled()
    y = {
        "ids": labels,
        "one_hot": F.one_hot(labels, 3).float(),
        "regression": x[:, 2].double(),
    }[kind]
    metric = LabelSharpness(top_pairs=3)
    for xs, ys in zip(x.split(50), y.split(50), strict=True):
        metric.update(xs, ys)
    value = metric.compute()
    reference = label_sharpness(x, y, top_pairs=3)
    assert _close(float(value), reference.value)
    result = metric.last_result
    assert result is not None and result.target_type == reference.target_type
    assert [(p.i, p.j) for p in result.pairs] == [(p.i, p.j) for p in reference.pairs]


def test_label_conflict_gives_inf() -> None:
    x, y = _labelled(100)
    x[7] = x[3]
    y[7] = (y[3] + 1) % 3
    metric = LabelSharpness()
    metric.update(x[:50], y[:50])
    metric.update(x[50:], y[50:])
    with pytest.warns(LabelConflictWarning):
        value = metric.compute()
    assert math.isinf(float(value))
    assert metric.last_result is not None
    assert [(p.i, p.j) for p in metric.last_result.conflicts] == [(3, 7)]


# ------------------------------------------------------------------------------ reservoir
def test_reservoir_is_bounded_uniform_and_deterministic() -> None:
    data = torch.arange(3000, dtype=torch.float32)[:, None].repeat(1, 3)
    metrics = [IntrinsicDimension(max_samples=200, seed=5) for _ in range(2)]
    for metric in metrics:
        for chunk in data.split(37):
            metric.update(chunk)
            assert metric.stored_rows() <= 200
    assert int(metrics[0].n_seen) == 3000
    kept = [metric.gathered("samples") for metric in metrics]
    assert kept[0] is not None and kept[1] is not None
    assert torch.equal(kept[0], kept[1])  # same seed, same batches: same sample
    ids = kept[0][:, 0].long()
    assert ids.unique().numel() == 200 and bool((ids >= 0).all() and (ids < 3000).all())
    # Uniform over the whole stream, not just the first rows (mean 1500, sd of mean ~ 60).
    assert 1200 < float(ids.float().mean()) < 1800 and int((ids >= 2000).sum()) > 30
    other_seed = IntrinsicDimension(max_samples=200, seed=6)
    _feed(other_seed, data, 37)
    assert not torch.equal(other_seed.gathered("samples"), kept[0])  # type: ignore[arg-type]
    # The global RNG is untouched.
    state = torch.random.get_rng_state()
    _feed(IntrinsicDimension(k=5, max_samples=10), data[:100], 7)
    assert torch.equal(state, torch.random.get_rng_state())


def test_estimate_on_the_reservoir_matches_functional() -> None:
    x, y = _labelled(900, seed=2)
    metric = IntrinsicDimension(k=10, max_samples=300)
    sharpness = LabelSharpness(max_samples=300)
    for xs, ys in zip(x.split(100), y.split(100), strict=True):
        metric.update(xs)
        sharpness.update(xs, ys)
    assert metric.stored_rows() == sharpness.stored_rows() == 300
    kept = metric.gathered("samples")
    assert kept is not None
    assert _close(float(metric.compute()), intrinsic_dimension(kept, k=10).value)
    # Inputs and targets stay aligned through the replacements.
    inputs, targets = sharpness.gathered("inputs"), sharpness.gathered("targets")
    assert inputs is not None and targets is not None
    index = torch.cdist(inputs, x, compute_mode="donot_use_mm_for_euclid_dist").argmin(dim=1)
    assert torch.equal(targets[:, 0], y[index])
    assert _close(float(sharpness.compute()), label_sharpness(inputs, targets[:, 0]).value)


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric:UserWarning")
def test_reset_clone_and_pickle() -> None:
    x = sphere_in_ambient(300, intrinsic=2, ambient=6)
    metric = IntrinsicDimension(estimator="twonn", max_samples=120)
    _feed(metric, x, 50)
    first = float(metric.compute())
    clone = cast(IntrinsicDimension, metric.clone())
    restored = pickle.loads(pickle.dumps(metric))
    assert torch.equal(clone.gathered("samples"), metric.gathered("samples"))  # type: ignore[arg-type]
    metric.reset()
    assert metric.stored_rows() == 0 and int(metric.n_seen) == 0
    assert metric.last_result is not None  # the last result survives a reset
    with pytest.raises(ValueError, match="no samples"):
        metric.compute()
    for again in (metric, copy.deepcopy(clone), restored):
        again.reset()
        _feed(again, x, 50)
        assert float(again.compute()) == first


def test_forward_returns_the_batch_value_and_accumulates() -> None:
    x = sphere_in_ambient(400, intrinsic=3, ambient=9)
    metric = IntrinsicDimension(estimator="twonn")
    batch_value = metric(x[:200])
    assert _close(float(batch_value), intrinsic_dimension(x[:200], "twonn").value)
    metric(x[200:])
    assert _close(float(metric.compute()), intrinsic_dimension(x, "twonn").value)
    x_l, y_l = _labelled(100)
    sharpness = LabelSharpness()
    assert _close(float(sharpness(x_l, y_l)), label_sharpness(x_l, y_l).value)


def test_merge_state_keeps_the_bound() -> None:
    x = sphere_in_ambient(500, intrinsic=3, ambient=9)
    a, b = IntrinsicDimension(max_samples=150), IntrinsicDimension(max_samples=150)
    _feed(a, x[:400], 50)
    _feed(b, x[400:], 50)
    a.merge_state(b)
    merged = a.gathered("samples")
    assert merged is not None and merged.shape[0] == 150 and int(a.n_seen) == 500
    exact = torch.cdist(merged, x, compute_mode="donot_use_mm_for_euclid_dist")
    assert exact.min(dim=1).values.max() == 0  # rows of the data


def test_clear_errors() -> None:
    metric = IntrinsicDimension(k=20)
    metric.update(torch.randn(15, 4))
    with pytest.raises(ValueError, match="k=20"):
        metric.compute()
    with pytest.raises(ValueError, match="do not match"):
        metric.update(torch.randn(4, 5))
    with pytest.raises(ValueError, match="max_samples"):
        IntrinsicDimension(k=20, max_samples=10)
    with pytest.raises(ValueError, match="estimator"):
        IntrinsicDimension(estimator="pca")  # type: ignore[arg-type]
    sharpness = LabelSharpness()
    sharpness.update(torch.randn(10, 3), torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match="same label"):
        sharpness.compute()
    with pytest.raises(ValueError, match="same kind of targets"):
        sharpness.update(torch.randn(10, 3), torch.rand(10))
    with pytest.raises(ValueError, match="batch"):
        sharpness.update(torch.randn(10, 3), torch.zeros(9, dtype=torch.long))


# ------------------------------------------------------------------------------ Lightning
class _Classifier(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(8, 3)
        self.val_id = IntrinsicDimension(estimator="twonn", max_samples=1000)
        self.val_sharpness = LabelSharpness()

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.layer(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.val_id.update(x)
        self.val_sharpness.update(x, y)
        self.log("val_id", self.val_id, on_step=False, on_epoch=True)
        self.log("val_sharpness", self.val_sharpness, on_step=False, on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_logs_the_metrics() -> None:
    x, y = _labelled(256, seed=4)
    x = x[:, :8].contiguous()
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    module = _Classifier()
    trainer = Trainer(
        max_epochs=2,
        limit_train_batches=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    logged = trainer.callback_metrics
    assert _close(float(logged["val_id"]), intrinsic_dimension(x, "twonn").value)
    assert _close(float(logged["val_sharpness"]), label_sharpness(x, y).value)
    assert module.val_id.last_result is not None and module.val_id.last_result.n_input == 256
    assert module.val_id.stored_rows() == 0  # Lightning reset it after the epoch


def test_label_sharpness_metric_reads_targets_by_the_one_rule() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(120, 5, generator=g)
    grades = torch.randint(0, 4, (120,), generator=g).to(torch.float32)  # whole-number floats
    regression = LabelSharpness()
    regression.update(x, grades)
    with pytest.warns(FloatClassIdsWarning, match="4 whole-number values"):  # said, not guessed
        value = float(regression.compute())
        expected = label_sharpness(x, grades).value
    assert value == pytest.approx(expected, rel=1e-5)
    assert regression.last_result is not None
    assert regression.last_result.target_type == "regression"
    classes = LabelSharpness(target_type="class")
    classes.update(x[:60], grades[:60])
    classes.update(x[60:], grades[60:].long())  # ids as floats or ints: the same classes
    assert float(classes.compute()) == pytest.approx(
        label_sharpness(x, grades.long()).value, rel=1e-5
    )
    with pytest.raises(ValueError, match="NaN"):
        LabelSharpness().update(x[:2], torch.tensor([1.0, float("nan")]))
