"""RepresentationIDMonitor alone, in tiny real fits (compiled, tuple outputs, shared modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from lightning_dataprops import intrinsic_dimension, names, sample_dataset
from lightning_dataprops.callbacks import (
    DataPropsOptions,
    DatasetPropertiesMonitor,
    MeasurementFailedWarning,
    RepresentationIDMonitor,
)
from tests.hook_oracle import cloned
from tests.integration.lightning_models import (
    ON_SCHEDULE,
    CompilableCNN,
    FunctionalHeadNet,
    FunctionalReLUNet,
    ResidualCNN,
    SharedReLUNet,
    TensorDataModule,
    TinyCNN,
    TupleOutputCNN,
    WeightNormHeadNet,
    trainer,
)


def _probe(x: Tensor, y: Tensor, n: int, seed: int = 0) -> Tensor:
    return sample_dataset(TensorDataset(x, y), max_samples=n, seed=seed).inputs


def _oracle(features: Tensor, k: int = 20) -> float:
    return intrinsic_dimension(features.flatten(1), "mle", k=k).value


def test_penultimate_layer_d_repr_equals_the_features_measured_by_hand(
    mnist_3_vs_8, tmp_path: Path
) -> None:
    x, y = mnist_3_vs_8
    monitor = RepresentationIDMonitor(ON_SCHEDULE, max_samples=300)
    model = TinyCNN()
    fit = trainer(tmp_path, [monitor], max_epochs=2)
    fit.fit(model, datamodule=TensorDataModule(x, y))
    assert monitor.layer_names == ["features.5"], "the penultimate layer feeds the head"
    assert [row["epoch"] for row in monitor.history] == [0, 1]
    model.eval()
    with torch.no_grad():
        expected = _oracle(model.features(_probe(x, y, 300)))
    assert float(fit.callback_metrics[names.d_repr("features.5")]) == pytest.approx(
        expected, rel=1e-5
    )


class EvalBatches(TinyCNN):
    """Records the batch size of each forward pass made without gradients in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def forward(self, x: Tensor) -> Tensor:
        if not self.training and not torch.is_grad_enabled():
            self.sizes.append(len(x))
        return super().forward(x)


def _batched_by_sampler(x: Tensor, y: Tensor) -> DataLoader:
    """Batches of 16 made by a BatchSampler given as the sampler (``batch_size=None``)."""
    return DataLoader(
        TensorDataset(x, y),
        sampler=BatchSampler(RandomSampler(x), batch_size=16, drop_last=False),
        batch_size=None,
    )


@pytest.mark.parametrize(
    ("batch_size", "by_sampler", "passes"),
    [(None, False, [16, 16, 8]), (7, False, [7] * 5 + [5]), (None, True, [16, 16, 8])],
)
def test_probe_passes_use_the_training_batch_size_and_the_value_does_not_depend_on_it(
    mnist_3_vs_8, tmp_path: Path, batch_size: int | None, by_sampler: bool, passes: list[int]
) -> None:
    x, y = mnist_3_vs_8
    model = EvalBatches()
    monitor = RepresentationIDMonitor(ON_SCHEDULE, max_samples=40, batch_size=batch_size)
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=2, limit_val_batches=0)
    if by_sampler:
        fit.fit(model, train_dataloaders=_batched_by_sampler(x, y))
    else:
        fit.fit(model, datamodule=TensorDataModule(x, y, batch_size=16))
    assert model.sizes[-len(passes) :] == passes, model.sizes  # after setup's traced pass
    model.eval()
    with torch.no_grad():
        expected = _oracle(model.features(_probe(x, y, 40)))  # one pass of all 40
    assert monitor.history[0]["d_repr"] == pytest.approx(expected, rel=1e-5)


def test_two_layers_every_second_epoch_pooled(mnist_3_vs_8, tmp_path: Path) -> None:
    x, y = mnist_3_vs_8
    monitor = RepresentationIDMonitor(
        layers=["features.2", "head"], every_n_epochs=2, max_samples=200, pool="avg"
    )
    fit = trainer(tmp_path, [monitor], max_epochs=2, limit_train_batches=2)
    model = TinyCNN()
    fit.fit(model, datamodule=TensorDataModule(x, y))
    assert {(row["epoch"], row["layer"]) for row in monitor.history} == {
        (1, "features.2"),
        (1, "head"),
    }
    assert monitor.layer_names == ["features.2", "head"], "execution order"
    model.eval()
    with torch.no_grad():
        relu = model.features[:3](_probe(x, y, 200)).mean(dim=(2, 3))
    assert monitor.history[0]["d_repr"] == pytest.approx(_oracle(relu), rel=1e-5)


def test_compiled_lightning_module_fit(mnist_3_vs_8, tmp_path: Path) -> None:
    x, y = mnist_3_vs_8
    torch.manual_seed(0)
    # The weights stay put: the compiled value must equal the eager one.
    model = CompilableCNN(lr=0.0, batch_norm=False)
    monitor = RepresentationIDMonitor(ON_SCHEDULE, max_samples=300)
    fit = trainer(tmp_path, [monitor], max_epochs=2, limit_train_batches=2)
    fit.fit(torch.compile(model, backend="aot_eager"), datamodule=TensorDataModule(x, y))
    assert [row["epoch"] for row in monitor.history] == [0, 1]
    model.eval()
    with torch.no_grad():
        expected = _oracle(model.features(_probe(x, y, 300)))
    assert monitor.history[-1]["d_repr"] == pytest.approx(expected, rel=1e-5)


def test_compiled_submodule_captures_one_row_per_input(mnist_3_vs_8, tmp_path: Path) -> None:
    x, y = mnist_3_vs_8
    model = TinyCNN(lr=0.0, batch_norm=False)
    model.features = torch.compile(model.features, backend="aot_eager")  # type: ignore[assignment]
    monitor = RepresentationIDMonitor(ON_SCHEDULE, layers=["features._orig_mod.2"], max_samples=300)
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=2)
    fit.fit(model, datamodule=TensorDataModule(x, y))
    eager = model.features._orig_mod  # type: ignore[union-attr]
    eager.eval()
    with torch.no_grad():
        expected = _oracle(eager[:3](_probe(x, y, 300)))
    assert monitor.history[-1]["d_repr"] == pytest.approx(expected, rel=1e-5)


def test_tuple_output_model_through_forward_fn(mnist_3_vs_8, tmp_path: Path) -> None:
    x, y = mnist_3_vs_8
    options = DataPropsOptions(
        forward_fn=lambda module, inputs: module(inputs)[0], overhead_budget=None
    )
    monitor = RepresentationIDMonitor(options, max_samples=200)
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=2)
    fit.fit(TupleOutputCNN(), datamodule=TensorDataModule(x, y))
    assert monitor.layer_names == ["features.5"]
    assert 0 < float(fit.callback_metrics[names.d_repr("features.5")]) < 128


def test_a_module_called_twice_is_refused_in_setup_or_captured_as_asked(
    mnist_3_vs_8, tmp_path: Path, lightning_log: pytest.LogCaptureFixture
) -> None:
    x, y = mnist_3_vs_8
    fit = trainer(tmp_path, [RepresentationIDMonitor(ON_SCHEDULE, layers=["act"], max_samples=200)])
    with pytest.raises(ValueError, match=r"'act' ran 2 times.*layer_call"):
        fit.fit(SharedReLUNet(), datamodule=TensorDataModule(x, y))
    model = SharedReLUNet(lr=0.0)
    first = RepresentationIDMonitor(ON_SCHEDULE, layers=["act"], max_samples=200, layer_call=0)
    fit = trainer(tmp_path, [first], max_epochs=1, limit_train_batches=1)
    fit.fit(model, datamodule=TensorDataModule(x, y))
    assert "'act' runs 2 times per forward pass; d_repr is measured on call 0" in lightning_log.text
    with torch.no_grad():
        hidden = torch.relu(model.fc1(_probe(x, y, 200).flatten(1)))
    assert first.history[0]["d_repr"] == pytest.approx(_oracle(hidden), rel=1e-5)


class WithUnusedLayer(TinyCNN):
    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Linear(4, 4)


def test_layers_that_never_run_or_do_not_exist_fail_in_setup(mnist_3_vs_8, tmp_path) -> None:
    x, y = mnist_3_vs_8
    fit = trainer(tmp_path, [RepresentationIDMonitor(ON_SCHEDULE, layers="unused")])
    with pytest.raises(ValueError, match="'unused' did not run"):
        fit.fit(WithUnusedLayer(), datamodule=TensorDataModule(x, y))
    fit = trainer(tmp_path, [RepresentationIDMonitor(ON_SCHEDULE, layers=["backbone.fc"])])
    with pytest.raises(ValueError, match=r"no module named 'backbone.fc'.*features\.0.*head"):
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    with pytest.raises(ValueError, match=r"every_n_epochs must be >= 0 \(0: never measure\)"):
        RepresentationIDMonitor(every_n_epochs=-1)


def test_a_forward_that_raises_mid_fit_disables_only_d_repr(mnist_3_vs_8, tmp_path) -> None:
    x, y = mnist_3_vs_8
    calls = {"n": 0}

    def flaky(module: nn.Module, inputs: Tensor) -> Any:
        calls["n"] += 1
        if calls["n"] > 3:  # setup's passes succeed; the epoch's probe raises
            raise RuntimeError("the probe's forward failed (on purpose)")
        return module(inputs)

    options = DataPropsOptions(forward_fn=flaky, overhead_budget=None)
    callbacks = [
        DatasetPropertiesMonitor(options),
        RepresentationIDMonitor(options, max_samples=200),
    ]
    fit = trainer(tmp_path, callbacks, max_epochs=3)
    with pytest.warns(MeasurementFailedWarning, match=r"d_repr failed.*\(on purpose\)") as caught:
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert len([w for w in caught if w.category is MeasurementFailedWarning]) == 1, "warned once"
    assert fit.state.finished and fit.current_epoch == 3
    assert names.K_F in fit.callback_metrics and names.D_DATA in fit.callback_metrics
    assert not any(key.startswith(names.d_repr("")) for key in fit.callback_metrics)


def test_two_monitors_on_different_layers_share_a_trainer(mnist_3_vs_8, tmp_path) -> None:
    x, y = mnist_3_vs_8
    early = RepresentationIDMonitor(ON_SCHEDULE, layers=["features.2"], max_samples=200)
    late = RepresentationIDMonitor(
        ON_SCHEDULE, layers=["features.5"], max_samples=200, every_n_epochs=2
    )
    assert early.state_key != late.state_key
    fit = trainer(tmp_path, [early, late], max_epochs=2, enable_checkpointing=True)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert [row["epoch"] for row in early.history] == [0, 1]
    assert [row["epoch"] for row in late.history] == [1]


def test_the_overhead_budget_postpones_d_repr_and_says_so(
    mnist_3_vs_8, tmp_path: Path, lightning_log: pytest.LogCaptureFixture
) -> None:
    x, y = mnist_3_vs_8

    def measured_epochs(budget: float | None) -> tuple[list[int], Any]:
        monitor = RepresentationIDMonitor(
            DataPropsOptions(overhead_budget=budget), max_samples=600, every_n_epochs=1
        )
        fit = trainer(tmp_path, [monitor], max_epochs=4, limit_train_batches=2)
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
        return sorted({row["epoch"] for row in monitor.history}), fit

    everything, fit = measured_epochs(None)
    assert everything == [0, 1, 2, 3] and names.postponed("d_repr") not in fit.callback_metrics
    # Two tiny training steps an epoch cost far less than a 600-sample d_repr pass: after the
    # first measurement, a 0.1% budget postpones the rest, and the spending is logged.
    budgeted, fit = measured_epochs(0.001)
    assert budgeted == [0]
    assert float(fit.callback_metrics[names.postponed("d_repr")]) == 3
    spent = float(fit.callback_metrics[names.OVERHEAD_SECONDS])
    assert spent > 0 and float(fit.callback_metrics[names.OVERHEAD_FRACTION]) >= 0.001
    assert lightning_log.text.count("the d_repr measurement is postponed") == 1
    # It names the knob where README users set it (default_callbacks), not only the options.
    assert "default_callbacks(overhead_budget=...)" in lightning_log.text


def test_batchnorms_rewritten_in_place_are_measured_as_they_returned(
    mnist_3_vs_8, tmp_path: Path
) -> None:
    x, y = mnist_3_vs_8
    layers = ["features.1", "features.3.bn2"]  # before ReLU(inplace=True), `out += identity`
    monitor = RepresentationIDMonitor(ON_SCHEDULE, layers=layers, max_samples=300)
    model = ResidualCNN()
    fit = trainer(tmp_path, [monitor], max_epochs=1)
    fit.fit(model, datamodule=TensorDataModule(x, y))
    probe = _probe(x, y, 300)
    for layer in layers:
        oracle = cloned(model, model.get_submodule(layer), probe)
        assert float((oracle < 0).float().mean()) > 0.1, "the captured values had negatives"
        assert float(fit.callback_metrics[names.d_repr(layer)]) == pytest.approx(
            _oracle(oracle), rel=1e-5
        ), layer


@pytest.mark.parametrize(
    ("model", "layer", "reads"),
    [
        (SharedReLUNet, "act", "the output of call 1 of 'act', which runs 2 times"),
        (FunctionalReLUNet, "out.input", "a tensor that no single module returns"),
        # weight_norm makes the Linear a parent (of its parametrizations): still the head
        (WeightNormHeadNet, "act", "the output of call 1 of 'act', which runs 2 times"),
    ],
)
def test_the_default_layer_is_what_the_head_reads(
    mnist_3_vs_8,
    tmp_path: Path,
    lightning_log: pytest.LogCaptureFixture,
    model: type[SharedReLUNet],
    layer: str,
    reads: str,
) -> None:
    x, y = mnist_3_vs_8
    net = model(lr=0.0)
    monitor = RepresentationIDMonitor(ON_SCHEDULE, max_samples=300)
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=1)
    fit.fit(net, datamodule=TensorDataModule(x, y))
    assert monitor.layer_names == [layer]
    assert f"the output head 'out' reads {reads}" in lightning_log.text
    probe = _probe(x, y, 300)
    expected = _oracle(cloned(net, net.out, probe, read="input"))
    assert float(fit.callback_metrics[names.d_repr(layer)]) == pytest.approx(expected, rel=1e-5)
    assert float(fit.callback_metrics[names.D_REPR_HEAD_INPUT]) == pytest.approx(expected, rel=1e-5)
    pre_activation = _oracle(cloned(net, net.fc2, probe))
    assert abs(pre_activation - expected) > 1e-3 * expected, "fc2 is not what the head reads"


class TwoHeadCNN(TinyCNN):
    """``(logits, aux_logits)``: an auxiliary head with its own hidden layer runs after the
    main one, so the last module with parameters is not the head forward_fn picks."""

    def __init__(self) -> None:
        super().__init__(lr=0.0)
        self.aux_head = nn.Sequential(nn.Linear(8 * 16, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        features = self.features(x)
        return self.head(features), self.aux_head(features)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return nn.functional.cross_entropy(self(batch[0])[0], batch[1])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        del batch, batch_idx


@pytest.mark.parametrize("pick", [0, 1])
def test_the_head_is_the_one_forward_fn_picks(mnist_3_vs_8, tmp_path: Path, pick: int) -> None:
    x, y = mnist_3_vs_8
    options = DataPropsOptions(forward_fn=lambda m, x: m(x)[pick], overhead_budget=None)
    monitor = RepresentationIDMonitor(options, max_samples=300)
    net = TwoHeadCNN()
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=1)
    fit.fit(net, datamodule=TensorDataModule(x, y))
    assert monitor.head_input is not None
    head, layer = ("head", "features.5") if pick == 0 else ("aux_head.2", "aux_head.1")
    assert monitor.head_input.head == head and monitor.layer_names == [layer]
    reads = net.head if pick == 0 else net.aux_head[2]
    expected = _oracle(cloned(net, reads, _probe(x, y, 300), read="input"))
    assert float(fit.callback_metrics[names.D_REPR_HEAD_INPUT]) == pytest.approx(expected, rel=1e-5)


def test_a_functional_head_after_the_chosen_layer_is_a_warning(
    mnist_3_vs_8, tmp_path: Path
) -> None:
    """F.linear(x, self.w): module hooks see no head, so the last module with parameters
    (fc2) is taken for it; the setup says that w is used after it and what to do."""
    x, y = mnist_3_vs_8
    monitor = RepresentationIDMonitor(ON_SCHEDULE, max_samples=300)
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=1)
    with pytest.warns(UserWarning, match=r"parameter\(s\) w, owned by no module.*pass layers="):
        fit.fit(FunctionalHeadNet(lr=0.0), datamodule=TensorDataModule(x, y))
    assert monitor.head_input is not None and monitor.head_input.used_after == ("w",)


@pytest.mark.slow
def test_a_compiled_submodule_logs_the_plain_model_names(mnist_3_vs_8, tmp_path: Path) -> None:
    from lightning.pytorch.loggers import CSVLogger

    x, y = mnist_3_vs_8

    def run(compiled: bool) -> tuple[Any, list[RepresentationIDMonitor], list[str]]:
        torch.manual_seed(0)  # the same weights: the values must agree too
        model = TinyCNN(lr=0.0, batch_norm=False)
        if compiled:
            model.features = torch.compile(model.features, backend="aot_eager")  # type: ignore[assignment]
        listed = "features._orig_mod.2" if compiled else "features.2"  # both spellings accepted
        monitors = [
            RepresentationIDMonitor(ON_SCHEDULE, max_samples=200),
            RepresentationIDMonitor(ON_SCHEDULE, layers=[listed, "features.*"], max_samples=200),
        ]
        root = tmp_path / ("compiled" if compiled else "plain")
        logger = CSVLogger(root, name="run", version=0)
        fit = trainer(root, monitors, max_epochs=1, limit_train_batches=2, logger=logger)
        fit.fit(model, datamodule=TensorDataModule(x, y))
        header = (Path(logger.log_dir) / "metrics.csv").read_text().splitlines()[0].split(",")
        return fit, monitors, header

    plain, plain_monitors, plain_header = run(compiled=False)
    compiled, compiled_monitors, compiled_header = run(compiled=True)
    logged = sorted(key for key in compiled.callback_metrics if key.startswith(names.PREFIX))
    assert logged == sorted(key for key in plain.callback_metrics if key.startswith(names.PREFIX))
    assert names.d_repr("features.5") in logged and names.d_repr("features.2") in logged
    assert sorted(compiled_header) == sorted(plain_header)
    assert not any("_orig_mod" in column for column in compiled_header)
    for ours, theirs in zip(compiled_monitors, plain_monitors, strict=True):
        assert ours.layer_names == theirs.layer_names
        assert ours.state_key == theirs.state_key
        assert [row["layer"] for row in ours.history] == [row["layer"] for row in theirs.history]
        for row, same in zip(ours.history, theirs.history, strict=True):
            assert row["d_repr"] == pytest.approx(same["d_repr"], rel=1e-5)
    assert compiled_monitors[0].head_input is not None
    assert compiled_monitors[0].head_input.describe() == plain_monitors[0].head_input.describe()


def test_two_monitors_add_up_their_time_and_postponements(mnist_3_vs_8, tmp_path: Path) -> None:
    """Two d_repr monitors on different layers share dataprops/time/d_repr (this epoch's
    seconds of both) and dataprops/postponed/d_repr (both monitors' count): Lightning had
    averaged the two values each logged under one name."""
    x, y = mnist_3_vs_8
    layers = (["features.0"], ["features.5"])
    monitors = [RepresentationIDMonitor(ON_SCHEDULE, max_samples=300, layers=on) for on in layers]
    fit = trainer(tmp_path, monitors, max_epochs=1, limit_train_batches=2)
    fit.fit(TinyCNN(lr=0.0), datamodule=TensorDataModule(x, y))
    logged = float(fit.callback_metrics[names.seconds("d_repr")])
    charged = sum(monitor.budget.last_cost["d_repr"] for monitor in monitors)
    assert 0.8 * charged <= logged <= charged, (logged, charged)

    tight = DataPropsOptions(overhead_budget=0.001)
    monitors = [RepresentationIDMonitor(tight, max_samples=300, layers=on) for on in layers]
    fit = trainer(tmp_path, monitors, max_epochs=4, limit_train_batches=2)
    fit.fit(TinyCNN(lr=0.0), datamodule=TensorDataModule(x, y))
    counts = [monitor.budget.skipped.get("d_repr", 0) for monitor in monitors]
    assert min(counts) >= 1, counts
    assert float(fit.callback_metrics[names.postponed("d_repr")]) == sum(counts)
