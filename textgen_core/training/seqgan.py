"""SeqGAN training: MLE pre-training, discriminator pre-training, then adversarial policy gradient.

Yu et al. 2017, "SeqGAN: Sequence Generative Adversarial Nets with Policy Gradient", Algorithm 1:

1. ``mle``: the generator G learns the real passages by maximum likelihood (teacher forcing);
2. ``d_pretrain``: the discriminator D learns real passages (label 1) from G's (label 0);
3. ``adversarial``: each step is one policy-gradient (REINFORCE, Williams 1992) update of G,
   ``-mean_t log G(y_t | Y_<t) * Q(Y_<t, y_t)``, whose action values Q come from Monte-Carlo
   rollouts: for every written token, ``rollouts`` completions are sampled from G and scored by D
   (eq. 4-5; the last token is scored on the passage itself); then ``d_steps`` updates of D on
   fresh real and generated passages.

Every training passage continues the first ``prefix_tokens`` tokens of a real window of the novel,
so that G learns to continue a text, which is what it writes afterwards. As in the paper, the
rewards are D's probabilities of "real" without a baseline, and G's policy-gradient updates have
their own optimizer and learning rate. Each phase has its own optimizer(s); their states and the
steps done in each phase are this algorithm's checkpoint state, so a resume continues mid-phase.
Training runs in one process, in full precision (``train.amp`` and ``train.grad_accum`` do not
apply).

Metrics: ``d_acc`` (D's accuracy on the batch it trains on), ``d_loss`` and ``reward`` (mean Q) per
step; at evaluations, besides validation loss, ``bleu`` of continuations written from validation
prompts against all the real continuations, and ``self_bleu`` among them (rising: mode collapse).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textgen_core import metrics
from textgen_core.errors import TrainingError
from textgen_core.training.algorithm import AlgorithmContext, StepOutput, build_optimizer, set_lr
from textgen_core.training.schedule import learning_rate

log = logging.getLogger(__name__)

PHASES = ("mle", "d_pretrain", "adversarial")
EVAL_PASSAGES = 16        # validation passages continued at each evaluation for BLEU / self-BLEU


# --------------------------------------------------------------------------- sampling and rewards


def draw(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One token per row from ``softmax(logits)`` (N, V) -> (N,), by inverse CDF: one uniform number
    per row (many times faster than ``torch.multinomial`` on a CPU for thousands of rows)."""
    cdf = F.softmax(logits.float(), dim=-1).cumsum(dim=-1)                         # (N, V)
    u = torch.rand(cdf.size(0), 1, device=cdf.device, generator=generator) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.size(1) - 1)[:, 0]


@torch.no_grad()
def sample_continuations(gen: nn.Module, prefix: Tensor, length: int,
                         generator: torch.Generator | None = None) -> Tensor:
    """Passages of ``length`` tokens: ``prefix`` (B, P) and then G's samples -> (B, length)."""
    logits, h = gen.run(prefix)                                    # (B, P, V)
    last, out = logits[:, -1], [prefix]
    for k in range(prefix.size(1), length):
        tok = draw(last, generator)                                # (B,)
        out.append(tok[:, None])
        if k < length - 1:
            last, h = gen.step(tok, h)
    return torch.cat(out, dim=1)


@torch.no_grad()
def rollout_rewards(gen: nn.Module, disc: nn.Module, seqs: Tensor, start: int, rollouts: int) -> Tensor:
    """Q of every written token of ``seqs`` (B, T), the tokens from ``start`` on -> (B, T - start).

    Rows for all (rollout, written position) pairs step through G together: row (r, g) keeps the
    tokens up to position ``start + g`` and samples the rest, so the whole estimate costs
    ``T - start`` GRU steps over ``rollouts * (T - start) * B`` rows, then one pass of D.
    """
    B, T = seqs.shape
    written = T - start
    copies = rollouts * written
    logits, h = gen.run(seqs[:, :start])                           # h after the real prefix
    last = logits[:, -1].repeat(copies, 1)                         # (R, V), R = copies * B
    h = h.repeat(1, copies, 1)                                     # (L, R, H)
    tokens = seqs.repeat(copies, 1)                                # (R, T): row i is seqs[i % B]
    kept = start + torch.arange(written, device=seqs.device).repeat_interleave(B).repeat(rollouts)  # (R,)
    for k in range(start, T):
        tokens[:, k] = torch.where(kept < k, draw(last), tokens[:, k])               # (R,)
        if k < T - 1:
            last, h = gen.step(tokens[:, k], h)
    was_training = disc.training
    disc.eval()
    try:
        p_real = torch.sigmoid(disc(tokens).float())               # (R,)
    finally:
        disc.train(was_training)
    return p_real.view(rollouts, written, B).mean(0).transpose(0, 1)   # (B, written)


def policy_gradient_loss(gen: nn.Module, seqs: Tensor, start: int, rewards: Tensor) -> Tensor:
    """REINFORCE: ``-mean log G(y_t | y_<t) * Q_t`` over the written tokens (t >= start)."""
    logits, _ = gen.run(seqs[:, :-1])                              # (B, T-1, V): predicts seqs[:, 1:]
    logp = F.log_softmax(logits.float(), dim=-1).gather(2, seqs[:, 1:, None])[..., 0]   # (B, T-1)
    return -(logp[:, start - 1 :] * rewards).mean()


def discriminator_loss(disc: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """Binary cross-entropy of D on real (label 1) and generated (label 0) passages, and its accuracy."""
    logits = disc(torch.cat([real, fake]))                         # (2B,)
    labels = torch.cat([torch.ones(real.size(0)), torch.zeros(fake.size(0))]).to(logits.device)
    loss = F.binary_cross_entropy_with_logits(logits.float(), labels)
    accuracy = ((logits > 0).float() == labels).float().mean()
    return loss, accuracy.detach()


# --------------------------------------------------------------------------- the algorithm


class SeqGANTraining:
    """The :class:`~textgen_core.training.algorithm.TrainingAlgorithm` of SeqGAN (module docstring)."""

    def __init__(self, ctx: AlgorithmContext) -> None:
        if ctx.dist.enabled:
            raise TrainingError("seqgan trains in one process; run textgen train without torchrun")
        self.ctx, self.cfg, self.model = ctx, ctx.cfg, ctx.model
        self.mc = ctx.model.config
        gen, disc, cfg, dev = self.model.generator, self.model.discriminator, ctx.cfg, ctx.device
        self._mle_cfg = replace(cfg, steps=max(1, self.mc.mle_steps))    # the schedule spans the MLE phase
        self.optimizers = {
            "mle": build_optimizer(gen, cfg, dev),
            "pg": build_optimizer(gen, _with_lr(cfg, self.mc.pg_learning_rate), dev),
            "d": build_optimizer(disc, _with_lr(cfg, self.mc.d_learning_rate), dev),
        }
        self.done = dict.fromkeys(PHASES, 0)          # steps done in each phase

    @property
    def phase(self) -> str:
        if self.done["mle"] < self.mc.mle_steps:
            return "mle"
        if self.done["d_pretrain"] < self.mc.d_pretrain_steps:
            return "d_pretrain"
        return "adversarial"

    def train_step(self, step: int) -> StepOutput:
        phase = self.phase
        if phase == "mle":
            out = self._mle_step(step)
        elif phase == "d_pretrain":
            loss, accuracy, tokens = self._d_update()
            out = StepOutput(loss, tokens, self.mc.d_learning_rate, {"d_acc": accuracy})
        else:
            out = self._adversarial_step()
        self.done[phase] += 1
        return out

    def _real(self) -> Tensor:
        """A batch of real passages (B, T): windows of the training text."""
        return self.ctx.source.next_batch().x.to(self.ctx.device)

    def _update(self, name: str, loss: Tensor, module: nn.Module) -> None:
        optimizer = self.optimizers[name]
        loss.backward()
        if self.cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(module.parameters(), self.cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def _mle_step(self, step: int) -> StepOutput:
        lr = learning_rate(self.done["mle"], self._mle_cfg)
        set_lr(self.optimizers["mle"], lr)
        batch = self.ctx.source.next_batch().to(self.ctx.device)
        loss = self.ctx.hooks.loss(self.model, batch, step)
        self._update("mle", loss, self.model.generator)
        return StepOutput(loss.detach(), self.ctx.hooks.tokens(batch), lr)

    def _d_update(self) -> tuple[Tensor, Tensor, int]:
        real = self._real()
        fake = sample_continuations(self.model.generator, real[:, : self.mc.prefix_tokens], real.size(1))
        loss, accuracy = discriminator_loss(self.model.discriminator, real, fake)
        self._update("d", loss, self.model.discriminator)
        return loss.detach(), accuracy, 2 * real.numel()

    def _adversarial_step(self) -> StepOutput:
        gen, mc = self.model.generator, self.mc
        real = self._real()
        seqs = sample_continuations(gen, real[:, : mc.prefix_tokens], real.size(1))
        rewards = rollout_rewards(gen, self.model.discriminator, seqs, mc.prefix_tokens, mc.rollouts)
        loss = policy_gradient_loss(gen, seqs, mc.prefix_tokens, rewards)
        self._update("pg", loss, gen)
        found: dict[str, Tensor | float] = {"reward": rewards.mean()}
        tokens = seqs.numel() * (1 + mc.rollouts)
        d_results = [self._d_update() for _ in range(mc.d_steps)]
        if d_results:
            found["d_loss"] = torch.stack([d[0] for d in d_results]).mean()
            found["d_acc"] = torch.stack([d[1] for d in d_results]).mean()
            tokens += sum(d[2] for d in d_results)
        return StepOutput(loss.detach(), tokens, mc.pg_learning_rate, found)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """BLEU of continuations of validation passages against all their real continuations, their
        self-BLEU, and D's accuracy on them (sampling from a fixed seed: comparable across evaluations)."""
        valid, tok = self.ctx.valid, self.ctx.tokenizer
        if valid is None or tok is None:
            return {}
        rows: list[Tensor] = []
        for batch in valid.iter_batches():
            rows.append(batch.x)
            if sum(len(r) for r in rows) >= EVAL_PASSAGES:
                break
        real = torch.cat(rows)[:EVAL_PASSAGES].to(self.ctx.device) if rows else None
        if real is None or real.size(0) < 2:
            return {}
        start = self.mc.prefix_tokens
        seed = torch.Generator(device=self.ctx.device).manual_seed(self.cfg.seed)
        was_training = model.training
        model.eval()
        try:
            fake = sample_continuations(model.generator, real[:, :start], real.size(1), generator=seed)
            with torch.no_grad():
                _, accuracy = discriminator_loss(model.discriminator, real, fake)
        finally:
            model.train(was_training)
        written = [tok.decode(row[start:].tolist()) for row in fake]
        truth = [tok.decode(row[start:].tolist()) for row in real]
        return {"bleu": metrics.bleu(written, [truth] * len(written)),
                "self_bleu": metrics.self_bleu(written), "d_acc_valid": float(accuracy)}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
                "done": dict(self.done)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.done = {phase: int(state["done"][phase]) for phase in PHASES}
        log.info("seqgan resumes in its %s phase (%s)", self.phase,
                 ", ".join(f"{phase} {n} steps done" for phase, n in self.done.items()))


def _with_lr(cfg: Any, lr: float) -> Any:
    """The training settings with another (constant) learning rate."""
    return replace(cfg, learning_rate=lr, min_lr=min(cfg.min_lr, lr))
