"""Read what a W&B run recorded, from its ``.wandb`` file (offline runs write no summary json).

The file is a LevelDB-style log: a 7-byte header (``:W&B``, magic 0xBEE1, version), then 32 KiB
blocks of records, each with a 7-byte header (crc32c, little-endian length, type: 1 full,
2 first, 3 middle, 4 last) and a chunk of a serialized ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BLOCK = 32 * 1024
_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> list[bytes]:
    ident, magic, _version = struct.unpack("<4sHB", data[:_HEADER])
    assert ident == b":W&B" and magic == 0xBEE1, "not a W&B run file"
    offset, pending, out = _HEADER, b"", []
    while offset + _HEADER <= len(data):
        space = _BLOCK - offset % _BLOCK
        if space < _HEADER:
            offset += space
            continue
        _crc, length, kind = struct.unpack("<IHB", data[offset : offset + _HEADER])
        if kind == 0 and length == 0:
            offset += space
            continue
        if offset + _HEADER + length > len(data):
            break  # a record still being written
        chunk = data[offset + _HEADER : offset + _HEADER + length]
        offset += _HEADER + length
        if kind == _FULL:
            out.append(chunk)
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            out.append(pending + chunk)
            pending = b""
    return out


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


@dataclass
class RunRecords:
    """History rows, summary, config, alerts and anything else a run file holds."""

    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    alerts: list[tuple[str, str]] = field(default_factory=list)

    def values(self, key: str) -> list[Any]:
        """Every logged value of ``key``, in order."""
        return [row[key] for row in self.history if key in row]


def _records(run_file: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2

    out = []
    for payload in _payloads(run_file.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        out.append(record)
    return out


def read_run(run_file: Path, *, timeout_s: float = 60.0) -> RunRecords:
    """Parse one ``run-*.wandb`` file, once wandb has written its final ``exit`` record.

    ``run.finish()`` can return before wandb's writer process has flushed the file.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        parsed = _records(run_file) if run_file.exists() else []
        if any(r.WhichOneof("record_type") == "exit" for r in parsed):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{run_file} has no exit record after {timeout_s} s")
        time.sleep(0.1)
    records = RunRecords()
    for record in parsed:
        kind = record.WhichOneof("record_type")
        if kind == "history":
            records.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            records.summary.update(
                {_key(i): json.loads(i.value_json) for i in record.summary.update}
            )
        elif kind == "config":
            records.config.update({_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "alert":
            records.alerts.append((record.alert.title, record.alert.text))
    return records


def find_run_file(root: Path) -> Path:
    """The single ``.wandb`` run file below ``root``."""
    files = sorted(root.rglob("run-*.wandb"))
    assert len(files) == 1, f"expected one W&B run file below {root}, found {files}"
    return files[0]
