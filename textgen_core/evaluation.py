"""Validation and test evaluation: teacher-forced loss and perplexity, BLEU/chrF of outputs.

Used by the trainer at each evaluation and by ``textgen evaluate``
(:mod:`textgen_core.project_evaluation`). The outputs scored come from the same batched search, with
the same rules, as everything else writes (:meth:`textgen_core.generation.Generator.generate_many`
with greedy decoding). Loss is per pair; for translation BLEU/chrF decode each distinct source once
and score it against all its references (:func:`textgen_core.corpus.reference_groups`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from textgen_core import metrics, models
from textgen_core.data import LMBatch, Seq2SeqBatch


def batch_loss(
    model: nn.Module, batch: Seq2SeqBatch | LMBatch, pad_id: int, label_smoothing: float = 0.0,
    step: int = 0, total_steps: int = 1,
) -> torch.Tensor:
    """The model's own training loss of one batch (its spec's ``loss``; padding ignored)."""
    ctx = models.TrainContext(step=step, total_steps=total_steps, pad_id=pad_id,
                              label_smoothing=label_smoothing)
    return models.spec_of(model).loss(model, batch, ctx)


@torch.no_grad()
def mean_loss(
    model: nn.Module,
    batches: Iterable[Seq2SeqBatch | LMBatch],
    pad_id: int,
    device: torch.device,
    max_batches: int | None = None,
) -> float:
    """Token-weighted mean negative log-likelihood over ``batches`` (nan when there are none)."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    try:
        for i, batch in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            batch = batch.to(device)
            n = batch.n_tokens
            total += batch_loss(model, batch, pad_id).item() * n
            tokens += n
    finally:
        model.train(was_training)
    return total / tokens if tokens else float("nan")


def text_scores(hypotheses: Sequence[str], groups: Sequence[tuple[str, Sequence[str]]]) -> dict[str, Any]:
    """BLEU and chrF (sacrebleu) of one output per (source, references) group against all the
    group's references."""
    refs = [list(group_refs) for _, group_refs in groups]
    return {"bleu": metrics.bleu(list(hypotheses), refs), "chrf": metrics.chrf(list(hypotheses), refs)}
