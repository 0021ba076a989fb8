"""Findings are JSON-safe plain data, and each is drawn the way a person can read it."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from lightning_dataprops.findings import (
    ForecastFinding,
    HyperparametersFinding,
    KCurveFinding,
    ReprProfileFinding,
    SharpPairsFinding,
)
from lightning_dataprops.findings.charts import lines_chart
from lightning_dataprops.findings.render import (
    figure_to_array,
    figure_to_png,
    pair_display,
    render,
    render_sharp_pairs,
)
from lightning_dataprops.functional import label_sharpness


def _conflicting_images(channels: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(channels)
    x = torch.rand(40, channels, 10, 10, generator=g) * scale
    y = torch.arange(40) % 3
    x[7] = x[8]
    y[7], y[8] = 0, 2
    return x, y


@pytest.mark.parametrize(("channels", "scale"), [(1, 1.0), (3, 255.0)])
def test_pairs_finding_keeps_dataset_indices_inputs_and_conflicts(
    channels: int, scale: float
) -> None:
    x, y = _conflicting_images(channels, scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = label_sharpness(x, y, top_pairs=3)
    index_map = list(range(500, 540))
    finding = SharpPairsFinding.from_label_sharpness(result, x, index_map=index_map)
    first = finding.pairs[0]
    assert first.conflict and {first.index_i, first.index_j} == {507, 508}
    assert torch.equal(first.input_i, x[7]) and torch.equal(first.input_j, x[8])
    assert finding.n_conflicts == 1 and finding.conflicts == (first,)
    # The next pair is the closest differently-labelled pair, by brute force.
    d = torch.cdist(x.flatten(1).double(), x.flatten(1).double())
    d[y[:, None] == y[None, :]] = math.inf
    d[7, 8] = d[8, 7] = math.inf
    assert finding.pairs[1].distance == pytest.approx(float(d.min()), rel=1e-5)
    document = json.loads(json.dumps(finding.to_dict(), allow_nan=False))
    assert document["K_F"] == "inf" and document["pairs"][0]["sharpness"] == "inf"
    figure = render(finding)
    assert figure is not None
    height, width, _ = figure_to_array(figure).shape
    assert height > width  # one row per pair
    assert figure_to_png(figure).startswith(b"\x89PNG")


def test_pair_display_scales_each_pair_jointly() -> None:
    dark = torch.full((3, 4, 4), 10.0)
    bright = torch.full((3, 4, 4), 200.0)
    bright[0, 0, 0] = 250.0
    left, right = pair_display(dark, bright)
    assert left.shape == (4, 4, 3) and float(left.max()) == 0.0
    assert float(right.max()) == 1.0
    assert float(right[1, 1, 0]) == pytest.approx((200 - 10) / (250 - 10))
    gray_left, _ = pair_display(torch.zeros(5, 5), torch.ones(5, 5))
    assert gray_left.shape == (5, 5, 3)


def test_feature_vectors_have_no_pair_picture() -> None:
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [3.0, 3.0], [3.0, 4.0]])
    y = torch.tensor([0, 1, 0, 1])
    finding = SharpPairsFinding.from_label_sharpness(label_sharpness(x, y), x)
    assert pair_display(x[0], x[1]) is None
    assert render_sharp_pairs(finding) is None
    assert finding.pairs[0].distance == pytest.approx(1.0)


def test_forecast_curve_follows_the_scaling_law() -> None:
    calibrated = ForecastFinding(n_train=1000, d_data=10.0, K_F=0.5, constant=0.8)
    curve = calibrated.curve([1000, 4000])
    assert curve.kind == "predicted_loss"
    assert curve.y == pytest.approx([0.8 * 0.5 * n ** (-1 / 10) for n in (1000, 4000)])
    # An infinite K_F (a label conflict) predicts no loss: the parameter-free ratio instead.
    conflict = ForecastFinding(n_train=1000, d_data=10.0, K_F=math.inf, constant=0.8)
    ratio = conflict.curve([500, 1000, 2000])
    assert ratio.kind == "loss_ratio"
    assert ratio.y == pytest.approx([2 ** (1 / 10), 1.0, 2 ** (-1 / 10)])
    observed = ForecastFinding(n_train=1000, d_data=10.0, observed=((1000, 0.4), (500, 0.5)))
    assert observed.observed_on_curve_scale() == ((1000, 1.0), (500, pytest.approx(1.25)))
    assert json.dumps(conflict.to_dict(), allow_nan=False)
    assert render(observed) is not None


def test_profile_k_curve_and_hyperparameters() -> None:
    rows = [
        {"epoch": e, "layer": name, "depth": d, "d_repr": 10.0 - d + e}
        for e in range(3)
        for d, name in enumerate(["head", "encoder"][::-1])
    ]
    profile = ReprProfileFinding.from_rows(rows)
    assert profile.layers == ("encoder", "head") and profile.epochs == (0, 1, 2)
    assert render(profile) is not None
    with pytest.raises(ValueError, match="lacks"):
        ReprProfileFinding.from_rows([{"epoch": 0, "layer": "a"}])
    with pytest.raises(ValueError, match="same length"):
        KCurveFinding(ks=(5, 10), values=(3.0,))
    assert render(KCurveFinding(ks=(5, 10), values=(3.0, float("nan")))) is not None
    params = HyperparametersFinding.from_mapping(
        {"seed": 0, "forward_fn": np.mean, "probe": {"eps": 0.5, "steps": None}}, prefix="dp"
    ).params
    assert params == {
        "dp/seed": 0,
        "dp/forward_fn": "mean",
        "dp/probe/eps": 0.5,
        "dp/probe/steps": None,
    }


@pytest.mark.parametrize("epochs", [[0], [4], [0, 1], list(range(12))])
def test_epoch_axes_show_whole_epochs_only(epochs: list[int]) -> None:
    """A run report's chart against epoch labels whole epochs, also for a single epoch (a
    d_repr measured once in a 2-epoch run was drawn at -0.045 ... 0.045)."""
    figure = lines_chart({"features.5": (epochs, [3.7] * len(epochs))}, ylabel="d_repr (MLE)")
    assert figure is not None
    ax = figure.axes[0]
    figure.canvas.draw()
    low, high = ax.get_xlim()
    shown = [float(t) for t in ax.get_xticks() if low <= t <= high]
    assert shown and all(t == round(t) for t in shown), shown
    assert set(epochs) <= set(shown) or len(epochs) > 5
