"""``textgen evaluate``: score a project's trained model on corpus files.

A thin layer above :mod:`textgen_core.generation` (which loads the checkpoint and writes the outputs:
greedy, with the project's rules, in batches) and :mod:`textgen_core.evaluation` (loss, perplexity,
BLEU/chrF); the command
line calls it, and so should anything in the studio that evaluates a project.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from textgen_core import metrics
from textgen_core.corpus import load_corpus, reference_groups, splits_by_source
from textgen_core.data import LMWindows, encode_pairs, pair_batcher, pair_max_len
from textgen_core.evaluation import mean_loss, text_scores
from textgen_core.generation import Generator
from textgen_core.passages import passage_pairs
from textgen_core.project import Project


def evaluate_project(
    project: Project, files: Sequence[str], *, checkpoint: str = "best", device: str = "auto"
) -> dict[str, Any]:
    """Loss and perplexity, and for couplets and translation BLEU and chrF, of ``checkpoint`` on
    ``files`` (a story: the token stream for a language model, consecutive passages otherwise).

    ``examples`` counts pairs (the loss is per pair), ``sources`` the outputs decoded and scored.
    """
    gen = Generator.open(project, checkpoint, device)
    corpus = load_corpus(project.config.task, files, swap=project.config.data.swap)
    model, dev = gen.model, gen.device
    pad = gen.tgt_tok.pad_id
    if gen.reads_stream:
        ids = torch.tensor(gen.tgt_tok.encode(corpus.text), dtype=torch.long)
        windows = LMWindows(ids, block_size=model.config.block_size, batch_size=16)
        loss = mean_loss(model, windows.iter_batches(), pad, dev)
        return {"examples": int(ids.numel()), "bleu": None, "chrf": None, "loss": loss,
                "ppl": metrics.perplexity(loss)}
    story = project.config.task == "continuation"       # a seq2seq model: consecutive passages
    found = passage_pairs(corpus.text, project.passage_chars()) if story else corpus.pairs
    pairs = [(p.source, p.target) for p in found]
    block = model.config.block_size
    max_len = pair_max_len(gen.is_lm, block)
    examples = encode_pairs(pairs, gen.src_tok, gen.tgt_tok, max_len, per_char=gen.forces_length)
    batches = pair_batcher(examples, gen.tgt_tok, prefix_lm=gen.is_lm, block_size=block,
                           max_len=max_len, batch_size=32, shuffle=False)
    loss = mean_loss(model, batches.iter_batches(), pad, dev)
    if story:
        return {"examples": len(pairs), "bleu": None, "chrf": None, "loss": loss,
                "ppl": metrics.perplexity(loss)}
    groups = reference_groups(pairs, by_source=splits_by_source(project.config.task))
    written = gen.generate_many([src for src, _ in groups], project.config.generate.greedy(), fit=True)
    scores = text_scores([r.hypotheses[0].text if r.hypotheses else "" for r in written], groups)
    return {"examples": len(pairs), "sources": len(groups), "bleu": scores["bleu"],
            "chrf": scores["chrf"], "loss": loss, "ppl": metrics.perplexity(loss)}
