"""Self-describing checkpoints, written atomically and loaded safely.

A checkpoint file is a ``torch.save`` of a small envelope::

    {"format": "textgen-checkpoint", "version": 1, "sha256": <hex>, "payload": <bytes>}

where ``payload`` is itself a ``torch.save`` of the real content (model name and config, tokenizer
model bytes, weights, optimizer and data state, step, RNG state). Both levels are read with
``torch.load(weights_only=True)``, which refuses to unpickle arbitrary objects, and the payload's
SHA-256 must match the envelope: a damaged, truncated or edited checkpoint is refused with a
one-line :class:`CheckpointError` instead of being loaded.

Writing goes to a temporary file in the same folder, is flushed to disk, then renamed over the old
file, so a crash mid-write never leaves a half-written checkpoint in place of a good one.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch

from textgen_core.errors import CheckpointError

log = logging.getLogger(__name__)

FORMAT = "textgen-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("model_name", "model_config", "task", "tokenizers", "model", "step")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename."""
    _write_atomically(path, lambda handle: handle.write(data))


def _write_atomically(path: Path, fill: Callable[[BinaryIO], object]) -> None:
    """``fill`` a temp file in ``path``'s folder, flush it to disk, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, content: Mapping[str, Any]) -> Path:
    """Serialise ``content`` (tensors, numbers, strings, bytes, lists, dicts) atomically."""
    missing = [k for k in REQUIRED_KEYS if k not in content]
    if missing:
        raise ValueError(f"checkpoint content lacks {missing}")
    inner = io.BytesIO()
    torch.save(dict(content), inner)
    payload = inner.getvalue()
    outer = io.BytesIO()
    torch.save(
        {
            "format": FORMAT,
            "version": VERSION,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "payload": payload,
        },
        outer,
    )
    atomic_write_bytes(path, outer.getvalue())
    log.info("saved checkpoint %s (step %s)", path, content["step"])
    return path


def copy_checkpoint(src: Path, dst: Path) -> Path:
    """Atomically make ``dst`` a byte copy of the checkpoint ``src`` (no re-serialisation)."""
    with open(src, "rb") as source:
        _write_atomically(dst, lambda handle: shutil.copyfileobj(source, handle))
    log.info("copied checkpoint %s to %s", src, dst)
    return dst


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and verify a checkpoint; every problem is a one-line :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    envelope = _safe_load(path, path.read_bytes(), map_location="cpu")
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a TextGen checkpoint")
    if envelope.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {envelope.get('version')} is not supported "
            f"(this TextGen reads version {VERSION})"
        )
    payload = envelope.get("payload")
    if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != envelope.get(
        "sha256"
    ):
        raise CheckpointError(
            f"{path}: checkpoint content does not match its checksum (damaged or modified); "
            "refusing to load it"
        )
    content = _safe_load(path, payload, map_location=map_location)
    if not isinstance(content, dict) or any(k not in content for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path}: checkpoint is incomplete (missing required fields)")
    return content


def _safe_load(path: Path, data: bytes, map_location: str | torch.device) -> Any:
    try:
        with warnings.catch_warnings():   # torch warns about foreign pickles; we refuse them anyway
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for bad pickles and zip errors
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            reason = "it contains objects other than plain data (possibly malicious)"
        raise CheckpointError(f"{path}: cannot read checkpoint: {reason[:200]}") from None
