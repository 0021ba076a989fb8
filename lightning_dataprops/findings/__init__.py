"""Logger-neutral descriptions of what the product finds, drawn once and handed to every logger.

A finding is plain data: no logger, no figure. :mod:`lightning_dataprops.render` draws it with
matplotlib and :func:`lightning_dataprops.integrations.publish.publish` hands it to each attached
logger through its native call. Every finding has a ``key`` (its file and tag name, e.g.
``dataprops/sharpest_pairs.png``), a ``title`` and a JSON-safe ``to_dict()`` (``inf`` and ``nan``
spelled as strings; input tensors left out).

Findings:

* :class:`SharpPairsFinding`: the sharpest differently-labelled pairs and the label conflicts
  (identical inputs, different labels), with dataset indices, labels, distances and both inputs;
* :class:`ReprProfileFinding`: ``d_repr`` per layer and epoch;
* :class:`ForecastFinding`: the data-scaling forecast, predicted loss against N;
* :class:`KCurveFinding`: the MLE estimate of ``d_data`` against the neighbour count k;
* :class:`TextFinding`: a titled markdown text (a warning and its explanation);
* :class:`HyperparametersFinding`: the callbacks' configuration as flat plain values.

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

from lightning_dataprops.findings._jsonable import to_jsonable
from lightning_dataprops.findings.curves import (
    ForecastCurve,
    ForecastFinding,
    KCurveFinding,
    ReprProfileFinding,
    ReprProfileRow,
)
from lightning_dataprops.findings.pairs import PairExample, SharpPairsFinding
from lightning_dataprops.findings.text import HyperparametersFinding, TextFinding

__all__ = [
    "Finding",
    "ForecastCurve",
    "ForecastFinding",
    "HyperparametersFinding",
    "KCurveFinding",
    "PairExample",
    "ReprProfileFinding",
    "ReprProfileRow",
    "SharpPairsFinding",
    "TextFinding",
    "fingerprint",
    "to_jsonable",
]

Finding = (
    SharpPairsFinding
    | ReprProfileFinding
    | ForecastFinding
    | KCurveFinding
    | TextFinding
    | HyperparametersFinding
)
"""Any finding."""


def fingerprint(finding: Finding) -> str:
    """A content hash of a finding (its JSON and, for pairs, the input bytes)."""
    digest = hashlib.sha256(json.dumps(finding.to_dict(), sort_keys=True, allow_nan=False).encode())
    if isinstance(finding, SharpPairsFinding):
        for pair in finding.pairs:
            for tensor in (pair.input_i, pair.input_j):
                if tensor is not None:
                    digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()
