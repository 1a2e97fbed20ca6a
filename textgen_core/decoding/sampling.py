"""Greedy decoding and sampling, batched: ``n_best`` independent rows per input, each finishing on
its own; finished rows leave the batch (see :mod:`.search` for the conventions)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from textgen_core.decoding.config import DecodeConfig
from textgen_core.decoding.hypothesis import Draft, Hypothesis, Limits
from textgen_core.decoding.step import StepScorer


def pick(scores: Tensor, greedy: bool, gen: torch.Generator | None) -> Tensor:
    """(N, V) processed scores -> (N,) chosen ids; rows with no allowed token get id 0."""
    if greedy:
        return scores.argmax(dim=-1)
    alive = torch.isfinite(scores).any(dim=-1, keepdim=True)  # (N, 1)
    probs = torch.where(alive, scores, torch.zeros_like(scores)).float().softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)  # (N,)


def make_generator(device: torch.device, seed: int | None) -> torch.Generator:
    """A private generator, so sampling never touches (nor depends on) the global RNG."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return gen


class _Rows:
    """The rows still decoding: row r writes ``drafts[r]`` for input ``owners[r]``."""

    def __init__(self, inputs: int, n: int) -> None:
        self.owners = [b for b in range(inputs) for _ in range(n)]
        self.drafts = [Draft() for _ in self.owners]
        self.done: list[list[Hypothesis]] = [[] for _ in range(inputs)]

    def end(self, r: int, finished: bool) -> None:
        self.done[self.owners[r]].append(self.drafts[r].finish(finished=finished))


def sample_search(
    scorer: StepScorer,
    seqs: Tensor,
    config: DecodeConfig,
    limits: Sequence[Limits],
    forced: Sequence[Sequence[int]],
    on_token: Callable[[int], bool] | None,
) -> list[list[Hypothesis]]:
    greedy, n = config.strategy == "greedy", config.n_best
    rows = _Rows(len(limits), n)
    if n > 1:
        seqs = seqs.index_select(0, scorer.select(rows.owners, seqs.device))   # (B*n, P)
    gen: torch.Generator | None = None
    for step in range(max(lim.steps for lim in limits)):
        keep = [r for r, b in enumerate(rows.owners) if step < limits[b].steps]
        for r in set(range(len(rows.owners))) - set(keep):      # the input's length is reached
            rows.end(r, finished=limits[rows.owners[r]].forced)
        seqs = _keep(scorer, rows, keep, seqs)
        if not keep:
            break
        scores, logp = scorer(seqs, rows.owners, step, limits)
        if gen is None and not greedy:
            gen = make_generator(scores.device, config.seed)
        tok = _forced(pick(scores, greedy, gen), rows.owners, forced, step)   # (N,)
        tok_lp = logp.gather(-1, tok[:, None]).squeeze(-1)  # (N,)
        alternatives = scorer.alternatives(logp)
        keep = []
        for r, (t, lp) in enumerate(zip(tok.tolist(), tok_lp.tolist())):
            if not math.isfinite(lp):  # every token was banned: stop this row
                rows.end(r, finished=False)
            elif t == scorer.eos_id:
                rows.drafts[r].score += lp
                rows.end(r, finished=True)
            else:
                rows.drafts[r] = rows.drafts[r].extended(t, lp, alternatives[r])
                if on_token is not None and on_token(t) is False:
                    rows.end(r, finished=False)
                else:
                    keep.append(r)
        seqs = torch.cat([seqs.to(tok.device), tok[:, None]], dim=1)  # (N, T+1)
        seqs = _keep(scorer, rows, keep, seqs)
        if not keep:
            break
    else:
        for r in range(len(rows.owners)):
            rows.end(r, finished=limits[rows.owners[r]].forced)
    return [sorted(done, key=lambda h: h.score, reverse=True) for done in rows.done]


def _keep(scorer: StepScorer, rows: _Rows, keep: list[int], seqs: Tensor) -> Tensor:
    """Drop the rows not in ``keep`` from the stepper, ``seqs`` and the bookkeeping."""
    if len(keep) == len(rows.owners):
        return seqs
    rows.owners = [rows.owners[r] for r in keep]
    rows.drafts = [rows.drafts[r] for r in keep]
    if not keep:
        return seqs[:0]
    return seqs.index_select(0, scorer.select(keep, seqs.device))


def _forced(tok: Tensor, owners: Sequence[int], forced: Sequence[Sequence[int]], step: int) -> Tensor:
    """The chosen ids with the forced prefix tokens put in where an input has one at ``step``."""
    if not any(step < len(forced[b]) for b in set(owners)):
        return tok
    want = [forced[b][step] if step < len(forced[b]) else -1 for b in owners]
    want_t = torch.tensor(want, dtype=tok.dtype, device=tok.device)
    return torch.where(want_t >= 0, want_t, tok)
