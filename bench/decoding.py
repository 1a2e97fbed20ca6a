"""Decoding benchmarks, one section each, printed as markdown tables and kept in docs/decoding.md.

Sections (``--sections``, default all):

* ``kv-cache``: tokens/s of greedy (and beam-4) decoding with and without the KV cache, for a
  512-token GPT continuation and 64-token Transformer seq2seq outputs (eos banned, so every
  output is full length). Random weights: speed does not depend on what the model learnt.
* ``batched-beam``: sentences/s for 1,000 couplet first lines with beam 5 (a couplet Transformer
  trained briefly on the bundled sample, the couplet rules on), all in batches against one at a
  time, and whether both give the same couplets.
* ``beam-memory``: peak memory of the batched beam (beam 5) at batch 64 against batch 1, each
  measured in a fresh process (peak resident memory on a CPU, peak allocated memory on a GPU).

Each section is a function ``(args) -> (markdown, figures)`` registered in ``SECTIONS``; running
some sections rewrites only their part of the docs page and keeps the others. ``--json PATH`` also
writes the figures of the sections run as one result record (``bench/common.py``).

    python bench/decoding.py [--sections kv-cache] [--device cpu] [--repeats 3] [--threads 1]
                             [--json PATH]
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import Report, machine_line  # noqa: E402

from textgen_core.decoding import DecodeConfig, generate  # noqa: E402
from textgen_core.decoding.steppers import LMStepper, Seq2SeqStepper, Stepper  # noqa: E402
from textgen_core.generation import Generator  # noqa: E402
from textgen_core.models.gpt import GPT, GPTConfig  # noqa: E402
from textgen_core.models.transformer import Transformer, TransformerConfig  # noqa: E402
from textgen_core.project import Project  # noqa: E402
from textgen_core.samples import sample_files  # noqa: E402
from textgen_core.training.run import train_project  # noqa: E402

VOCAB, PAD, BOS, EOS = 3000, 0, 2, 3
TITLES = {"kv-cache": "KV cache", "batched-beam": "Batched beam search",
          "beam-memory": "Memory of the batched beam"}


# ----------------------------------------------------------------------------- helpers


def tokens_per_s(make: Callable[[], Stepper], prefix: list[int], config: DecodeConfig,
                 repeats: int, min_seconds: float = 3.0) -> float:
    """Best of at least ``repeats`` timed searches (after one warm-up), repeated until
    ``min_seconds`` are spent so that fast figures are not one unlucky run on a busy machine
    -> generated tokens per second. The stepper is built inside the timing (a seq2seq stepper
    encodes the source there)."""
    warm = dataclasses.replace(config, max_tokens=8, min_tokens=8)
    generate(make(), prefix, eos_id=EOS, config=warm, banned_ids=(PAD, BOS))
    best, runs, spent = float("inf"), 0, 0.0
    while runs < repeats or spent < min_seconds:
        start = time.perf_counter()
        hyps = generate(make(), prefix, eos_id=EOS, config=config, banned_ids=(PAD, BOS))
        took = time.perf_counter() - start
        best, runs, spent = min(best, took), runs + 1, spent + took
    return len(hyps[0].ids) / best


def _row(model: str, search: str, length: int, plain: float, cached: float) -> str:
    return (f"| {model} | {search} | {length} | {plain:,.0f} | {cached:,.0f} "
            f"| {cached / plain:.1f}x |")


# ----------------------------------------------------------------------------- KV cache


def _gpt(device: torch.device) -> nn.Module:
    """The ``small`` GPT preset with a context long enough for the 512-token continuation."""
    config = GPTConfig(vocab_size=VOCAB, n_layer=4, n_head=4, n_embd=256, block_size=1024, dropout=0.0)
    return GPT(config).to(device).eval()


def _transformer(device: torch.device) -> nn.Module:
    """The ``small`` Transformer preset (3 + 3 layers, width 256)."""
    config = TransformerConfig(src_vocab_size=VOCAB, tgt_vocab_size=VOCAB, pad_id=PAD, n_layer=3,
                               n_head=4, n_embd=256, ffn_dim=1024, dropout=0.0, block_size=256)
    return Transformer(config).to(device).eval()


def kv_cache_section(args: argparse.Namespace) -> tuple[str, dict]:
    """Tokens/s with and without the KV cache -> a markdown table, and its figures."""
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    rows = ["| model | search | output tokens | uncached tok/s | cached tok/s | speed-up |",
            "|---|---|---:|---:|---:|---:|"]
    figures: list[dict] = []

    def keep(model: str, search: str, length: int, plain: float, cached: float) -> None:
        figures.append({"model": model, "search": search, "output_tokens": length,
                        "uncached_tok_s": round(plain, 1), "cached_tok_s": round(cached, 1),
                        "speed_up": round(cached / plain, 2)})

    gpt = _gpt(device)
    prompt = torch.randint(4, VOCAB, (16,), generator=gen).tolist()
    greedy = DecodeConfig(strategy="greedy", max_tokens=512, min_tokens=512)
    speeds = [tokens_per_s(lambda c=c: LMStepper(gpt, cache=c), prompt, greedy, args.repeats)
              for c in (False, True)]
    rows.append(_row("GPT small, context 1024 (16-token prompt)", "greedy", 512, *speeds))
    keep("GPT small, context 1024 (16-token prompt)", "greedy", 512, *speeds)
    print(rows[-1], flush=True)
    seq2seq = _transformer(device)
    src = torch.randint(4, VOCAB, (1, 24), generator=gen).to(device)
    for search, config in (("greedy", DecodeConfig(strategy="greedy", max_tokens=64, min_tokens=64)),
                           ("beam 4", DecodeConfig(strategy="beam", beam_size=4, max_tokens=64,
                                                   min_tokens=64))):
        speeds = [tokens_per_s(lambda c=c: Seq2SeqStepper(seq2seq, src, cache=c), [BOS], config,
                               args.repeats) for c in (False, True)]
        rows.append(_row("Transformer small (24-token source)", search, 64, *speeds))
        keep("Transformer small (24-token source)", search, 64, *speeds)
        print(rows[-1], flush=True)
    return ("Tokens written per second by one search (best of at least "
            f"{args.repeats} runs and 3 s, after a warm-up), random weights, eos banned so that every output "
            "has its full length. Uncached: the stepper re-runs the decoder over the whole prefix "
            "every step (`cache=False`). Cached: only the new token is fed; the Transformer's "
            "cross-attention keys and values are projected once per source. A GPT prefix longer "
            "than `block_size` re-prefills its last `block_size` tokens every step (learned "
            "positions cannot slide a cache), so past the block the two run at the same speed. The "
            "short cached runs suffer most from other load on the machine (load average above): "
            "read the speed-ups as lower bounds.\n\n"
            + "\n".join(rows)), {"rows": figures}


# ----------------------------------------------------------------------------- batched beam


def _couplet_generator(folder: Path, device: str) -> tuple[Generator, list[str]]:
    """A couplet Transformer at the ``small`` preset trained 30 steps on the bundled sample (speed
    and memory do not depend on how well it writes), and 1,000 first lines."""
    project = Project.create(folder / "couplets", "couplet", sample_files("couplet"), preset="small",
                             progress=lambda m: None)
    with torch.inference_mode(False):                    # main() decodes in inference mode
        train_project(project, steps=30, device=device)
    lines = [p.source for split in ("test", "valid", "train") for p in project.load_pairs(split)]
    return Generator.from_project(project, "last", device=device), lines[:1000]


def batched_beam_section(args: argparse.Namespace) -> tuple[str, dict]:
    """Sentences/s with beam 5: batches of 64 against one input at a time -> markdown, figures."""
    beam = DecodeConfig(strategy="beam", beam_size=5, n_best=1, alternatives=0)
    with tempfile.TemporaryDirectory() as tmp:
        gen, lines = _couplet_generator(Path(tmp), args.device)
        gen.generate_many(lines[:8], beam)                                   # warm-up
        start = time.perf_counter()
        batched = gen.generate_many(lines, beam, batch_size=64)
        batched_s = time.perf_counter() - start
        start = time.perf_counter()
        single = [gen.generate(line, beam) for line in lines]
        single_s = time.perf_counter() - start
    same = sum(a.hypotheses[0].text == b.hypotheses[0].text for a, b in zip(batched, single))
    rows = ["| decoding | sentences | seconds | sentences/s |", "|---|---:|---:|---:|",
            f"| one at a time | {len(lines)} | {single_s:.1f} | {len(lines) / single_s:.1f} |",
            f"| batches of 64 | {len(lines)} | {batched_s:.1f} | {len(lines) / batched_s:.1f} |"]
    print("\n".join(rows), flush=True)
    figures = {"sentences": len(lines), "single_s": round(single_s, 2), "batched_s": round(batched_s, 2),
               "single_sent_s": round(len(lines) / single_s, 2),
               "batched_sent_s": round(len(lines) / batched_s, 2),
               "speed_up": round(single_s / batched_s, 2), "same_outputs": same, "target_speed_up": 5}
    return (f"{len(lines)} first lines of the bundled couplets, beam 5, the couplet rules on, a "
            f"`small` couplet Transformer (30 training steps). Batched: **{single_s / batched_s:.1f}x** the "
            f"sentences/s of one at a time (target >= 5x); {same} of {len(lines)} couplets are the "
            "same both ways (a batch pads its sources, which moves the scores by float rounding; "
            "the tests require equal results on their inputs).\n\n" + "\n".join(rows)), figures


def beam_memory_section(args: argparse.Namespace) -> tuple[str, dict]:
    """Peak memory of a batch of 64 against a batch of 1, each in a fresh process -> markdown,
    figures."""
    with tempfile.TemporaryDirectory() as tmp:
        _couplet_generator(Path(tmp), args.device)                        # trains once, saved
        peaks = {}
        for batch in (1, 64):
            out = subprocess.run(
                [sys.executable, __file__, "--memory-probe", str(Path(tmp) / "couplets"), str(batch),
                 "--device", args.device], capture_output=True, text=True, check=True)
            peaks[batch] = float(out.stdout.split()[-1])
    rows = ["| batch | peak memory added by decoding (MiB) |", "|---:|---:|"]
    rows += [f"| {b} | {peaks[b]:.1f} |" for b in (1, 64)]
    print("\n".join(rows), flush=True)
    what = ("peak allocated GPU memory" if args.device.startswith("cuda")
            else "resident-memory high-water mark (reset after loading the model)")
    figures = {"measure": "cuda_max_allocated" if args.device.startswith("cuda") else "cpu_rss_high_water",
               "batch_1_mib": round(peaks[1], 1), "batch_64_mib": round(peaks[64], 1)}
    return (f"Beam 5 over 64 first lines at once against one (the `small` couplet Transformer above): the "
            f"{what} above what the loaded model uses, each in a fresh process.\n\n"
            + "\n".join(rows)), figures


def memory_probe(project: str, batch: int, device: str) -> None:
    """Child process of ``beam-memory``: load, decode ``batch`` lines, print the peak in MiB that the
    decoding added (Linux: the resident-memory high-water mark is reset after loading, through
    /proc/self/clear_refs; a GPU: peak allocated memory)."""
    gen = Generator.from_project(Project.open(project), "last", device=device)
    lines = [p.source for p in Project.open(project).load_pairs("train")][:batch]
    config = DecodeConfig(strategy="beam", beam_size=5, alternatives=0)
    gen.generate_many(lines[:1] or ["春风"], config)                  # warm-up: lazy imports, tables
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
        base = _status_kib("VmRSS") * 1024
    if lines:
        gen.generate_many(lines, config, batch_size=64)
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else _status_kib("VmHWM") * 1024
    print((peak - base) / 2**20)


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


SECTIONS: dict[str, Callable[[argparse.Namespace], tuple[str, dict]]] = {
    "kv-cache": kv_cache_section, "batched-beam": batched_beam_section, "beam-memory": beam_memory_section,
}


# ----------------------------------------------------------------------------- the page


def update_page(path: Path, bodies: dict[str, str], header: str) -> None:
    """Write each ``## title`` section of ``bodies`` into ``path``, keeping the sections there."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    parts = re.split(r"^## (.+)$", old, flags=re.M)
    kept = {title.strip(): text.strip() for title, text in zip(parts[1::2], parts[2::2])}
    kept.update(bodies)
    order = [TITLES[name] for name in SECTIONS if TITLES[name] in kept]
    order += [title for title in kept if title not in order]
    text = header + "".join(f"\n## {title}\n\n{kept[title]}\n" for title in order)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (best kept)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice; "
                        "1 gives steadier figures on a busy machine)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "decoding.md")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    parser.add_argument("--memory-probe", nargs=2, metavar=("PROJECT", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    report = Report("decoding")
    if args.memory_probe:
        memory_probe(args.memory_probe[0], int(args.memory_probe[1]), args.device)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bodies: dict[str, str] = {}
    figures: dict[str, dict] = {}
    with torch.inference_mode():
        for name in args.sections:
            print(f"\n## {TITLES[name]}\n", flush=True)
            body, figures[name] = SECTIONS[name](args)
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            threads = torch.get_num_threads()
            where = (f"{args.device} ({threads} thread{'s' * (threads != 1)} of {os.cpu_count()} cores, "
                     f"load average {load:.1f}), torch {torch.__version__}")
            command = " ".join(["python bench/decoding.py", *sys.argv[1:]])
            bodies[TITLES[name]] = f"Measured by `{command}` on {where}.\n\n{body}"
    header = "# Decoding speed\n\nWritten by `python bench/decoding.py`; one section per benchmark.\n"
    update_page(args.out, bodies, header)
    print(f"written to {args.out}")
    markdown = "".join(f"### {title}\n\n{text}\n\n" for title, text in bodies.items())
    report.write(args.json, {"device": args.device, "threads": torch.get_num_threads(), **figures},
                 markdown + f"Machine: {machine_line()}.")


if __name__ == "__main__":
    main()
