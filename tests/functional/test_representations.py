"""capture_representations: one row per input, compiled models, modules called twice."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_dataprops.functional.representations import capture_representations


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
