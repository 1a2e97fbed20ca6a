"""Run every benchmark, keep each one's JSON record in bench/results/, and write docs/BENCHMARKS.md.

Each benchmark runs as its own process with ``--json bench/results/<name>.json``; one that is missing
or fails is reported in the summary (with the tail of its stderr) and the others still run. Afterwards
docs/BENCHMARKS.md is rebuilt from every JSON record in bench/results/, not only the ones just run.

    python bench/run.py                      # everything, at each benchmark's default size (hours)
    python bench/run.py --quick              # a CPU subset with small arguments (minutes)
    python bench/run.py --only memory decoding
    python bench/run.py --skip seqgan_oracle shakespeare
    python bench/run.py --list               # the plan, nothing run
    python bench/run.py --report-only        # rebuild docs/BENCHMARKS.md from bench/results/*.json
"""

from __future__ import annotations

import argparse
import collections
import json
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DOCS = ROOT / "docs" / "BENCHMARKS.md"
NO_GPU = "not measured (no GPU)"
FROZEN_APP = Path("dist") / "TextGenStudio" / "TextGenStudio"


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    what: str                                   # one line for the intro: what the figure is
    args: tuple[str, ...] = ()                  # the full run
    quick: tuple[str, ...] | None = ()          # --quick; None: not part of --quick
    folder: Path = BENCH                        # where its script is

    @property
    def script(self) -> Path:
        return self.folder / f"{self.name}.py"


def benches(root: Path = ROOT, gpu: bool | None = None) -> list[Bench]:
    """Every benchmark, in the order they run and appear in docs/BENCHMARKS.md."""
    frozen = ("--frozen", str(FROZEN_APP)) if (root / FROZEN_APP).is_file() else ()
    gpu = _gpu() if gpu is None else gpu
    return [
        Bench("train_throughput", "Trainer overhead (CLI)",
              "tokens/s of textgen's Trainer over a bare PyTorch loop on the same batches; "
              "target >= 0.95.", (), ("--steps", "20", "--rounds", "2")),
        Bench("studio_throughput", "Training in the studio against the CLI",
              "tokens/s of training in the studio (worker thread, live event loop) over `textgen train`; "
              "target >= 0.95.", (), ("--steps", "40", "--rounds", "2")),
        Bench("studio_startup", "Studio start-up and responsiveness",
              "seconds to the main window, GUI event-loop latency p50/p99 while training, and peak "
              "memory, from `textgen-studio --self-test` (and the packaged app where it is built).",
              frozen, ("--rounds", "1", *frozen)),
        Bench("memory", "Memory of training",
              "peak resident memory (and peak CUDA memory on a GPU) of training each model preset a "
              "few steps, one fresh process each.", (), ("--presets", "tiny")),
        Bench("decoding", "Decoding speed",
              "KV cache speed-ups, batched beam search against one sentence at a time, and the batched "
              "beam's memory.", (),
              ("--sections", "kv-cache", "--repeats", "1", "--out", "bench/results/decoding.md")),
        Bench("models", "The model zoo side by side",
              "size, training and decoding speed, and validation loss/BLEU of every couplet model "
              "after the same training time.", (),
              ("--presets", "tiny", "--budget", "5", "--sentences", "20",
               "--out", "bench/results/models.md")),
        Bench("quality", "Quality of the couplet models",
              "whether every model keeps the couplet form (target 100 %), with its loss and scores.",
              (), ("--quick",)),
        Bench("shakespeare", "Character-level Shakespeare against nanoGPT",
              "textgen's speed per iteration and validation loss against nanoGPT's on the same "
              "data and settings (targets: speed >= nanoGPT's, val loss <= nanoGPT's).",
              ("--gpu-config",) if gpu else (), ("--quick",)),
        Bench("seqgan_oracle", "SeqGAN against an oracle LSTM",
              "oracle NLL of the generator's samples after MLE, more MLE, and adversarial training "
              "(Yu et al. 2017, at a small scale).", (), None),
    ]


def _gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


# ----------------------------------------------------------------------------- the plan


@dataclass
class Step:
    bench: Bench
    command: list[str]
    json_path: Path


def plan(all_benches: Sequence[Bench], *, quick: bool = False, only: Sequence[str] = (),
         skip: Sequence[str] = (), results: Path = RESULTS, python: str = sys.executable) -> list[Step]:
    """The benchmarks to run and their command lines. ``--only`` names run even where --quick would
    leave them out (with their full arguments, as they have no quick ones)."""
    known = {b.name for b in all_benches}
    unknown = [n for n in [*only, *skip] if n not in known]
    if unknown:
        raise ValueError(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    steps = []
    for b in all_benches:
        if (only and b.name not in only) or b.name in skip:
            continue
        if quick and b.quick is None and b.name not in only:
            continue
        args = b.quick if quick and b.quick is not None else b.args
        json_path = results / f"{b.name}.json"
        steps.append(Step(b, [python, _shown(b.script), *args, "--json", _shown(json_path)], json_path))
    return steps


def _shown(path: Path) -> str:
    """A path relative to the repository where it is inside (commands run from the root)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- running


@dataclass
class Outcome:
    name: str
    status: str                                 # ok | failed | missing
    seconds: float = 0.0
    detail: str = ""                            # why it failed: the stderr tail
    stderr_tail: list[str] = field(default_factory=list)


def run_step(step: Step, *, cwd: Path = ROOT, timeout_s: float | None = None,
             echo: Callable[[str], None] = lambda line: print(line, end="", file=sys.stderr)) -> Outcome:
    """Run one benchmark, streaming its output -> how it went. Never raises for the benchmark's sake."""
    script = step.command[1]
    if not (cwd / script).is_file() and not Path(script).is_file():
        return Outcome(step.bench.name, "missing", detail=f"{script} does not exist")
    tail: collections.deque[str] = collections.deque(maxlen=20)
    start_wall, start = time.time(), time.perf_counter()
    try:
        proc = subprocess.Popen(step.command, cwd=cwd, stderr=subprocess.PIPE, text=True,
                                encoding="utf-8", errors="replace")
    except OSError as exc:
        return Outcome(step.bench.name, "failed", detail=f"could not start: {exc}")

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line.rstrip("\n"))
            echo(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    reader.join(timeout=10)
    seconds = time.perf_counter() - start
    lines = list(tail)
    if code is None:
        return Outcome(step.bench.name, "failed", seconds, f"timed out after {timeout_s:g} s", lines)
    if code != 0:
        return Outcome(step.bench.name, "failed", seconds, f"exit code {code}", lines)
    if not step.json_path.is_file() or step.json_path.stat().st_mtime < start_wall - 1:
        return Outcome(step.bench.name, "failed", seconds, f"wrote no {_shown(step.json_path)}", lines)
    return Outcome(step.bench.name, "ok", seconds, "", lines)


def summary(outcomes: Sequence[Outcome]) -> str:
    lines = ["", "Summary:"]
    for o in outcomes:
        lines.append(f"  {o.name:<18} {o.status:<8} {o.seconds:7.0f} s  {o.detail}")
    for o in outcomes:
        if o.status == "failed" and o.stderr_tail:
            lines.append(f"\n--- {o.name}: last lines of stderr ---")
            lines += [f"  {x}" for x in o.stderr_tail[-12:]]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the report


def load_records(results: Path) -> list[dict[str, Any]]:
    """Every JSON record in ``results`` that parses and looks like one (others are skipped)."""
    records = []
    for path in sorted(results.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            print(f"skipping {path}: {exc}", file=sys.stderr)
            continue
        if isinstance(record, dict) and "markdown" in record:
            record.setdefault("bench", path.stem)
            records.append(record)
    return records


def machine_line(m: dict[str, Any]) -> str:
    gpu = f"GPU {m['gpu']}" if m.get("gpu") else "no GPU"
    return (f"{m.get('cores')} cores of {m.get('cpu')}, torch {m.get('torch')} "
            f"({m.get('torch_threads')} threads), load average {m.get('load_average')}; {gpu}")


INTRO = """# Benchmarks

Written by `python bench/run.py` from the JSON records in `bench/results/` (one per benchmark; see
`bench/results/README.md`). `python bench/run.py --report-only` rebuilds this page from them;
`python bench/run.py --quick` is a few-minute CPU subset with small arguments, whose figures are for
checking that the benchmarks run, not for quoting. Every section names the machine, the exact command,
the date and how long it ran. A figure that needs a GPU reads "{no_gpu}" where the run had none; no
figure here is an estimate.

Targets:

- Trainer overhead: textgen's Trainer against a bare PyTorch loop, tokens/s ratio **>= 0.95**, from the
  CLI (`train_throughput`) and in the studio (`studio_throughput`: studio against `textgen train`).
- Shakespeare (character level) against nanoGPT: textgen at least nanoGPT's speed per iteration, and a
  validation loss no higher than nanoGPT's (about 1.88-1.89 with the CPU configuration; 1.4697 with
  the GPU configuration).
- Couplet form (`quality`): the second line has the first's length, its punctuation at the same
  places and its repeated characters mirrored (`textgen_core.couplet_form`) **100 %** of the time, for
  every model.

The bundled ready-to-write couplet model has its own figures, comparison and commands in
`resources/pretrained/couplets/README.md`.

What each benchmark measures:

{whats}
"""


def report(records: Sequence[dict[str, Any]], all_benches: Sequence[Bench]) -> str:
    """docs/BENCHMARKS.md from the records: the intro, a table of the runs, one section each."""
    by_name = {r["bench"]: r for r in records}
    names = [b.name for b in all_benches]
    order = names + sorted(n for n in by_name if n not in names)
    titles = {b.name: b.title for b in all_benches}
    whats = "\n".join(f"- `{b.name}`: {b.what}" for b in all_benches)
    text = INTRO.format(no_gpu=NO_GPU, whats=whats)
    runs = ["| benchmark | date (UTC) | duration | machine |", "|---|---|---:|---|"]
    for name in order:
        r = by_name.get(name)
        if r is None:
            runs.append(f"| {titles.get(name, name)} | not run yet | | |")
            continue
        m = r.get("machine") or {}
        gpu = f"GPU {m['gpu']}" if m.get("gpu") else "no GPU"
        runs.append(f"| [{titles.get(name, name)}](#{_anchor(titles.get(name, name))}) | {_date(r)} "
                    f"| {_duration(r.get('seconds'))} | {m.get('cores')} cores, {gpu} |")
    text += "\n## Runs\n\n" + "\n".join(runs) + "\n"
    for name in order:
        r = by_name.get(name)
        if r is None:
            continue
        m = r.get("machine") or {}
        markdown = str(r["markdown"]).strip()
        gpu_note = "" if m.get("gpu") else f"GPU figures: {NO_GPU}."
        # the machine line, unless the benchmark's own section already has it
        where = "" if f"cores of {m.get('cpu')}" in markdown else f"Machine: {machine_line(m)}. "
        text += (f"\n## {titles.get(name, name)}\n\n"
                 f"Command: `{r.get('command', '?')}`  \n"
                 f"Run: {_date(r)} UTC, {_duration(r.get('seconds'))}  \n"
                 f"{where}{gpu_note}\n\n{markdown}\n")
    return text


def _anchor(title: str) -> str:
    """GitHub's heading anchor."""
    keep = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return keep.replace(" ", "-")


def _date(record: dict[str, Any]) -> str:
    started = str(record.get("started", "?"))
    return started.replace("T", " ").removesuffix("Z")


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def write_report(results: Path = RESULTS, docs: Path = DOCS,
                 all_benches: Sequence[Bench] | None = None) -> Path:
    """docs/BENCHMARKS.md; ``results/SUMMARY.md`` (written by a person: what the figures say, which
    targets are met) goes after the intro when it exists."""
    text = report(load_records(results), all_benches if all_benches is not None else benches())
    summary = results / "SUMMARY.md"
    if summary.is_file():
        said = summary.read_text(encoding="utf-8").strip()
        text = text.replace("\n## Runs\n", f"\n{said}\n\n## Runs\n", 1)
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(text, encoding="utf-8")
    return docs


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None, *, all_benches: Sequence[Bench] | None = None,
         cwd: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few-minute CPU subset with small arguments")
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="run only these")
    parser.add_argument("--skip", nargs="+", default=[], metavar="NAME", help="do not run these")
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild docs/BENCHMARKS.md from bench/results/*.json, run nothing")
    parser.add_argument("--timeout", type=float, metavar="S", help="give up on one benchmark after S seconds")
    parser.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    parser.add_argument("--docs", type=Path, default=DOCS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    all_benches = list(all_benches) if all_benches is not None else benches()
    if args.report_only:
        print(f"written {write_report(args.results, args.docs, all_benches)}")
        return 0
    try:
        steps = plan(all_benches, quick=args.quick, only=args.only, skip=args.skip, results=args.results)
    except ValueError as exc:
        parser.error(str(exc))
    if args.list:
        for step in steps:
            missing = "" if (cwd / step.command[1]).is_file() else "   (missing: not written yet)"
            print(f"{step.bench.name:<18} {shlex.join(['python', *step.command[1:]])}{missing}")
        return 0
    args.results.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for i, step in enumerate(steps, 1):
        print(f"\n=== [{i}/{len(steps)}] {step.bench.name}: {shlex.join(['python', *step.command[1:]])}",
              flush=True)
        outcome = run_step(step, cwd=cwd, timeout_s=args.timeout)
        print(f"=== {step.bench.name}: {outcome.status} in {outcome.seconds:.0f} s {outcome.detail}",
              flush=True)
        outcomes.append(outcome)
    print(summary(outcomes))
    print(f"written {write_report(args.results, args.docs, all_benches)}")
    return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
