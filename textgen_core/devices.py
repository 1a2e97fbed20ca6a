"""Which compute devices torch really finds, and the choice behind ``--device auto``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from textgen_core.errors import ConfigError


@dataclass(frozen=True)
class DeviceInfo:
    """One device a user can pick: ``name`` is what torch calls it ("cuda:0", "mps", "cpu")."""

    name: str
    label: str
    memory_bytes: int | None = None


def available_devices() -> list[DeviceInfo]:
    """CUDA GPUs by name and memory, Apple MPS, then the CPU."""
    found = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gib = props.total_memory / 2**30
            found.append(DeviceInfo(f"cuda:{i}", f"{props.name} ({gib:.0f} GiB)", props.total_memory))
    if _mps_available():
        found.append(DeviceInfo("mps", "Apple GPU (MPS)"))
    found.append(DeviceInfo("cpu", f"CPU ({torch.get_num_threads()} threads)"))
    return found


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks cuda -> mps -> cpu; an explicit choice that is not there is an error."""
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    kind = choice.split(":")[0]
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA GPU is available to this torch build")
        return torch.device(choice if ":" in choice else f"cuda:{local_rank}")
    if kind == "mps":
        if not _mps_available():
            raise ConfigError("--device mps: Apple MPS is not available here")
        return torch.device("mps")
    if kind == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device '{choice}'; use auto, cpu, cuda or mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())
