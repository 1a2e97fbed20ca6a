"""Trainer overhead: tokens/s of textgen's Trainer against a bare PyTorch loop.

Both train the same model (same initial weights) on the same pre-built batches with the same
optimizer, schedule and clipping; they run interleaved, several rounds, so that machine noise hits
both alike. Prints each round and the median ratio trainer/bare (target >= 0.95).

    python bench/train_throughput.py [--steps 40] [--rounds 3] [--preset tiny|small] [--device cpu]
                                     [--json PATH]
"""

from __future__ import annotations

import argparse
import copy
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
from textgen_core.config import TrainConfig  # noqa: E402
from textgen_core.data import BucketBatcher, encode_pairs  # noqa: E402
from textgen_core.devices import resolve_device  # noqa: E402
from textgen_core.evaluation import batch_loss  # noqa: E402
from textgen_core.project import Project  # noqa: E402
from textgen_core.samples import sample_files  # noqa: E402
from textgen_core.training.schedule import learning_rate  # noqa: E402
from textgen_core.training.trainer import TaskHooks, Trainer, TrainState, build_optimizer  # noqa: E402


class Replay:
    """A batch source that hands out a fixed list of batches in order."""

    def __init__(self, batches: list) -> None:
        self.batches, self.i = batches, 0

    def next_batch(self):
        batch = self.batches[self.i % len(self.batches)]
        self.i += 1
        return batch

    def state_dict(self) -> dict:
        return {"i": self.i}

    def load_state_dict(self, state) -> None:
        self.i = state["i"]


def bare_loop(model, batches, cfg: TrainConfig, device, pad: int) -> float:
    optimizer = build_optimizer(model, cfg, device)
    tokens = 0
    start = time.perf_counter()
    for step, batch in enumerate(batches):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        batch = batch.to(device)
        loss = batch_loss(model, batch, pad, cfg.label_smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += batch.n_tokens
    _sync(device)
    return tokens / (time.perf_counter() - start)


def trainer_loop(model, batches, cfg: TrainConfig, device, pad: int) -> float:
    hooks = TaskHooks(
        loss=lambda net, b, step: batch_loss(net, b, pad, cfg.label_smoothing, step, cfg.steps),
        tokens=lambda b: b.n_tokens,
        evaluate=lambda net: {"val_loss": None},
    )
    optimizer = build_optimizer(model, cfg, device)
    trainer = Trainer(model, cfg, Replay(batches), hooks, TrainState(run_id="bench"),
                      device=device, optimizer=optimizer, on_event=lambda e: None)
    tokens = sum(b.n_tokens for b in batches)
    start = time.perf_counter()
    trainer.run()
    _sync(device)
    return tokens / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preset", default="tiny", choices=("tiny", "small", "base"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args()
    report = Report("train_throughput")
    device = resolve_device(args.device)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        project = Project.create(Path(tmp) / "bench", "couplet", sample_files("couplet"),
                                 preset=args.preset, progress=lambda m: None)
        src_tok, tgt_tok = project.tokenizers()
        pairs = [(p.source, p.target) for p in project.load_pairs("train")]
    settings = models.preset_settings("transformer", args.preset)
    config = models.build_config("transformer", settings, src_vocab_size=src_tok.vocab_size,
                                 tgt_vocab_size=tgt_tok.vocab_size, pad_id=0)
    base = models.build_model("transformer", config).to(device)
    examples = encode_pairs(pairs, src_tok, tgt_tok, config.block_size)
    batcher = BucketBatcher(examples, batch_size=args.batch_size, pad_id=0, bos_id=2, eos_id=3,
                            max_len=config.block_size, seed=0)
    batches = [batcher.next_batch().to(device) for _ in range(args.steps)]
    # eval/log cadence as a real run uses them, so their cost is part of what is measured
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, warmup_steps=5,
                      log_every=10, eval_every=args.steps, amp="off")
    pad = tgt_tok.pad_id
    print(f"device {device}, model transformer/{args.preset} "
          f"({base.num_parameters():,} parameters), {args.steps} steps of batch {args.batch_size}")
    bare_loop(copy.deepcopy(base), batches[:5], cfg, device, pad)          # warm-up
    ratios, rounds = [], []
    for r in range(args.rounds):
        bare = bare_loop(copy.deepcopy(base), batches, cfg, device, pad)
        ours = trainer_loop(copy.deepcopy(base), batches, cfg, device, pad)
        ratios.append(ours / bare)
        rounds.append({"bare_tok_s": round(bare, 1), "trainer_tok_s": round(ours, 1),
                       "ratio": round(ours / bare, 4)})
        print(f"round {r + 1}: bare {bare:10.0f} tok/s   trainer {ours:10.0f} tok/s   "
              f"ratio {ours / bare:.3f}")
    median = statistics.median(ratios)
    print(f"median ratio trainer/bare: {median:.3f} (target >= 0.95)")
    results = {"device": str(device), "model": "transformer", "preset": args.preset,
               "parameters": base.num_parameters(), "steps": args.steps, "batch_size": args.batch_size,
               "rounds": rounds, "median_ratio": round(median, 4), "target": 0.95}
    report.write(args.json, results, _markdown(results))


def _markdown(r: dict) -> str:
    rows = ["| round | bare loop tok/s | Trainer tok/s | ratio |", "|---:|---:|---:|---:|"]
    rows += [f"| {i} | {x['bare_tok_s']:,.0f} | {x['trainer_tok_s']:,.0f} | {x['ratio']:.3f} |"
             for i, x in enumerate(r["rounds"], 1)]
    verdict = "meets" if r["median_ratio"] >= r["target"] else "misses"
    return (f"textgen's Trainer against a bare PyTorch loop on the same batches, weights, optimizer and "
            f"schedule: transformer/{r['preset']} ({r['parameters']:,} parameters) on {r['device']}, "
            f"{r['steps']} steps of batch {r['batch_size']}, {len(r['rounds'])} interleaved rounds.\n\n"
            + "\n".join(rows)
            + f"\n\nMedian ratio Trainer/bare: **{r['median_ratio']:.3f}** ({verdict} the target "
            f">= {r['target']}).\n\nMachine: {machine_line()}.")


if __name__ == "__main__":
    main()
