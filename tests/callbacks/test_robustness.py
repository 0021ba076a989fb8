"""RobustnessMonitor in tiny real fits: pixel-space eps, forward_fn, failures, bf16, compile."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_dataprops import names
from lightning_dataprops.callbacks import (
    DataPropsOptions,
    MeasurementFailedWarning,
    RobustnessMonitor,
)
from lightning_dataprops.data import sample_dataset
from tests.conftest import shared_file
from tests.integration.lightning_models import ON_SCHEDULE, TinyCNN
from tests.threads import torch_threads
from tests.transforms import Compose, Normalize

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
QUANTITIES = names.ADVERSARIAL_QUANTITIES


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


# --------------------------------------------------------------------------------------------
# Data and models the way people train
# --------------------------------------------------------------------------------------------


class ImageFolderLike(Dataset):
    """uint8 HWC photos -> float CHW in [0, 1] -> ``transform`` (Normalize inside the Dataset)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Any) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        pixels = torch.from_numpy(self.images[index]).permute(2, 0, 1).float() / 255.0
        return self.transform(pixels), int(self.labels[index])


class Loaders(pl.LightningDataModule):
    def __init__(self, train: Dataset, val: Dataset) -> None:
        super().__init__()
        self.train, self.val = train, val

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=64, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=64)


class Recording(TinyCNN):
    """Records the inputs of its eval-mode forwards (what the probe feeds the model)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            self.seen.append(x.detach().clone())
        return super().forward(x)


class TupleOutput(TinyCNN):
    """A model returning ``(logits, features)``."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        features = self.features(x)
        return self.head(features), features

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        logits, _ = self(batch[0])
        return nn.functional.cross_entropy(logits, batch[1])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        logits, _ = self(batch[0])
        self.log("val_loss", nn.functional.cross_entropy(logits, batch[1]))


def colour_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 photos-to-be whose class (0..3) is the dominant colour, with noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=n)
    base = rng.integers(40, 200, size=(n, 16, 16, 3))
    for c in range(3):
        base[labels == c, :, :, c] += 50
    return np.clip(base, 0, 255).astype(np.uint8), labels


def trainer(max_epochs: int, callbacks: list[Any], **kwargs: Any) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=max_epochs,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
        devices=1,
        **kwargs,
    )


def logged(fit: pl.Trainer, attack: str) -> dict[str, float]:
    return {q: float(fit.callback_metrics[names.adversarial(attack, q)]) for q in QUANTITIES}


def own_accuracy_and_loss(model: nn.Module, x: Tensor, y: Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        output = model(x)
        logits = output[0] if isinstance(output, tuple) else output
        accuracy = float((logits.argmax(1) == y).float().mean())
        return accuracy, float(nn.functional.cross_entropy(logits.float(), y))


def check_pixel_space(
    model: Recording, val: Dataset, seed: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> tuple[Tensor, Tensor]:
    """The probe's FGSM moved pixels by exactly 2/255; returns the batch the Dataset yields."""
    sample = sample_dataset(val, max_samples=64, seed=seed)  # what the Dataset yields
    assert sample.targets is not None
    shape = (1, 3, 1, 1)
    pixels = sample.inputs * torch.tensor(std).reshape(shape) + torch.tensor(mean).reshape(shape)
    attacked = model.seen[-1]  # the last eval forward: FGSM's attacked evaluation
    assert attacked.shape == sample.inputs.shape
    attacked_pixels = attacked * torch.tensor(std).reshape(shape) + torch.tensor(mean).reshape(
        shape
    )
    step = (attacked_pixels - pixels).abs()
    assert float(step.max()) == pytest.approx(2 / 255, abs=1e-5)  # eps in pixel space
    assert float(attacked_pixels.min()) >= -1e-5 and float(attacked_pixels.max()) <= 1 + 1e-5
    return sample.inputs, sample.targets


# --------------------------------------------------------------------------------------------
# Normalize inside the Dataset: eps in pixel space, clean accuracy = the model's own
# --------------------------------------------------------------------------------------------


def test_cifar_normalize_in_dataset_attacks_pixels(
    lightning_log: pytest.LogCaptureFixture,
) -> None:
    with np.load(shared_file("cifar10/cifar10.npz")) as data:
        train_x, train_y = data["train_images"][:1024], data["train_labels"][:1024]
        val_x, val_y = data["test_images"][:256], data["test_labels"][:256]
    transform = Compose([Normalize(CIFAR_MEAN, CIFAR_STD)])
    train = ImageFolderLike(train_x, train_y, transform)
    val = ImageFolderLike(val_x, val_y, transform)
    torch.manual_seed(0)
    model = Recording(channels=3, n_classes=10, lr=0.05)
    monitor = RobustnessMonitor(ON_SCHEDULE, every_n_epochs=2, attacks={"fgsm": "fgsm"})
    fit = trainer(2, [monitor])
    fit.fit(model, datamodule=Loaders(train, val))
    assert "normalises its inputs" in lightning_log.text  # detected, and said so
    x, y = check_pixel_space(model, val, 0, CIFAR_MEAN, CIFAR_STD)
    accuracy, loss = own_accuracy_and_loss(model, x, y)
    metrics = logged(fit, "fgsm")
    assert accuracy > 0.15  # it learned something, so the equality below means something
    assert metrics["clean_acc"] == accuracy
    assert metrics["clean_loss"] == pytest.approx(loss, rel=1e-4)
    assert metrics["loss_increase"] > 0 and metrics["robust_acc"] <= metrics["clean_acc"]


def test_synthetic_rgb_explicit_normalization_and_torchattacks_instance() -> None:
    torchattacks = pytest.importorskip(
        "torchattacks", reason="torchattacks is optional: pip install --no-deps torchattacks"
    )
    images, labels = colour_images(640)
    mean, std = (0.5, 0.45, 0.4), (0.2, 0.25, 0.3)
    normalised = ImageFolderLike(images, labels, Normalize(mean, std))
    tensors = torch.stack([normalised[i][0] for i in range(len(normalised))])
    train = TensorDataset(tensors[:512], torch.from_numpy(labels[:512]))
    val = TensorDataset(tensors[512:], torch.from_numpy(labels[512:]))  # nothing to detect
    torch.manual_seed(0)
    model = Recording(channels=3, n_classes=4, lr=0.05)
    user_attack = torchattacks.FGSM(model, eps=2 / 255)  # built on the user's model
    monitor = RobustnessMonitor(
        every_n_epochs=2,
        attacks={"torchattacks": user_attack, "fgsm": "fgsm"},
        normalization=(mean, std),
        options=DataPropsOptions(seed=3, overhead_budget=None),
    )
    fit = trainer(2, [monitor])
    with warnings.catch_warnings():
        warnings.simplefilter("error", MeasurementFailedWarning)
        fit.fit(model, datamodule=Loaders(train, val))
    x, y = check_pixel_space(model, val, 3, mean, std)
    accuracy, _ = own_accuracy_and_loss(model, x, y)
    ours, theirs = logged(fit, "fgsm"), logged(fit, "torchattacks")
    assert ours["clean_acc"] == accuracy > 0.5
    assert theirs == pytest.approx(ours, abs=1e-6)  # rebound to pixel space like the built-in
    assert user_attack.model is model  # the user's object is not changed


def test_warns_when_eps_units_are_unknown() -> None:
    images, labels = colour_images(256)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()  # 0-255, no normalisation known
    data = TensorDataset(x, torch.from_numpy(labels))
    monitor = RobustnessMonitor(
        ON_SCHEDULE, every_n_epochs=1, max_samples=16, attacks={"fgsm": "fgsm"}
    )
    with pytest.warns(UserWarning, match="eps=0.00784314 is in input units"):
        trainer(1, [monitor], limit_train_batches=1).fit(
            TinyCNN(channels=3, n_classes=4), DataLoader(data, batch_size=64)
        )
    assert monitor.batch is not None
    low, high = float(monitor.batch[0].min()), float(monitor.batch[0].max())
    assert monitor.pixel_range == (low, high) and high > 200  # clipped to the inputs' own range


# --------------------------------------------------------------------------------------------
# The one forward path, and failures that must not end training
# --------------------------------------------------------------------------------------------


def _colour_loaders(n: int = 384) -> Loaders:
    images, labels = colour_images(n)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(labels)
    return Loaders(TensorDataset(x[:256], y[:256]), TensorDataset(x[256:], y[256:]))


class BatchesOf(Loaders):
    """Loaders whose training batch size is ``size``."""

    def __init__(self, train: Dataset, val: Dataset, size: int) -> None:
        super().__init__(train, val)
        self.size = size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=self.size, shuffle=True)


def test_the_probe_attacks_in_passes_of_the_training_batch_size() -> None:
    loaders = _colour_loaders()
    model = Recording(channels=3, n_classes=4)
    monitor = RobustnessMonitor(
        ON_SCHEDULE, every_n_epochs=1, max_samples=40, attacks={"fgsm": "fgsm"}
    )
    trainer(1, [monitor], limit_train_batches=2, limit_val_batches=0).fit(
        model, datamodule=BatchesOf(loaders.train, loaders.val, 16)
    )
    assert monitor.history, "the probe ran"
    sizes = [len(x) for x in model.seen]
    # After setup's checks on two inputs: clean evaluation, input gradient and attacked
    # evaluation of the 40 inputs, 16 at a time.
    assert sorted(sizes[-9:]) == [8] * 3 + [16] * 6 and max(sizes) == 16, sizes


def test_non_finite_inputs_are_named_and_left_out_of_the_probe() -> None:
    """A corrupt item (NaN pixels) is named by its dataset index and left out; the probe attacks
    the others, and no range warning reads '[nan, nan]'."""
    loaders = _colour_loaders()
    loaders.val.tensors[0][3, 0, 0, 0] = float("nan")
    loaders.val.tensors[0][10] = float("nan")
    monitor = RobustnessMonitor(ON_SCHEDULE, every_n_epochs=1, max_samples=128)
    fit = trainer(1, [monitor], limit_train_batches=2, limit_val_batches=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(TinyCNN(channels=3, n_classes=4), datamodule=loaders)
    said = [str(w.message) for w in caught if "RobustnessMonitor" in str(w.message)]
    assert any("dataset indices [3, 10]" in m and "left out of the probe" in m for m in said), said
    assert not any("nan" in m.lower().replace("nan or infinite", "") for m in said), said
    assert monitor.batch is not None and len(monitor.batch[0]) == 126
    assert bool(torch.isfinite(monitor.batch[0]).all())
    metrics = logged(fit, "fgsm")
    assert metrics and all(np.isfinite(list(metrics.values())))


def test_tuple_output_model_with_forward_fn() -> None:
    torch.manual_seed(0)
    model = TupleOutput(channels=3, n_classes=4)
    options = DataPropsOptions(forward_fn=lambda m, x: m(x)[0], overhead_budget=None)
    monitor = RobustnessMonitor(options, every_n_epochs=1)
    fit = trainer(2, [monitor])
    with warnings.catch_warnings():
        warnings.simplefilter("error", MeasurementFailedWarning)
        fit.fit(model, datamodule=_colour_loaders())
    assert [row["epoch"] for row in monitor.history] == [0, 1]
    for attack in ("fgsm", "pgd"):
        metrics = logged(fit, attack)
        assert all(np.isfinite(list(metrics.values())))
        assert metrics["adv_loss"] >= metrics["clean_loss"]
    # without forward_fn the problem is found in setup, before any training
    bare = TupleOutput(channels=3, n_classes=4)
    with pytest.raises(ValueError, match="forward_fn"):
        trainer(2, [RobustnessMonitor(ON_SCHEDULE, every_n_epochs=1)]).fit(
            bare, datamodule=_colour_loaders()
        )
    assert bare.global_step == 0


class DictOutput(TinyCNN):
    """A model returning ``{"features": ..., "logits": ...}``."""

    def forward(self, x: Tensor) -> dict[str, Tensor]:  # type: ignore[override]
        features = self.features(x)
        return {"features": features, "logits": self.head(features)}

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return nn.functional.cross_entropy(self(batch[0])["logits"], batch[1])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        del batch, batch_idx


def test_a_dict_output_is_shown_with_the_forward_fn_that_fits_it() -> None:
    """Without forward_fn, and with a tuple's forward_fn on a dict output, the fit stops in
    setup with the output's keys and the call that picks the logits; the right one trains."""
    without = DictOutput(channels=3, n_classes=4)
    with pytest.raises(ValueError, match=r"""keys \['features', 'logits'\].*m\(x\)\["logits"\]"""):
        trainer(1, [RobustnessMonitor(ON_SCHEDULE, every_n_epochs=1)]).fit(
            without, datamodule=_colour_loaders()
        )
    tuple_fn = DataPropsOptions(forward_fn=lambda m, x: m(x)[0], overhead_budget=None)
    wrong = DictOutput(channels=3, n_classes=4)
    with pytest.raises(ValueError, match=r'forward_fn raised KeyError: 0.*m\(x\)\["logits"\]'):
        trainer(1, [RobustnessMonitor(tuple_fn, every_n_epochs=1)]).fit(
            wrong, datamodule=_colour_loaders()
        )
    assert without.global_step == wrong.global_step == 0
    right = DataPropsOptions(forward_fn=lambda m, x: m(x)["logits"], overhead_budget=None)
    monitor = RobustnessMonitor(right, every_n_epochs=1)
    fit = trainer(1, [monitor], limit_train_batches=2)
    fit.fit(DictOutput(channels=3, n_classes=4), datamodule=_colour_loaders())
    assert [row["epoch"] for row in monitor.history] == [0]


def test_failing_attack_warns_once_and_training_finishes() -> None:
    calls: list[int] = []

    def broken(x: Tensor, y: Tensor) -> Tensor:
        calls.append(1)
        raise RuntimeError("this attack breaks on purpose")

    monitor = RobustnessMonitor(
        ON_SCHEDULE, every_n_epochs=1, attacks={"fgsm": "fgsm", "broken": broken}
    )
    fit = trainer(3, [monitor])
    with pytest.warns(MeasurementFailedWarning, match="breaks on purpose") as record:
        fit.fit(TinyCNN(channels=3, n_classes=4), datamodule=_colour_loaders())
    failures = [w for w in record if issubclass(w.category, MeasurementFailedWarning)]
    assert len(failures) == 1 and "'broken'" in str(failures[0].message)  # once, named
    assert len(calls) == 1  # disabled after the failure
    assert fit.state.finished and fit.current_epoch == 3
    assert len(monitor.history) == 3  # FGSM still measured every epoch
    assert all(np.isfinite(list(logged(fit, "fgsm").values())))
    assert not any("broken" in key for key in fit.callback_metrics)
    assert names.seconds("adv") in fit.callback_metrics


def test_bf16_mixed_precision_fit() -> None:
    torch.manual_seed(0)
    model = TinyCNN(channels=3, n_classes=4)
    monitor = RobustnessMonitor(ON_SCHEDULE, every_n_epochs=2, attacks={"fgsm": "fgsm"})
    fit = trainer(2, [monitor], precision="bf16-mixed")
    loaders = _colour_loaders()
    with warnings.catch_warnings():
        warnings.simplefilter("error", MeasurementFailedWarning)
        fit.fit(model, datamodule=loaders)
    x, y = sample_dataset(loaders.val, max_samples=64, seed=0).inputs, None
    y = sample_dataset(loaders.val, max_samples=64, seed=0).targets
    assert y is not None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        accuracy, loss = own_accuracy_and_loss(model, x, y)
    metrics = logged(fit, "fgsm")
    assert metrics["clean_acc"] == accuracy  # the probe ran under the trainer's autocast
    assert metrics["clean_loss"] == pytest.approx(loss, rel=1e-3)


class Unlogged(TinyCNN):
    """Steps without ``self.log``: Lightning 2.6's ``log`` does not trace under torch 2.13's
    dynamo when the whole LightningModule is compiled (an upstream limit, not ours)."""

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        nn.functional.cross_entropy(self(batch[0]), batch[1])


@pytest.mark.slow
def test_compiled_model() -> None:
    torch.manual_seed(0)
    model = Unlogged(channels=3, n_classes=4)
    compiled = torch.compile(model)
    monitor = RobustnessMonitor(
        ON_SCHEDULE, every_n_epochs=1, attacks={"fgsm": "fgsm", "pgd": "pgd"}
    )
    fit = trainer(2, [monitor])
    loaders = _colour_loaders()
    with warnings.catch_warnings():
        warnings.simplefilter("error", MeasurementFailedWarning)
        fit.fit(compiled, datamodule=loaders)
    sample = sample_dataset(loaders.val, max_samples=64, seed=0)
    assert sample.targets is not None
    accuracy, _ = own_accuracy_and_loss(model, sample.inputs, sample.targets)
    assert len(monitor.history) == 2
    assert logged(fit, "fgsm")["clean_acc"] == accuracy
    assert logged(fit, "pgd")["adv_loss"] >= logged(fit, "fgsm")["clean_loss"]


def test_training_is_bit_identical_with_and_without_the_probe() -> None:
    def noise(x: Tensor, y: Tensor) -> Tensor:  # draws from the global RNG, as torchattacks does
        return (x + 0.01 * torch.randn_like(x)).clamp(0, 1)

    weights = []
    attacks = {"fgsm": "fgsm", "pgd": "pgd", "noise": noise}
    for callbacks in ([], [RobustnessMonitor(ON_SCHEDULE, every_n_epochs=1, attacks=attacks)]):
        pl.seed_everything(7, verbose=False)
        model = TinyCNN(channels=3, n_classes=4)  # Dropout and BatchNorm: RNG and buffers matter
        trainer(2, callbacks).fit(model, datamodule=_colour_loaders())
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
    assert callbacks and len(callbacks[0].history) == 2
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


def test_state_is_versioned_and_bad_arguments_are_refused() -> None:
    monitor = RobustnessMonitor(name="a")
    monitor.history = [{"epoch": 4, "metrics": {"x": 1.0}}]
    state = monitor.state_dict()
    assert state["version"] == RobustnessMonitor.STATE_VERSION
    restored = RobustnessMonitor(name="a")
    restored.load_state_dict(state)
    assert restored.history == monitor.history
    assert RobustnessMonitor(name="a").state_key != RobustnessMonitor(name="b").state_key
    for kwargs, message in (
        ({"every_n_epochs": -1}, "every_n_epochs"),
        ({"max_samples": 0}, "max_samples"),
        ({"eps": -0.1}, "eps"),
        ({"pgd_steps": 0}, "pgd_steps"),
        ({"data_range": (1.0, 0.0)}, "data_range"),
        ({"normalization": (0.5,)}, "normalization"),
        ({"attacks": {"a/b": "fgsm"}}, "metric names"),
        ({"attacks": {}}, "empty"),
    ):
        with pytest.raises(ValueError, match=message):
            RobustnessMonitor(**kwargs)


class LinearProbe(pl.LightningModule):
    """A frozen encoder run under ``no_grad`` inside ``forward`` and a trainable head: no attack
    can differentiate it (the loss never reaches the inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten()
        )
        self.head = nn.Linear(32, 4)

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            features = self.encoder(x)
        return self.head(features)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.head.parameters(), lr=0.1)


class _WarningsAtFirstStep(pl.Callback):
    """How many warnings had been recorded when the first training step began."""

    def __init__(self, caught: list[warnings.WarningMessage]) -> None:
        self.caught, self.before_first_step = caught, -1

    def on_train_batch_start(self, *args: Any) -> None:
        if self.before_first_step < 0:
            self.before_first_step = len(self.caught)


def test_a_linear_probe_is_reported_at_setup_and_training_completes() -> None:
    torch.manual_seed(0)
    model = LinearProbe()
    head_before = model.head.weight.detach().clone()
    monitor = RobustnessMonitor(ON_SCHEDULE, every_n_epochs=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spy = _WarningsAtFirstStep(caught)
        fit = trainer(2, [monitor, spy], limit_train_batches=2, limit_val_batches=1)
        fit.fit(model, datamodule=_colour_loaders())
    ours = [w for w in caught if issubclass(w.category, MeasurementFailedWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]  # one warning, not one per probe
    message = str(ours[0].message)
    assert "no gradient with respect to its inputs" in message
    assert "disabled for the rest of this fit" in message and "training continues" in message
    assert "requires_grad_(False)" in message  # what to do
    assert not any("allow_unused" in str(w.message) for w in caught)  # autograd's raw advice
    assert spy.before_first_step >= 1 and ours[0] in caught[: spy.before_first_step]  # at setup
    assert fit.state.finished and fit.current_epoch == 2
    assert not torch.equal(model.head.weight, head_before)  # the head trained
    assert monitor.history == [] and "robustness probe" in monitor.disabled
    assert not any(key.startswith(f"{names.PREFIX}/adv/") for key in fit.callback_metrics)


def test_a_differentiable_model_passes_the_setup_check_without_a_word() -> None:
    monitor = RobustnessMonitor(ON_SCHEDULE, every_n_epochs=1, attacks={"fgsm": "fgsm"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", MeasurementFailedWarning)
        fit = trainer(1, [monitor], limit_train_batches=2, limit_val_batches=1)
        fit.fit(TinyCNN(channels=3, n_classes=4), datamodule=_colour_loaders())
    assert monitor.disabled == {} and len(monitor.history) == 1
