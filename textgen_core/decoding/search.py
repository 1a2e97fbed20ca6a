"""Search algorithms over a :class:`~textgen_core.decoding.steppers.Stepper`: greedy, sampling
and beam search.

Conventions shared by all strategies:

* ``prefix`` is the start of the output sequence (seq2seq: ``[bos]``; lm: the prompt ids). A
  :class:`Hypothesis` holds only the tokens generated after it, without the final eos.
* At most ``max_tokens`` tokens are generated, the eos included; eos is banned until
  ``min_tokens`` tokens exist. ``forced_length=L`` overrides both: eos is banned for the first
  ``L`` tokens and forced after them, so every hypothesis has exactly ``L`` tokens and is
  finished. The forced eos has probability 1 under the constrained distribution, so it is not
  computed (no model call) and adds 0 to the score.
* Length constraints are applied to the raw logits, before the processors, so top-k/top-p act on
  the allowed tokens only. Log-probabilities are ``log_softmax`` of the processed scores:
  temperature/top-k/top-p are part of them when sampling; greedy and beam use the
  temperature-free distribution after repetition penalty and banning only (so beam_size=1 with
  length_penalty=0 reproduces greedy exactly).
* A hypothesis's raw score is the sum of its token log-probs plus the eos log-prob if it
  finished; beam search reports it divided by the GNMT length penalty (Wu et al., 2016, "Google's
  Neural Machine Translation System") ``((5 + L) / 6) ** alpha`` with L the number of scored
  tokens (eos included).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from textgen_core.decoding.config import STRATEGIES, DecodeConfig, check_int
from textgen_core.decoding.processors import LogitsProcessor, apply_processors, build_processors
from textgen_core.decoding.steppers import Stepper
from textgen_core.errors import ConfigError

logger = logging.getLogger(__name__)

# STRATEGIES and DecodeConfig live in textgen_core.decoding.config; kept importable from here
__all__ = ["STRATEGIES", "DecodeConfig", "Hypothesis", "generate", "length_penalty"]

@dataclass(frozen=True)
class Hypothesis:
    """One decoded output: generated ids only (no prefix, no eos)."""

    ids: tuple[int, ...]
    score: float  # beam: length-normalised log-prob; greedy/sample: sum of log-probs
    token_logprobs: tuple[float, ...]  # one per id (the eos log-prob is only in score)
    finished: bool  # ended with eos (or reached forced_length); False = max_tokens or stopped


@dataclass(frozen=True)
class _Limits:
    steps: int  # model calls at most
    min_tokens: int  # eos banned while fewer tokens exist
    forced: bool  # reaching `steps` tokens counts as finished


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ``((5 + length) / 6) ** alpha``."""
    return ((5.0 + length) / 6.0) ** alpha


def _ban_eos(logits: Tensor, step: int, eos_id: int, limits: _Limits) -> Tensor:
    """(N, V) -> (N, V) with eos at -inf while fewer than ``min_tokens`` tokens exist."""
    if step < limits.min_tokens:
        return logits.index_fill(-1, torch.tensor([eos_id], device=logits.device), -math.inf)
    return logits


def _step_scores(
    stepper: Stepper,
    seqs: Tensor,
    step: int,
    eos_id: int,
    limits: _Limits,
    processors: Sequence[LogitsProcessor],
) -> tuple[Tensor, Tensor]:
    """One model call: ``seqs`` (N, T) -> processed scores (N, V) and their log-probs (N, V)."""
    logits = stepper.logits(seqs)  # (N, V)
    if eos_id >= logits.size(-1):
        raise ConfigError(f"eos id {eos_id} is outside the vocabulary (size {logits.size(-1)})")
    logits = _ban_eos(logits, step, eos_id, limits)
    scores = apply_processors(processors, seqs.to(logits.device), logits)
    return scores, scores.log_softmax(dim=-1)


def generate(
    stepper: Stepper,
    prefix: Sequence[int],
    *,
    eos_id: int,
    config: DecodeConfig,
    banned_ids: Sequence[int] = (),
    on_token: Callable[[int], bool] | None = None,
    forced_length: int | None = None,
    constraints: Sequence[LogitsProcessor] = (),
) -> list[Hypothesis]:
    """Decode from ``stepper`` after ``prefix``; returns up to ``config.n_best`` hypotheses, best
    first.

    ``on_token(token_id)`` (greedy, or sample with n_best=1) is called with each token as it is
    produced; returning ``False`` (not merely a falsy value) stops generation, and the result
    keeps the tokens produced so far with ``finished=False``. ``forced_length`` makes every
    hypothesis exactly that many tokens long (couplets). ``constraints`` are processors applied
    before the configured ones (e.g. couplet punctuation rules). The stepper must be fresh (one source
    row, as built) and is left in an unspecified row state afterwards.
    """
    prefix = [int(t) for t in prefix]
    if not prefix:
        raise ConfigError("the prefix is empty: decoding needs at least one start token")
    check_int("eos_id", eos_id, 0)
    if forced_length is not None:
        check_int("forced_length", forced_length, 1)
        limits = _Limits(steps=forced_length, min_tokens=forced_length, forced=True)
    else:
        limits = _Limits(steps=config.max_tokens, min_tokens=config.min_tokens, forced=False)
    if on_token is not None and (config.strategy == "beam" or config.n_best != 1):
        raise ConfigError("on_token streaming needs strategy greedy or sample with n_best = 1")
    processors = [*constraints, *build_processors(config, banned_ids)]
    seqs = torch.tensor([prefix], dtype=torch.long)  # (1, P); moved to the model's device later
    with torch.inference_mode():
        if config.strategy == "beam":
            return _beam_search(stepper, seqs, eos_id, config, limits, processors)
        return _sample_search(stepper, seqs, eos_id, config, limits, processors, on_token)


# ---------------------------------------------------------------------------------------------
# Greedy and sampling: n independent rows, each finishing on its own.


@dataclass
class _Draft:
    ids: list[int]
    logprobs: list[float]
    score: float = 0.0


def _pick(scores: Tensor, greedy: bool, gen: torch.Generator | None) -> Tensor:
    """(N, V) processed scores -> (N,) chosen ids; rows with no allowed token get id 0."""
    if greedy:
        return scores.argmax(dim=-1)
    alive = torch.isfinite(scores).any(dim=-1, keepdim=True)  # (N, 1)
    probs = torch.where(alive, scores, torch.zeros_like(scores)).float().softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)  # (N,)


def _make_generator(device: torch.device, seed: int | None) -> torch.Generator:
    """A private generator, so sampling never touches (nor depends on) the global RNG."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return gen


def _sample_search(
    stepper: Stepper,
    seqs: Tensor,
    eos_id: int,
    config: DecodeConfig,
    limits: _Limits,
    processors: Sequence[LogitsProcessor],
    on_token: Callable[[int], bool] | None,
) -> list[Hypothesis]:
    greedy = config.strategy == "greedy"
    n = config.n_best
    drafts = [_Draft([], []) for _ in range(n)]
    done: list[Hypothesis] = []
    rows = list(range(n))  # stepper row r decodes drafts[rows[r]]
    if n > 1:
        stepper.select(torch.zeros(n, dtype=torch.long))
        seqs = seqs.expand(n, -1)
    gen: torch.Generator | None = None
    for step in range(limits.steps):
        scores, logp = _step_scores(stepper, seqs, step, eos_id, limits, processors)
        if gen is None and not greedy:
            gen = _make_generator(scores.device, config.seed)
        tok = _pick(scores, greedy, gen)  # (N,)
        tok_lp = logp.gather(-1, tok[:, None]).squeeze(-1)  # (N,)
        keep: list[int] = []
        for r, (t, lp) in enumerate(zip(tok.tolist(), tok_lp.tolist())):
            draft = drafts[rows[r]]
            if not math.isfinite(lp):  # every token was banned: stop this row
                done.append(_finish(draft, finished=False))
            elif t == eos_id:
                draft.score += lp
                done.append(_finish(draft, finished=True))
            else:
                draft.ids.append(t)
                draft.logprobs.append(lp)
                draft.score += lp
                if on_token is not None and on_token(t) is False:
                    done.append(_finish(draft, finished=False))
                else:
                    keep.append(r)
        if not keep:
            break
        if len(keep) < len(rows):
            index = torch.tensor(keep, dtype=torch.long, device=tok.device)
            stepper.select(index)
            seqs, tok = seqs.to(tok.device).index_select(0, index), tok.index_select(0, index)
            rows = [rows[r] for r in keep]
        seqs = torch.cat([seqs.to(tok.device), tok[:, None]], dim=1)  # (N, T+1)
    else:
        done.extend(_finish(drafts[i], finished=limits.forced) for i in rows)
    return sorted(done, key=lambda h: h.score, reverse=True)


def _finish(draft: _Draft, *, finished: bool, alpha: float = 0.0, scored: int = 0) -> Hypothesis:
    score = draft.score / length_penalty(scored, alpha) if alpha else draft.score
    return Hypothesis(tuple(draft.ids), score, tuple(draft.logprobs), finished)


# ---------------------------------------------------------------------------------------------
# Beam search (one input at a time).
#
# Each step expands the K live beams, takes the 2K best (beam score + token log-prob)
# candidates, moves eos candidates ranked in the top K to the finished list and keeps the K best
# non-eos candidates alive. Stopping rule (exact with respect to that pruning): log-probs are
# <= 0 and the length penalty grows with length, so a live beam with raw score s can never end
# above s / lp(steps) (s itself when alpha = 0). The search stops as soon as n_best finished
# hypotheses score at least that bound for every live beam; at the step limit the live beams
# join the ranking as unfinished hypotheses (forced_length: as finished ones).


def _beam_search(
    stepper: Stepper,
    seqs: Tensor,
    eos_id: int,
    config: DecodeConfig,
    limits: _Limits,
    processors: Sequence[LogitsProcessor],
) -> list[Hypothesis]:
    k, alpha = config.beam_size, config.length_penalty
    beams = [_Draft([], [])]
    finished: list[Hypothesis] = []
    bound_lp = length_penalty(limits.steps, alpha)
    for step in range(limits.steps):
        _, logp = _step_scores(stepper, seqs, step, eos_id, limits, processors)  # (K, V)
        base = torch.tensor([b.score for b in beams], dtype=logp.dtype, device=logp.device)
        total = (base[:, None] + logp).flatten()  # (K*V,)
        # a stable sort rather than topk: ties go to the lower (beam, token), as with argmax
        values, flats = total.sort(descending=True, stable=True)
        top = flats[: 2 * k]  # (2K,)
        cands = zip(values[: 2 * k].tolist(), top.tolist(), logp.flatten()[top].tolist())
        parents, new_beams, new_tokens = [], [], []
        for rank, (value, flat, lp) in enumerate(cands):
            if not math.isfinite(value) or len(new_beams) == k:
                break
            parent, tok = divmod(flat, logp.size(-1))
            value = beams[parent].score + lp  # accumulated in double precision, as in greedy
            if tok == eos_id:
                if rank < k:
                    draft = _Draft(beams[parent].ids, beams[parent].logprobs, value)
                    finished.append(_finish(draft, finished=True, alpha=alpha, scored=step + 1))
                continue
            parents.append(parent)
            new_tokens.append(tok)
            new_beams.append(
                _Draft([*beams[parent].ids, tok], [*beams[parent].logprobs, lp], value)
            )
        if not math.isfinite(values[0].item()):  # every token banned: the beams end here
            finished.extend(
                _finish(b, finished=False, alpha=alpha, scored=len(b.ids)) for b in beams
            )
            break
        beams = new_beams
        if not beams or _beam_done(finished, beams, config.n_best, bound_lp):
            logger.debug("beam search stopped after %d of %d steps", step + 1, limits.steps)
            break
        index = torch.tensor(parents, dtype=torch.long, device=logp.device)
        stepper.select(index)
        tokens = torch.tensor(new_tokens, dtype=torch.long, device=logp.device)
        seqs = torch.cat([seqs.to(logp.device).index_select(0, index), tokens[:, None]], dim=1)
    else:
        finished.extend(
            _finish(b, finished=limits.forced, alpha=alpha, scored=len(b.ids)) for b in beams
        )
    finished.sort(key=lambda h: h.score, reverse=True)
    return finished[: config.n_best]


def _beam_done(
    finished: list[Hypothesis], beams: list[_Draft], n_best: int, bound_lp: float
) -> bool:
    """True when no live beam can still reach the current n_best finished hypotheses."""
    if len(finished) < n_best:
        return False
    nth = sorted((h.score for h in finished), reverse=True)[n_best - 1]
    best_live = max(b.score for b in beams)  # raw, <= 0
    return nth >= best_live / bound_lp
