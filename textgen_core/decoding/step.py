"""One step of any search: the model's logits for every row, the length rules, the per-input
constraints and the shared processors -> scores and log-probabilities (see :mod:`.search`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import groupby

import torch
from torch import Tensor

from textgen_core.decoding.hypothesis import Alternatives, Limits
from textgen_core.decoding.processors import LogitsProcessor, apply_processors
from textgen_core.decoding.steppers import Stepper
from textgen_core.errors import ConfigError


class StepScorer:
    """Scores one step for rows that each belong to an input (``owners[r]`` is row r's input)."""

    def __init__(
        self,
        stepper: Stepper,
        eos_id: int,
        processors: Sequence[LogitsProcessor],
        constraints: Sequence[Sequence[LogitsProcessor]],
        alternatives: int,
    ) -> None:
        self.stepper, self.eos_id = stepper, eos_id
        self.processors, self.constraints = list(processors), constraints
        self.n_alternatives = alternatives

    def __call__(self, seqs: Tensor, owners: Sequence[int], step: int, limits: Sequence[Limits]
                 ) -> tuple[Tensor, Tensor]:
        """``seqs`` (N, T) -> processed scores (N, V) and their log-probs (N, V)."""
        logits = self.stepper.logits(seqs)  # (N, V)
        if self.eos_id >= logits.size(-1):
            raise ConfigError(f"eos id {self.eos_id} is outside the vocabulary (size {logits.size(-1)})")
        seqs = seqs.to(logits.device)
        banned = [step < limits[b].min_tokens for b in owners]
        if any(banned):
            rows = torch.tensor(banned, device=logits.device)
            logits = logits.clone()
            logits[rows, self.eos_id] = -math.inf
        if any(self.constraints[b] for b in set(owners)):
            logits = self._constrain(seqs, owners, logits)
        scores = apply_processors(self.processors, seqs, logits)
        return scores, scores.log_softmax(dim=-1)

    def _constrain(self, seqs: Tensor, owners: Sequence[int], logits: Tensor) -> Tensor:
        """Each input's constraints on its own rows (rows of one input are contiguous)."""
        out = logits.clone()
        start = 0
        for b, run in groupby(owners):
            stop = start + len(list(run))
            if self.constraints[b]:
                out[start:stop] = apply_processors(self.constraints[b], seqs[start:stop], logits[start:stop])
            start = stop
        return out

    def alternatives(self, logp: Tensor) -> list[Alternatives]:
        """Per row, the ``n_alternatives`` most likely tokens and their probabilities."""
        if self.n_alternatives == 0:
            return [()] * logp.size(0)
        k = min(self.n_alternatives, logp.size(-1))
        values, ids = logp.topk(k, dim=-1)  # (N, k)
        probs = values.exp().tolist()
        return [
            tuple((t, p) for t, p in zip(row_ids, row_p) if p > 0.0)
            for row_ids, row_p in zip(ids.tolist(), probs)
        ]

    def select(self, index: Sequence[int], device: torch.device) -> Tensor:
        """Reorder the stepper's rows: new row i = old row ``index[i]``; returns the index tensor."""
        index_t = torch.tensor(list(index), dtype=torch.long, device=device)
        self.stepper.select(index_t)
        return index_t
