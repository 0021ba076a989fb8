"""What every logger writer shares: names of the artifacts and the findings as markdown."""

from __future__ import annotations

from typing import Any

from lightning_dataprops.findings import (
    Finding,
    HyperparametersFinding,
    SharpPairsFinding,
    TextFinding,
)

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


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|")


def markdown(finding: Finding) -> str | None:
    """A markdown text of the findings people read as text: texts, pairs, hyperparameters."""
    if isinstance(finding, TextFinding):
        return finding.markdown
    if isinstance(finding, HyperparametersFinding):
        rows = [f"| {_cell(name)} | {_cell(value)} |" for name, value in finding.params.items()]
        return "\n".join([f"## {finding.title}", "", "| name | value |", "|---|---|", *rows])
    if isinstance(finding, SharpPairsFinding):
        head = f"## {finding.title}\n\nK_F = {finding.K_F}, n = {finding.n}"
        if finding.n_conflicts:
            head += f", **{finding.n_conflicts} label conflict(s)** (identical inputs)"
        rows = [
            f"| {p.index_i} | {p.index_j} | {_cell(p.label_i)} | {_cell(p.label_j)} "
            f"| {p.distance:.6g} | {p.sharpness:.6g} | {'yes' if p.conflict else ''} |"
            for p in finding.pairs
        ]
        table = [
            "| index i | index j | label i | label j | distance | sharpness | conflict |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
        return "\n".join([head, "", *table])
    return None
