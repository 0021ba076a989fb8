"""FGSM / PGD / robustness probe: correctness against torchattacks, and model state untouched."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from lightning_dataprops.functional.attacks import (
    PAPER_EPS,
    BoundAttack,
    NoInputGradientError,
    PixelSpaceModel,
    RobustnessResult,
    check_input_gradient,
    fgsm,
    make_attack,
    pgd,
    robustness,
)
from tests.conftest import SHARED_DATA
from tests.threads import torch_threads

TORCHATTACKS_REASON = (
    "torchattacks is optional; install it with `pip install --no-deps torchattacks==3.5.1` "
    "(its torchvision/requests pins are not needed for the attacks)"
)


# --------------------------------------------------------------------------------------------
# Real data and a small CNN
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny convolutions run far faster on one thread, above all on a busy 2-core machine."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def digits() -> tuple[Tensor, Tensor]:
    """MNIST digits from ../shared/data (28x28), or scikit-learn's digits (8x8) without it.

    Shuffled with a fixed seed (the file is sorted by label).
    """
    path = SHARED_DATA / "mnist5k.npz"
    if path.exists():
        with np.load(path) as data:
            images, labels = data["images"], data["labels"]
        x = torch.from_numpy(images.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0)
    else:
        datasets = pytest.importorskip("sklearn.datasets", reason="no MNIST and no scikit-learn")
        bunch = datasets.load_digits()
        images, labels = bunch.images, bunch.target
        x = torch.from_numpy(images.reshape(-1, 1, 8, 8).astype(np.float32) / 16.0)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[order], torch.from_numpy(labels.astype(np.int64))[order]


def small_cnn(in_channels: int = 1, seed: int = 0) -> nn.Sequential:
    """Conv-BN-ReLU-Dropout x2 and a linear head; works for 8x8 and 28x28 inputs."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(16 * 4 * 4, 10),
    )


@pytest.fixture(scope="module")
def trained(digits: tuple[Tensor, Tensor]) -> nn.Sequential:
    """The small CNN after 250 seeded Adam steps on the first 4000 digits (a few seconds)."""
    x, y = digits
    x_train, y_train = x[:4000], y[:4000]
    model = small_cnn(seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(250):
        idx = torch.randint(0, len(x_train), (64,), generator=generator)
        loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    for parameter in model.parameters():
        parameter.grad = None
    model.eval()
    return model


@pytest.fixture(scope="module")
def test_batch(digits: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    x, y = digits
    return x[-400:], y[-400:]


def state(model: nn.Module) -> tuple[list[bool], list[Tensor | None], dict[str, Tensor]]:
    flags = [m.training for m in model.modules()]
    grads = [p.grad for p in model.parameters()]
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    return flags, grads, buffers


def assert_state(model: nn.Module, before: tuple[list[bool], list[Tensor | None], dict]) -> None:
    flags, grads, buffers = before
    assert [m.training for m in model.modules()] == flags
    for parameter, grad in zip(model.parameters(), grads, strict=True):
        assert parameter.grad is grad  # the same object (None stays None), never replaced
    for key, value in model.state_dict().items():
        assert torch.equal(value, buffers[key]), key


# --------------------------------------------------------------------------------------------
# Against torchattacks
# --------------------------------------------------------------------------------------------


def test_fgsm_equals_torchattacks(trained: nn.Module, test_batch: tuple[Tensor, Tensor]) -> None:
    torchattacks = pytest.importorskip("torchattacks", reason=TORCHATTACKS_REASON)
    x, y = test_batch
    ours = fgsm(trained, x, y, eps=8 / 255)
    theirs = torchattacks.FGSM(trained, eps=8 / 255)(x, y)
    assert ours.dtype == x.dtype and ours.shape == x.shape
    assert float((ours - theirs).abs().max()) <= 1e-6
    assert float((ours - x).abs().max()) == pytest.approx(8 / 255, abs=1e-6)


def test_pgd_equals_torchattacks_without_random_start(
    trained: nn.Module, test_batch: tuple[Tensor, Tensor]
) -> None:
    torchattacks = pytest.importorskip("torchattacks", reason=TORCHATTACKS_REASON)
    x, y = test_batch[0][:128], test_batch[1][:128]
    ours = pgd(trained, x, y, eps=8 / 255, alpha=2 / 255, steps=5, random_start=False)
    attack = torchattacks.PGD(trained, eps=8 / 255, alpha=2 / 255, steps=5, random_start=False)
    assert float((ours - attack(x, y)).abs().max()) <= 1e-6


def test_make_attack_with_torchattacks(
    trained: nn.Sequential, test_batch: tuple[Tensor, Tensor]
) -> None:
    torchattacks = pytest.importorskip("torchattacks", reason=TORCHATTACKS_REASON)
    x, y = test_batch[0][:64], test_batch[1][:64]
    model = trained
    model.train()
    model[1].eval()  # a frozen BatchNorm: torchattacks' own restore would turn it back on
    head = model[-1]
    assert isinstance(head, nn.Linear)
    head.weight.grad = torch.ones_like(head.weight)
    before = state(model)
    rng = torch.get_rng_state()
    try:
        attack = make_attack(functools.partial(torchattacks.PGD, eps=4 / 255, steps=3), model)
        assert isinstance(attack, BoundAttack) and attack.name == "PGD"
        x_adv = attack(x, y)
        assert_state(model, before)
        assert torch.equal(torch.get_rng_state(), rng)  # its random start used a forked RNG
        assert float((x_adv - x).abs().max()) <= 4 / 255 + 1e-6
        assert not torch.equal(x_adv, x)
        assert torch.equal(head.weight.grad, torch.ones_like(head.weight))

        # an instance, a class with settings, and under inference_mode (torchattacks alone fails)
        instance = make_attack(torchattacks.FGSM(model, eps=8 / 255), model)
        with torch.inference_mode():
            x_inf = instance(x.clone(), y.clone())
        assert torch.allclose(x_inf, fgsm(model, x, y, eps=8 / 255), atol=1e-6)
        assert_state(model, before)
        from_class = make_attack(torchattacks.FGSM, model, eps=8 / 255)
        assert torch.allclose(from_class(x, y), x_inf, atol=1e-6)

        result = robustness(model, x, y, functools.partial(torchattacks.FGSM, eps=8 / 255))
        assert result.n == 64 and result.robust_acc <= result.clean_acc
        with pytest.raises(ValueError, match="already carries"):
            make_attack(torchattacks.FGSM(model), model, eps=1 / 255)
        with pytest.raises(ValueError, match="built-in attacks only"):
            robustness(model, x, y, torchattacks.FGSM(model), mean=[0.5], std=[0.5])
        assert_state(model, before)
    finally:
        model.eval()
        head.weight.grad = None


# --------------------------------------------------------------------------------------------
# Strength on a trained model
# --------------------------------------------------------------------------------------------


def test_pgd_at_least_as_strong_as_fgsm(
    trained: nn.Module, test_batch: tuple[Tensor, Tensor]
) -> None:
    x, y = test_batch
    eps = 8 / 255
    by_fgsm = robustness(trained, x, y, make_attack("fgsm", trained, eps=eps))
    by_pgd = robustness(trained, x, y, make_attack("pgd", trained, eps=eps))
    assert by_fgsm.clean_acc == by_pgd.clean_acc > 0.85  # the model did learn
    assert by_pgd.robust_acc <= by_fgsm.robust_acc < by_fgsm.clean_acc
    assert by_pgd.adv_loss >= by_fgsm.adv_loss > by_fgsm.clean_loss
    assert by_pgd.success_rate >= by_fgsm.success_rate > 0
    # the paper's probe: FGSM at 2/255 increases the loss
    paper = robustness(trained, x, y)
    assert paper.attack.startswith("BoundAttack(fgsm, eps=0.00784314")
    assert paper.loss_increase > 0 and paper.adv_loss == pytest.approx(
        paper.clean_loss + paper.loss_increase
    )
    # chunked evaluation gives the same numbers
    chunked = robustness(trained, x, y, "fgsm", batch_size=150)
    assert chunked.clean_acc == paper.clean_acc and chunked.robust_acc == paper.robust_acc
    assert chunked.adv_loss == pytest.approx(paper.adv_loss, rel=1e-5)


# --------------------------------------------------------------------------------------------
# Model state, autograd modes, RNG
# --------------------------------------------------------------------------------------------


def test_model_state_untouched_and_restored_on_error(digits: tuple[Tensor, Tensor]) -> None:
    x, y = digits[0][:32], digits[1][:32]
    model = small_cnn(seed=1)
    model.train()
    model[1].eval()
    conv = model[0]
    assert isinstance(conv, nn.Conv2d)
    conv.weight.grad = torch.full_like(conv.weight, 3.0)
    before = state(model)
    for run in (
        lambda: fgsm(model, x, y, 0.1),
        lambda: pgd(model, x, y, 0.1, steps=2),
        lambda: robustness(model, x, y, "pgd", batch_size=20),
        lambda: make_attack("fgsm", model)(x, y),
    ):
        run()
        assert_state(model, before)
    assert torch.equal(conv.weight.grad, torch.full_like(conv.weight, 3.0))

    def broken_loss(logits: Tensor, target: Tensor) -> Tensor:
        assert not model.training  # eval mode during the attack
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        pgd(model, x, y, 0.1, loss_fn=broken_loss)
    assert_state(model, before)


def test_third_party_backward_attack_leaves_grads(digits: tuple[Tensor, Tensor]) -> None:
    """Some torchattacks attacks call .backward(): the wrapper keeps parameter grads as before."""
    x, y = digits[0][:16], digits[1][:16]
    model = small_cnn(seed=2)
    model.train()
    before = state(model)

    def backward_attack(images: Tensor, labels: Tensor) -> Tensor:
        images = images.clone().requires_grad_(True)
        nn.functional.cross_entropy(model(images), labels).backward()
        assert images.grad is not None
        return (images + 0.1 * images.grad.sign()).clamp(0, 1).detach()

    attack = make_attack(backward_attack, model)
    with torch.no_grad():
        x_adv = attack(x, y)
    assert not x_adv.requires_grad and not torch.equal(x_adv, x)
    assert_state(model, before)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_works_under_no_grad_and_inference_mode(
    trained: nn.Module, test_batch: tuple[Tensor, Tensor], mode: str
) -> None:
    x, y = test_batch[0][:64], test_batch[1][:64]
    expected_fgsm = fgsm(trained, x, y, 0.05)
    expected_pgd = pgd(trained, x, y, 0.05, steps=3, mean=[0.1], std=[0.3])
    expected_rob = robustness(trained, x, y, "fgsm")
    context = torch.no_grad() if mode == "no_grad" else torch.inference_mode()
    with context:
        xi, yi = x.clone(), y.clone()  # inference tensors in inference_mode
        got_fgsm = fgsm(trained, xi, yi, 0.05)
        got_pgd = pgd(trained, xi, yi, 0.05, steps=3, mean=torch.tensor([0.1]), std=[0.3])
        got_rob = robustness(trained, xi, yi, "fgsm")
    assert torch.equal(got_fgsm, expected_fgsm) and not got_fgsm.requires_grad
    assert torch.equal(got_pgd, expected_pgd)
    assert got_rob == expected_rob
    assert all(p.grad is None for p in trained.parameters())


def test_global_rng_untouched_and_generator_reproducible(
    trained: nn.Module, test_batch: tuple[Tensor, Tensor]
) -> None:
    x, y = test_batch[0][:32], test_batch[1][:32]
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    default_1 = pgd(trained, x, y, 0.1, steps=2)
    default_2 = pgd(trained, x, y, 0.1, steps=2)
    seeded_1 = pgd(trained, x, y, 0.1, steps=2, generator=torch.Generator().manual_seed(7))
    seeded_2 = pgd(trained, x, y, 0.1, steps=2, generator=torch.Generator().manual_seed(7))
    other = pgd(trained, x, y, 0.1, steps=2, generator=torch.Generator().manual_seed(8))
    robustness(trained, x, y, "pgd")
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(default_1, default_2)
    assert torch.equal(seeded_1, seeded_2) and not torch.equal(seeded_1, other)
    # a single step of size alpha from the random start: the start really is random
    one_step = [
        pgd(trained, x, y, 0.1, alpha=0.0, steps=1, generator=torch.Generator().manual_seed(s))
        for s in (0, 1)
    ]
    assert not torch.equal(one_step[0], one_step[1])
    assert float((one_step[0] - x).abs().max()) <= 0.1 + 1e-6


# --------------------------------------------------------------------------------------------
# Geometry: clipping, eps = 0, normalisation
# --------------------------------------------------------------------------------------------


def test_clipping_to_data_range(trained: nn.Module, test_batch: tuple[Tensor, Tensor]) -> None:
    x, y = test_batch[0][:64], test_batch[1][:64]
    assert float(x.min()) == 0.0  # MNIST/digits backgrounds sit on the boundary
    for x_adv in (fgsm(trained, x, y, 0.3), pgd(trained, x, y, 0.3, steps=3)):
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
        assert float((x_adv - x).abs().max()) <= 0.3 + 1e-6
    # [-1, 1] inputs with a model that sees them through (x + 1) / 2
    shifted = nn.Sequential(_Affine(0.5, 0.5), trained)
    x_pm = x * 2 - 1
    x_adv = fgsm(shifted, x_pm, y, 0.3, data_range=(-1.0, 1.0))
    assert float(x_adv.min()) >= -1.0 and float(x_adv.max()) <= 1.0
    assert float(x_adv.min()) == -1.0  # clipped, not shifted
    unclipped = fgsm(trained, x, y, 0.3, data_range=None)
    assert float(unclipped.min()) < 0.0 or float(unclipped.max()) > 1.0


class _Affine(nn.Module):
    scale: Tensor
    shift: Tensor

    def __init__(self, scale: float | Tensor, shift: float | Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale))
        self.register_buffer("shift", torch.as_tensor(shift))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift


class _Normalize(nn.Module):
    mean: Tensor
    std: Tensor

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).reshape(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def test_eps_zero_returns_x(trained: nn.Module, test_batch: tuple[Tensor, Tensor]) -> None:
    x, y = test_batch[0][:16], test_batch[1][:16]
    for x_adv in (fgsm(trained, x, y, 0.0), pgd(trained, x, y, 0)):
        assert torch.equal(x_adv, x) and x_adv is not x


def test_normalisation_inside_equals_mean_std(digits: tuple[Tensor, Tensor]) -> None:
    x = digits[0][:48].repeat(1, 3, 1, 1) * torch.tensor([1.0, 0.7, 0.4]).reshape(1, 3, 1, 1)
    y = digits[1][:48]
    mean, std = [0.2, 0.3, 0.1], [0.25, 0.5, 0.2]
    bare = small_cnn(in_channels=3, seed=3).eval()
    wrapped = nn.Sequential(_Normalize(mean, std), bare)
    pairs = [
        (fgsm(wrapped, x, y, 8 / 255), fgsm(bare, x, y, 8 / 255, mean=mean, std=std)),
        (
            pgd(wrapped, x, y, 8 / 255, steps=4, generator=torch.Generator().manual_seed(0)),
            pgd(
                bare,
                x,
                y,
                8 / 255,
                steps=4,
                generator=torch.Generator().manual_seed(0),
                mean=torch.tensor(mean),
                std=torch.tensor(std).reshape(3, 1, 1),
            ),
        ),
    ]
    for inside, given in pairs:
        assert float((inside - given).abs().max()) <= 1e-6
        assert float((given - x).abs().max()) == pytest.approx(8 / 255, abs=1e-6)  # pixel units
    inside_result = robustness(wrapped, x, y, "fgsm")
    given_result = robustness(bare, x, y, "fgsm", mean=mean, std=std)
    assert dataclasses.replace(inside_result, attack="") == dataclasses.replace(
        given_result, attack=""
    )
    assert "mean=[0.2, 0.3, 0.1]" in given_result.attack


def test_pixel_space_model_normalises_and_applies_forward_fn(
    digits: tuple[Tensor, Tensor],
) -> None:
    """Any attack on PixelSpaceModel equals the built-in attack given mean/std, also for a
    model returning (logits, features) read through forward_fn."""
    x = digits[0][:32].repeat(1, 3, 1, 1) * torch.tensor([1.0, 0.8, 0.6]).reshape(1, 3, 1, 1)
    y = digits[1][:32]
    mean, std = [0.2, 0.3, 0.1], [0.25, 0.5, 0.2]
    bare = small_cnn(in_channels=3, seed=5).eval()

    class WithFeatures(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = bare

        def forward(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
            return self.net(inputs), inputs.flatten(1)

    pixel = PixelSpaceModel(WithFeatures(), lambda m, z: m(z)[0], mean=mean, std=std)
    normalised = (x - torch.tensor(mean).reshape(1, 3, 1, 1)) / torch.tensor(std).reshape(
        1, 3, 1, 1
    )
    assert torch.allclose(pixel.to_pixels(normalised), x, atol=1e-6)

    def plain_fgsm(images: Tensor, labels: Tensor) -> Tensor:  # a third-party-style attack
        images = images.clone().requires_grad_(True)
        loss = nn.functional.cross_entropy(pixel(images), labels)
        (grad,) = torch.autograd.grad(loss, images)
        return (images + PAPER_EPS * grad.sign()).clamp(0, 1).detach()

    expected = fgsm(bare, x, y, PAPER_EPS, mean=mean, std=std)
    assert float((make_attack(plain_fgsm, pixel)(x, y) - expected).abs().max()) <= 1e-6
    assert float((fgsm(pixel, x, y, PAPER_EPS) - expected).abs().max()) <= 1e-6
    given = robustness(bare, x, y, "fgsm", mean=mean, std=std)
    wrapped = robustness(pixel, x, y, plain_fgsm)
    assert wrapped.clean_acc == given.clean_acc and wrapped.robust_acc == given.robust_acc
    assert wrapped.loss_increase == pytest.approx(given.loss_increase, rel=1e-4)
    assert wrapped.loss_increase > 0
    with pytest.raises(ValueError, match="forward_fn"):
        PixelSpaceModel(WithFeatures())(x)


# --------------------------------------------------------------------------------------------
# Forward context, result definitions, validation
# --------------------------------------------------------------------------------------------


def test_forward_context_entered_per_forward(
    trained: nn.Module, test_batch: tuple[Tensor, Tensor]
) -> None:
    x, y = test_batch[0][:16], test_batch[1][:16]
    entered: list[int] = []

    @contextlib.contextmanager
    def counting() -> Iterator[None]:
        entered.append(1)
        yield

    fgsm(trained, x, y, 0.1, forward_context=counting)
    assert len(entered) == 1
    pgd(trained, x, y, 0.1, steps=3, forward_context=counting)
    assert len(entered) == 4
    # Lightning's bf16 precision plugin enters autocast: the attack still returns float32
    x_adv = pgd(trained, x, y, 0.1, steps=2, forward_context=lambda: torch.autocast("cpu"))
    assert x_adv.dtype == torch.float32 and float((x_adv - x).abs().max()) <= 0.1 + 1e-6


def test_robustness_definitions() -> None:
    linear = nn.Linear(1, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        linear.bias.zero_()
    model = nn.Sequential(nn.Flatten(), linear)
    # logits (z, -z) with z = x - 0.5: class 0 wins iff x > 0.5
    x = torch.tensor([0.2, 0.503, 0.9, 0.505]).reshape(4, 1)
    result = robustness(model, x, torch.tensor([0, 0, 0, 0]), "fgsm", mean=[0.5], std=[1.0])
    assert isinstance(result, RobustnessResult)
    assert (result.n, result.n_clean_correct) == (4, 3)
    assert result.clean_acc == 0.75 and result.robust_acc == 0.25  # 0.503, 0.505 flip at 2/255
    assert result.success_rate == pytest.approx(2 / 3)
    assert result.to_dict()["success_rate"] == pytest.approx(2 / 3)
    # nothing correct when clean: success rate 0.0, not NaN
    none_right = robustness(model, x[:1], torch.tensor([0]), "fgsm", mean=[0.5], std=[1.0])
    assert none_right.n_clean_correct == 0 and none_right.success_rate == 0.0
    assert PAPER_EPS == 2 / 255


def test_bad_inputs_raise_clear_errors(digits: tuple[Tensor, Tensor]) -> None:
    x, y = digits[0][:8], digits[1][:8]
    model = small_cnn(seed=4).eval()
    one_logit = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 1), nn.Flatten(0))
    cases = [
        (lambda: fgsm(model, x, y, -0.1), "eps"),
        (lambda: fgsm(model, x, y, float("nan")), "finite"),
        (lambda: pgd(model, x, y, 0.1, steps=0), "steps"),
        (lambda: pgd(model, x, y, 0.1, steps=1.5), "steps"),  # type: ignore[arg-type]
        (lambda: pgd(model, x, y, 0.1, alpha=-1.0), "alpha"),
        (lambda: fgsm(model, x, y[:5], 0.1), "8 samples"),
        (lambda: fgsm(model, x, y.float(), 0.1), "integer class ids"),
        (lambda: fgsm(model, x, y * 0 + 10, 0.1), "class id 10"),
        (lambda: fgsm(model, x, y * 0 - 1, 0.1), ">= 0"),
        (lambda: fgsm(model, x * 255, y, 0.1), "outside data_range"),
        (lambda: fgsm(model, (x * 255).to(torch.uint8), y, 0.1), "floating"),
        (lambda: fgsm(model, x, y, 0.1, data_range=(1.0, 0.0)), "low < high"),
        (lambda: fgsm(model, x, y, 0.1, mean=[0.5]), "both"),
        (lambda: fgsm(model, x, y, 0.1, mean=[0.5, 0.5], std=[1.0, 1.0]), "1 channels"),
        (lambda: fgsm(model, x, y, 0.1, mean=[0.5], std=[0.0]), "std"),
        (lambda: fgsm(model, x[0, 0, 0], y[:28], 0.1), "batch"),
        (lambda: fgsm(model, x.numpy(), y, 0.1), "torch.Tensor"),  # type: ignore[arg-type]
        (lambda: fgsm(one_logit, x, y, 0.1), "n_classes"),
        (lambda: fgsm(nn.Flatten(0), x, y, 0.1), "one row of logits per sample"),
        (lambda: make_attack("cw", model), "Unknown attack"),
        (lambda: make_attack("fgsm", model, steps=3), "no setting"),
        (lambda: make_attack("pgd", model, steps=0), "steps"),
        (lambda: make_attack(42, model), "spec"),
        (lambda: robustness(model, x, y, "fgsm", batch_size=0), "batch_size"),
    ]
    for index, (call, message) in enumerate(cases):
        with pytest.raises(ValueError, match=message):
            call()
            pytest.fail(f"case {index} ({message!r}) did not raise")


# --------------------------------------------------------------------------------------------
# Models no attack can differentiate: one clear error from every attack
# --------------------------------------------------------------------------------------------


class _LinearProbe(nn.Module):
    """A frozen encoder run under ``no_grad`` inside ``forward``, and a trainable head: the loss
    depends on the head's weights, never on the inputs."""

    def __init__(self, frozen_by_no_grad: bool = True) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Tanh())
        self.head = nn.Linear(6, 3)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
        self.frozen_by_no_grad = frozen_by_no_grad
        if not frozen_by_no_grad:
            self.encoder.requires_grad_(False)  # the advice: freeze the weights instead

    def forward(self, x: Tensor) -> Tensor:
        if self.frozen_by_no_grad:
            with torch.no_grad():
                features = self.encoder(x)
        else:
            features = self.encoder(x)
        return self.head(features)


def _probe_batch() -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(5, 3, 2, 2, generator=generator), torch.tensor([0, 1, 2, 0, 1])


def _assert_clear(error: pytest.ExceptionInfo[Exception]) -> None:
    message = str(error.value)
    assert "does not depend on the inputs" in message and "cannot be attacked" in message
    assert "requires_grad_(False)" in message and "no_grad" in message  # what to do
    assert "allow_unused" not in message  # autograd's advice would make the attack a no-op


@pytest.mark.parametrize(
    "attack",
    [
        lambda model, x, y: fgsm(model, x, y, eps=PAPER_EPS),
        lambda model, x, y: pgd(model, x, y, eps=PAPER_EPS, steps=2),
        lambda model, x, y: robustness(model, x, y, "fgsm"),
        lambda model, x, y: make_attack("pgd", model, steps=2)(x, y),
        lambda model, x, y: check_input_gradient(model, x, y),
    ],
    ids=["fgsm", "pgd", "robustness", "make_attack", "check_input_gradient"],
)
def test_a_linear_probe_under_no_grad_gets_the_clear_error(attack) -> None:
    model = _LinearProbe()
    x, y = _probe_batch()
    with pytest.raises(NoInputGradientError) as error:
        attack(model, x, y)
    _assert_clear(error)
    assert isinstance(error.value, ValueError)  # the existing contract: bad models are ValueErrors
    assert all(parameter.grad is None for parameter in model.parameters())


def test_a_model_fully_under_no_grad_gets_the_same_error() -> None:
    class Detached(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(12, 3)

        def forward(self, x: Tensor) -> Tensor:
            return self.linear(x.flatten(1).detach()).detach()

    x, y = _probe_batch()
    with pytest.raises(NoInputGradientError) as error:
        fgsm(Detached(), x, y, eps=PAPER_EPS)
    _assert_clear(error)


def test_third_party_attacks_on_a_linear_probe_get_the_clear_error() -> None:
    torchattacks = pytest.importorskip("torchattacks", reason=TORCHATTACKS_REASON)
    model = _LinearProbe()
    x, y = _probe_batch()
    with pytest.raises(NoInputGradientError) as error:
        make_attack(torchattacks.FGSM(model, eps=PAPER_EPS), model)(x, y)
    _assert_clear(error)

    def handmade(images: Tensor, labels: Tensor) -> Tensor:
        images = images.clone().requires_grad_(True)
        loss = nn.functional.cross_entropy(model(images), labels)
        (grad,) = torch.autograd.grad(loss, images)  # autograd's raw error, mapped
        return images + PAPER_EPS * grad.sign()

    with pytest.raises(NoInputGradientError) as error:
        make_attack(handmade, model)(x, y)
    _assert_clear(error)


def test_the_advised_frozen_probe_is_attacked_exactly() -> None:
    # The advice in the message: freeze the encoder's weights, not its autograd. Then FGSM moves
    # each input by eps along the sign of the cross-entropy's input gradient, computed here in
    # float64 by hand: d CE / d h = softmax(logits) - onehot(y); back through the head, tanh and
    # the encoder's linear layer.
    model = _LinearProbe(frozen_by_no_grad=False)
    x, y = _probe_batch()
    check_input_gradient(model, x, y)  # no error
    eps = 0.05
    x_adv = fgsm(model, x, y, eps=eps, data_range=None)
    w1, b1 = model.encoder[1].weight.double(), model.encoder[1].bias.double()
    w2, b2 = model.head.weight.double(), model.head.bias.double()
    flat = x.flatten(1).double()
    pre = flat @ w1.T + b1
    logits = torch.tanh(pre) @ w2.T + b2
    d_logits = (torch.softmax(logits, dim=1) - nn.functional.one_hot(y, 3).double()) / len(x)
    d_flat = ((d_logits @ w2) * (1 - torch.tanh(pre) ** 2)) @ w1
    expected = (flat + eps * d_flat.sign()).reshape(x.shape)
    assert torch.allclose(x_adv.double(), expected, atol=1e-6)
    assert all(parameter.grad is None for parameter in model.parameters())
