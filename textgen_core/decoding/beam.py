"""Beam search, batched over inputs x beams (see :mod:`.search` for the conventions).

Each step expands every input's live beams (at most K) in one model call, takes each input's 2K
best (beam score + token log-prob) candidates with one ``topk`` over a padded (inputs, K x V)
table, moves eos candidates ranked in the top K to that input's finished list and keeps the K best
non-eos candidates alive. Stopping rule per input (exact with respect to that pruning): log-probs
are <= 0 and the length penalty grows with length, so a live beam with raw score s can never end
above s / lp(steps) (s itself when alpha = 0). An input stops as soon as n_best finished
hypotheses score at least that bound for every live beam, and leaves the batch; at its step limit
the live beams join the ranking as unfinished hypotheses (forced length: as finished ones).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from textgen_core.decoding.config import DecodeConfig
from textgen_core.decoding.hypothesis import Alternatives, Draft, Hypothesis, Limits, length_penalty
from textgen_core.decoding.step import StepScorer

logger = logging.getLogger(__name__)


class _Search:
    """Per-input beams and finished hypotheses; the stepper's rows are the live inputs' beams, in
    input order."""

    def __init__(self, config: DecodeConfig, limits: Sequence[Limits]) -> None:
        self.k, self.alpha, self.n_best = config.beam_size, config.length_penalty, config.n_best
        self.limits = limits
        self.beams: list[list[Draft]] = [[Draft()] for _ in limits]
        self.finished: list[list[Hypothesis]] = [[] for _ in limits]
        self.live = list(range(len(limits)))

    @property
    def owners(self) -> list[int]:
        return [b for b in self.live for _ in self.beams[b]]

    def end(self, b: int, finished: bool) -> None:
        """Input ``b``'s live beams join its ranking (they stop here)."""
        self.finished[b].extend(
            d.finish(finished=finished, alpha=self.alpha, scored=len(d.ids)) for d in self.beams[b]
        )
        self.beams[b] = []

    def done(self, b: int) -> bool:
        """True when no live beam of ``b`` can still reach its current n_best finished hypotheses."""
        if not self.beams[b]:
            return True
        if len(self.finished[b]) < self.n_best:
            return False
        nth = sorted((h.score for h in self.finished[b]), reverse=True)[self.n_best - 1]
        best_live = max(d.score for d in self.beams[b])  # raw, <= 0
        return nth >= best_live / length_penalty(self.limits[b].steps, self.alpha)

    def results(self) -> list[list[Hypothesis]]:
        return [sorted(f, key=lambda h: h.score, reverse=True)[: self.n_best] for f in self.finished]


def beam_search(
    scorer: StepScorer,
    seqs: Tensor,
    config: DecodeConfig,
    limits: Sequence[Limits],
    forced: Sequence[Sequence[int]],
) -> list[list[Hypothesis]]:
    search = _Search(config, limits)
    for step in range(max(lim.steps for lim in limits)):
        rows_before = search.owners
        for b in search.live:
            if step >= limits[b].steps:               # the input's length is reached
                search.end(b, finished=limits[b].forced)
        seqs = _select(scorer, search, rows_before, seqs)
        if not search.live:
            break
        _, logp = scorer(seqs, search.owners, step, limits)      # (N, V)
        alternatives = scorer.alternatives(logp)
        parents, tokens = _expand(search, logp, alternatives, step, forced, scorer.eos_id)
        search.live = [b for b in search.live if search.beams[b]]
        if not parents:
            break
        index = scorer.select(parents, logp.device)
        tokens_t = torch.tensor(tokens, dtype=torch.long, device=logp.device)
        seqs = torch.cat([seqs.to(logp.device).index_select(0, index), tokens_t[:, None]], dim=1)
    else:
        for b in search.live:
            search.end(b, finished=limits[b].forced)
    return search.results()


def _select(scorer: StepScorer, search: _Search, rows_before: list[int], seqs: Tensor) -> Tensor:
    """Drop the rows of inputs that ended (their beams were emptied)."""
    search.live = [b for b in search.live if search.beams[b]]
    if len(search.owners) == len(rows_before):
        return seqs
    keep = [r for r, b in enumerate(rows_before) if search.beams[b]]
    if not keep:
        return seqs[:0]
    return seqs.index_select(0, scorer.select(keep, seqs.device))


def _expand(
    search: _Search, logp: Tensor, alternatives: list[Alternatives], step: int,
    forced: Sequence[Sequence[int]], eos_id: int,
) -> tuple[list[int], list[int]]:
    """One step of every live input -> the new rows' (parent row, token); updates the beams."""
    live, offsets = search.live, []
    row = 0
    for b in live:
        offsets.append(row)
        row += len(search.beams[b])
    values, flats, cand_lp = _top_candidates(search, logp)
    vocab = logp.size(-1)
    parents: list[int] = []
    tokens: list[int] = []
    for i, b in enumerate(live):
        if step < len(forced[b]):                   # one beam follows the given tokens
            tok = forced[b][step]
            cands = [(search.beams[b][0].score + float(logp[offsets[i], tok]), 0, tok,
                      float(logp[offsets[i], tok]))]
        else:
            cands = [(v, *divmod(f, vocab), lp) for v, f, lp in zip(values[i], flats[i], cand_lp[i])]
        chosen = _advance(search, b, cands, step, eos_id)
        search.beams[b] = [
            search.beams[b][parent].extended(tok, lp, alternatives[offsets[i] + parent])
            for parent, tok, lp in chosen
        ]
        if search.done(b):
            search.beams[b] = []
            continue
        parents.extend(offsets[i] + parent for parent, _, _ in chosen)
        tokens.extend(tok for _, tok, _ in chosen)
    return parents, tokens


def _top_candidates(search: _Search, logp: Tensor) -> tuple[list, list, list]:
    """Each live input's 2K best (total score, flat index into K x V, token log-prob), best first,
    from one ``topk`` over a padded (inputs, K x V) table (-inf where an input has < K beams)."""
    k, vocab, n_in = search.k, logp.size(-1), len(search.live)
    scores = torch.tensor([d.score for b in search.live for d in search.beams[b]], dtype=logp.dtype,
                          device=logp.device)
    if logp.size(0) == n_in * k:                  # every input has K beams: no padding needed
        table, base = logp, scores[:, None]                                     # (B'*K, V), (B'*K, 1)
    else:
        slots = [i * k + j for i, b in enumerate(search.live) for j in range(len(search.beams[b]))]
        slots_t = torch.tensor(slots, dtype=torch.long, device=logp.device)
        table = torch.full((n_in * k, vocab), -math.inf, dtype=logp.dtype, device=logp.device)
        table[slots_t] = logp                                                   # (B'*K, V)
        base = torch.full((n_in * k, 1), -math.inf, dtype=logp.dtype, device=logp.device)
        base[slots_t, 0] = scores
    total = (base + table).view(n_in, k * vocab)                                # (B', K*V)
    values, flats = _stable_top(total, min(2 * k, k * vocab))                  # (B', 2K)
    cand_lp = table.view(n_in, k * vocab).gather(1, flats)                      # (B', 2K)
    return values.tolist(), flats.tolist(), cand_lp.tolist()


def _stable_top(total: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """``topk`` whose ties go to the lower (beam, token), as ``argmax`` and a stable sort do. A tie
    across the cut shows as the next value equal to the last one taken; such rows (rare: it needs
    exactly equal finite scores) are redone with a stable sort."""
    more = min(width + 1, total.size(-1))
    values, flats = total.topk(more, dim=-1)                                    # (B', W+1)
    if more > width:
        cut, after = values[:, width - 1], values[:, width]
        tied = (cut == after) & torch.isfinite(cut)                             # (B',)
        values, flats = values[:, :width], flats[:, :width]
        if bool(tied.any()):
            rows = tied.nonzero().flatten()
            v, f = total[rows].sort(dim=-1, descending=True, stable=True)
            values, flats = values.clone(), flats.clone()
            values[rows], flats[rows] = v[:, :width], f[:, :width]
    order = torch.argsort(flats, dim=-1)                     # by index, then stably by value
    flats, values = flats.gather(1, order), values.gather(1, order)
    by_value = torch.sort(values, dim=-1, descending=True, stable=True).indices
    return values.gather(1, by_value), flats.gather(1, by_value)


def _advance(search: _Search, b: int, cands: list[tuple[float, int, int, float]], step: int,
             eos_id: int) -> list[tuple[int, int, float]]:
    """Input ``b``'s candidates (total, parent beam, token, log-prob), best first -> the K beams it
    keeps as (parent, token, log-prob); eos candidates in the top K finish."""
    beams, k = search.beams[b], search.k
    if not cands or not math.isfinite(cands[0][0]):      # every token banned: the beams end here
        search.end(b, finished=False)
        return []
    chosen: list[tuple[int, int, float]] = []
    for rank, (value, parent, tok, lp) in enumerate(cands):
        if not math.isfinite(value) or len(chosen) == k:
            break
        if tok == eos_id:
            if rank < k:
                ended = Draft(beams[parent].ids, beams[parent].logprobs, beams[parent].score + lp,
                              beams[parent].alternatives)
                search.finished[b].append(ended.finish(finished=True, alpha=search.alpha, scored=step + 1))
            continue
        chosen.append((parent, tok, lp))
    return chosen
