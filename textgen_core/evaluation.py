"""Validation and test evaluation: teacher-forced loss and perplexity, BLEU/chrF of greedy outputs.

Used by the trainer at each evaluation and by ``textgen evaluate``. Decoding here is a batched
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
from textgen_core.corpus import load_corpus, reference_groups, splits_by_source
from textgen_core.data import BucketBatcher, LMBatch, LMWindows, Seq2SeqBatch, encode_pairs
from textgen_core.project import Project
from textgen_core.tokenizer import Tokenizer


def same_length_output(task: str, tokenizer: Tokenizer) -> bool:
    """Couplets with character tokens: the answer has exactly the first line's length."""
    return task == "couplet" and tokenizer.kind == "char"


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
    """Greedy outputs (ids without specials) of a seq2seq model for many sources at once, through
    the model's own stepper (one decoder pass per step for the whole batch).

    ``same_length``: every output has exactly its source's length (couplets, character tokens).
    """
    was_training = model.training
    model.eval()
    pad, eos = tokenizer.pad_id, tokenizer.eos_id
    outputs: list[list[int]] = []
    try:
        for start in range(0, len(sources), batch_size):
            chunk = [list(s[: max_len - 1]) + [eos] for s in sources[start : start + batch_size]]
            width = max(len(s) for s in chunk)
            src = torch.full((len(chunk), width), pad, dtype=torch.long)
            for row, ids in enumerate(chunk):
                src[row, : len(ids)] = torch.tensor(ids)
            lengths = torch.tensor([len(s) - 1 for s in chunk], device=device)   # (B,)
            steps = int(lengths.max()) + 1 if same_length else max_len - 1
            out = _greedy_rows(models.make_stepper(model, src.to(device)), len(chunk), steps,
                               lengths if same_length else None, tokenizer, device)
            for row in out[:, 1:].tolist():
                ids = []
                for tok in row:
                    if tok in (eos, pad):
                        break
                    ids.append(tok)
                outputs.append(ids)
    finally:
        model.train(was_training)
    return outputs


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


def evaluate_project(
    project: Project, files: Sequence[str], *, checkpoint: str = "best", device: str = "auto"
) -> dict[str, Any]:
    """``textgen evaluate``: loss and perplexity, and for seq2seq tasks BLEU and chrF.

    ``examples`` counts pairs (the loss is per pair), ``sources`` the outputs decoded and scored.
    """
    from textgen_core.generation import Generator

    gen = Generator.open(project, checkpoint, device)
    corpus = load_corpus(project.config.task, files, swap=project.config.data.swap)
    model, dev = gen.model, gen.device
    pad = gen.tgt_tok.pad_id
    if gen.is_lm:
        ids = torch.tensor(gen.tgt_tok.encode(corpus.text), dtype=torch.long)
        windows = LMWindows(ids, block_size=model.config.block_size, batch_size=16)
        loss = mean_loss(model, windows.iter_batches(), pad, dev)
        return {"examples": int(ids.numel()), "bleu": None, "chrf": None, "loss": loss,
                "ppl": metrics.perplexity(loss)}
    pairs = [(p.source, p.target) for p in corpus.pairs]
    max_len = model.config.block_size
    examples = encode_pairs(pairs, gen.src_tok, gen.tgt_tok, max_len, per_char=gen.forces_length)
    batches = BucketBatcher(
        examples, batch_size=32, pad_id=pad, bos_id=gen.tgt_tok.bos_id,
        eos_id=gen.tgt_tok.eos_id, max_len=max_len, shuffle=False,
    )
    loss = mean_loss(model, batches.iter_batches(), pad, dev)
    groups = reference_groups(pairs, by_source=splits_by_source(project.config.task))
    scores = seq2seq_scores(model, groups, src_tok=gen.src_tok, tgt_tok=gen.tgt_tok,
                            max_len=max_len, device=dev, same_length=gen.forces_length)
    return {"examples": len(pairs), "sources": len(groups), "bleu": scores["bleu"],
            "chrf": scores["chrf"], "loss": loss, "ppl": metrics.perplexity(loss)}
