"""The ``dataprops`` command line.

Usage::

    dataprops measure [SOURCE] [--split train] [--max-samples N] [--seed 0] [--k 20]
                      [--estimators NAME ...]
                      [--top-pairs 5] [--bootstrap B] [--device cpu|cuda] [--json] [--no-progress]
                      [--report report.html] [--class-names NAME,NAME,...]
    dataprops report LOG_DIR [--out run_report.html]
    dataprops calibrate RUNS.csv [--out C.json]

``SOURCE`` is a ``.npz`` file (MedMNIST layout or ``images`` / ``labels``), a folder of
Fashion-MNIST IDX files, or an image folder with one subfolder per class; without it, the
scikit-learn digits (1797 images 8x8) are measured. The report goes to stdout; ``--json`` prints
one JSON document instead; ``--report`` also writes one self-contained HTML file (images
embedded, no network) that leads with a summary card and the verdict. ``report`` rebuilds the
run report of a finished training run from what its logger recorded (CSV, TensorBoard or MLflow
files in LOG_DIR). User errors print one ``dataprops: error: ...``
line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning_dataprops.data import Sample
    from lightning_dataprops.dataset_report import DatasetReport
    from lightning_dataprops.findings import KCurveFinding

__all__ = ["build_parser", "main"]

PROG = "dataprops"
EXIT_USAGE = 2

# Errors that mean "bad input from the user", reported in one line without a traceback.
_USER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # FileNotFoundError, IsADirectoryError, PermissionError...
    ValueError,
    ImportError,
    TypeError,
    EOFError,  # numpy on an empty file
    zipfile.BadZipFile,  # a corrupt .npz
)


class _UserError(Exception):
    """A user error whose message is ready to print."""


def _package_version() -> str:
    try:
        return version("lightning-dataprops")
    except PackageNotFoundError:
        return "unknown"


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _device(text: str) -> str:
    head, _, index = text.partition(":")
    if head not in ("cpu", "cuda") or (index and (head != "cuda" or not index.isdigit())):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``dataprops`` command (``measure`` and ``calibrate``)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Intrinsic dataset properties: intrinsic dimension (MLE, TwoNN) and label "
            "sharpness K_F of an image dataset."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    measure = commands.add_parser(
        "measure",
        help="measure d_data (MLE, TwoNN) and K_F of a dataset",
        description=(
            "Measure the intrinsic dimension d_data (MLE and TwoNN) and the label sharpness K_F "
            "of a dataset, from one exact nearest-neighbour pass."
        ),
    )
    measure.add_argument(
        "source",
        nargs="?",
        default=None,
        metavar="SOURCE",
        help=(
            ".npz file (MedMNIST layout or images/labels), folder of Fashion-MNIST IDX files, or "
            "image folder with one subfolder per class (default: scikit-learn digits)"
        ),
    )
    measure.add_argument("--split", default="train", help="split to read (default: train)")
    measure.add_argument(
        "--max-samples",
        type=_positive_int,
        default=None,
        metavar="N",
        help="measure a seeded, class-stratified sample of N items (default: all)",
    )
    measure.add_argument(
        "--seed", type=int, default=0, help="seed of the sample and the bootstrap (default: 0)"
    )
    measure.add_argument(
        "--k", type=_positive_int, default=20, help="neighbours for the MLE (default: 20)"
    )
    measure.add_argument(
        "--estimators",
        nargs="*",
        default=None,
        metavar="NAME",
        help=(
            "intrinsic-dimension estimators computed besides MLE and TwoNN, from the same pass "
            "(default: gride calibrated; none: MLE and TwoNN only)"
        ),
    )
    measure.add_argument(
        "--top-pairs",
        type=_non_negative_int,
        default=5,
        metavar="P",
        help="sharpest label pairs to report (default: 5)",
    )
    measure.add_argument(
        "--bootstrap",
        type=_non_negative_int,
        default=0,
        metavar="B",
        help="bootstrap resamples for the ID standard errors (default: 0, none)",
    )
    measure.add_argument(
        "--targets",
        choices=("auto", "class", "regression"),
        default="auto",
        help="how .npz labels are read: auto (integer labels are class ids, float labels are "
        "regression values such as ages), class, or regression (default: auto)",
    )
    measure.add_argument(
        "--device", type=_device, default="cpu", help="cpu, cuda or cuda:N (default: cpu)"
    )
    measure.add_argument(
        "--json", action="store_true", help="print one JSON document instead of the report"
    )
    measure.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    measure.add_argument(
        "--report",
        default=None,
        metavar="HTML",
        help="also write a self-contained HTML report (pictures embedded, no network) to HTML",
    )
    measure.add_argument(
        "--class-names",
        default=None,
        metavar="NAMES",
        help="comma-separated name of each class id, e.g. normal,pneumonia (default: from the "
        "source: an image folder's subfolders, Fashion-MNIST's classes, an .npz key "
        "class_names, label_names or classes)",
    )
    report = commands.add_parser(
        "report",
        help="rebuild the HTML run report of a finished training run",
        description=(
            "Rebuild the run report (fit-start card, pairs, d_repr per layer, robustness, "
            "forecast, warnings, overhead) from a finished run's logged findings: the CSVLogger "
            "or TensorBoardLogger folder, or an MLflow tracking folder (mlruns) or run folder."
        ),
    )
    report.add_argument("log_dir", metavar="LOG_DIR", help="the run's log folder")
    report.add_argument(
        "--out",
        default=None,
        metavar="HTML",
        help="where to write the page (default: LOG_DIR/dataprops/run_report.html; for an MLflow "
        "store, run_report.html beside it)",
    )
    calibrate = commands.add_parser(
        "calibrate",
        help="fit the scaling-law constant C from a CSV of earlier runs",
        description=(
            "Fit C in test_loss = C * K_F * N^(-1/d_data) by least squares in log space from a "
            "CSV with columns n_train, d_data, label_sharpness, test_loss (ScalingForecastMonitor "
            "appends its own runs to such a file with calibration_csv=...)."
        ),
    )
    calibrate.add_argument("runs", help="CSV of earlier runs")
    calibrate.add_argument("--out", default=None, help="write the calibration JSON here")
    calibrate.add_argument("--regime", default="", help="where the constant holds (free text)")
    return parser


def _calibrate(args: argparse.Namespace) -> int:
    from lightning_dataprops.calibration import read_runs_csv, save_calibration
    from lightning_dataprops.functional.scaling_law import fit_constant

    calibration = fit_constant(read_runs_csv(args.runs), source=str(args.runs), regime=args.regime)
    print(
        f"C = {calibration.constant:.6g} from {calibration.n_runs} run(s); typical error "
        f"x{math.exp(calibration.rmse_log):.3g} (rmse of log loss {calibration.rmse_log:.3g})"
    )
    if args.out:
        save_calibration(calibration, args.out)
        print(f"written to {args.out}")
    return 0


@dataclass(frozen=True)
class _Measured:
    """The data a ``measure`` run works on: the sample (every item, or a stratified subsample
    with ``--max-samples``) and where it came from."""

    sample: Sample
    description: str
    source: str
    subsampled: bool
    class_names: tuple[str, ...] | None = None


def _load(args: argparse.Namespace) -> _Measured:
    """Load the source named on the command line and, with ``--max-samples``, subsample it."""
    from lightning_dataprops.data import load_source, sample_dataset

    if args.source is None and args.split != "train":
        raise _UserError("the built-in digits have a single split; --split needs a SOURCE")
    try:
        data = load_source(args.source, split=args.split, target_type=args.targets)
    except (EOFError, zipfile.BadZipFile) as error:
        raise _UserError(f"cannot read {args.source}: not a valid .npz archive ({error})") from None
    except _USER_ERRORS as error:
        message = str(error)
        path = Path(args.source) if args.source is not None else None
        if (
            isinstance(error, ValueError)
            and path is not None
            and path.is_file()
            and path.suffix.lower() == ".npz"
            and not zipfile.is_zipfile(path)
        ):
            message = f"cannot read {args.source}: not a valid .npz archive (not a zip file)"
        elif path is not None and path.name not in message:
            message = f"{args.source}: {message}"
        raise _UserError(message) from None
    n_source = int(data.inputs.shape[0])
    if args.max_samples is None or args.max_samples >= n_source:
        import torch

        from lightning_dataprops.data import Sample

        rows, kind = torch.arange(n_source), args.targets
        everything = Sample(data.inputs, data.targets, rows, n_source, "len", target_type=kind)
        return _Measured(everything, data.description, data.source, False, _class_names(args, data))
    sample = sample_dataset(
        data.inputs,
        data.targets,
        max_samples=args.max_samples,
        seed=args.seed,
        target_type=args.targets,
    )
    classes = sample.targets is not None and not sample.targets.is_floating_point()
    how = "stratified sample" if classes else "sample"  # regression targets: never stratified
    description = f"{data.description}; {how} of {len(sample)} (seed {args.seed})"
    return _Measured(sample, description, data.source, True, _class_names(args, data))


def _class_names(args: argparse.Namespace, data: Any) -> tuple[str, ...] | None:
    """``--class-names``, else the source's own; checked against the labels."""
    names = data.class_names
    if args.class_names is not None:
        names = tuple(name.strip() for name in args.class_names.split(","))
        if any(not name for name in names):
            raise _UserError(f"--class-names {args.class_names!r} holds an empty name")
    targets = data.targets
    if names is None or targets.is_floating_point() or not targets.numel():
        return None if targets.is_floating_point() else names
    needed = int(targets.max()) + 1
    if len(names) < needed:
        raise _UserError(
            f"{len(names)} class name(s) given ({', '.join(names)}) but the labels go up to "
            f"{needed - 1}: give one name per class id 0..{needed - 1}, in order"
        )
    return names


def _measure(args: argparse.Namespace) -> int:
    import torch

    from lightning_dataprops.dataset_report import measure_dataset
    from lightning_dataprops.findings.text_report import format_report

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise _UserError(f"--device {args.device}: CUDA is not available on this machine")
    start = time.perf_counter()
    data = _load(args)
    progress = not args.json and not args.no_progress and sys.stderr.isatty()
    report = measure_dataset(
        data.sample,
        k=args.k,
        estimators=args.estimators,
        top_pairs=args.top_pairs,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        normalization=None,  # files are read as pixels (uint8 / 255) or as stored
        device=args.device,
        progress=progress,
    )
    props = report.properties
    index_map = list(report.indices) if data.subsampled else None
    extras = _extras(args, data, progress) if args.json or args.report else None
    elapsed = time.perf_counter() - start
    if args.report:
        assert extras is not None
        path = _write_report(args, data, report, extras, elapsed)
        print(f"report written to {path}", file=sys.stderr)
    if args.json:
        assert extras is not None
        document = props.to_dict()
        document["sharp_label_check"] = report.check_dict()
        document["source"] = data.source
        document["description"] = data.description
        document["sample"] = {
            "n_source": report.n_source,
            "max_samples": args.max_samples,
            "seed": args.seed,
            "indices": index_map,
        }
        document["estimators_disagree"] = report.estimators_disagree
        document["k_curve"] = extras.k_curve.to_dict()
        document["elapsed_s"] = elapsed
        print(json.dumps(document, indent=2, allow_nan=False))
    else:
        inputs = data.sample.inputs
        value_range = (float(inputs.min()), float(inputs.max())) if inputs.numel() else None
        print(
            format_report(
                props,
                description=data.description,
                elapsed=elapsed,
                value_range=value_range,
                index_map=index_map,
            )
        )
        for paragraph in (_spread_text(report), _check_text(report)):
            # Long paragraphs wrapped for a terminal, one per line of text.
            print("\n".join(textwrap.fill(line, width=100) for line in paragraph.splitlines()))
    return 0


def _spread_text(report: DatasetReport) -> str:
    """The estimators' paragraph of the text report: their values and whether they agree."""
    spread = report.properties.spread
    if spread is None:
        return ""
    notes = [f"{name}: {note}" for name, note in report.estimator_notes.items()]
    lines = [f"Intrinsic dimension by estimator: {spread.describe()}"]
    if spread.message is not None:
        lines.append(spread.message)
    lines.extend(notes)
    return "\n".join(lines)


def _check_text(report: DatasetReport) -> str:
    """The sharp-label check's paragraph of the text report."""
    check = report.check
    if check is None:
        text = f"Sharp-label check: skipped ({report.check_skipped})"
        message = report.message()
        return text if message is None else f"{text}. {message}"
    verdict = "SHARP" if check.is_sharp else "not sharp"
    return (
        f"Sharp-label check, at the references' sample size and image format (the "
        f"{check.protocol} protocol), so its exact K_F can differ from the one above: {verdict}. "
        f"{check.explain(report.check_index_map)}"
    )


@dataclass(frozen=True)
class _Extras:
    """What the JSON document and the HTML report add to the measured properties."""

    k_curve: KCurveFinding


def _extras(args: argparse.Namespace, data: _Measured, progress: bool) -> _Extras:
    from lightning_dataprops.findings import KCurveFinding
    from lightning_dataprops.functional.intrinsic_dimension import mle_k_curve

    ks, values = mle_k_curve(
        data.sample.inputs, (5, 10, 15, args.k, 30, 40), device=args.device, progress=progress
    )
    return _Extras(KCurveFinding(ks, values, k_default=args.k))


def _write_report(
    args: argparse.Namespace,
    data: _Measured,
    report: DatasetReport,
    extras: _Extras,
    elapsed: float,
) -> Path:
    from lightning_dataprops.findings.dataset_page import write_dataset_report

    return write_dataset_report(
        args.report,
        report,
        data.sample,
        description=data.description,
        class_names=data.class_names,
        k_curve=extras.k_curve,
        elapsed=elapsed,
    )


def _report(args: argparse.Namespace) -> int:
    from lightning_dataprops.findings.run_report import write_run_report
    from lightning_dataprops.integrations.readers import read_run

    record = read_run(args.log_dir)
    out = Path(args.out) if args.out else record.report_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    path = write_run_report(out, record)
    print(f"run report written to {path}", file=sys.stderr)
    return 0


def _error(message: str) -> int:
    one_line = " ".join(message.split()) or "unknown error"
    print(f"{PROG}: error: {one_line}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dataprops`` command line and return its exit status.

    Args:
        argv: the arguments, without the program name (default: ``sys.argv[1:]``).

    Returns:
        0 on success; 2 for usage errors, unreadable or unsupported data and other bad input
        (reported as one ``dataprops: error: ...`` line on stderr); 130 when interrupted.

    Example:
        >>> main(["measure", "--json", "--max-samples", "200", "--no-progress"])  # doctest: +SKIP
        0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exit_:  # --help, --version, or a usage error (already printed)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "calibrate":
            return _calibrate(args)
        if args.command == "report":
            return _report(args)
        return _measure(args)
    except _UserError as error:
        return _error(str(error))
    except _USER_ERRORS as error:
        return _error(str(error))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
