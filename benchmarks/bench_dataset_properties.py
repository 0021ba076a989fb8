"""Benchmark: one-pass ``dataset_properties`` (MLE + TwoNN + K_F) against faiss and skdim.

Measured side by side in one run: our exact ``dataset_properties(x, y)`` (one certified kNN pass
for the MLE and TwoNN intrinsic dimensions and the exact label sharpness K_F) against faiss-cpu's
``IndexFlatL2`` kNN alone (k = 21 with the point itself; benchmark-only, in the ``dev`` extra),
scikit-dimension's ``MLE().fit(X, n_neighbors=20)`` and ``TwoNN().fit(X)``, and dadapy's
``Data(X, maxk=3).compute_id_2NN()`` where dadapy can be imported.

Datasets:

* ``manifold``: 10,000 x 3072 float32 points on a known, smooth, curved 10-dimensional
  manifold: ``z ~ U[0, 1]^10``, ``x = sin(z W + b) / sqrt(3072)`` with ``W ~ N(0, (2 pi f)^2)``
  (10 x 3072, frequency ``f = 0.25``: about a quarter period across the cube, so curved but
  locally flat at the scale of 20 neighbours) and ``b ~ U[0, 2 pi)``; seed 0. Labels for K_F:
  ``y = 1[z_1 > 0.5]`` (a smooth class boundary on the manifold).
* ``fashion``: the Fashion-MNIST training set, 60,000 x 784 in [0, 1], with its 10 classes
  (Debian package ``dataset-fashion-mnist``). Ours always runs on all 60,000 points; the
  baselines run on the first ``--baseline-n`` points (default: all) under ``--time-cap``, and
  ours is then measured on the same subsample too, so the ratio compares like with like.

Every timed call runs in a fresh subprocess (data loaded, libraries imported and warmed up on
1,000 points before the clock starts); its peak resident set size is reset just before the call
(``/proc/self/clear_refs``; ``ru_maxrss`` where that is not possible), so the reported peak is
the method's own: what the process held before (interpreter, libraries, data) plus what it
added. Methods are run round-robin
``--repeats`` times and the minimum time is reported (the machine may be shared).

Usage (from the repository root)::

    python benchmarks/bench_dataset_properties.py                    # both datasets
    python benchmarks/bench_dataset_properties.py --only manifold --repeats 5
    python benchmarks/bench_dataset_properties.py --output docs/benchmarks.md

dadapy 0.3.4 requires ``numpy<2`` (its compiled extension fails under numpy 2): install it in a
separate environment and pass its interpreter with ``--dadapy-python`` (or ``DADAPY_PYTHON``)::

    python -m venv --system-site-packages /opt/dadapy-venv
    /opt/dadapy-venv/bin/pip install "numpy<2" dadapy
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SECTION_HEADING = "## Measurement core"
WARMUP_N = 1000
MANIFOLD_N, MANIFOLD_D, MANIFOLD_ID, MANIFOLD_FREQ = 10_000, 3072, 10, 0.25
K = 20


# ----------------------------------------------------------------------------- data
def make_manifold(
    n: int = MANIFOLD_N,
    dim: int = MANIFOLD_D,
    intrinsic: int = MANIFOLD_ID,
    freq: float = MANIFOLD_FREQ,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Points on a smooth ``intrinsic``-dimensional manifold in ``dim`` dimensions, and labels.

    ``x = sin(z W + b) / sqrt(dim)`` with ``z ~ U[0, 1]^intrinsic``, ``W ~ N(0, (2 pi freq)^2)``
    and ``b ~ U[0, 2 pi)``; labels ``1[z_1 > 0.5]``. Computed in float64, returned as float32.
    """
    rng = np.random.default_rng(seed)
    z = rng.random((n, intrinsic))
    w = rng.standard_normal((intrinsic, dim)) * (2.0 * math.pi * freq)
    b = rng.random(dim) * 2.0 * math.pi
    x = np.sin(z @ w + b) / math.sqrt(dim)
    return x.astype(np.float32), (z[:, 0] > 0.5).astype(np.int64)


def load_fashion() -> tuple[np.ndarray, np.ndarray]:
    """The Fashion-MNIST training set as ``(60000, 784)`` float32 in [0, 1] and its labels."""
    from lightning_dataprops.data import load_fashion_mnist

    data = load_fashion_mnist(split="train")
    x = data.inputs.reshape(data.inputs.shape[0], -1).numpy()
    return np.ascontiguousarray(x, dtype=np.float32), data.targets.numpy().astype(np.int64)


# ----------------------------------------------------------------------------- methods
def _ours(x: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    import torch

    from lightning_dataprops.functional import dataset_properties

    # Exactly MLE + TwoNN + K_F: the quantities faiss's neighbours are the first step towards.
    props = dataset_properties(torch.from_numpy(x), torch.from_numpy(y), k=K, estimators=())
    return {"mle": props.d_data, "twonn": props.d_data_twonn, "kf": props.K_F}


def _ours_default(x: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    import torch

    from lightning_dataprops.functional import dataset_properties

    # The default call: also GRIDE and the calibrated estimator, for the estimators' spread.
    props = dataset_properties(torch.from_numpy(x), torch.from_numpy(y), k=K)
    return {"mle": props.d_data, "twonn": props.d_data_twonn, "kf": props.K_F}


def _skdim_mle(x: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    import skdim

    return {"mle": float(skdim.id.MLE().fit(x, n_neighbors=K).dimension_)}


def _skdim_twonn(x: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    import skdim

    return {"twonn": float(skdim.id.TwoNN().fit(x).dimension_)}


def _faiss_knn(x: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    import faiss

    # The anchor users pick for exact neighbours: kNN alone (k + 1 = 21 with the point itself),
    # no ID estimate, no certification, no label sharpness.
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    index.search(x, K + 1)
    return {}


def _dadapy_twonn(x: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    from dadapy import Data

    # TwoNN needs two neighbours; dadapy's default maxk=100 would search for 100.
    return {"twonn": float(Data(x, maxk=3, verbose=False).compute_id_2NN()[0])}


METHODS: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], dict[str, float | None]]]] = {
    "ours": ("ours: dataset_properties(x, y, estimators=()) (MLE + TwoNN + K_F)", _ours),
    "ours_default": (
        "ours: dataset_properties(x, y) default (+ GRIDE, calibrated: the spread)",
        _ours_default,
    ),
    "faiss_knn": ("faiss IndexFlatL2 kNN alone (k = 21)", _faiss_knn),
    "skdim_mle": ("skdim MLE().fit(X, n_neighbors=20)", _skdim_mle),
    "skdim_twonn": ("skdim TwoNN().fit(X)", _skdim_twonn),
    "dadapy_twonn": ("dadapy Data(X, maxk=3).compute_id_2NN()", _dadapy_twonn),
}


def _status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MiB, if readable."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the peak resident set size (Linux: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _peak_rss_mb() -> float:
    """Peak resident set size since the last reset (or since the start) in MiB."""
    peak = _status_mb("VmHWM")
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    return peak


def worker(method: str, data: Path, n_used: int) -> None:
    """Run one timed call of ``method`` in this (fresh) process and print a JSON line.

    The peak RSS is reset after loading and warming up (where Linux allows it), so that it is
    the peak during the call: what the process holds before plus what the call adds.
    """
    arrays = np.load(data)
    x = np.ascontiguousarray(arrays["x"][:n_used])
    y = np.ascontiguousarray(arrays["y"][:n_used])
    run = METHODS[method][1]
    run(x[:WARMUP_N], y[:WARMUP_N])  # imports, thread pools, lazy initialisation
    _reset_peak_rss()
    before = _status_mb("VmRSS") or _peak_rss_mb()
    start = time.perf_counter()
    estimates = run(x, y)
    elapsed = time.perf_counter() - start
    result = {"time": elapsed, "estimates": estimates, "rss_before_mb": before}
    result["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


# ----------------------------------------------------------------------------- machine
# lscpu flags that decide which kernel the engine picks (and how fast faiss's BLAS runs).
CPU_FEATURES: tuple[str, ...] = (
    *("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16"),
    *("amx_tile", "amx_bf16", "amx_int8"),
)


def cpu_description() -> str:
    """The CPU model and its relevant features from ``lscpu``, e.g. ``AMD EPYC (avx2, avx512f,
    avx512_vnni, avx512_bf16; no amx_*)``."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown CPU (lscpu not available)"
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in lscpu.splitlines())
    )
    flags = set(fields.get("Flags", "").split())
    present = [name for name in CPU_FEATURES if name in flags]
    if not any(name.startswith("amx") for name in present):
        present.append("no amx_*")
    return f"{fields.get('Model name', 'unknown CPU')} ({', '.join(present)})"


@contextlib.contextmanager
def background_load(n: int) -> Iterator[None]:
    """``n`` busy processes (a Python spin loop each) for the duration of the block; they are
    stopped on the way out whatever happens (an error, Ctrl+C)."""
    busy: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(n):
            busy.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        yield
    finally:
        for process in busy:
            process.terminate()
        for process in busy:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# ----------------------------------------------------------------------------- driver
@dataclass
class Row:
    """One line of the table: a method on a dataset (or on a subsample of it)."""

    method: str
    n: int
    python: str
    times: list[float] = field(default_factory=list)
    estimates: dict[str, float | None] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    rss_before_mb: float = 0.0
    note: str = ""

    @property
    def best(self) -> float | None:
        return min(self.times) if self.times else None


def run_once(row: Row, data: Path, time_cap: float) -> None:
    """One timed call of ``row`` in a fresh subprocess; failures end up in ``row.note``."""
    command = [row.python, str(Path(__file__).resolve()), "--worker", row.method]
    command += ["--data", str(data), "--n-used", str(row.n)]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=time_cap, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        row.note = f"did not finish within the {time_cap:.0f} s cap"
        return
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        row.note = f"failed: {last[:160]}"
        return
    result = json.loads(lines[-1][len("RESULT ") :])
    row.times.append(result["time"])
    row.estimates = result["estimates"]
    row.peak_rss_mb = max(row.peak_rss_mb, result["peak_rss_mb"])
    row.rss_before_mb = max(row.rss_before_mb, result["rss_before_mb"])


def dadapy_problem(python: str) -> str | None:
    """Why dadapy cannot run under ``python`` (``None`` when it can)."""
    probe = subprocess.run(
        [python, "-c", "import dadapy"], capture_output=True, text=True, check=False
    )
    if probe.returncode == 0:
        return None
    last = (probe.stderr.strip().splitlines() or ["import failed"])[-1]
    return f"`import dadapy` fails under {python}: {last[:120]}"


def benchmark(
    name: str,
    data: Path,
    n_total: int,
    baseline_n: int,
    args: argparse.Namespace,
) -> tuple[list[Row], list[str]]:
    """Run every method round-robin ``args.repeats`` times on one dataset."""
    rows = [Row("ours", n_total, sys.executable)]
    if baseline_n < n_total:
        rows.append(Row("ours", baseline_n, sys.executable))
    rows += [Row("ours_default", n_total, sys.executable)]
    rows += [Row("faiss_knn", n_total, sys.executable)]
    rows += [Row("skdim_mle", baseline_n, sys.executable)]
    rows += [Row("skdim_twonn", baseline_n, sys.executable)]
    notes = []
    dadapy_row = Row("dadapy_twonn", baseline_n, args.dadapy_python)
    if "dadapy_twonn" not in args.skip:
        problem = dadapy_problem(args.dadapy_python)
        if problem:
            dadapy_row.note = "not run (see below)"
            notes.append(f"dadapy not run: {problem}")
    rows.append(dadapy_row)
    rows = [row for row in rows if row.method not in args.skip]
    baseline_repeats = args.repeats if args.baseline_repeats is None else args.baseline_repeats
    for round_ in range(max(args.repeats, baseline_repeats)):
        for row in rows:
            wanted = (
                args.repeats
                if row.method in ("ours", "ours_default", "faiss_knn")
                else baseline_repeats
            )
            if row.note or round_ >= wanted:
                continue
            run_once(row, data, args.time_cap)
            shown = f"{row.times[-1]:.2f} s" if len(row.times) > round_ else row.note
            print(f"  [{name}] round {round_ + 1}: {METHODS[row.method][0]} n={row.n}: {shown}")
    return rows, notes


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[Row], n_total: int) -> str:
    """A markdown table; ratios are against ours on the same number of points."""
    ours = {row.n: row.best for row in rows if row.method == "ours"}
    lines = [
        "| method | n | time (s) | ratio vs ours | MLE | TwoNN | K_F | peak RSS (GB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        best = row.best
        reference = ours.get(row.n)
        ratio = None if best is None or reference is None else best / reference
        est = row.estimates
        label = METHODS[row.method][0] + ("" if row.n == n_total else " (subsample)")
        peak = f"{row.peak_rss_mb / 1024:.2f} ({row.rss_before_mb / 1024:.2f})"
        time_cell = _fmt(best) if best is not None else row.note
        lines.append(
            f"| {label} | {row.n:,} | {time_cell} | {_fmt(ratio)} | {_fmt(est.get('mle'))} "
            f"| {_fmt(est.get('twonn'))} | {_fmt(est.get('kf'), 4)} "
            f"| {peak if best is not None else '-'} |"
        )
    return "\n".join(lines)


def targets(name: str, rows: list[Row], n_total: int) -> list[str]:
    """The acceptance targets of the measurement core, checked on this run's numbers."""
    ours = next((row for row in rows if row.method == "ours" and row.n == n_total), None)
    if ours is None or ours.best is None:
        return []
    found = []
    anchor = next((row for row in rows if row.method == "faiss_knn" and row.best is not None), None)
    if anchor is not None and anchor.best is not None:
        ratio = ours.best / anchor.best
        found.append(
            f"Target (issue 11): ours at most 0.6x faiss IndexFlatL2 kNN alone: {ours.best:.2f} s"
            f" / {anchor.best:.2f} s = {ratio:.2f} ({'met' if ratio <= 0.6 else 'NOT met'}; "
            f"faiss computes the 21 neighbours only, ours also certifies them, recomputes their "
            f"distances exactly and finds every point's nearest differently-labelled neighbour)."
        )
    if name == "manifold":
        mle = next((row for row in rows if row.method == "skdim_mle" and row.n == n_total), None)
        if mle is None or mle.best is None:
            return found
        ratio = ours.best / mle.best
        verdict = "met" if ratio <= 1 / 3 else "NOT met"
        return [
            *found,
            f"Target: ours at most 1/3 of the time of scikit-dimension's MLE alone: "
            f"{ours.best:.2f} s / {mle.best:.2f} s = {ratio:.3f} ({verdict}).",
        ]
    peak_gb = ours.peak_rss_mb / 1024
    verdict = "met" if ours.best <= 60 and peak_gb <= 3 else "NOT met"
    return [
        *found,
        f"Target: exact K_F and d_data on all {n_total:,} points in at most 60 s and 3 GB: "
        f"{ours.best:.1f} s, peak RSS {peak_gb:.2f} GB ({verdict}).",
    ]


def machine() -> str:
    """One paragraph describing the machine and the software."""
    import sklearn
    import torch

    model = cpu_description()
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        from importlib.metadata import version

        skdim_version = version("scikit-dimension")
    except ImportError:
        skdim_version = "?"
    try:
        import faiss

        faiss_version = f"{faiss.__version__} ({faiss.omp_get_max_threads()} OpenMP threads)"
    except ImportError:
        faiss_version = "not installed"
    return (
        f"{model}, {os.cpu_count()} cores, {mem_gb:.0f} GB RAM; Python "
        f"{platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numpy {np.__version__}, scikit-learn "
        f"{sklearn.__version__}, scikit-dimension {skdim_version}, faiss-cpu {faiss_version}"
    )


def _split_subsections(lines: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Split section lines into the lines before the first ``### `` and the subsections."""
    intro: list[str] = []
    subsections: dict[str, list[str]] = {}
    current: list[str] = intro
    for line in lines:
        if line.startswith("### "):
            current = subsections.setdefault(line.strip(), [])
        current.append(line)
    return intro, subsections


def update_section(path: Path, intro: str, subsections: dict[str, str]) -> None:
    """Rewrite the ``## Measurement core`` section of ``path``: its introduction and the given
    ``### `` subsections; the subsections of datasets not run now and the rest of the file are
    kept."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION_HEADING), None)
    if start is None:
        before, old, after = lines, [], []
    else:
        stop = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        before, old, after = lines[:start], lines[start + 1 : stop], lines[stop:]
    kept = _split_subsections(old)[1]
    merged = {heading: "\n".join(body).strip("\n") for heading, body in kept.items()}
    for body in subsections.values():
        merged[body.splitlines()[0].strip()] = body.strip("\n")
    ordered = sorted(merged.items(), key=lambda item: "Fashion" in item[0])  # manifold first
    section = [intro.strip("\n")] + [body for _, body in ordered]
    new = "\n".join(before).rstrip("\n") + "\n\n" + "\n\n".join(section) + "\n"
    if after:
        new += "\n" + "\n".join(after).strip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("manifold", "fashion"))
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method (min)")
    parser.add_argument(
        "--baseline-repeats", type=int, help="timed runs of each baseline (default: --repeats)"
    )
    parser.add_argument("--time-cap", type=float, default=900.0, help="seconds per timed run")
    parser.add_argument(
        "--baseline-n", type=int, default=60_000, help="Fashion-MNIST points for the baselines"
    )
    parser.add_argument(
        "--dadapy-python",
        default=os.environ.get("DADAPY_PYTHON", sys.executable),
        help="interpreter that can import dadapy (it needs numpy<2)",
    )
    parser.add_argument(
        "--skip",
        type=lambda text: set(text.split(",")) - {""},
        default=set(),
        help="methods to leave out, comma-separated: faiss_knn,skdim_mle,skdim_twonn,dadapy_twonn",
    )
    parser.add_argument(
        "--background-load",
        type=int,
        default=0,
        metavar="N",
        help="run N busy processes for the duration (a loaded machine); stopped at the end",
    )
    parser.add_argument("--output", type=Path, help="markdown file to update (e.g. docs/...)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n-used", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run the benchmarks and print (and optionally write) the tables."""
    args = parse_args(argv)
    if args.worker:
        worker(args.worker, args.data, args.n_used)
        return
    shown = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python benchmarks/bench_dataset_properties.py", *map(shlex.quote, shown)])
    description = machine()
    print(description)
    subsections = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("manifold", "fashion"):
            if args.only and args.only != name:
                continue
            x, y = make_manifold() if name == "manifold" else load_fashion()
            data = Path(tmp) / f"{name}.npz"
            np.savez(data, x=x, y=y)
            n_total = int(x.shape[0])
            baseline_n = n_total if name == "manifold" else min(args.baseline_n, n_total)
            start_load = os.getloadavg()[0]
            with background_load(args.background_load):
                rows, notes = benchmark(name, data, n_total, baseline_n, args)
            title = (
                f"{MANIFOLD_N:,} x {MANIFOLD_D} points of a {MANIFOLD_ID}-d manifold"
                if name == "manifold"
                else f"Fashion-MNIST train, {n_total:,} x {x.shape[1]}, 10 classes"
            )
            if args.background_load:
                title += f", {args.background_load} busy background processes"
            baseline_repeats = (
                args.repeats if args.baseline_repeats is None else (args.baseline_repeats)
            )
            text = (
                f"### {title}\n\n{table(rows, n_total)}\n\n"
                f"Measured {time.strftime('%Y-%m-%d %H:%M')} with `{command}` "
                f"({args.repeats} timed run(s) of ours, {baseline_repeats} of each baseline; "
                f"load average {start_load:.1f} before, {os.getloadavg()[0]:.1f} after; "
                f"{args.background_load} busy background process(es) during the timed calls) on "
                f"{description}.\n"
            )
            notes = [*targets(name, rows, n_total), *notes]
            text += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
            print("\n" + text)
            subsections[name] = text
    if args.output:
        update_section(args.output, INTRO, subsections)
        print(f"updated {args.output}")


INTRO = f"""{SECTION_HEADING}

One exact neighbour pass, `dataset_properties(x, y)` (MLE with k = 20, TwoNN and the exact label
sharpness K_F), against the exact-kNN anchor faiss-cpu `IndexFlatL2` (`add` + `search(x, 21)`:
the neighbours alone, nothing certified, no estimate), scikit-dimension's
`MLE().fit(X, n_neighbors=20)` and `TwoNN().fit(X)` and dadapy's
`Data(X, maxk=3).compute_id_2NN()`, measured side by side in one run of
`benchmarks/bench_dataset_properties.py` (see `benchmarks/README.md`).

Each timed call runs in a fresh subprocess after loading the data and a warm-up call on 1,000
points; methods run round-robin and the table gives each one's minimum time. "ratio vs ours" is
the method's time over ours on the same points. Peak RSS is the worker process's peak resident
set size during the call (reset just before it via `/proc/self/clear_refs`), so it includes the
interpreter, the libraries and the data; the resident size before the call is in
parentheses. The estimators differ: ours is MLE with MacKay-Ghahramani pooling (what
scikit-dimension computes; duplicates collapsed) and closed-form TwoNN; scikit-dimension's and
dadapy's TwoNN fit a line after discarding the 10% largest ratios. The manifold is
`x = sin(z W + b) / sqrt(3072)` with `z ~ U[0, 1]^10`, `W ~ N(0, (2 pi 0.25)^2)` (10 x 3072),
`b ~ U[0, 2 pi)`, seed 0, and labels `1[z_1 > 0.5]`; Fashion-MNIST is the Debian package
`dataset-fashion-mnist` (60,000 x 784 in [0, 1], 10 classes).
dadapy 0.3.4 requires `numpy<2`, so it runs from its own virtual environment
(`--dadapy-python`, see `benchmarks/README.md`); without one its row says why it did not run.

Reproduce (from the repository root):

```bash
apt-get update && apt-get install -y dataset-fashion-mnist
python benchmarks/bench_dataset_properties.py --output docs/benchmarks.md
```"""


if __name__ == "__main__":
    main()
