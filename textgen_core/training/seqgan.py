"""SeqGAN training: MLE pre-training, discriminator pre-training, then adversarial policy gradient.

Yu et al. 2017, "SeqGAN: Sequence Generative Adversarial Nets with Policy Gradient", Algorithm 1:

1. ``mle``: the generator G learns the real rows by maximum likelihood (teacher forcing);
2. ``d_pretrain``: the discriminator D learns real rows (label 1) from G's (label 0);
3. ``adversarial``: each step is one policy-gradient (REINFORCE, Williams 1992) update of G,
   ``-mean_t log G(y_t | Y_<t) * Q(Y_<t, y_t)``, whose action values Q come from Monte-Carlo
   rollouts: for every written token, ``rollouts`` completions are sampled from G and scored by D
   (eq. 4-5; the last token is scored on the row itself); then ``d_steps`` updates of D on
   fresh real and generated rows.

What G writes in a training row (:class:`Episodes`): for a story, every row is a window of the
novel whose first ``prefix_tokens`` tokens are kept and the rest written, so that G learns to
continue a text; for couplets, every row is ``first line <sep> second line <eos>`` (the prefix-LM
rows of the task) and G writes the second line, as long as the real one, so that D judges whole
couplets: a second line that does not answer its first line is fake. As in the paper, the rewards
are D's probabilities of "real" without a baseline, and G's policy-gradient updates have their own
optimizer and learning rate. Each phase has its own optimizer(s); their states and the steps done
in each phase are this algorithm's checkpoint state, so a resume continues mid-phase. Training runs
in one process, in full precision (``train.amp`` and ``train.grad_accum`` do not apply).

Metrics: ``d_acc`` (D's accuracy on the batch it trains on), ``d_loss`` and ``reward`` (mean Q) per
step; at evaluations, besides the task's validation loss (and, for couplets, its greedy BLEU),
``self_bleu`` among texts G samples for validation rows (rising: mode collapse), D's accuracy on
them and, for a story, ``bleu`` of those continuations against all the real ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textgen_core import metrics
from textgen_core.data import LMBatch
from textgen_core.errors import TrainingError
from textgen_core.training.algorithm import AlgorithmContext, StepOutput, build_optimizer, set_lr
from textgen_core.training.schedule import learning_rate

log = logging.getLogger(__name__)

PHASES = ("mle", "d_pretrain", "adversarial")
EVAL_ROWS = 16        # validation rows G writes at each evaluation for BLEU / self-BLEU


# --------------------------------------------------------------------------- what G writes


@dataclass(frozen=True)
class Episodes:
    """Real rows and the part of each that G writes: positions ``start <= t < end``."""

    rows: Tensor     # (B, T) long
    start: Tensor    # (B,) first written position, >= 1 (G always reads something first)
    end: Tensor      # (B,) one past the last written position

    @classmethod
    def windows(cls, rows: Tensor, prefix: int) -> Episodes:
        """Windows of a story (B, T): the first ``prefix`` tokens kept, the rest written."""
        b, t = rows.shape
        dev = rows.device
        return cls(rows, torch.full((b,), prefix, device=dev), torch.full((b,), t, device=dev))

    @classmethod
    def from_batch(cls, batch: LMBatch, prefix: int) -> Episodes:
        """Windows (``batch.pad_id is None``) or prefix-LM pairs ``source <sep> target <eos>``,
        whose target (up to, not including, the eos) is written."""
        if batch.pad_id is None:
            return cls.windows(batch.x, prefix)
        x, y = batch.x, batch.y                                    # (B, T): y is pad on the source
        rows = F.pad(x, (0, 1), value=batch.pad_id)                # (B, T + 1): room for the eos
        learned = y != batch.pad_id                                # target and eos
        rows[:, 1:] = torch.where(learned, y, rows[:, 1:])
        pos = torch.arange(y.size(1), device=y.device)
        start = torch.where(learned, pos, y.size(1)).amin(dim=1) + 1          # the target's first
        end = torch.where(learned, pos, -1).amax(dim=1) + 1                  # the eos
        return cls(rows, start, end)

    def written(self) -> Tensor:
        """(B, T) bool: the positions G writes."""
        pos = torch.arange(self.rows.size(1), device=self.rows.device)
        return (pos >= self.start[:, None]) & (pos < self.end[:, None])

    @property
    def width(self) -> int:
        """The most tokens G writes in one row."""
        return int((self.end - self.start).max().clamp(min=0))


def draw(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One token per row from ``softmax(logits)`` (N, V) -> (N,), by inverse CDF: one uniform number
    per row (many times faster than ``torch.multinomial`` on a CPU for thousands of rows)."""
    cdf = F.softmax(logits.float(), dim=-1).cumsum(dim=-1)                         # (N, V)
    u = torch.rand(cdf.size(0), 1, device=cdf.device, generator=generator) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.size(1) - 1)[:, 0]


@torch.no_grad()
def sample(gen: nn.Module, ep: Episodes, generator: torch.Generator | None = None) -> Tensor:
    """The rows (B, T) with their written positions sampled from G, the rest kept."""
    return _fill(gen, ep.rows, ep.written(), int(ep.start.min()), int(ep.end.max()), 1, generator)


def _fill(gen: nn.Module, rows: Tensor, fill: Tensor, first: int, stop: int, copies: int = 1,
          generator: torch.Generator | None = None) -> Tensor:
    """``copies`` copies of ``rows`` (B, T) -> (N = copies * B, T), with the positions where ``fill``
    (N, T) holds sampled from G, left to right: one cuDNN pass over the kept ``rows[:, :first]``
    (shared by the copies), then one GRU step per position up to ``stop``."""
    logits, h = gen.run(rows[:, :first])                           # (B, first, V), h (L, B, H)
    last, h, out = logits[:, -1].repeat(copies, 1), h.repeat(1, copies, 1), rows.repeat(copies, 1)
    for k in range(first, stop):
        out[:, k] = torch.where(fill[:, k], draw(last, generator), out[:, k])     # (N,)
        if k < stop - 1:
            last, h = gen.step(out[:, k], h)
    return out


@torch.no_grad()
def rollout_rewards(gen: nn.Module, disc: nn.Module, seqs: Tensor, ep: Episodes, rollouts: int) -> Tensor:
    """Q of every written token of ``seqs`` (B, T) -> (B, W), ``W = ep.width``: column g is the token
    at ``ep.start + g`` (zero past a row's end).

    Rows for all (rollout, written position) pairs step through G together: row (r, g) keeps the
    tokens up to position ``start + g`` and samples the rest of the written part, so the whole
    estimate costs one pass over the common prompt, ``end.max() - start.min()`` GRU steps over
    ``rollouts * W * B`` rows, then one pass of D.
    """
    B, width = seqs.size(0), ep.width
    copies = rollouts * width
    g = torch.arange(width, device=seqs.device)
    kept = (ep.start[None, :] + g[:, None]).reshape(-1).repeat(rollouts)          # (R,) R = copies * B
    written = ep.written().repeat(copies, 1)                                       # (R, T)
    pos = torch.arange(seqs.size(1), device=seqs.device)
    tokens = _fill(gen, seqs, written & (pos[None, :] > kept[:, None]), int(ep.start.min()),
                   int(ep.end.max()), copies)
    was_training = disc.training
    disc.eval()
    try:
        p_real = torch.sigmoid(disc(tokens).float())               # (R,)
    finally:
        disc.train(was_training)
    valid = (ep.start[:, None] + g[None, :]) < ep.end[:, None]                     # (B, W)
    return p_real.view(rollouts, width, B).mean(0).transpose(0, 1) * valid


def policy_gradient_loss(gen: nn.Module, seqs: Tensor, ep: Episodes, rewards: Tensor) -> Tensor:
    """REINFORCE: ``-mean log G(y_t | y_<t) * Q_t`` over the written tokens; rewards (B, W) as
    :func:`rollout_rewards` gives them."""
    logits, _ = gen.run(seqs[:, :-1])                              # (B, T-1, V): predicts seqs[:, 1:]
    logp = F.log_softmax(logits.float(), dim=-1).gather(2, seqs[:, 1:, None])[..., 0]   # (B, T-1)
    g = torch.arange(rewards.size(1), device=seqs.device)
    at = ep.start[:, None] + g[None, :]                             # (B, W) positions of the tokens
    valid = at < ep.end[:, None]
    chosen = logp.gather(1, (at - 1).clamp(max=logp.size(1) - 1))  # (B, W)
    return -(chosen * rewards * valid).sum() / valid.sum().clamp(min=1)


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

    def _episodes(self) -> Episodes:
        """A batch of real rows and what G writes in them."""
        return Episodes.from_batch(self.ctx.source.next_batch().to(self.ctx.device), self.mc.prefix_tokens)

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
        ep = self._episodes()
        fake = sample(self.model.generator, ep)
        loss, accuracy = discriminator_loss(self.model.discriminator, ep.rows, fake)
        self._update("d", loss, self.model.discriminator)
        return loss.detach(), accuracy, 2 * ep.rows.numel()

    def _adversarial_step(self) -> StepOutput:
        gen, mc = self.model.generator, self.mc
        ep = self._episodes()
        seqs = sample(gen, ep)
        rewards = rollout_rewards(gen, self.model.discriminator, seqs, ep, mc.rollouts)
        loss = policy_gradient_loss(gen, seqs, ep, rewards)
        self._update("pg", loss, gen)
        written = ep.written().sum().clamp(min=1)
        found: dict[str, Tensor | float] = {"reward": rewards.sum() / written}
        tokens = seqs.numel() * (1 + mc.rollouts)
        d_results = [self._d_update() for _ in range(mc.d_steps)]
        if d_results:
            found["d_loss"] = torch.stack([d[0] for d in d_results]).mean()
            found["d_acc"] = torch.stack([d[1] for d in d_results]).mean()
            tokens += sum(d[2] for d in d_results)
        return StepOutput(loss.detach(), tokens, mc.pg_learning_rate, found)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Texts G samples for the first validation rows (from a fixed seed: comparable across
        evaluations): their self-BLEU, D's accuracy on them and, for a story, their BLEU against all
        the real continuations (a couplet task reports its own greedy BLEU)."""
        valid, tok = self.ctx.valid, self.ctx.tokenizer
        batch = next(iter(valid.iter_batches()), None) if valid is not None and tok is not None else None
        if batch is None or batch.x.size(0) < 2:
            return {}
        batch = LMBatch(batch.x[:EVAL_ROWS], batch.y[:EVAL_ROWS], batch.pad_id).to(self.ctx.device)
        ep = Episodes.from_batch(batch, self.mc.prefix_tokens)
        seed = torch.Generator(device=self.ctx.device).manual_seed(self.cfg.seed)
        was_training = model.training
        model.eval()
        try:
            fake = sample(model.generator, ep, generator=seed)
            with torch.no_grad():
                _, accuracy = discriminator_loss(model.discriminator, ep.rows, fake)
        finally:
            model.train(was_training)
        parts = [slice(int(a), int(b)) for a, b in zip(ep.start, ep.end)]
        written = [tok.decode(row[part].tolist()) for row, part in zip(fake, parts)]
        result = {"self_bleu": metrics.self_bleu(written), "d_acc_valid": float(accuracy)}
        if batch.pad_id is None:            # a story: any real continuation is a fair reference
            truth = [tok.decode(row[part].tolist()) for row, part in zip(ep.rows, parts)]
            result["bleu"] = metrics.bleu(written, [truth] * len(written))
        return result

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
