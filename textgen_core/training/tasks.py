"""What the generic trainer needs for each kind of model: batches, a loss, an evaluation.

* pairs (couplet, translation; and continuation for seq2seq models, as a novel's consecutive
  passages): length-bucketed pair batches, packed as prefix-LM rows for a language model;
  validation loss, perplexity, BLEU/chrF of greedy outputs on the first ``train.bleu_examples``
  validation pairs (translation: distinct sources, each scored against all its references; none
  for continuation), and a few fixed validation prompts with their outputs as samples.
* language models on continuation: random windows of the token stream (nanoGPT's ``get_batch``);
  validation loss and perplexity on consecutive windows, and seeded continuations of fixed prompts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from textgen_core import metrics, models
from textgen_core.config import TrainConfig
from textgen_core.corpus import reference_groups, splits_by_source
from textgen_core.data import BucketBatcher, LMWindows, encode_pairs, pair_batcher, pair_max_len
from textgen_core.decoding.config import DecodeConfig
from textgen_core.decoding.search import generate
from textgen_core.errors import TextGenError
from textgen_core.evaluation import batch_loss, mean_loss, text_scores
from textgen_core.generation import Generator
from textgen_core.output_form import same_length_output
from textgen_core.project import Project
from textgen_core.tokenizer import Tokenizer
from textgen_core.training.algorithm import BatchSource, TaskHooks
from textgen_core.training.distributed import DistInfo
from textgen_core.training.events import Written

SAMPLE_PROMPT_CHARS = 24     # characters of validation text used as a continuation prompt
SAMPLE_TOKENS = 48


@dataclass(frozen=True)
class TaskData:
    train: BatchSource
    hooks: TaskHooks
    valid: Any = None         # validation batches (BucketBatcher / LMWindows), None without a split


def build_task(
    project: Project, model: nn.Module, cfg: TrainConfig, src_tok: Tokenizer, tgt_tok: Tokenizer,
    device: torch.device, dist: DistInfo,
) -> TaskData:
    if models.spec_of(model).kind == "lm" and project.config.task == "continuation":
        return _lm_task(project, model, cfg, tgt_tok, device, dist)
    # pairs: couplets, translations, and a novel's consecutive passages (for seq2seq models)
    return _seq2seq_task(project, model, cfg, src_tok, tgt_tok, device, dist)


def _seq2seq_task(
    project: Project, model: nn.Module, cfg: TrainConfig, src_tok: Tokenizer, tgt_tok: Tokenizer,
    device: torch.device, dist: DistInfo,
) -> TaskData:
    block, prefix_lm = model.config.block_size, models.spec_of(model).kind == "lm"
    max_len = pair_max_len(prefix_lm, block, project.config.data.max_len)
    pad = tgt_tok.pad_id
    same_length = same_length_output(project.config.task, tgt_tok)
    scored = project.config.task != "continuation"     # BLEU of a story's next sentence means little

    def batcher(split: str, shuffle: bool, rank: int = 0, world: int = 1) -> BucketBatcher:
        pairs = [(p.source, p.target) for p in project.load_pairs(split)]
        examples = encode_pairs(pairs, src_tok, tgt_tok, max_len, per_char=same_length)
        if not examples and split == "train":
            raise TextGenError(f"{project.split_path(split)}: no training examples")
        return pair_batcher(
            examples, tgt_tok, prefix_lm=prefix_lm, block_size=block, max_len=max_len,
            batch_size=cfg.batch_size, seed=cfg.seed, shuffle=shuffle, rank=rank, world_size=world,
        )

    train = batcher("train", True, dist.rank, dist.world_size)
    valid_pairs = [(p.source, p.target) for p in project.load_pairs("valid")]
    valid = batcher("valid", False) if valid_pairs else None
    valid_groups = reference_groups(valid_pairs, by_source=splits_by_source(project.config.task))

    def written(net: nn.Module, prompts: list[str], decode: DecodeConfig) -> list[str]:
        """The outputs as Write (and ``textgen generate``) writes them, through the same batched
        search and rules; prompts longer than the model reads are cut as in training."""
        was_training = net.training
        gen = Generator(net, project.config.task, src_tok, tgt_tok, device)
        try:
            results = gen.generate_many(prompts, decode, fit=True)
        finally:
            net.train(was_training)
        return [r.hypotheses[0].text if r.hypotheses else "" for r in results]

    def evaluate(net: nn.Module) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if valid is None:
            return {"val_loss": None}
        val = mean_loss(net, valid.iter_batches(), pad, device, cfg.eval_batches)
        result.update(val_loss=val, val_ppl=metrics.perplexity(val))
        if scored:      # BLEU and the samples are the same greedy outputs, with the project's rules
            shown = valid_groups[: max(cfg.bleu_examples, cfg.num_samples)]
            hyps = written(net, [s for s, _ in shown], project.config.generate.greedy())
            if cfg.bleu_examples:
                result.update(text_scores(hyps[: cfg.bleu_examples], shown[: cfg.bleu_examples]))
        else:           # a story: a sample's few passages, as a language model's samples
            shown = valid_groups[: cfg.num_samples]
            decode = project.config.generate
            hyps = written(net, [s for s, _ in shown],
                           replace(decode, max_tokens=min(decode.max_tokens, SAMPLE_TOKENS)))
        result["samples"] = [
            Written(prompt=s, output=h, reference=targets[0])
            for (s, targets), h in list(zip(shown, hyps))[: cfg.num_samples]
        ]
        return result

    return TaskData(
        train=train,
        valid=valid,
        hooks=TaskHooks(
            loss=lambda net, batch, step: batch_loss(
                net, batch, pad, cfg.label_smoothing, step, cfg.steps),
            tokens=lambda batch: batch.n_tokens,
            evaluate=evaluate,
        ),
    )


def _lm_task(
    project: Project, model: nn.Module, cfg: TrainConfig, tok: Tokenizer, device: torch.device,
    dist: DistInfo,
) -> TaskData:
    block = model.config.block_size
    pad = tok.pad_id
    train_ids = torch.tensor(tok.encode(project.load_text("train")), dtype=torch.long)
    train = LMWindows(
        train_ids, block_size=block, batch_size=cfg.batch_size, seed=cfg.seed,
        rank=dist.rank, world_size=dist.world_size,
    )
    valid_text = project.load_text("valid")
    valid_ids = torch.tensor(tok.encode(valid_text), dtype=torch.long)
    valid = None
    if valid_ids.numel() > block + 1:
        valid = LMWindows(valid_ids, block_size=block, batch_size=cfg.batch_size, seed=cfg.seed)
    prompts = [ln.strip()[:SAMPLE_PROMPT_CHARS] for ln in valid_text.split("\n") if ln.strip()]
    prompts = prompts[: cfg.num_samples]

    def evaluate(net: nn.Module) -> dict[str, Any]:
        if valid is None:
            return {"val_loss": None}
        val = mean_loss(net, valid.iter_batches(cfg.eval_batches), pad, device)
        result: dict[str, Any] = {"val_loss": val, "val_ppl": metrics.perplexity(val)}
        samples = []
        decode = DecodeConfig(strategy="sample", temperature=0.8, top_k=50,
                              max_tokens=SAMPLE_TOKENS, seed=cfg.seed)
        was_training = net.training
        net.eval()
        for prompt in prompts:
            ids = tok.encode(prompt)
            hyp = generate(models.make_stepper(net, None), ids, eos_id=tok.eos_id, config=decode,
                           banned_ids=(pad, tok.bos_id, tok.unk_id))[0]
            samples.append(Written(prompt=prompt, output=tok.decode(list(hyp.ids))))
        net.train(was_training)
        result["samples"] = samples
        return result

    return TaskData(
        train=train,
        valid=valid,
        hooks=TaskHooks(
            loss=lambda net, batch, step: batch_loss(net, batch, pad, 0.0, step, cfg.steps),
            tokens=lambda batch: batch.n_tokens,
            evaluate=evaluate,
        ),
    )

