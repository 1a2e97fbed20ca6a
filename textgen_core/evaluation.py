"""Validation and test evaluation: teacher-forced loss and perplexity, BLEU/chrF of greedy outputs.

Used by the trainer at each evaluation and by ``textgen evaluate``
(:mod:`textgen_core.project_evaluation`). Decoding here is a batched
greedy search (many sentences per forward pass) because evaluation decodes whole sets; interactive
generation with sampling and beams lives in :mod:`textgen_core.decoding`. Loss is per pair; for
translation BLEU/chrF decode each distinct source once and score it against all its references
(:func:`textgen_core.corpus.reference_groups`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from textgen_core import metrics, models
from textgen_core.data import LMBatch, Seq2SeqBatch, prefix_lm_side_len
from textgen_core.tokenizer import Tokenizer


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


@torch.no_grad()
def greedy_batch(
    model: nn.Module,
    sources: Sequence[Sequence[int]],
    *,
    tokenizer: Tokenizer,
    max_len: int,
    device: torch.device,
    batch_size: int = 64,
    same_length: bool = False,
) -> list[list[int]]:
    """Greedy outputs (ids without specials) of a seq2seq model, or of a language model on pairs
    (a prefix LM reading ``source <sep>``), for many sources at once, through the model's own
    stepper (one pass per step for the whole batch). A language model has no padding mask, so its
    rows are batched by source length; its sources are cut as in training, to fit the block.

    ``same_length``: every output has exactly its source's length (couplets, character tokens).
    """
    was_training = model.training
    model.eval()
    pad, eos = tokenizer.pad_id, tokenizer.eos_id
    lm = models.spec_of(model).kind == "lm"
    if lm:
        max_len = min(max_len, prefix_lm_side_len(model.config.block_size))
    end = tokenizer.newline_id if lm else eos
    rows = [list(s[: max_len - 1]) + [end] for s in sources]
    outputs: list[list[int]] = [[] for _ in rows]
    try:
        for chunk in _chunks(rows, batch_size, same_width=lm):
            src = torch.full((len(chunk), max(len(rows[i]) for i in chunk)), pad, dtype=torch.long)
            for r, i in enumerate(chunk):
                src[r, : len(rows[i])] = torch.tensor(rows[i])
            lengths = torch.tensor([len(rows[i]) - 1 for i in chunk], device=device)   # (B,)
            steps = int(lengths.max()) + 1 if same_length else max_len - 1
            out = _greedy_rows(models.make_stepper(model, src.to(device)), len(chunk), steps,
                               lengths if same_length else None, tokenizer, device)
            for i, row in zip(chunk, out[:, 1:].tolist()):
                ids = []
                for tok in row:
                    if tok in (eos, pad):
                        break
                    ids.append(tok)
                outputs[i] = ids
    finally:
        model.train(was_training)
    return outputs


def _chunks(rows: Sequence[Sequence[int]], size: int, *, same_width: bool) -> list[list[int]]:
    """Indices of the rows decoded together: consecutive ones, or rows of one length."""
    if not same_width:
        return [list(range(i, min(i + size, len(rows)))) for i in range(0, len(rows), size)]
    by_length: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        by_length.setdefault(len(row), []).append(i)
    return [group[i : i + size] for group in by_length.values() for i in range(0, len(group), size)]


def _greedy_rows(stepper: Any, rows: int, steps: int, lengths: torch.Tensor | None,
                 tokenizer: Tokenizer, device: torch.device) -> torch.Tensor:
    """Greedy search over ``rows`` rows at once -> (rows, 1 + n) ids starting with bos."""
    pad, bos, eos = tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id
    out = torch.full((rows, 1), bos, dtype=torch.long, device=device)
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    for step in range(steps):
        logits = stepper.logits(out).clone()                         # (B, V)
        logits[:, [pad, bos]] = float("-inf")
        if lengths is not None:
            logits[lengths > step, eos] = float("-inf")
        nxt = logits.argmax(-1)
        if lengths is not None:
            nxt = torch.where(lengths == step, torch.full_like(nxt, eos), nxt)
        nxt = nxt.masked_fill(done, pad)                              # (B,)
        out = torch.cat([out, nxt[:, None]], dim=1)
        done |= nxt == eos
        if bool(done.all()):
            break
    return out


def seq2seq_scores(
    model: nn.Module,
    groups: Sequence[tuple[str, Sequence[str]]],
    *,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    max_len: int,
    device: torch.device,
    same_length: bool = False,
) -> dict[str, Any]:
    """BLEU and chrF (sacrebleu) of one greedy output per (source, references) group against all
    the group's references, plus the outputs."""
    sources = [src_tok.encode(src, per_char=same_length) for src, _ in groups]
    outputs = greedy_batch(model, sources, tokenizer=tgt_tok, max_len=max_len, device=device,
                           same_length=same_length)
    hyps = [tgt_tok.decode(ids) for ids in outputs]
    refs = [list(group_refs) for _, group_refs in groups]
    return {
        "bleu": metrics.bleu(hyps, refs),
        "chrf": metrics.chrf(hyps, refs),
        "hypotheses": hyps,
    }
