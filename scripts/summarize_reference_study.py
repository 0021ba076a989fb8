"""Choose the sharp-label rule from the study's draws, and print the tables of the report.

``choose_rule(rows)`` is what ``measure_reference_values.py`` writes into the shipped JSON. Run
alone, it reads ``docs/reference_study.csv`` and prints the Markdown tables of
``docs/reference_values.md``::

    python scripts/summarize_reference_study.py > /tmp/tables.md
"""

from __future__ import annotations

import csv
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

CANDIDATES = ("K_F", "K_F_q05", "K_F_q10", "K_F_q25", "K_F_q50", "scale_free_K_F", "scale_free_q50")
CONFLICT_RTOL = 0.15
DEFAULT_CSV = Path(__file__).resolve().parents[1] / "docs" / "reference_study.csv"
Row = dict[str, Any]


def _key(row: Row) -> tuple[str, int, int]:
    return row["protocol"], int(row["n_classes"]), int(row["n"])


def natural_max(rows: list[Row], stat: str, exclude: str | None = None) -> dict[Any, float]:
    """Largest natural training value per (protocol, class count, N)."""
    out: dict[Any, float] = {}
    for row in rows:
        if row["domain"] != "natural" or row["dataset"] == exclude:
            continue
        out[_key(row)] = max(out.get(_key(row), -math.inf), float(row[stat]))
    return out


def _reference(maxima: dict[Any, float], row: Row) -> float | None:
    """The natural maximum at the row's protocol and class count, at the nearest N below (or
    the smallest N): the band the check would use."""
    protocol, n_classes, n = _key(row)
    sizes = sorted(k[2] for k in maxima if k[:2] == (protocol, n_classes))
    if not sizes:
        return None
    below = [s for s in sizes if s <= n]
    return maxima[(protocol, n_classes, below[-1] if below else sizes[0])]


def ratios(rows: list[Row], stat: str, domain: str, exclude: str | None = None) -> list[float]:
    maxima = natural_max(rows, stat, exclude)
    out = []
    for row in rows:
        if row["domain"] != domain or (exclude is not None and row["dataset"] != exclude):
            continue
        ref = _reference(maxima, row)
        if ref is not None and ref > 0:
            out.append(float(row[stat]) / ref)
    return out


def evaluate(rows: list[Row], stat: str) -> dict[str, Any]:
    """Separation of medical from natural draws for one statistic, with its tolerance."""
    medical = ratios(rows, stat, "medical")
    detection_margin = min(medical) if medical else math.nan
    tolerance = math.sqrt(detection_margin) if detection_margin > 1 else math.nan
    held_out = ratios(rows, stat, "held_out")
    loo: list[float] = []
    for dataset in sorted({r["dataset"] for r in rows if r["domain"] == "natural"}):
        loo.extend(ratios(rows, stat, "natural", exclude=dataset))

    def rate(values: list[float]) -> float:
        if not values or math.isnan(tolerance):
            return math.nan
        return sum(v > tolerance for v in values) / len(values)

    return {
        "statistic": stat,
        "medical_min_ratio": detection_margin,
        "tolerance": tolerance,
        "detection_rate": rate(medical),
        "held_out_false_alarm": rate(held_out),
        "held_out_max_ratio": max(held_out) if held_out else math.nan,
        "leave_one_dataset_out_false_alarm": rate(loo),
        "n_medical": len(medical),
        "n_held_out": len(held_out),
        "n_loo": len(loo),
    }


def choose_rule(rows: list[Row]) -> dict[str, Any]:
    """The candidate with the widest medical/natural separation, its tolerance (the geometric
    midpoint between the natural maximum and the lowest medical draw) and the evaluation of all."""
    table = [evaluate(rows, stat) for stat in CANDIDATES]
    usable = [e for e in table if not math.isnan(e["tolerance"])]
    best = max(usable, key=lambda e: e["medical_min_ratio"])
    conflict = [float(r["conflict_ratio"]) for r in rows if r["domain"] != "medical"]
    return {
        "statistic": best["statistic"],
        "tolerance": round(best["tolerance"], 4),
        "threshold": "tolerance x the largest natural value at the same protocol and class "
        "count, at the largest measured N not above the sample's",
        "conflict_rtol": CONFLICT_RTOL,
        "natural_min_conflict_ratio": min(conflict),
        "candidates": table,
    }


def seed_flips(rows: list[Row], stat: str, tolerance: float) -> tuple[int, int]:
    """(groups whose verdict differs between seeds, groups) over (dataset, task, protocol, N)."""
    maxima = natural_max(rows, stat)
    verdicts: dict[Any, set[bool]] = defaultdict(set)
    for row in rows:
        ref = _reference(maxima, row)
        if ref is None:
            continue
        group = (row["dataset"], row["task"], row["protocol"], int(row["n"]))
        verdicts[group].add(float(row[stat]) > tolerance * ref)
    return sum(len(v) > 1 for v in verdicts.values()), len(verdicts)


def _fmt(value: float) -> str:
    return "n/a" if isinstance(value, float) and math.isnan(value) else f"{value:.3g}"


def tables(rows: list[Row]) -> str:
    rule = choose_rule(rows)
    lines = [
        "| statistic | lowest medical / natural max | tolerance | detection | "
        "held-out false alarms | leave-one-dataset-out false alarms |",
        "|---|---|---|---|---|---|",
    ]
    for e in rule["candidates"]:
        lines.append(
            f"| {e['statistic']} | {_fmt(e['medical_min_ratio'])} | {_fmt(e['tolerance'])} | "
            f"{_fmt(e['detection_rate'])} ({e['n_medical']}) | "
            f"{_fmt(e['held_out_false_alarm'])} ({e['n_held_out']}) | "
            f"{_fmt(e['leave_one_dataset_out_false_alarm'])} ({e['n_loo']}) |"
        )
    flips, groups = seed_flips(rows, rule["statistic"], rule["tolerance"])
    lines += [
        "",
        f"Chosen: {rule['statistic']}, tolerance {rule['tolerance']}; verdicts that "
        f"flip with the seed: {flips} of {groups} (dataset, task, protocol, N) groups.",
        "",
    ]
    lines += [
        "| dataset | protocol | classes | N | K_F | K_F_q50 | scale_free_q50 | draws |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups_of: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        groups_of[(row["dataset"], row["protocol"], int(row["n_classes"]), int(row["n"]))].append(
            row
        )
    for (dataset, protocol, n_classes, n), group in sorted(groups_of.items()):
        cells = []
        for stat in ("K_F", "K_F_q50", "scale_free_q50"):
            values = [float(r[stat]) for r in group]
            cells.append(f"{min(values):.3f}-{max(values):.3f}")
        lines.append(
            f"| {dataset} | {protocol} | {n_classes} | {n} | {' | '.join(cells)} | {len(group)} |"
        )
    return "\n".join(lines)


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CSV
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    print(tables(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
