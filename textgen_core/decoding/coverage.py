"""The GNMT coverage penalty for beam search with attention models (Wu et al., 2016, "Google's
Neural Machine Translation System", eq. 14):

    cp(X; Y) = beta * sum_j log(min(sum_i p_ij, 1.0))

over source positions j, with p_ij the attention of output position i on source position j. It is
0 when every source token received at least a total attention of 1, and negative for sources left
uncovered, so among the finished beam hypotheses it favours the ones that translate (or answer)
the whole source: the seeds' "attention too concentrated" failure, where the decoder keeps
returning to a few source tokens, costs score. Applied as in GNMT to the final ranking, after the
length normalisation, with the attention of each finished hypothesis computed by one forward pass
(the mean over the heads of the last layer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch
from torch import Tensor

from textgen_core.decoding.hypothesis import Hypothesis


def coverage_penalty(weights: Tensor, beta: float) -> float:
    """``weights`` (T, S): attention of T output positions over S source positions."""
    if weights.numel() == 0 or beta == 0.0:
        return 0.0
    covered = weights.float().sum(dim=0).clamp(min=1e-9, max=1.0)     # (S,)
    return beta * float(torch.log(covered).sum())


def rescore(hyps: Sequence[Hypothesis], attention_of: Callable[[Sequence[int]], Tensor | None],
            beta: float) -> list[Hypothesis]:
    """``hyps`` with the coverage penalty added to their scores, best first. ``attention_of(ids)``
    gives (T, S) weights for one hypothesis (None: nothing to add)."""
    out = []
    for hyp in hyps:
        weights = attention_of(hyp.ids) if hyp.ids else None
        penalty = coverage_penalty(weights, beta) if weights is not None else 0.0
        out.append(replace(hyp, score=hyp.score + penalty) if math.isfinite(penalty) else hyp)
    return sorted(out, key=lambda h: h.score, reverse=True)
