"""The seed paper's three functions, and the model-state guarantees of the representation pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, Subset, TensorDataset

from lightning_dataprops import (
    compute_intrinsic_datadim,
    compute_intrinsic_reprdim,
    compute_labelsharpness,
    intrinsic_dimension,
    label_sharpness,
)
from lightning_dataprops.functional.representations import capture_representations


class TinyResNetLike(nn.Module):
    """Small CNN with named stages like torchvision's ResNet (``layer4``, ``fc``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer4 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        return self.fc(self.pool(self.layer4(x)).flatten(1))


class DictDataset(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.x[index], "label": int(self.y[index])}


@pytest.fixture()
def binary_mnist(mnist):
    x, y = mnist
    rows = torch.cat([(y == 3).nonzero()[:200, 0], (y == 8).nonzero()[:200, 0]])
    return TensorDataset(x[rows], y[rows])


def test_seed_paper_snippet_runs_on_cpu(binary_mnist) -> None:
    # The seed paper's README, unchanged apart from the dataset and without .to("cuda").
    dataset = binary_mnist
    classes = [3, 8]
    dataset = Subset(dataset, [i for i, s in enumerate(dataset) if s[1] in classes])
    KF = compute_labelsharpness(dataset)
    datadim = compute_intrinsic_datadim(dataset)
    model = TinyResNetLike()
    layer = model.layer4
    reprdim = compute_intrinsic_reprdim(dataset, model, layer)
    assert isinstance(KF, float) and isinstance(datadim, float) and isinstance(reprdim, float)
    print(f"label sharpness = {round(KF, 3)}")
    print(f"data intrinsic dim = {int(datadim)}")
    print(f"representation intrinsic dim = {int(reprdim)}")
    x, y = binary_mnist.tensors
    assert label_sharpness(x, y).value == KF
    assert datadim == intrinsic_dimension(x, "mle").value
    assert 1.0 < reprdim < datadim * 3


def test_dict_items_and_stratified_subsample(binary_mnist) -> None:
    x, y = binary_mnist.tensors
    dataset = DictDataset(x, y)
    assert compute_labelsharpness(dataset) == label_sharpness(x, y).value
    small = compute_intrinsic_datadim(dataset, max_samples=200, seed=1)
    again = compute_intrinsic_datadim(dataset, M=200, seed=1)
    assert small == again
    with pytest.raises(ValueError, match="not both"):
        compute_intrinsic_datadim(dataset, max_samples=100, M=200)


def test_representation_pass_leaves_the_model_untouched(binary_mnist) -> None:
    torch.manual_seed(0)
    model = TinyResNetLike().train()
    model.bn1.running_mean.fill_(0.5)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    value = compute_intrinsic_reprdim(binary_mnist, model, "layer4", estimator="twonn")
    assert value > 0
    assert model.training and model.bn1.training
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[key]), key
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())
    assert torch.equal(torch.get_rng_state(), rng)


def test_hooks_removed_and_mode_restored_on_error() -> None:
    model = TinyResNetLike().train()

    def broken_forward(module: nn.Module, batch: torch.Tensor) -> None:
        module(batch)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        capture_representations(model, torch.randn(4, 1, 8, 8), ["layer4"], forward=broken_forward)
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())


def test_layer_names_patterns_and_pooling() -> None:
    model = TinyResNetLike()
    x = torch.randn(6, 1, 8, 8)
    features = capture_representations(model, x, ["layer4.*", "conv1"], pool="avg")
    assert set(features) == {"layer4.0", "layer4.1", "conv1"}
    assert features["conv1"].shape == (6, 8)
    flat = capture_representations(model, x, [model.layer4])["layer4"]
    assert flat.shape == (6, 16 * 4 * 4)
    with pytest.raises(ValueError, match=r"no module named 'layer5'.*layer4"):
        capture_representations(model, x, ["layer5"])
    with pytest.raises(ValueError, match="not a submodule"):
        capture_representations(model, x, [nn.Linear(2, 2)])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_representations_on_cuda(binary_mnist) -> None:
    model = TinyResNetLike().cuda()
    value = compute_intrinsic_reprdim(binary_mnist, model, "layer4")
    cpu_value = compute_intrinsic_reprdim(binary_mnist, model.cpu(), "layer4")
    assert value == pytest.approx(cpu_value, rel=1e-3)


def test_reprdim_of_a_batchnorm_rewritten_in_place_equals_the_oracle(binary_mnist) -> None:
    from tests.residual_block import residual_features

    torch.manual_seed(0)
    model = nn.Sequential(residual_features(), nn.Linear(128, 2))
    bn2 = model[0][3].bn2
    bn2.running_mean.uniform_(-0.5, 0.5)
    x = binary_mnist.tensors[0][:300]
    kept: list[torch.Tensor] = []
    handle = bn2.register_forward_hook(lambda _m, _a, out: kept.append(out.clone()))
    with torch.no_grad():
        model.eval()(x)  # oracle: bn2's output cloned before `out += identity`
    handle.remove()
    expected = intrinsic_dimension(kept[0].flatten(1), "mle", k=20).value
    value = compute_intrinsic_reprdim(x, model, "0.3.bn2", batch_size=64)
    assert value == pytest.approx(expected, rel=1e-6)
    after_sum = intrinsic_dimension(torch.relu(kept[0] + model[0][:3](x)).flatten(1)).value
    assert after_sum != pytest.approx(expected, rel=1e-3), "the in-place writes change d_repr"
