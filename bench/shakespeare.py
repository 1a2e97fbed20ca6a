"""textgen against nanoGPT on tiny Shakespeare: ms per iteration and validation loss, one recipe.

In one process, on the same text (``../shared/data/novels/tiny_shakespeare.txt``) held out the
same way (first 90 % train, last 10 % validation, by characters), this trains

* nanoGPT: ``bench/nanogpt_reference.py``, a compact re-implementation of nanoGPT's model and
  training loop (karpathy/nanoGPT), and
* textgen: a real project made through the product (``Project.create`` with task continuation,
  model gpt, char tokenizer, ``data.split=tail``) trained by ``train_project``,

with nanoGPT's CPU recipe for ``shakespeare_char`` (4 layers, 4 heads, 128 dims, block 64, batch
12, 2000 iterations, lr 1e-3 cosine to 1e-4, warm-up 100, dropout 0, AdamW betas (0.9, 0.99),
weight decay 0.1, clip 1.0, eval_iters 20; its README reports val loss ~1.88), or with
``--gpu-config`` its GPU recipe (6/6/384, block 256, batch 64, dropout 0.2, 5000 iterations, bf16,
fused AdamW, flash attention; ``--compile`` compiles the reference), adding MFU.

ms/iter is the median over 10-iteration windows after the first 20 iterations, evaluation left
out: textgen's from its Step events (tokens/s of each window), nanoGPT's from timing each step.
Validation loss is compared on one estimate for both: the mean loss over the same seeded random
65-character windows of the held-out 10 % (64 predictions each), of the final weights and of the
weights each run kept as its best; each run's own estimate is shown beside it.

    python bench/shakespeare.py [--iters 2000 | --quick] [--seeds N] [--device auto] [--threads N]
                                [--gpu-config [--compile] [--peak-tflops 312]] [--json PATH]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import nanogpt_reference as ref  # noqa: E402
from common import Report, machine_line, shared_file  # noqa: E402

from textgen_core.devices import resolve_device  # noqa: E402
from textgen_core.generation import Generator  # noqa: E402
from textgen_core.project import Project  # noqa: E402
from textgen_core.training.events import Eval, Event, Step  # noqa: E402
from textgen_core.training.run import train_project  # noqa: E402

WARMUP_ITERS = 20          # iterations left out of ms/iter
WINDOW = 10                # iterations per timing window (textgen's train.log_every)
VAL_WINDOWS = 2000         # random windows of the held-out text in the common estimate
VAL_SEED = 0


@dataclass(frozen=True)
class Recipe:
    """nanoGPT's shakespeare_char settings (CPU recipe from its README, GPU from its config)."""

    name: str
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    batch_size: int = 12
    iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 100
    eval_interval: int = 250
    eval_iters: int = 20
    bf16: bool = False
    seed: int = 1337

    def settings(self, device: str, compile_: bool) -> ref.TrainSettings:
        return ref.TrainSettings(
            seed=self.seed,
            batch_size=self.batch_size, block_size=self.block_size, max_iters=self.iters,
            learning_rate=self.learning_rate, min_lr=self.min_lr, warmup_iters=self.warmup,
            lr_decay_iters=self.iters, eval_interval=self.eval_interval,
            eval_iters=self.eval_iters, dtype="bfloat16" if self.bf16 else "float32",
            compile=compile_, device=device)

    def overrides(self) -> list[str]:
        """The same recipe as textgen settings (``--set`` form)."""
        return [
            f"model.n_layer={self.n_layer}", f"model.n_head={self.n_head}",
            f"model.n_embd={self.n_embd}", f"model.block_size={self.block_size}",
            f"model.dropout={self.dropout}", "model.bias=false",
            f"train.batch_size={self.batch_size}", f"train.steps={self.iters}",
            f"train.learning_rate={self.learning_rate}", f"train.min_lr={self.min_lr}",
            f"train.warmup_steps={self.warmup}", "train.schedule=cosine", "train.beta1=0.9",
            "train.beta2=0.99", "train.weight_decay=0.1", "train.grad_clip=1.0",
            "train.label_smoothing=0.0", "train.grad_accum=1",
            f"train.amp={'bf16' if self.bf16 else 'off'}",
            f"train.eval_every={self.eval_interval}", f"train.eval_batches={self.eval_iters}",
            f"train.log_every={WINDOW}",
            "data.split=tail", "data.valid_fraction=0.1", "data.test_fraction=0.0",
            f"train.seed={self.seed}",
        ]


CPU = Recipe("cpu")
GPU = Recipe("gpu", n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2, batch_size=64,
             iters=5000, eval_iters=200, bf16=True)


@dataclass
class Result:
    """One run's figures."""

    name: str
    vocab: int
    parameters: int                       # nanoGPT's count: position embeddings left out
    ms_per_iter: float
    wall_s: float
    final_val: float                      # common estimate, final weights
    best_val: float                       # common estimate, the weights kept as best
    own_best_val: float                   # the run's own validation estimate, best evaluation
    own_final_val: float
    timing: str                           # how ms/iter was measured
    mfu: float | None = None
    notes: list[str] = field(default_factory=list)


def window_ms(seconds: list[float]) -> float:
    """Median ms/iter over 10-iteration windows after the warm-up iterations."""
    kept = seconds[WARMUP_ITERS:] or seconds
    windows = [sum(kept[i:i + WINDOW]) / len(kept[i:i + WINDOW]) for i in range(0, len(kept), WINDOW)]
    return 1000 * statistics.median(windows)


def val_windows(val_text: str, block: int) -> list[str]:
    """The common estimate's windows: VAL_WINDOWS seeded random (block + 1)-character slices."""
    gen = torch.Generator().manual_seed(VAL_SEED)
    starts = torch.randint(len(val_text) - block, (VAL_WINDOWS,), generator=gen).tolist()
    return [val_text[s:s + block + 1] for s in starts]


@torch.no_grad()
def common_loss(forward, encode, windows: list[str], device: torch.device, batch: int = 100) -> float:
    """Mean next-character loss over ``windows`` (each its last ``block`` characters predicted)."""
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        ids = torch.tensor([encode(w) for w in windows[i:i + batch]], dtype=torch.long, device=device)
        logits = forward(ids[:, :-1]).float()
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1),
                               reduction="sum")
        total, count = total + loss.item(), count + ids[:, 1:].numel()
    return total / count


def run_reference(text: str, windows: list[str], recipe: Recipe, device: torch.device,
                  compile_: bool, peak: float) -> Result:
    train, val, chars = ref.prepare(text)
    s = recipe.settings(str(device), compile_)
    torch.manual_seed(s.seed)
    model = ref.GPT(ref.GPTConfig(vocab_size=len(chars), block_size=recipe.block_size,
                                  n_layer=recipe.n_layer, n_head=recipe.n_head,
                                  n_embd=recipe.n_embd, dropout=recipe.dropout))
    rec = ref.train(model, train, val, s)
    stoi = {ch: i for i, ch in enumerate(chars)}
    model.eval()

    def loss_of() -> float:
        return common_loss(lambda x: model(x)[0], lambda w: [stoi[c] for c in w], windows, device)

    final = loss_of()
    model.load_state_dict(rec.best_state)
    ms = window_ms(rec.iter_seconds)
    return Result("nanoGPT (reference)", len(chars), model.get_num_params(), ms, rec.wall_seconds,
                  final, loss_of(), rec.best_val, rec.evals[-1]["val"],
                  "each step timed (get_batch + forward/backward/AdamW + loss read-back)",
                  _mfu(model.config, model.get_num_params(), recipe, ms, device, peak))


def run_textgen(path: Path, windows: list[str], recipe: Recipe, device: torch.device,
                peak: float, folder: Path) -> Result:
    project = Project.create(folder / "shakespeare", "continuation", [path], model="gpt",
                             tokenizer="char", overrides=recipe.overrides(), progress=lambda m: None)
    seconds: list[float] = []
    evals: list[float] = []
    tokens_per_iter = recipe.batch_size * recipe.block_size

    def on_event(event: Event) -> None:
        if isinstance(event, Step) and event.tokens_per_s:
            seconds.extend([tokens_per_iter / event.tokens_per_s] * WINDOW)   # one 10-step window
        elif isinstance(event, Eval) and event.val_loss is not None:
            evals.append(float(event.val_loss))

    start = time.perf_counter()
    outcome = train_project(project, device=device.type, on_event=on_event)
    wall = time.perf_counter() - start
    losses, vocab, params = [], 0, 0
    for which in ("last", "best"):
        gen = Generator.from_checkpoint(project.checkpoint_path(which), str(device))
        gen.model.eval()
        tok = gen.tgt_tok
        vocab, params = tok.vocab_size, _non_embedding(gen.model)
        losses.append(common_loss(gen.model, lambda w, tok=tok: tok.encode(w, per_char=True),
                                  windows, gen.device))
    ms = window_ms(seconds)
    config = gen.model.config
    return Result("textgen", vocab, params, ms, wall, losses[0], losses[1],
                  outcome.best_val_loss, evals[-1] if evals else math.nan,
                  "Step events: tokens/s of each 10-step window",
                  _mfu(config, params, recipe, ms, device, peak),
                  [f"train split {len(project.load_text('train')):,} characters, valid "
                   f"{len(project.load_text('valid')):,}"])


def _non_embedding(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters()) - model.transformer.wpe.weight.numel()


def _mfu(config, params: int, recipe: Recipe, ms: float, device: torch.device,
         peak: float) -> float | None:
    """nanoGPT's estimate_mfu on a CUDA run (None elsewhere: a CPU has no such peak)."""
    if device.type != "cuda":
        return None
    L, H, T = config.n_layer, config.n_head, config.block_size
    flops = (6 * params + 12 * L * H * (config.n_embd // H) * T) * T * recipe.batch_size
    return flops / (ms / 1000) / peak


def table(results: list[Result], recipe: Recipe) -> str:
    """One row per run (and seed)."""
    rows = ["| run | vocab | parameters | ms/iter | wall s | val loss (final) | val loss (best) "
            "| own val estimate (final / best) | MFU |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        mfu = f"{100 * r.mfu:.1f} %" if r.mfu is not None else "–"
        rows.append(f"| {r.name} | {r.vocab} | {r.parameters:,} | {r.ms_per_iter:.1f} | "
                    f"{r.wall_s:.0f} | {r.final_val:.4f} | {r.best_val:.4f} | "
                    f"{r.own_final_val:.4f} / {r.own_best_val:.4f} | {mfu} |")
    return "\n".join(rows)


def not_measured(recipe: Recipe) -> str:
    return ("| run | result |\n|---|---|\n"
            f"| nanoGPT (reference), {recipe.name} recipe | not measured (no GPU) |\n"
            f"| textgen, {recipe.name} recipe | not measured (no GPU) |")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, help="iterations (default: the recipe's 2000 / 5000)")
    parser.add_argument("--quick", action="store_true", help="200 iterations, a smoke run")
    parser.add_argument("--seeds", type=int, default=1,
                        help="train both N times with seeds 1337, 1338, ... and compare the means")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--gpu-config", action="store_true",
                        help="nanoGPT's GPU recipe (6/6/384, block 256, batch 64, bf16)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the reference")
    parser.add_argument("--peak-tflops", type=float, default=312.0,
                        help="the accelerator's bf16 peak for MFU (A100: 312)")
    parser.add_argument("--data", type=Path, default=shared_file("novels", "tiny_shakespeare.txt"))
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.data is None or not args.data.is_file():
        sys.exit("tiny_shakespeare.txt not found under ../shared/data/novels; pass --data FILE")
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = GPU if args.gpu_config else CPU
    iters = 200 if args.quick else (args.iters or recipe.iters)
    recipe = Recipe(**{**recipe.__dict__, "iters": iters,
                       "eval_interval": min(recipe.eval_interval, iters)})
    device = resolve_device(args.device)
    report = Report("shakespeare")
    head = (f"## textgen against nanoGPT on tiny Shakespeare ({recipe.name} recipe, {iters} "
            f"iterations, {device})\n\nMeasured by `{report.command}` on {machine_line()}.\n\n")
    if args.gpu_config and device.type != "cuda":
        markdown = head + not_measured(recipe)
        print(markdown)
        report.write(args.json, {"recipe": recipe.__dict__, "measured": False}, markdown)
        return
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    results = measure(args, recipe, device)
    markdown = head + table(results, recipe) + "\n\n" + summary(results)
    print(markdown)
    report.write(args.json, {"recipe": recipe.__dict__, "device": str(device), "measured": True,
                             "runs": [r.__dict__ for r in results]}, markdown)


def measure(args: argparse.Namespace, recipe: Recipe, device: torch.device) -> list[Result]:
    """nanoGPT then textgen, once per seed (interleaved, so machine noise hits both alike)."""
    text = args.data.read_text(encoding="utf-8")
    val_text = text[int(len(text) * 0.9):]             # nanoGPT's held-out 10 %
    windows = val_windows(val_text, recipe.block_size)
    peak = args.peak_tflops * 1e12
    results: list[Result] = []
    for n in range(max(1, args.seeds)):
        seeded = Recipe(**{**recipe.__dict__, "seed": recipe.seed + n})
        print(f"seed {seeded.seed}: nanoGPT reference, {recipe.iters} iterations ...", flush=True)
        nano = run_reference(text, windows, seeded, device, args.compile, peak)
        print(f"  {nano.ms_per_iter:.1f} ms/iter, val {nano.final_val:.4f}", flush=True)
        print(f"seed {seeded.seed}: textgen, {recipe.iters} steps ...", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            ours = run_textgen(args.data, windows, seeded, device, peak, Path(tmp))
        print(f"  {ours.ms_per_iter:.1f} ms/iter, val {ours.final_val:.4f}", flush=True)
        if args.seeds > 1:
            nano.name, ours.name = f"{nano.name}, seed {seeded.seed}", f"{ours.name}, seed {seeded.seed}"
        results += [nano, ours]
    return results


def summary(results: list[Result]) -> str:
    nanos, ours_all = results[0::2], results[1::2]
    nano_ms = statistics.median(r.ms_per_iter for r in nanos)
    ours_ms = statistics.median(r.ms_per_iter for r in ours_all)
    nano_val = statistics.fmean(r.best_val for r in nanos)
    ours_val = statistics.fmean(r.best_val for r in ours_all)
    ratio = ours_ms / nano_ms
    fast = "meets" if ratio <= 1.0 else "misses"
    good = "meets" if ours_val <= nano_val else "misses"
    spread = ""
    if len(nanos) > 1:
        spread = (f" (over {len(nanos)} seeds; range nanoGPT {min(r.best_val for r in nanos):.4f}–"
                  f"{max(r.best_val for r in nanos):.4f}, textgen {min(r.best_val for r in ours_all):.4f}–"
                  f"{max(r.best_val for r in ours_all):.4f})")
    nano, ours = nanos[0], ours_all[0]
    return "\n".join([
        f"ms/iter textgen/nanoGPT: **{ratio:.3f}** ({fast} the target <= 1). Validation loss "
        f"(common estimate, best weights, mean): textgen {ours_val:.4f} vs nanoGPT "
        f"{nano_val:.4f} ({good} the target <=){spread}.",
        "",
        f"Vocabulary: nanoGPT {nano.vocab} characters; textgen {ours.vocab} (sentencepiece char: "
        "the characters of its train split, pad/unk/bos/eos, a newline symbol, ' ' as '▁').",
        f"Timing: nanoGPT {nano.timing}; textgen {ours.timing}.",
        "Common estimate: mean loss over the same "
        f"{VAL_WINDOWS} random windows (seed {VAL_SEED}) of nanoGPT's last 10 % of the text.",
        *ours.notes,
    ])


if __name__ == "__main__":
    main()
