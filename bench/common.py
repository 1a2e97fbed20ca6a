"""What every benchmark script shares: the machine it ran on, the reference data, the result file.

Every ``bench/*.py`` prints its figures as markdown and, with ``--json PATH``, writes one JSON
object that ``bench/run.py`` collects into ``bench/results/`` and ``docs/BENCHMARKS.md``::

    {"bench": "quality", "command": "python bench/quality.py --budget 60", "machine": {...},
     "started": "2026-12-03T10:00:00Z", "seconds": 812.4,
     "results": {...},            # the figures, machine-readable (free form per benchmark)
     "markdown": "## ...\\n..."}   # the section docs/BENCHMARKS.md shows

Import it from a benchmark as ``from common import ...`` after ``sys.path.insert(0, BENCH)``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SHARED_DATA = ROOT.parent / "shared" / "data"      # the reference corpora beside the repository
RESULTS = BENCH / "results"


def shared_file(*parts: str) -> Path | None:
    """A reference corpus under ../shared/data, or None where this checkout has none."""
    path = SHARED_DATA.joinpath(*parts)
    return path if path.is_file() else None


def machine() -> dict[str, Any]:
    """The machine a figure came from: CPU, cores, threads torch uses, load, GPU, versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def machine_line(info: dict[str, Any] | None = None) -> str:
    """One line for a report: ``2 cores of <cpu>, torch 2.x (2 threads), load 0.4; no GPU``."""
    m = info or machine()
    gpu = f"GPU {m['gpu']}" if m.get("gpu") else "no GPU"
    return (f"{m['cores']} cores of {m['cpu']}, torch {m['torch']} ({m['torch_threads']} threads), "
            f"load average {m['load_average']}; {gpu}")


class Report:
    """Collects a benchmark's results and writes the JSON file ``--json`` asks for."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.command = "python " + " ".join(shlex.quote(a) for a in [_relative(sys.argv[0])] + sys.argv[1:])
        self.started = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._clock = time.perf_counter()

    def write(self, path: Path | None, results: dict[str, Any], markdown: str) -> None:
        if path is None:
            return
        record = {"bench": self.bench, "command": self.command, "machine": machine(),
                  "started": self.started, "seconds": round(time.perf_counter() - self._clock, 1),
                  "results": results, "markdown": markdown}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _relative(script: str) -> str:
    try:
        return str(Path(script).resolve().relative_to(ROOT))
    except ValueError:
        return script
