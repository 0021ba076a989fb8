"""Calibration files: the runs CSV and the fitted constant ``C`` of the scaling law, on disk.

The arithmetic (:func:`~lightning_dataprops.functional.fit_constant`, the
:class:`~lightning_dataprops.functional.Calibration` record) lives in the functional layer and
does no file I/O; this edge module reads and writes it:

* a runs CSV with at least the columns ``n_train, d_data, label_sharpness, test_loss``
  (:func:`append_run_csv` adds one run, :func:`read_runs_csv` reads them back for the fit);
* a calibration JSON (:func:`save_calibration`, :func:`load_calibration`; ``dataprops calibrate
  --out`` writes one);
* the constant fitted by the project's reproduction experiment, shipped as package data
  (:func:`reproduction_calibration`), and :func:`resolve_constant`, which turns what a user
  passes as a scaling constant (a number, a file, ``"reproduction"``) into a value.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from lightning_dataprops.functional import fit_constant
    >>> folder = Path(tempfile.mkdtemp())
    >>> for n, loss in [(500, 0.2), (2000, 0.17)]:
    ...     append_run_csv(
    ...         folder / "runs.csv",
    ...         {"n_train": n, "d_data": 10, "label_sharpness": 0.3, "test_loss": loss},
    ...     )
    >>> calibration = fit_constant(read_runs_csv(folder / "runs.csv"), source="runs.csv")
    >>> path = save_calibration(calibration, folder / "calibration.json")
    >>> round(load_calibration(path).constant, 2)
    1.23
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

from lightning_dataprops.functional.scaling_law import CALIBRATION_COLUMNS, Calibration

__all__ = [
    "REPRODUCTION",
    "append_run_csv",
    "load_calibration",
    "read_runs_csv",
    "reproduction_calibration",
    "resolve_constant",
    "save_calibration",
]

REPRODUCTION = "reproduction"
"""The name that :func:`resolve_constant` maps to :func:`reproduction_calibration`."""

_REPRODUCTION_FILE = "reproduction_calibration.json"
_REQUIRED_KEYS = ("constant", "n_runs", "rmse_log", "source")

ConstantSpec = float | str | os.PathLike[str] | Calibration | None


def save_calibration(calibration: Calibration, path: str | os.PathLike[str]) -> Path:
    """Write ``calibration`` as JSON to ``path`` and return the path.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from lightning_dataprops.functional import Calibration
        >>> target = Path(tempfile.mkdtemp()) / "c.json"
        >>> save_calibration(Calibration(0.9, 12, 0.3, "runs.csv"), target).exists()
        True
    """
    target = Path(path)
    target.write_text(json.dumps(asdict(calibration), indent=2) + "\n")
    return target


def _from_json(text: str, where: str) -> Calibration:
    try:
        data = json.loads(text)
        return Calibration(
            **{key: data[key] for key in _REQUIRED_KEYS}, regime=data.get("regime", "")
        )
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{where} is not a calibration file (expected JSON with {', '.join(_REQUIRED_KEYS)}): "
            f"{error}"
        ) from None


def load_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read a calibration written by :func:`save_calibration` or ``dataprops calibrate --out``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a calibration JSON (says which keys it needs).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> bad = Path(tempfile.mkdtemp()) / "bad.json"
        >>> _ = bad.write_text('{"constant": 1.0}')
        >>> load_calibration(bad)
        Traceback (most recent call last):
        ...
        ValueError: ... is not a calibration file (expected JSON with constant, n_runs, ...
    """
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"calibration file {path} does not exist") from None
    return _from_json(text, str(path))


def reproduction_calibration() -> Calibration:
    """``C`` fitted by the project's reproduction experiment (``examples/reproduce_paper``).

    It holds only in that experiment's regime (small CNNs, 28x28 grayscale inputs in ``[0, 1]``,
    binary tasks, N of a few hundred to a few thousand): read ``regime`` before using it.

    Example:
        >>> calibration = reproduction_calibration()
        >>> calibration.n_runs >= 100, "CNN" in calibration.regime
        (True, True)
    """
    package = resources.files("lightning_dataprops.references")
    return _from_json(package.joinpath(_REPRODUCTION_FILE).read_text("utf-8"), _REPRODUCTION_FILE)


def resolve_constant(spec: ConstantSpec) -> Calibration | float | None:
    """What a user passes as the scaling constant, made a value.

    ``None``, a number or a :class:`~lightning_dataprops.functional.Calibration` come back as
    they are; ``"reproduction"`` gives :func:`reproduction_calibration`; any other string or
    path is read with :func:`load_calibration`.

    Example:
        >>> resolve_constant(0.8)
        0.8
        >>> resolve_constant("reproduction").source.startswith("examples/reproduce_paper")
        True
    """
    if spec is None or isinstance(spec, (int, float, Calibration)):
        return spec
    if spec == REPRODUCTION:
        return reproduction_calibration()
    return load_calibration(spec)


def read_runs_csv(path: str | os.PathLike[str]) -> list[dict[str, float]]:
    """Rows of a CSV with at least the columns ``n_train, d_data, label_sharpness, test_loss``.

    Other columns are ignored; every row gives those four as floats.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a column is missing (says which) or a value is not a number (says where).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> runs = Path(tempfile.mkdtemp()) / "runs.csv"
        >>> _ = runs.write_text("n_train,d_data,label_sharpness,test_loss,dataset\\n"
        ...                     "500,10,0.3,0.2,mnist\\n")
        >>> read_runs_csv(runs)
        [{'n_train': 500.0, 'd_data': 10.0, 'label_sharpness': 0.3, 'test_loss': 0.2}]
    """
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            # "n_train, d_data, ..." (spaces after the commas) names the same columns.
            found = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = found
            missing = [c for c in CALIBRATION_COLUMNS if c not in found]
            if missing:
                raise ValueError(
                    f"{path} lacks the column(s) {missing}; it needs {list(CALIBRATION_COLUMNS)} "
                    f"and has {found}."
                )
            rows = []
            for row in reader:
                try:
                    rows.append({c: float(row[c]) for c in CALIBRATION_COLUMNS})
                except (TypeError, ValueError):
                    # line_num: the file's line (blank lines, which the reader skips, counted).
                    raise ValueError(
                        f"{path}, line {reader.line_num}: not a number in {row}"
                    ) from None
            return rows
    except FileNotFoundError:
        raise FileNotFoundError(f"runs file {path} does not exist") from None


def append_run_csv(path: str | os.PathLike[str], run: Mapping[str, Any]) -> None:
    """Append one run (the calibration columns plus any extra keys) to a CSV.

    A new or empty file gets a header: the calibration columns, then the run's other keys
    sorted. An existing file keeps its header; keys it lacks are dropped, missing values left
    empty.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> runs = Path(tempfile.mkdtemp()) / "runs.csv"
        >>> append_run_csv(runs, {"n_train": 500, "d_data": 10, "label_sharpness": 0.3,
        ...                       "test_loss": 0.2, "seed": 0})
        >>> runs.read_text().splitlines()[0]
        'n_train,d_data,label_sharpness,test_loss,seed'
    """
    target = Path(path)
    columns = list(CALIBRATION_COLUMNS) + sorted(k for k in run if k not in CALIBRATION_COLUMNS)
    new = not target.exists() or target.stat().st_size == 0
    if not new:
        with open(target, newline="") as handle:
            columns = next(csv.reader(handle))
    with open(target, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({key: run.get(key, "") for key in columns})
