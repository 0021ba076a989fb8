"""The run report's summary card leads with the sharp-label answer; a caveat raised beside it
(the estimators disagreeing) is named after it, not put in its place."""

from __future__ import annotations

import re
from pathlib import Path

from lightning_dataprops import names
from lightning_dataprops.findings.run_record import RunRecord
from lightning_dataprops.findings.run_report import run_verdict, write_run_report

DISAGREE = (
    "## Intrinsic-dimension estimators disagree\n\n"
    "The intrinsic-dimension estimators disagree: from 15.9 (gride) to 22.1 (twonn)."
)
SHARP = "## Sharp labels in the training set\n\nThe labels are sharper than natural images."


def _record(ratio: float, **texts: str) -> RunRecord:
    record = RunRecord("CSV", "logs")
    record.add_scalar(names.K_F_RATIO, ratio, step=0, epoch=0)
    record.add_scalar(names.K_F_MEDIAN, 0.0836, step=0, epoch=0)
    record.texts.update(texts)
    return record


def test_a_caveat_does_not_replace_the_label_verdict(tmp_path: Path) -> None:
    # A CIFAR-10 fit: labels 0.77x the sharpest natural sample, estimators 39% apart.
    verdict = run_verdict(_record(0.77, estimators_disagree=DISAGREE))
    assert verdict.headline.startswith("Labels no sharper than natural images (0.77x")
    assert verdict.level != "ok"  # a warning was raised: not the all-clear green
    assert "1 warning raised: Intrinsic-dimension estimators disagree" in verdict.detail
    text = write_run_report(tmp_path / "r.html", _record(0.77, estimators_disagree=DISAGREE))
    summary = text.read_text(encoding="utf-8").split("Fit start")[0]
    assert re.search(r"Labels no sharper than natural images", summary)


def test_the_sharp_label_warning_still_leads_and_sharp_ratio_without_it_warns() -> None:
    both = run_verdict(_record(1.9, estimators_disagree=DISAGREE, sharp_labels=SHARP))
    assert both.level == "warn"
    assert both.headline == "Sharp labels in the training set (and 1 more)"
    alone = run_verdict(_record(1.9, estimators_disagree=DISAGREE))
    assert alone.level == "warn" and alone.headline.startswith("Sharp labels: 1.90x")
    assert "Intrinsic-dimension estimators disagree" in alone.detail


def test_no_warnings_is_the_all_clear() -> None:
    verdict = run_verdict(_record(0.5))
    assert verdict.level == "ok" and verdict.detail == "No warnings raised."
