"""Self-describing checkpoints, written atomically and loaded safely.

A checkpoint file is a ``torch.save`` of a small envelope::

    {"format": "textgen-checkpoint", "version": 2, "sha256": <hex>, "step": <int>,
     "resumable": <bool>, "payload": <uint8 tensor>}

where ``payload`` holds the bytes of a ``torch.save`` of the real content (model name and config,
tokenizer model bytes, weights, step; and in a resumable checkpoint also the optimizer, data and RNG
state). Both levels are read with ``torch.load(weights_only=True)``, which refuses to unpickle
arbitrary objects, and the payload's SHA-256 must match the envelope: a damaged, truncated or edited
checkpoint is refused with a one-line :class:`CheckpointError` instead of being loaded.

Version 2 keeps the payload as raw bytes in a tensor; version 1 (still read) pickled it as text,
which made every file about half again as large. Because the envelope's own pickle is tiny,
:func:`read_summary` tells a file's step without reading its payload.

Writing goes to a temporary file in the same folder, is flushed to disk, then renamed over the old
file, so a crash mid-write never leaves a half-written checkpoint in place of a good one. A full disk
is reported as :class:`DiskFullError` (with the folder, the size needed and the space free), and the
temporary file is removed; :func:`remove_stale_temporaries` clears the ones a killed process left.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

from textgen_core.errors import CheckpointError, TextGenError

log = logging.getLogger(__name__)

FORMAT = "textgen-checkpoint"
VERSION = 2
READABLE_VERSIONS = (1, 2)
REQUIRED_KEYS = ("model_name", "model_config", "task", "tokenizers", "model", "step")
# What continuing a run needs besides the weights; a checkpoint without them is for writing only.
# "algorithm" holds the training algorithm's optimizers, scaler and counters; checkpoints written
# before it existed hold the one optimizer and the scaler at the top level (LEGACY_TRAINING_KEYS).
TRAINING_KEYS = ("algorithm", "rng", "data_state")
LEGACY_TRAINING_KEYS = ("optimizer", "scaler", "rng", "data_state")
# mkstemp's names for our temporaries: ".<file>.pt.<8 random characters>.tmp"
_TEMPORARY = re.compile(r"^\..+\.pt\.[a-z0-9_]{8}\.tmp$")
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}   # full disk, full quota
_SMALL_ENVELOPE = 1 << 16      # a version-2 envelope pickle is a few hundred bytes


class DiskFullError(TextGenError):
    """The disk (or quota) filled up while writing a file; nothing was replaced."""

    def __init__(self, path: Path, needed: int, free: int) -> None:
        self.path, self.needed, self.free = path, needed, free
        super().__init__(
            f"{path.parent}: disk full while writing {path.name} "
            f"(needs {format_size(needed)}, {format_size(free)} free)"
        )


@dataclass(frozen=True)
class CheckpointSummary:
    """What ``textgen info`` shows of a checkpoint file, read without loading its payload."""

    path: Path
    bytes: int
    step: int | None          # None for a file in the older format (its step needs a full load)
    resumable: bool | None


def format_size(n: int) -> str:
    """``512 B``, ``9.8 kB``, ``141.2 MB``, ``1.3 GB`` (powers of 1000, as disks are sold)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, an fsync and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_all(handle, data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(exc):
            raise DiskFullError(path, len(data), shutil.disk_usage(path.parent).free) from None
        raise


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk or the user's quota is full."""
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def _write_all(handle: BinaryIO, data: bytes | memoryview) -> None:
    handle.write(data)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporaries an interrupted write left in ``folder`` (only our own naming pattern).

    Call it only while no other process can be writing there (the training lock is held).
    """
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        if _TEMPORARY.match(path.name) and path.is_file():
            size = path.stat().st_size
            path.unlink(missing_ok=True)
            removed.append(path)
            log.info("removed %s (%s) left by an interrupted checkpoint write", path.name,
                     format_size(size))
    return removed


def save_checkpoint(path: Path, content: Mapping[str, Any]) -> Path:
    """Serialise ``content`` (tensors, numbers, strings, bytes, lists, dicts) atomically."""
    missing = [k for k in REQUIRED_KEYS if k not in content]
    if missing:
        raise ValueError(f"checkpoint content lacks {missing}")
    inner = io.BytesIO()
    torch.save(dict(content), inner)
    payload = inner.getbuffer()
    outer = io.BytesIO()
    torch.save(
        {
            "format": FORMAT,
            "version": VERSION,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "step": int(content["step"]),
            "resumable": is_resumable(content),
            "payload": torch.frombuffer(payload, dtype=torch.uint8),
        },
        outer,
    )
    atomic_write_bytes(path, outer.getbuffer())
    log.info("saved checkpoint %s (step %s)", path, content["step"])
    return path


def is_resumable(content: Mapping[str, Any]) -> bool:
    """Whether checkpoint ``content`` holds what continuing its run needs (current or older layout)."""
    return any(all(k in content for k in keys) for keys in (TRAINING_KEYS, LEGACY_TRAINING_KEYS))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and verify a checkpoint; every problem is a one-line :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    envelope = _safe_load(path, path.read_bytes(), map_location="cpu")
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a TextGen checkpoint")
    if envelope.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path}: checkpoint format version {envelope.get('version')} is not supported "
            f"(this TextGen reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    payload = _payload_bytes(envelope.get("payload"))
    if payload is None or hashlib.sha256(payload).hexdigest() != envelope.get("sha256"):
        raise CheckpointError(
            f"{path}: checkpoint content does not match its checksum (damaged or modified); "
            "refusing to load it"
        )
    content = _safe_load(path, payload, map_location=map_location)
    if not isinstance(content, dict) or any(k not in content for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path}: checkpoint is incomplete (missing required fields)")
    return content


def read_summary(path: Path) -> CheckpointSummary:
    """Size, step and resumability of a checkpoint file, without reading (or checking) its payload."""
    size = path.stat().st_size
    step: int | None = None
    resumable: bool | None = None
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [i for i in archive.infolist() if i.filename.endswith("/data.pkl")]
        if len(pickles) == 1 and pickles[0].file_size <= _SMALL_ENVELOPE:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                envelope = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            if isinstance(envelope, dict) and envelope.get("format") == FORMAT:
                step = envelope.get("step") if isinstance(envelope.get("step"), int) else None
                resumable = bool(envelope.get("resumable"))
    except Exception as exc:  # a damaged file still has a size; loading it says what is wrong
        log.debug("cannot summarise %s: %s", path, exc)
    return CheckpointSummary(path, size, step, resumable)


def _payload_bytes(payload: Any) -> bytes | memoryview | None:
    if isinstance(payload, bytes):                       # version 1
        return payload
    if isinstance(payload, torch.Tensor) and payload.dtype == torch.uint8 and payload.dim() == 1:
        return payload.contiguous().numpy().data          # version 2
    return None


def _safe_load(path: Path, data: bytes | memoryview, map_location: str | torch.device) -> Any:
    try:
        with warnings.catch_warnings():   # torch warns about foreign pickles; we refuse them anyway
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for bad pickles and zip errors
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            reason = "it contains objects other than plain data (possibly malicious)"
        raise CheckpointError(f"{path}: cannot read checkpoint: {reason[:200]}") from None
