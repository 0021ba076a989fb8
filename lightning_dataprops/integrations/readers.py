"""Read a run's logged findings back, each logger's data with that tool's own reader.

* CSV (``CSVLogger``, and any logger the files writer serves): ``metrics.csv`` with Python's
  ``csv`` reader, the ``dataprops/`` folder's PNG, markdown and ``findings.json``;
* TensorBoard: ``EventAccumulator`` (scalars, images, text summaries);
* MLflow: ``MlflowClient`` (metric histories, the ``dataprops/`` artifacts).

:func:`read_run` finds which one a folder holds; :func:`record_for_logger` reads the run of a
live logger at fit end. Each returns a :class:`~lightning_dataprops.findings.run_record.RunRecord`.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = (Path(folder) / "metrics.csv").write_text("epoch,step,val_loss\\n0,3,0.7\\n")
    ...     record = read_run(folder)
    >>> record.source, record.series("val_loss")
    ('CSV', ([0], [0.7]))
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from unittest import mock

from lightning_dataprops.findings.run_record import RunRecord
from lightning_dataprops.integrations._common import FINDINGS_JSON, FOLDER

__all__ = [
    "read_csv_run",
    "read_mlflow_run",
    "read_run",
    "read_tensorboard_run",
    "record_for_logger",
]

_MAX_DEPTH = 4


def _read_findings_folder(record: RunRecord, folder: Path) -> None:
    """The files writer's ``dataprops/`` folder: pictures, texts, JSON."""
    if not folder.is_dir():
        return
    for png in sorted(folder.glob("*.png")):
        record.images[png.stem] = png.read_bytes()
    for text in sorted(folder.glob("*.md")):
        record.texts[text.stem] = text.read_text(encoding="utf-8")
    document = folder / FINDINGS_JSON
    if document.is_file():
        with contextlib.suppress(json.JSONDecodeError):  # a half-written file: no JSON, no harm
            record.findings.update(json.loads(document.read_text(encoding="utf-8")))


def read_csv_run(log_dir: str | os.PathLike[str]) -> RunRecord:
    """A ``CSVLogger`` run (``metrics.csv``) or any files-writer folder (``dataprops/``).

    Raises:
        FileNotFoundError: neither ``metrics.csv`` nor a ``dataprops`` folder is there.
    """
    folder = Path(log_dir)
    metrics, findings = folder / "metrics.csv", folder / FOLDER
    if not metrics.is_file() and not findings.is_dir():
        raise FileNotFoundError(f"{folder} holds neither metrics.csv nor a {FOLDER}/ folder")
    record = RunRecord("CSV", str(folder), folder=findings)
    if metrics.is_file():
        with metrics.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                step = int(float(row.get("step") or 0))
                epoch_text = row.get("epoch")
                epoch = int(float(epoch_text)) if epoch_text else None
                for name, value in row.items():
                    if name in ("step",) or value in (None, ""):
                        continue
                    record.add_scalar(name, float(value), step=step, epoch=epoch)
    _read_findings_folder(record, findings)
    return record


def read_tensorboard_run(log_dir: str | os.PathLike[str]) -> RunRecord:
    """A ``TensorBoardLogger`` run: its event files, read with TensorBoard's
    ``EventAccumulator``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = Path(log_dir)
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 1, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    record = RunRecord("TensorBoard", str(folder), folder=folder / FOLDER)
    for tag in tags.get("scalars", []):
        for event in events.Scalars(tag):
            record.add_scalar(tag, event.value, step=event.step)
    prefix = f"{FOLDER}/"
    for tag in tags.get("images", []):
        shown = events.Images(tag)
        if tag.startswith(prefix) and shown:
            record.images[tag.removeprefix(prefix)] = shown[-1].encoded_image_string
    for tag in tags.get("tensors", []):
        if tag.startswith(prefix) and tag.endswith("/text_summary"):
            value = events.Tensors(tag)[-1].tensor_proto.string_val
            if value:
                key = tag.removeprefix(prefix).removesuffix("/text_summary")
                record.texts[key] = value[0].decode("utf-8")
    record.fill_epochs()
    return record


def read_mlflow_run(
    tracking_uri: str, run_id: str | None = None, folder: Path | None = None
) -> RunRecord:
    """An MLflow run (the latest one when ``run_id`` is ``None``), read with ``MlflowClient``:
    metric histories and the ``dataprops/`` artifacts.

    Raises:
        FileNotFoundError: the tracking store holds no run.
    """
    from mlflow.tracking import MlflowClient

    with _mlflow_reading(tracking_uri):
        client = MlflowClient(tracking_uri=tracking_uri)
        return _read_mlflow(client, tracking_uri, run_id, folder)


def _mlflow_reading(tracking_uri: str) -> AbstractContextManager[Any]:
    """Environment for reading a finished run, restored afterwards: no artifact-download
    progress bar, and, for an existing file store (``./mlruns``, Lightning's default),
    ``MLFLOW_ALLOW_FILE_STORE``: MLflow 3 refuses that backend, in maintenance mode, unless it
    is set, as it was for the run that wrote the store."""
    settings = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    if tracking_uri.startswith("file:"):
        settings["MLFLOW_ALLOW_FILE_STORE"] = "true"
    return mock.patch.dict(os.environ, settings)


def _read_mlflow(
    client: Any, tracking_uri: str, run_id: str | None, folder: Path | None
) -> RunRecord:
    if run_id is None:
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(
            experiments, order_by=["attributes.start_time DESC"], max_results=1
        )
        if not runs:
            raise FileNotFoundError(f"the MLflow store {tracking_uri} holds no run")
        run_id = runs[0].info.run_id
    run = client.get_run(run_id)
    record = RunRecord("MLflow", f"{tracking_uri} run {run_id}", folder=folder)
    for key in run.data.metrics:
        for metric in client.get_metric_history(run_id, key):
            record.add_scalar(key, metric.value, step=metric.step)
    names = [artifact.path for artifact in client.list_artifacts(run_id, FOLDER)]
    if names:
        with tempfile.TemporaryDirectory() as scratch:
            local = Path(client.download_artifacts(run_id, FOLDER, scratch))
            _read_findings_folder(record, local)
            for document in local.glob("*.json"):
                record.findings[document.stem] = json.loads(document.read_text(encoding="utf-8"))
    record.fill_epochs()
    return record


def _candidates(root: Path) -> list[tuple[float, str, Path]]:
    """``(modified time, kind, folder)`` of every run found under ``root``."""
    found = []
    for current, folders, files in os.walk(root):
        depth = len(Path(current).relative_to(root).parts)
        if depth >= _MAX_DEPTH:
            folders[:] = []
        here = Path(current)
        if "metrics.csv" in files or (here / FOLDER / FINDINGS_JSON).is_file():
            found.append((os.path.getmtime(here), "csv", here))
            folders[:] = [f for f in folders if f != FOLDER]
        elif any(name.startswith("events.out.tfevents") for name in files):
            found.append((os.path.getmtime(here), "tensorboard", here))
        elif "mlflow.db" in files:
            found.append((os.path.getmtime(here / "mlflow.db"), "mlflow", here / "mlflow.db"))
        elif _is_file_store_run(here, files, folders):
            found.append((os.path.getmtime(here / "meta.yaml"), "mlflow-file", here))
            folders[:] = []
    return found


def _is_file_store_run(here: Path, files: list[str], folders: list[str]) -> bool:
    """A run folder of an MLflow file store: ``<store>/<experiment id>/<run id>/`` holding
    ``meta.yaml`` and ``metrics/``, below an experiment folder with its own ``meta.yaml``."""
    return "meta.yaml" in files and "metrics" in folders and (here.parent / "meta.yaml").is_file()


def read_run(path: str | os.PathLike[str]) -> RunRecord:
    """The run logged in ``path``: a CSV or TensorBoard log folder, an MLflow SQLite store
    (``mlflow.db``, or a folder holding one), an MLflow file store (``./mlruns``, or one of its
    run folders), or a folder above them (the newest run is read).

    Raises:
        FileNotFoundError: ``path`` does not exist or holds no run.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"log folder not found: {root}")
    if root.is_file() and root.suffix == ".db":
        return read_mlflow_run(f"sqlite:///{root.resolve()}", folder=root.parent)
    found = _candidates(root)
    if not found:
        raise FileNotFoundError(
            f"{root} holds no run dataprops can read: expected a CSVLogger folder (metrics.csv), "
            "a TensorBoardLogger folder (events.out.tfevents.*) or an MLflow store (mlflow.db, "
            "or a file store such as ./mlruns)"
        )
    _, kind, where = max(found, key=lambda item: item[0])
    if kind == "csv":
        return read_csv_run(where)
    if kind == "tensorboard":
        return read_tensorboard_run(where)
    if kind == "mlflow-file":
        store = where.parent.parent.resolve()
        return read_mlflow_run(store.as_uri(), where.name, folder=store.parent)
    return read_mlflow_run(f"sqlite:///{where.resolve()}", folder=where.parent)


def logger_kind(logger: Any) -> str:
    for cls in type(logger).__mro__:
        if cls.__name__ in ("TensorBoardLogger", "MLFlowLogger", "WandbLogger"):
            return cls.__name__
    return "files"


def record_for_logger(logger: Any, default_root_dir: str | os.PathLike[str]) -> RunRecord | None:
    """The run of a live logger, read back as :func:`read_run` would after the fit (pending
    rows flushed first); ``None`` for loggers that keep no local record (W&B)."""
    kind = logger_kind(logger)
    if kind == "WandbLogger":
        return None
    logger.save()
    if kind == "TensorBoardLogger":
        logger.experiment.flush()
        return read_tensorboard_run(logger.log_dir)
    if kind == "MLFlowLogger":
        return read_mlflow_run(logger.experiment.tracking_uri, logger.run_id)
    log_dir = getattr(logger, "log_dir", None) or default_root_dir
    return read_csv_run(log_dir)
