"""``dataprops measure`` reports every estimator and their spread (text and --json)."""

from __future__ import annotations

import json

import pytest

from lightning_dataprops.cli import main


def test_measure_reports_the_estimators_and_their_spread(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["measure", "--max-samples", "400", "--no-progress", "--estimators", "gride", "abid"]
    assert main([*argv, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    estimates = document["estimates"]
    assert set(estimates) == {"mle", "twonn", "gride", "abid"}
    spread = document["spread"]
    values = [estimates[name]["value"] for name in estimates]
    assert spread["low"] == pytest.approx(min(values)) and spread["high"] == pytest.approx(
        max(values)
    )
    assert document["estimators_disagree"] == spread["message"]
    assert main(argv) == 0
    text = " ".join(capsys.readouterr().out.split())  # paragraphs are wrapped for a terminal
    assert "Intrinsic dimension by estimator" in text
    assert ("DISAGREE" in text) == spread["disagree"]
    if spread["disagree"]:
        assert spread["message"] in text
