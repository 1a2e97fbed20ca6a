"""The model zoo side by side on the couplet sample: size, training speed, decoding speed, quality.

For every registered architecture that writes couplets, at each preset asked for: parameters, the
trainer's tokens/s, decoded sentences/s (greedy and beam 5, one first line at a time as the Write
panel does), and the validation loss and BLEU after the same wall-clock training budget. A second
table times decoding 16 and 64 tokens (ratio ~4 = linear in the output length; a model that
re-reads its whole prefix each step grows faster). Prints both tables and writes docs/models.md.

    python bench/models.py [--presets tiny small] [--budget 60] [--sentences 100] [--device cpu]
                           [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import Report, machine_line  # noqa: E402

from textgen_core import models  # noqa: E402
from textgen_core.cli import main as textgen  # noqa: E402
from textgen_core.decoding import DecodeConfig, generate  # noqa: E402
from textgen_core.generation import Generator  # noqa: E402
from textgen_core.project import Project  # noqa: E402
from textgen_core.samples import sample_files  # noqa: E402
from textgen_core.training.events import Event, Step  # noqa: E402
from textgen_core.training.run import train_project  # noqa: E402

HEADER = ("| model | preset | parameters | train tok/s | greedy sent/s | batched greedy sent/s "
          "| beam-5 sent/s | val loss | val BLEU |\n|---|---|---:|---:|---:|---:|---:|---:|---:|")


def train_for(project: Project, budget_s: float, device: str) -> float:
    """Train until the wall-clock budget is spent -> median tokens/s of the step reports."""
    rates: list[float] = []
    start = time.perf_counter()

    def on_event(event: Event) -> None:
        if isinstance(event, Step) and event.tokens_per_s:
            rates.append(float(event.tokens_per_s))

    train_project(project, steps=1_000_000, device=device, on_event=on_event,
                  should_stop=lambda: time.perf_counter() - start > budget_s)
    return statistics.median(rates) if rates else float("nan")


def validation_scores(project: Project, folder: Path) -> dict:
    """``textgen evaluate --json`` on the project's validation split."""
    pairs = project.load_pairs("valid")
    first, second = folder / "valid.in.txt", folder / "valid.out.txt"
    first.write_text("\n".join(p.source for p in pairs) + "\n", encoding="utf-8")
    second.write_text("\n".join(p.target for p in pairs) + "\n", encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = textgen(["evaluate", str(project.root), "--data", str(first), str(second), "--json"])
    return json.loads(out.getvalue()) if code == 0 else {}


def sentences_per_s(gen: Generator, lines: list[str], config: DecodeConfig) -> float:
    gen.generate(lines[0], config)                                   # warm-up
    start = time.perf_counter()
    for line in lines:
        gen.generate(line, config)
    return len(lines) / (time.perf_counter() - start)


def batched_per_s(gen: Generator, lines: list[str], config: DecodeConfig) -> float:
    """Sentences/s when all ``lines`` are decoded in batches of 64 (as evaluation and --input do)."""
    # warm-up with the very batch shapes that are timed: the first call of a new shape pays for
    # building its kernels (oneDNN), which made single 100-line measurements swing 5x
    gen.generate_many(lines, config, batch_size=64)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        gen.generate_many(lines, config, batch_size=64)
        best = min(best, time.perf_counter() - start)
    return len(lines) / best


def length_scaling(name: str, device: torch.device) -> tuple[float, float]:
    """Seconds to decode 16 and 64 tokens greedily with a fresh tiny model (block size 80)."""
    settings = {**models.preset_settings(name, "tiny"), "block_size": 80}
    config = models.build_config(name, settings, src_vocab_size=3000, tgt_vocab_size=3000, pad_id=0)
    model = models.build_model(name, config).to(device).eval()
    src = torch.randint(4, 3000, (1, 12), device=device)
    times = []
    for n in (16, 64):
        decode = DecodeConfig(strategy="greedy", max_tokens=n, min_tokens=n)
        start = time.perf_counter()
        for _ in range(5):
            with torch.inference_mode():
                stepper = models.make_stepper(model, src)
                generate(stepper, [2], eos_id=3, config=decode, banned_ids=(0, 1, 2))
        times.append((time.perf_counter() - start) / 5)
    return times[0], times[1]


def bench_one(name: str, preset: str, args: argparse.Namespace,
              folder: Path) -> tuple[str, float, float, dict]:
    """The table row, greedy sentences/s one at a time and batched, and the row's figures."""
    project = Project.create(folder / f"{name}-{preset}", "couplet", sample_files("couplet"),
                             model=name, preset=preset, progress=lambda m: None)
    rate = train_for(project, args.budget, args.device)
    scores = validation_scores(project, folder)
    gen = Generator.from_project(project, "last", device=args.device)
    # first lines every model reads (a prefix LM at the tiny preset reads half its block)
    lines = [p.source for p in project.load_pairs("test") if len(p.source) <= 11][: args.sentences]
    greedy = sentences_per_s(gen, lines, DecodeConfig(strategy="greedy"))
    batched = batched_per_s(gen, lines, DecodeConfig(strategy="greedy"))
    beam = sentences_per_s(gen, lines, DecodeConfig(strategy="beam", beam_size=5))
    params = gen.model.num_parameters() if hasattr(gen.model, "num_parameters") else sum(
        p.numel() for p in gen.model.parameters())
    loss, bleu = scores.get("loss", float("nan")), scores.get("bleu", float("nan"))
    row = (f"| {name} | {preset} | {params:,} | {rate:,.0f} | {greedy:.1f} | {batched:.1f} | {beam:.1f} "
           f"| {loss:.3f} | {bleu:.2f} |")
    figures = {"model": name, "preset": preset, "parameters": params, "train_tok_s": round(rate, 1),
               "greedy_sent_s": round(greedy, 2), "batched_greedy_sent_s": round(batched, 2),
               "beam5_sent_s": round(beam, 2), "val_loss": _number(loss, 4), "val_bleu": _number(bleu, 2)}
    return row, greedy, batched, figures


def _number(value: float, digits: int) -> float | None:
    """A figure for JSON: rounded, or None where it is not a number."""
    return None if value != value else round(float(value), digits)


def tagger_ratios(speeds: dict[tuple[str, str], tuple[float, float]], presets: list[str]) -> list[str]:
    """cnn-tagger's greedy sentences/s over the transformer's at each preset (target >= 10x)."""
    lines = []
    for preset in presets:
        tagger, transformer = speeds.get(("cnn-tagger", preset)), speeds.get(("transformer", preset))
        if tagger and transformer:
            lines.append(f"- {preset}: cnn-tagger decodes {tagger[0] / transformer[0]:.1f}x the "
                         f"transformer's greedy sentences/s one at a time, {tagger[1] / transformer[1]:.1f}x "
                         "batched.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds per model")
    parser.add_argument("--sentences", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="*", help="default: every model that writes couplets")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "models.md")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args()
    report = Report("models")
    torch.manual_seed(0)
    names = args.models or [s.name for s in models.list_specs() if "couplet" in s.tasks]
    rows = [HEADER]
    print(HEADER, flush=True)
    speeds: dict[tuple[str, str], tuple[float, float]] = {}
    table: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            for name in names:
                try:
                    row, greedy, batched, figures = bench_one(name, preset, args, Path(tmp))
                    speeds[name, preset] = (greedy, batched)
                    table.append(figures)
                except Exception as exc:  # one model's failure is a row, not the end of the table
                    row = f"| {name} | {preset} | failed: {type(exc).__name__}: {exc} | | | | | | |"
                    table.append({"model": name, "preset": preset,
                                  "failed": f"{type(exc).__name__}: {exc}"})
                rows.append(row)
                print(row, flush=True)
    ratios = tagger_ratios(speeds, args.presets)
    print("\n".join(ratios))
    scaling = ["| model | 16 tokens (ms) | 64 tokens (ms) | ratio |", "|---|---:|---:|---:|"]
    lengths: list[dict] = []
    for name in names:
        if models.get_spec(name).same_length:
            continue                                     # a tagger's length is its input's
        short, long = length_scaling(name, torch.device(args.device))
        scaling.append(f"| {name} | {short * 1e3:.1f} | {long * 1e3:.1f} | {long / short:.1f} |")
        lengths.append({"model": name, "ms_16": round(short * 1e3, 2), "ms_64": round(long * 1e3, 2),
                        "ratio": round(long / short, 2)})
    print("\n".join(scaling))
    text = ("# Models on the couplet sample\n\nMeasured by `python bench/models.py "
            f"--presets {' '.join(args.presets)} --budget {args.budget:g}` on {args.device} "
            f"({torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} at the end): "
            "each model trains for the same wall-clock "
            "budget on the bundled 3,000 couplets; decoding speed is one first line at a time, and "
            "all of them in batches of 64 (as `textgen evaluate` and `textgen generate --input` "
            "decode)."
            "\n\n" + "\n".join(rows) + "\n\n" + "\n".join(ratios)
            + "\n\n## Decoding time against output length\n\n"
            + "\n".join(scaling) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"written to {args.out}")
    body = text.split("\n\n", 1)[1].replace("\n## ", "\n### ")      # without the page's title
    results = {"device": args.device, "presets": args.presets, "budget_s": args.budget,
               "sentences": args.sentences, "models": table,
               "tagger_over_transformer": {
                   p: {"greedy": round(speeds["cnn-tagger", p][0] / speeds["transformer", p][0], 2),
                       "batched": round(speeds["cnn-tagger", p][1] / speeds["transformer", p][1], 2)}
                   for p in args.presets if ("cnn-tagger", p) in speeds and ("transformer", p) in speeds},
               "length_scaling": lengths}
    report.write(args.json, results, body.rstrip() + f"\n\nMachine: {machine_line()}.")


if __name__ == "__main__":
    main()
