"""Peak memory of training each model preset for a few steps on the bundled sample couplets.

For every model and preset asked for, a fresh process creates a real project from
resources/samples/couplets.* (``Project.create``), trains it ``--steps`` steps
(``train_project``, evaluation and checkpoints as a real run does) and reports:

* peak resident memory (CPU) of the whole process, and the part training added: the
  resident-memory high-water mark is reset (Linux ``/proc/self/clear_refs``) once the project is
  made, just before training, and read again after it;
* peak CUDA memory allocated during training, where a GPU is used; else "not measured (no GPU)".

One process per row, so that peaks do not mix (as bench/decoding.py's beam-memory section does).

    python bench/memory.py [--steps 20] [--presets tiny small]
                           [--models transformer gpt bahdanau-attention cnn-tagger] [--device auto]
                           [--json PATH]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import Report, machine_line  # noqa: E402

MODELS = ["transformer", "gpt", "bahdanau-attention", "cnn-tagger"]
PRESETS = ["tiny", "small"]
NO_GPU = "not measured (no GPU)"


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def probe(model: str, preset: str, steps: int, device: str) -> dict[str, Any]:
    """The child process: make the project, train it, measure -> the row's figures."""
    import torch

    from textgen_core.devices import resolve_device
    from textgen_core.project import Project
    from textgen_core.samples import sample_files
    from textgen_core.training import events
    from textgen_core.training.run import train_project

    dev = resolve_device(device)
    with tempfile.TemporaryDirectory(prefix="textgen-memory-") as tmp:
        project = Project.create(Path(tmp) / "couplets", "couplet", sample_files("couplet"), model=model,
                                 preset=preset, progress=lambda m: None)
        cuda = dev.type == "cuda"
        if cuda:
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        peak_before = _status_kib("VmHWM")        # Python, torch, the corpus, the project
        reset = False
        try:                                       # resident-memory high-water mark := current RSS
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            Path("/proc/self/clear_refs").write_text("5")
            reset = True
        except OSError:
            pass
        before = _status_kib("VmRSS")
        seen: dict[str, int] = {}

        def on_event(event: events.Event) -> None:
            if isinstance(event, events.Config):
                seen["parameters"] = event.parameters

        outcome = train_project(project, steps=steps, device=str(dev), on_event=on_event)
        after_hwm = _status_kib("VmHWM")
        cuda_peak = torch.cuda.max_memory_allocated(dev) / 2**20 if cuda else None
    if reset and peak_before and after_hwm:       # the reset cleared the process's own mark too
        peak_kib = max(peak_before, after_hwm)
    else:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    params = seen.get("parameters")
    return {"model": model, "preset": preset, "device": str(dev), "steps": outcome.step,
            "parameters": params, "peak_rss_mib": round(peak_kib / 1024, 1),
            "rss_before_training_mib": round(before / 1024, 1) if before else None,
            "training_peak_rss_mib": round(after_hwm / 1024, 1) if reset and after_hwm else None,
            "training_added_rss_mib": (round((after_hwm - before) / 1024, 1)
                                       if reset and after_hwm and before else None),
            "cuda_peak_mib": round(cuda_peak, 1) if cuda_peak is not None else None,
            "gpu_present": torch.cuda.is_available()}


def measure(model: str, preset: str, steps: int, device: str) -> dict[str, Any]:
    """One row in a fresh process (``--probe``) -> its figures, or the failure."""
    command = [sys.executable, __file__, "--probe", model, preset, "--steps", str(steps), "--device", device]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        return {"model": model, "preset": preset, "failed": f"exit code {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def _mib(value: float | None) -> str:
    return "not measured" if value is None else f"{value:,.0f}"


def row(r: dict[str, Any]) -> str:
    if "failed" in r:
        return f"| {r['model']} | {r['preset']} | failed: {r['failed']} | | | | |"
    if r["device"].startswith("cuda"):
        cuda = _mib(r["cuda_peak_mib"])
    else:
        cuda = "not measured (trained on the CPU)" if r.get("gpu_present") else NO_GPU
    params = f"{r['parameters']:,}" if r.get("parameters") else "?"
    return (f"| {r['model']} | {r['preset']} | {params} | {_mib(r['peak_rss_mib'])} "
            f"| {_mib(r['training_peak_rss_mib'])} | {_mib(r['training_added_rss_mib'])} | {cuda} |")


def markdown(rows: list[dict[str, Any]], steps: int, gpu: bool) -> str:
    table = ["| model | preset | parameters | peak RSS, whole process (MiB) | peak RSS in training (MiB) "
             "| added by training (MiB) | peak CUDA memory (MiB) |", "|---|---|---:|---:|---:|---:|---:|"]
    table += [row(r) for r in rows]
    gpu_note = ("Peak CUDA memory is torch's maximum allocated memory during training."
                if gpu else f"Peak CUDA memory: {NO_GPU}; training ran on the CPU.")
    return (f"Each row: a fresh process makes a project from the bundled 3,000 sample couplets and trains "
            f"it {steps} steps (evaluation and checkpoints included, as a real run). Peak RSS, whole "
            "process: its resident-memory high-water mark from start (Python, torch, the corpus, the "
            "project). In training: the high-water mark reset just before training starts. Added: that "
            f"peak minus the resident memory at the start of training. {gpu_note}\n\n"
            + "\n".join(table) + f"\n\nMachine: {machine_line()}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--device", default="auto", help="auto: a GPU where there is one, else the CPU")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    parser.add_argument("--probe", nargs=2, metavar=("MODEL", "PRESET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(*args.probe, args.steps, args.device)), flush=True)
        return 0
    report = Report("memory")
    import torch

    gpu = torch.cuda.is_available() and args.device != "cpu"
    rows = []
    print(f"{args.steps} training steps per row, device {args.device}", flush=True)
    for preset in args.presets:
        for model in args.models:
            rows.append(measure(model, preset, args.steps, args.device))
            print(row(rows[-1]), flush=True)
    text = markdown(rows, args.steps, gpu)
    print(text)
    report.write(args.json, {"steps": args.steps, "device": args.device, "gpu": gpu,
                             "cuda": None if gpu else NO_GPU, "rows": rows}, text)
    return 1 if any("failed" in r for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
