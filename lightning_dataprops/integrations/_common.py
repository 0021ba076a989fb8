"""What every logger writer shares: names of the artifacts, the findings' text, nesting."""

from __future__ import annotations

from typing import Any

from lightning_dataprops.findings import Finding

FOLDER = "dataprops"
"""Folder (MLflow artifacts, files) and tag prefix (TensorBoard) of every finding."""
FINDINGS_JSON = "findings.json"
"""File holding every finding's JSON, by key."""


def tag(finding: Finding) -> str:
    """``dataprops/<key>``: the TensorBoard tag and the artifact path without suffix."""
    return f"{FOLDER}/{finding.key}"


def nested(params: dict[str, Any]) -> dict[str, Any]:
    """``{"a/b": 1}`` -> ``{"a": {"b": 1}}`` (loggers flatten it back with their separator)."""
    tree: dict[str, Any] = {}
    for name, value in params.items():
        *parents, leaf = name.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def markdown(finding: Finding) -> str | None:
    """The finding's markdown text (its ``to_markdown()``), or ``None`` when it has none."""
    to_markdown = getattr(finding, "to_markdown", None)
    return None if to_markdown is None else to_markdown()


def is_artifact(finding: Finding) -> bool:
    """Whether artifact writers (files, TensorBoard, MLflow) write it: every finding but those
    that say otherwise (:class:`~lightning_dataprops.findings.RunSummaryFinding`, whose values
    are already metrics)."""
    return bool(getattr(finding, "artifact", True))
