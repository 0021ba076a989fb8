"""Presentation: logger-neutral findings, their pictures and texts, and the dataset reports.

A finding is plain data: no logger. Each one knows how to present itself: ``figure()`` draws it
with matplotlib (``None`` without a picture or without matplotlib), ``to_markdown()`` gives its
text (``None`` without one) and ``to_dict()`` its JSON-safe data (``inf`` and ``nan`` spelled as
strings; input tensors left out). Every finding has a ``key`` (its file and tag name, e.g.
``dataprops/sharpest_pairs.png``) and a ``title``.
:func:`lightning_dataprops.integrations.publish.publish` hands a finding to each attached logger
through that logger's writer (W&B, TensorBoard, MLflow, files; ``docs/loggers.md``).

Layout of this package:

* :mod:`.pairs`, :mod:`.curves`, :mod:`.text`, :mod:`.summary`: the findings, one concept a file;
* :mod:`.format`: the one number formatter and the one label formatter every module uses;
* :mod:`.render`: the matplotlib drawings (Agg canvas, no pyplot) and figure-to-PNG/array;
* :mod:`.text_report`: the plain-text report of dataset properties (``dataprops measure``);
* :mod:`.html_report`: the self-contained HTML report (``dataprops measure --report``).

A new finding is a file of its own here (a frozen dataclass with ``key``, ``title``,
``to_dict()``, ``to_markdown()`` and ``figure()``, see :class:`Finding`) plus one line importing
it below. Every writer then handles it: files, TensorBoard and MLflow write its picture, text and
JSON; a writer that has a native panel for it (W&B's tables and plots) checks its type.

Findings:

* :class:`SharpPairsFinding`: the sharpest differently-labelled pairs and the label conflicts
  (identical inputs, different labels), with dataset indices, labels, distances and both inputs:
  the one shape of the pairs every logger and report shows;
* :class:`ReprProfileFinding`: ``d_repr`` per layer and epoch;
* :class:`ForecastFinding`: the data-scaling forecast, predicted loss against N (its
  :meth:`~ForecastFinding.curve` is the one forecast curve, drawn and tabulated);
* :class:`KCurveFinding`: the MLE estimate of ``d_data`` against the neighbour count k;
* :class:`TextFinding`: a titled markdown text; ``level="warning"`` makes it a W&B alert;
* :class:`HyperparametersFinding`: the callbacks' configuration as flat plain values;
* :class:`RunSummaryFinding`: a run's headline values for its summary (W&B summary and config).

Example:
    >>> profile = ReprProfileFinding.from_rows(
    ...     [{"epoch": 0, "layer": "fc1", "depth": 0, "d_repr": 9.5},
    ...      {"epoch": 0, "layer": "fc2", "depth": 1, "d_repr": 4.0}])
    >>> profile.layers, profile.epochs
    (('fc1', 'fc2'), (0,))
    >>> TextFinding("Sharp labels", "K_F = **inf**").to_dict()["key"]
    'text'
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from lightning_dataprops.findings._jsonable import to_jsonable
from lightning_dataprops.findings.curves import (
    ForecastCurve,
    ForecastFinding,
    KCurveFinding,
    ReprProfileFinding,
    ReprProfileRow,
)
from lightning_dataprops.findings.pairs import PairExample, SharpPairsFinding
from lightning_dataprops.findings.summary import RunSummaryFinding
from lightning_dataprops.findings.text import HyperparametersFinding, TextFinding

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "Finding",
    "ForecastCurve",
    "ForecastFinding",
    "HyperparametersFinding",
    "KCurveFinding",
    "PairExample",
    "ReprProfileFinding",
    "ReprProfileRow",
    "RunSummaryFinding",
    "SharpPairsFinding",
    "TextFinding",
    "fingerprint",
    "to_jsonable",
]


@runtime_checkable
class Finding(Protocol):
    """What every finding offers: a name, a title, its data, its text and its picture."""

    @property
    def key(self) -> str:
        """File and tag name."""
        ...

    @property
    def title(self) -> str:
        """A heading for people."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        ...

    def to_markdown(self) -> str | None:
        """The finding as markdown text, or ``None`` when it is not read as text."""
        ...

    def figure(self) -> Figure | None:
        """The finding drawn, or ``None`` (no picture, or no matplotlib)."""
        ...


def fingerprint(finding: Finding) -> str:
    """A content hash of a finding (its JSON and, for pairs, the input bytes)."""
    digest = hashlib.sha256(json.dumps(finding.to_dict(), sort_keys=True, allow_nan=False).encode())
    for pair in getattr(finding, "pairs", ()):  # findings holding inputs: their bytes too
        for tensor in (getattr(pair, "input_i", None), getattr(pair, "input_j", None)):
            if tensor is not None:
                digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()
