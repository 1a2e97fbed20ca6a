"""SeqGAN against an oracle LSTM: does the adversarial phase lower the oracle's NLL of G's samples?

Yu et al. 2017, "SeqGAN: Sequence Generative Adversarial Nets with Policy Gradient" (AAAI), §5,
Table 1: a random LSTM, the oracle, writes the "real" sequences; a generator G is judged by the
oracle's NLL of G's samples (lower is better). With vocabulary 5,000, length 20, 10,000 real rows,
LSTM 32/32 and 16 rollouts the paper reports MLE 9.038, SeqGAN 8.736. This is that experiment in
minutes on 2 CPU cores, driving the product's own G, D, ``sample``, ``rollout_rewards``,
``policy_gradient_loss`` and ``discriminator_loss`` (``textgen_core``) on synthetic tensors with Adam.

Rows are ``[start, x1 .. xL]`` (start token 0), G writes all L tokens (``Episodes.windows(rows, 1)``)
as the paper generates from scratch, and the oracle's weights are N(0, 1) as in the paper (far from
uniform). Phases: MLE epochs, D pre-training, adversarial rounds (1 policy-gradient step of G, then
``d_steps`` D steps). The control continues the MLE generator for as many MLE steps as there are PG
steps, so a gain is not merely more training. NLL-test (G's NLL of held-out oracle rows) rises when G
trades coverage for sharpness. Unlike the paper: a GRU, rollouts by G itself (no delayed copy), and a
few D minibatches per round instead of 5 x 3 epochs.

    python bench/seqgan_oracle.py [--rounds N] [--seed S] [--seeds K] [--pg-lr LR] [--out PATH]
                                  [--json PATH]
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import Report, machine_line  # noqa: E402

from textgen_core.models.seqgan import GRUGenerator, SeqGAN, SeqGANConfig  # noqa: E402
from textgen_core.training.seqgan import (  # noqa: E402
    Episodes,
    discriminator_loss,
    draw,
    policy_gradient_loss,
    rollout_rewards,
    sample,
)

START = 0                 # every row starts with this token; G and the oracle write the L after it
EVAL_SEED = 12345         # G's evaluation samples come from this seed, for every generator alike
# Twice 5,120 rollout rows took 5x the time on 2 cores (blocks of rows x vocabulary floats over ~32 MB;
# likely glibc mapping them afresh at every step): rollouts and evaluations go in chunks of these.
CHUNK_ROWS = 5120
TUNING = (
    "Tuning, in development runs (seed 0, 100 rounds, 16 rollouts, 5 D steps, 1,000 D pre-training "
    "steps, no control; 1 thread on a busy machine): the paper's policy-gradient learning rate 1e-2 took "
    "the oracle NLL from 6.955 to 7.241 (NLL-test 5.829 to 6.171), 1e-3 left G where it was (6.938, "
    "NLL-test 5.829), 3e-3 (the default since) gave 6.911 (NLL-test 5.862). Before that, 8 rollouts, "
    "3 D steps and 300 D pre-training steps at 1e-2 gave 7.226 after 50 rounds. The rollouts go in "
    "chunks of 5,120 rows, which changes their speed, not what they estimate."
)


@dataclass(frozen=True)
class Setup:
    """Sizes and step counts of one run (the defaults fit a few minutes on 2 CPU cores)."""

    vocab: int = 1000
    length: int = 20
    real: int = 10_000
    emb: int = 32
    hidden: int = 32
    batch: int = 64
    mle_epochs: int = 20
    mle_lr: float = 1e-2
    d_pretrain_steps: int = 1000
    rounds: int = 120
    rollouts: int = 16
    d_steps: int = 5
    pg_lr: float = 3e-3
    d_lr: float = 1e-3
    eval_rows: int = 2000
    eval_every: int = 20


class Oracle(nn.Module):
    """The "real" language model: embedding, LSTM, linear; every weight drawn from N(0, 1)."""

    def __init__(self, setup: Setup, seed: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(setup.vocab, setup.emb)
        self.rnn = nn.LSTM(setup.emb, setup.hidden, batch_first=True)
        self.out = nn.Linear(setup.hidden, setup.vocab)
        draws = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=draws))

    def forward(self, idx: Tensor) -> Tensor:
        """idx (B, T) -> next-token logits (B, T, V)."""
        return self.out(self.rnn(self.embed(idx))[0])


@torch.no_grad()
def oracle_sample(oracle: Oracle, n: int, length: int, seed: int) -> Tensor:
    """n rows ``[start, x1 .. x_length]`` written by the oracle -> (n, 1 + length)."""
    draws = torch.Generator().manual_seed(seed)
    rows = torch.full((n, 1 + length), START, dtype=torch.long)
    h = None
    for k in range(length):
        y, h = oracle.rnn(oracle.embed(rows[:, k : k + 1]), h)
        rows[:, k + 1] = draw(oracle.out(y[:, 0]), draws)
    return rows


@torch.no_grad()
def row_nll(model: Callable[[Tensor], Tensor], rows: Tensor) -> Tensor:
    """Mean per-token NLL under ``model`` (idx -> logits) of each row's tokens after the start: (B,)."""
    parts = [F.cross_entropy(model(part[:, :-1]).transpose(1, 2), part[:, 1:], reduction="none")
             for part in rows.split(CHUNK_ROWS // rows.size(1))]
    return torch.cat(parts).mean(dim=1)


def oracle_nll(oracle: Oracle, seqs: Tensor) -> float:
    """The oracle's mean per-token NLL of rows ``[start, x1 .. xL]`` (B, 1 + L), start excluded."""
    return float(row_nll(oracle, seqs).mean())


@dataclass(frozen=True)
class Score:
    """Oracle NLL of G's samples, G's NLL of held-out oracle rows (NLL-test), their standard errors."""

    nll: float
    se: float
    nll_test: float = float("nan")
    se_test: float = 0.0


def score(oracle: Oracle, gen: GRUGenerator, held_out: Tensor) -> Score:
    """G's samples (as many as ``held_out`` rows, from the fixed seed) judged by the oracle."""
    gen.eval()
    rows = torch.full_like(held_out, START)
    fake = sample(gen, Episodes.windows(rows, 1), generator=torch.Generator().manual_seed(EVAL_SEED))
    nll, test = row_nll(oracle, fake), row_nll(lambda idx: gen.run(idx)[0], held_out)
    gen.train()
    n = math.sqrt(nll.numel())
    return Score(float(nll.mean()), float(nll.std()) / n, float(test.mean()), float(test.std()) / n)


def update(opt: torch.optim.Optimizer, loss: Tensor, clip: nn.Module | None = None) -> None:
    """A step on ``loss``; G's gradient norm (``clip``) clipped to 5 as in the paper's code."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        nn.utils.clip_grad_norm_(clip.parameters(), 5.0)
    opt.step()


def mle_step(gen: GRUGenerator, opt: torch.optim.Optimizer, rows: Tensor) -> None:
    """One teacher-forced maximum-likelihood update of G on rows (B, 1 + L)."""
    update(opt, F.cross_entropy(gen.run(rows[:, :-1])[0].transpose(1, 2), rows[:, 1:]), gen)


def d_step(model: SeqGAN, opt: torch.optim.Optimizer, real: Tensor) -> float:
    """One update of D on real rows against as many fresh rows of G -> D's accuracy on them."""
    fake = sample(model.generator, Episodes.windows(real, 1))
    loss, accuracy = discriminator_loss(model.discriminator, real, fake)
    update(opt, loss)
    return float(accuracy)


def pg_step(model: SeqGAN, opt: torch.optim.Optimizer, s: Setup) -> float:
    """One policy-gradient update of G on a batch it writes from scratch -> the mean reward."""
    gen = model.generator
    ep = Episodes.windows(torch.full((s.batch, 1 + s.length), START, dtype=torch.long), 1)
    seqs = sample(gen, ep)
    chunk = max(1, CHUNK_ROWS // (s.rollouts * s.length))      # rows are independent: same rewards
    rewards = torch.cat([
        rollout_rewards(gen, model.discriminator, part, Episodes(part, start, end), s.rollouts)
        for part, start, end in zip(seqs.split(chunk), ep.start.split(chunk), ep.end.split(chunk))
    ])
    update(opt, policy_gradient_loss(gen, seqs, ep, rewards), gen)
    return float(rewards.mean())


@torch.no_grad()
def held_out_accuracy(model: SeqGAN, held_out: Tensor) -> float:
    """D's accuracy on held-out oracle rows against as many fresh rows of G (dropout off)."""
    model.discriminator.eval()
    _, accuracy = discriminator_loss(model.discriminator, held_out, sample(model.generator,
                                                                          Episodes.windows(held_out, 1)))
    model.discriminator.train()
    return float(accuracy)


def run(s: Setup, seed: int) -> dict:
    """The whole experiment for one seed -> scores, curves and timings."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    draws = torch.Generator().manual_seed(seed + 1)
    oracle = Oracle(s, seed)
    real = oracle_sample(oracle, s.real, s.length, seed + 2)
    held_out = oracle_sample(oracle, s.eval_rows, s.length, seed + 3)
    model = SeqGAN(SeqGANConfig(vocab_size=s.vocab, emb_dim=s.emb, hidden_size=s.hidden,
                                block_size=1 + s.length, prefix_tokens=1))
    own = row_nll(oracle, held_out)              # the oracle's entropy: the floor of both measures
    floor = Score(float(own.mean()), float(own.std()) / math.sqrt(s.eval_rows))
    out: dict = {"floor": replace(floor, nll_test=floor.nll, se_test=floor.se),
                 "random": score(oracle, model.generator, held_out), "mle_curve": []}
    mle_opt = torch.optim.Adam(model.generator.parameters(), lr=s.mle_lr)
    for epoch in range(1, s.mle_epochs + 1):
        for rows in real[torch.randperm(s.real, generator=draws)].split(s.batch):
            mle_step(model.generator, mle_opt, rows)
        out["mle_curve"].append(score(oracle, model.generator, held_out).nll)
        print(f"  MLE epoch {epoch:3d}: oracle NLL {out['mle_curve'][-1]:.3f}", flush=True)
    out["mle"], out["mle_s"] = score(oracle, model.generator, held_out), time.perf_counter() - t0
    control = copy.deepcopy(model.generator)
    control_opt = torch.optim.Adam(control.parameters(), lr=s.mle_lr)
    control_opt.load_state_dict(mle_opt.state_dict())           # MLE simply goes on
    d_opt = torch.optim.Adam(model.discriminator.parameters(), lr=s.d_lr)
    for _ in range(s.d_pretrain_steps):
        d_step(model, d_opt, real[torch.randint(0, s.real, (s.batch,), generator=draws)])
    out["d_pretrain_acc"] = held_out_accuracy(model, held_out)
    t1 = time.perf_counter()
    out["curve"] = adversarial(model, d_opt, oracle, real, held_out, s, draws)
    out["adversarial"], out["adv_s"] = score(oracle, model.generator, held_out), time.perf_counter() - t1
    for r in range(1, s.rounds + 1):
        mle_step(control, control_opt, real[torch.randint(0, s.real, (s.batch,), generator=draws)])
        if r in out["curve"]:
            out["curve"][r]["control"] = score(oracle, control, held_out)
    out["control"], out["total_s"] = score(oracle, control, held_out), time.perf_counter() - t0
    return out


def adversarial(model: SeqGAN, d_opt: torch.optim.Optimizer, oracle: Oracle, real: Tensor,
                held_out: Tensor, s: Setup, draws: torch.Generator) -> dict[int, dict]:
    """The adversarial rounds -> {round: G's score, mean reward, D's accuracy (training, held-out)}."""
    pg_opt = torch.optim.Adam(model.generator.parameters(), lr=s.pg_lr)
    curve: dict[int, dict] = {}
    rewards: list[float] = []
    accs: list[float] = []
    for r in range(1, s.rounds + 1):
        rewards.append(pg_step(model, pg_opt, s))
        for _ in range(s.d_steps):
            accs.append(d_step(model, d_opt, real[torch.randint(0, s.real, (s.batch,), generator=draws)]))
        if r % s.eval_every == 0 or r == s.rounds:
            p = curve[r] = {"adversarial": score(oracle, model.generator, held_out),
                            "reward": statistics.mean(rewards), "d_acc": statistics.mean(accs or [0.0]),
                            "d_held_out": held_out_accuracy(model, held_out)}
            rewards, accs = [], []
            print(f"  round {r:4d}: oracle NLL {p['adversarial'].nll:.3f}  NLL-test "
                  f"{p['adversarial'].nll_test:.3f}  reward {p['reward']:.3f}  D accuracy "
                  f"{p['d_acc']:.2f} (held-out {p['d_held_out']:.2f})", flush=True)
    return curve


def spread(values: list[float]) -> str:
    """One value, or the mean ± standard deviation of several."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def tables(results: list[dict], s: Setup) -> tuple[str, str]:
    """The result table (over all seeds) and the curve of the first seed, in markdown."""
    rows = [("oracle itself (floor)", "floor"), ("randomly initialised G (ceiling)", "random"),
            (f"MLE pre-training ({s.mle_epochs} epochs)", "mle"),
            (f"MLE + {s.rounds} more MLE steps (control)", "control"),
            (f"MLE + {s.rounds} adversarial rounds (SeqGAN)", "adversarial")]
    table = ["| generator | oracle NLL of its samples | SE | NLL-test (G's NLL of held-out oracle rows) |",
             "|---|---:|---:|---:|"]
    for label, key in rows:
        found = [r[key] for r in results]
        table.append(f"| {label} | {spread([x.nll for x in found])} | {found[0].se:.3f} "
                     f"| {spread([x.nll_test for x in found])} |")
    first = results[0]
    curve = ["| round | adversarial: oracle NLL | NLL-test | control: oracle NLL | NLL-test | mean reward "
             "| D accuracy (training batches) | D accuracy (held-out) |", "|---:|" + "---:|" * 7,
             f"| 0 | {first['mle'].nll:.3f} | {first['mle'].nll_test:.3f} | {first['mle'].nll:.3f} "
             f"| {first['mle'].nll_test:.3f} | | | {first['d_pretrain_acc']:.2f} |"]
    for r, p in first["curve"].items():
        a, c = p["adversarial"], p["control"]
        curve.append(f"| {r} | {a.nll:.3f} | {a.nll_test:.3f} | {c.nll:.3f} | {c.nll_test:.3f} "
                     f"| {p['reward']:.3f} | {p['d_acc']:.2f} | {p['d_held_out']:.2f} |")
    return "\n".join(table), "\n".join(curve)


def verdict(results: list[dict], s: Setup) -> str:
    """Plain words from the measured figures: adversarial against MLE and against the control."""
    mean = {k: statistics.mean(r[k].nll for r in results) for k in ("mle", "control", "adversarial")}
    test = {k: statistics.mean(r[k].nll_test for r in results) for k in ("control", "adversarial")}
    gaps = [r["control"].nll - r["adversarial"].nll for r in results]
    gap = statistics.mean(gaps)
    # 2 sigma of a difference of two end points: the evaluation's standard errors, or the training's own
    # jitter, the spread of the oracle NLL over the last 5 MLE epochs (where the MLE curve is flat)
    jitter = [statistics.stdev(r["mle_curve"][-5:]) if s.mle_epochs > 1 else 0.0 for r in results]
    noise = 2 * statistics.mean(max(math.hypot(r["control"].se, r["adversarial"].se), math.sqrt(2) * j)
                                for r, j in zip(results, jitter))
    if len(gaps) > 1:
        noise = max(noise, 2 * statistics.stdev(gaps) / math.sqrt(len(gaps)))
    test_noise = 2 * statistics.mean(math.hypot(r["control"].se_test, r["adversarial"].se_test)
                                     for r in results)
    moved = "lowered" if mean["adversarial"] < mean["mle"] else "raised"
    text = (f"Over {s.rounds} rounds the adversarial phase {moved} the oracle NLL of G's samples from "
            f"{mean['mle']:.3f} (MLE pre-training) to {mean['adversarial']:.3f}; the control, "
            f"{s.rounds} more MLE steps, reached {mean['control']:.3f}. ")
    if gap > noise:
        text += "**Adversarial training helped**: it ended below the control"
    elif gap < -noise:
        text += "**Adversarial training did not help**: it ended above the control"
    else:
        text += "**Adversarial training made no measurable difference** against the control"
    text += f" (control minus adversarial: {gap:+.3f} nats per token; noise, 2 sigma: {noise:.3f})"
    if len(gaps) > 1:
        text += f", better than the control on {sum(g > 0 for g in gaps)} of {len(gaps)} seeds"
    text += (f". NLL-test: {test['adversarial']:.3f} after the adversarial phase, {test['control']:.3f} "
             "for the control")
    if test["adversarial"] > test["control"] + test_noise:
        text += (": G got sharper at the cost of covering less of the oracle's distribution, a trade "
                 "that oracle NLL alone rewards" if gap > noise else
                 ": the adversarial generator also fits the oracle's own sequences worse")
    last = [r["curve"][s.rounds] for r in results]
    held, seen = (statistics.mean(p[k] for p in last) for k in ("d_held_out", "d_acc"))
    return text + (f". At the end D told held-out oracle rows from G's with accuracy {held:.2f}, against "
                   f"{seen:.2f} on the real rows it trains on (0.5 is chance).")


def page(results: list[dict], s: Setup, seeds: list[int], wall_s: float, cpu_s: float, command: str) -> str:
    table, curve = tables(results, s)
    d = SeqGANConfig(vocab_size=s.vocab)                       # the discriminator's settings
    busy = cpu_s / wall_s
    shared = (": other processes shared the cores, which inflates the times, not the figures"
              if busy < 0.8 * torch.get_num_threads() else "")
    mle_curve = ", ".join(f"{x:.3f}" for x in results[0]["mle_curve"])
    runs = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]} (mean ± sd over seeds)"
    return (
        "# SeqGAN against an oracle LSTM (Yu et al. 2017, §5, Table 1, at a small scale)\n\n"
        f"Measured by `{command}` on a CPU with {os.cpu_count()} cores ({torch.get_num_threads()} threads), "
        f"{runs}: {wall_s:.0f} s in all; per seed, MLE {statistics.mean(r['mle_s'] for r in results):.0f} s "
        f"and the adversarial rounds {statistics.mean(r['adv_s'] for r in results):.0f} s. The run kept "
        f"{busy:.2f} cores busy on average{shared}.\n\n"
        f"- Oracle: LSTM {s.emb}/{s.hidden}, every weight N(0, 1); vocabulary {s.vocab:,}; "
        f"{s.real:,} real sequences of {s.length} tokens after a start token.\n"
        f"- G: the product's SeqGAN GRU {s.emb}/{s.hidden}; D: its CNN at its default settings (widths "
        f"{d.d_filter_sizes}, {d.d_num_filters} filters each, embedding {d.d_emb_dim}, highway, dropout "
        f"{d.d_dropout:g}).\n"
        f"- MLE: {s.mle_epochs} epochs, batch {s.batch}, Adam {s.mle_lr:g}. D pre-training: "
        f"{s.d_pretrain_steps} steps of {s.batch} real + {s.batch} generated rows, Adam {s.d_lr:g}.\n"
        f"- Adversarial rounds: 1 policy-gradient step (batch {s.batch}, {s.rollouts} rollouts per "
        f"token, Adam {s.pg_lr:g}) then {s.d_steps} D steps. Control: the MLE generator and its "
        f"optimizer, {s.rounds} more MLE steps of batch {s.batch}.\n"
        f"- Every NLL is measured on {s.eval_rows:,} rows: G's samples from one fixed seed, held-out "
        "oracle rows for NLL-test. SE is the standard error of that estimate; the verdict's noise also "
        "counts the training's jitter (the spread of the oracle NLL over the last 5 MLE epochs); the "
        "spread between training seeds needs `--seeds`.\n\n"
        f"{table}\n\nThe paper (vocabulary 5,000, an LSTM G, 16 rollouts, far longer training): "
        "random 10.310, MLE 9.038, SeqGAN 8.736.\n\n"
        f"{verdict(results, s)}\n\n{TUNING}\n\n## Curves (seed {seeds[0]})\n\n"
        f"Oracle NLL after each MLE epoch: {mle_curve}.\n\n{curve}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=Setup.rounds, help="adversarial rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="repeat with this many seeds from --seed")
    parser.add_argument("--pg-lr", type=float, default=Setup.pg_lr, help="policy-gradient learning rate")
    parser.add_argument("--rollouts", type=int, default=Setup.rollouts)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "seqgan_oracle.md")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    report = Report("seqgan_oracle")
    torch.set_num_threads(2)
    setup = Setup(rounds=args.rounds, pg_lr=args.pg_lr, rollouts=args.rollouts,
                  eval_every=max(1, min(Setup.eval_every, args.rounds)))
    print(", ".join(f"{k} {v}" for k, v in asdict(setup).items()), flush=True)
    start, cpu, results = time.perf_counter(), time.process_time(), []
    seeds = list(range(args.seed, args.seed + args.seeds))
    for seed in seeds:
        print(f"seed {seed}", flush=True)
        results.append(run(setup, seed))
    command = "python bench/seqgan_oracle.py " + " ".join(argv if argv is not None else sys.argv[1:])
    wall, busy = time.perf_counter() - start, time.process_time() - cpu
    text = page(results, setup, seeds, wall, busy, command.strip())
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    report.write(args.json, figures(results, seeds, wall), _section(text))
    return 0


def figures(results: list[dict], seeds: list[int], wall_s: float) -> dict:
    """The JSON figures: each generator's oracle NLL and NLL-test (mean over seeds), and timings."""
    keys = ("floor", "random", "mle", "control", "adversarial")
    out: dict = {"seeds": seeds, "seconds": round(wall_s, 1),
                 "mle_s": round(statistics.mean(r["mle_s"] for r in results), 1),
                 "adversarial_s": round(statistics.mean(r["adv_s"] for r in results), 1)}
    for key in keys:
        out[key] = {"oracle_nll": round(statistics.mean(r[key].nll for r in results), 4),
                    "nll_test": round(statistics.mean(r[key].nll_test for r in results), 4),
                    "se": round(results[0][key].se, 4)}
    gap = out["control"]["oracle_nll"] - out["adversarial"]["oracle_nll"]
    out["control_minus_adversarial"] = round(gap, 4)
    return out


def _section(page_text: str) -> str:
    """The page as a section of docs/BENCHMARKS.md: no title of its own, sub-headings one level down."""
    body = page_text.split("\n\n", 1)[1]
    return body.replace("\n## ", "\n### ").rstrip() + f"\n\nMachine: {machine_line()}."


if __name__ == "__main__":
    raise SystemExit(main())
