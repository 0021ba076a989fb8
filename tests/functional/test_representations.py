"""capture_representations: one row per input, compiled models, modules called twice."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_dataprops.functional.representations import capture_representations
from tests.hook_oracle import cloned


def test_a_compiled_model_that_already_ran_gives_every_row() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    x = torch.randn(600, 10)
    eager = capture_representations(model, x, ["1"], batch_size=256)["1"]
    compiled = torch.compile(model, backend="aot_eager")
    compiled(x[:256])  # compiled before the hooks exist: they would be ignored
    captured = capture_representations(compiled, x, ["_orig_mod.1"], batch_size=256)["1"]
    assert captured.shape == (600, 32)
    assert torch.equal(captured, eager)
    with torch.no_grad():
        assert torch.equal(captured, torch.relu(model[0](x)))


def test_a_shared_module_is_refused_by_name_or_captured_at_the_chosen_call() -> None:
    torch.manual_seed(0)
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(6, 12), relu, nn.Linear(12, 5), relu)
    x = torch.randn(40, 6)
    with pytest.raises(ValueError, match=r"'1' ran 2 times.*layer_call"):
        capture_representations(model, x, ["1"])
    with torch.no_grad():
        first = torch.relu(model[0](x))
        second = torch.relu(model[2](first))
    assert torch.equal(capture_representations(model, x, ["1"], layer_call=0)["1"], first)
    assert torch.equal(capture_representations(model, x, ["1"], layer_call=-1)["1"], second)
    with pytest.raises(ValueError, match="layer_call=2 but the layer '1' ran 2 time"):
        capture_representations(model, x, ["1"], layer_call=2)


def test_a_layer_that_changes_the_batch_dimension_is_refused() -> None:
    class Transposing(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.T

    model = nn.Sequential(nn.Linear(4, 7), Transposing())
    with pytest.raises(ValueError, match="returned 7 rows for a batch of 10 inputs"):
        capture_representations(model, torch.randn(10, 4), ["1"])
    with pytest.raises(ValueError, match="inputs is empty"):
        capture_representations(model, torch.randn(0, 4), ["0"])


def test_layer_discovery_leaves_no_hook_behind_and_the_model_pickles() -> None:
    import io

    from lightning_dataprops.functional.representations import call_counts

    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    before = {name: len(m._forward_hooks) for name, m in net.named_modules()}
    assert call_counts(net, torch.randn(3, 4), ["0", "1", "2"]) == {"0": 1, "1": 1, "2": 1}
    assert {name: len(m._forward_hooks) for name, m in net.named_modules()} == before
    torch.save(net, io.BytesIO())  # a leftover lambda hook would make this fail


def test_a_conv_followed_by_an_inplace_relu_is_captured_as_it_returned() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 3)
    model = nn.Sequential(conv, nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(144, 2))
    x = torch.randn(50, 1, 8, 8)
    with torch.no_grad():
        alone = conv(x)  # the layer run on its own
    captured = capture_representations(model, x, ["0"], batch_size=16)["0"]
    assert torch.equal(captured, alone.flatten(1))
    assert torch.equal(captured, cloned(model, conv, x))
    assert 0.3 < float((captured < 0).float().mean()) < 0.7, "the ReLU must not reach it"
    for pool, reduce in (("avg", alone.mean(dim=(2, 3))), ("max", alone.amax(dim=(2, 3)))):
        pooled = capture_representations(model, x, ["0"], pool=pool)["0"]  # type: ignore[arg-type]
        assert torch.allclose(pooled, reduce, rtol=0, atol=1e-6)
    # What the inplace ReLU reads is the same tensor, captured before it rewrites it.
    read = capture_representations(model, x, ["1"], read="input")["1"]
    assert torch.equal(read, alone.flatten(1))


def test_a_residual_block_captures_its_batchnorms_before_the_inplace_writes() -> None:
    from tests.residual_block import residual_features

    torch.manual_seed(0)
    model = nn.Sequential(residual_features(), nn.Linear(128, 2))
    for bn in (model[0][1], model[0][3].bn1, model[0][3].bn2):
        bn.running_mean.uniform_(-0.5, 0.5)  # outputs of both signs, as in a trained network
    x = torch.randn(64, 1, 12, 12)
    layers = ["0.1", "0.3.bn1", "0.3.bn2"]
    captured = capture_representations(model, x, layers, batch_size=20)
    for name in layers:
        oracle = cloned(model, model.get_submodule(name), x)
        assert torch.equal(captured[name], oracle), name
        assert float((oracle < 0).float().mean()) > 0.2, name
    # The shared inplace ReLU of the block at its second call: what the block returns.
    second = capture_representations(model, x, ["0.3.relu"], layer_call=1)
    assert torch.equal(second["0.3.relu"], cloned(model, model[0][3], x))


def test_compiled_submodules_are_named_as_in_the_uncompiled_model() -> None:
    from lightning_dataprops.functional.representations import resolve_layers, trace_forward

    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8))
    model = nn.ModuleDict({"net": torch.compile(plain, backend="aot_eager")})
    wrapped = nn.Sequential(model["net"], nn.Linear(8, 2))  # net as module "0"
    x = torch.randn(30, 6)
    expected = [("0.1", plain[1]), ("0.2", plain[2])]
    assert resolve_layers(wrapped, ["0.1", "0._orig_mod.2"]) == expected
    assert resolve_layers(wrapped, ["0.*"]) == [("0.0", plain[0]), *expected]
    assert resolve_layers(wrapped, [plain[1]]) == [("0.1", plain[1])]
    trace = trace_forward(wrapped, x[:2])
    assert trace.execution_order() == ["0.0", "0.1", "0.2", "1"]
    assert trace.counts(["0"]) == {"0": 1}, "the compiled wrapper is not a second call"
    captured = capture_representations(wrapped, x, ["0._orig_mod.1", "0.2"])
    assert list(captured) == ["0.1", "0.2"]
    with torch.no_grad():
        assert torch.equal(captured["0.2"], plain(x))
