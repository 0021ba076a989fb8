"""Findings as files, for ``CSVLogger`` and any logger without a native picture call.

In ``<log_dir>/dataprops/`` (the logger's ``log_dir``; without one, the trainer's
``default_root_dir``):

* ``sharpest_pairs.png``, ``d_repr_profile.png``, ``forecast.png``: the figures, replaced when the
  finding changes;
* ``<key>.md``: warnings, the sharpest pairs as a table, the configuration;
* ``findings.json``: every finding's data by key, with the step it was last written at.

The configuration also goes through the logger's own ``log_hyperparams`` (a ``CSVLogger`` writes
it to ``hparams.yaml``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_dataprops.findings import Finding, HyperparametersFinding
from lightning_dataprops.findings.render import figure_to_png
from lightning_dataprops.integrations._common import (
    FINDINGS_JSON,
    FOLDER,
    is_artifact,
    markdown,
    nested,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["findings_folder", "log_finding", "write_finding_files"]


def findings_folder(logger: Any, default_root_dir: str | os.PathLike[str]) -> Path:
    """``<log_dir>/dataprops`` of the logger, else ``<default_root_dir>/dataprops``."""
    log_dir = getattr(logger, "log_dir", None)
    return Path(log_dir if log_dir else default_root_dir) / FOLDER


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a reader never sees half a file)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def write_finding_files(
    folder: str | os.PathLike[str], finding: Finding, figure: Figure | None, *, step: int
) -> list[Path]:
    """Write the finding's PNG (if drawn) and markdown (if any) in ``folder`` and merge its data
    into ``folder/findings.json``; returns the files written.

    Example:
        >>> import json, tempfile
        >>> from lightning_dataprops.findings import TextFinding
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     note = TextFinding("Hi", "there", key="hello")
        ...     _ = write_finding_files(folder, note, None, step=3)
        ...     json.loads((Path(folder) / "findings.json").read_text())["hello"]["step"]
        3
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if figure is not None:
        png = folder / f"{finding.key}.png"
        _replace(png, figure_to_png(figure))
        written.append(png)
    text = markdown(finding)
    if text is not None:
        page = folder / f"{finding.key}.md"
        _replace(page, text.encode())
        written.append(page)
    summary = folder / FINDINGS_JSON
    try:
        document = json.loads(summary.read_text()) if summary.exists() else {}
    except json.JSONDecodeError:
        document = {}
    document[finding.key] = {"step": step, **finding.to_dict()}
    _replace(summary, (json.dumps(document, indent=2, allow_nan=False) + "\n").encode())
    written.append(summary)
    return written


def log_finding(
    logger: Any,
    finding: Finding,
    figure: Figure | None,
    *,
    step: int,
    default_root_dir: str | os.PathLike[str] | None = None,
    **context: Any,
) -> list[str]:
    """Write one finding as files beside the logger's own; the configuration also through the
    logger's ``log_hyperparams``. Returns what was written.

    Args:
        logger: any logger (a ``CSVLogger``, or one no other writer serves).
        finding: any finding.
        figure: its rendered figure, or ``None``.
        step: the trainer's ``global_step`` (recorded in ``findings.json``).
        default_root_dir: the folder for a logger without a ``log_dir`` (default: the working
            directory).
        context: what :func:`~.publish.publish` gives every writer (unused here).
    """
    del context
    if not is_artifact(finding):
        return []
    root = os.getcwd() if default_root_dir is None else default_root_dir
    paths = write_finding_files(findings_folder(logger, root), finding, figure, step=step)
    written = [str(path) for path in paths]
    if isinstance(finding, HyperparametersFinding):
        logger.log_hyperparams(nested(dict(finding.params)))
        written.append("hparams")
    return written
