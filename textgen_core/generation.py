"""Writing with a trained model: text in, hypotheses (and attention) out.

:class:`Generator` loads a self-describing checkpoint (model name, config, tokenizer and weights) and
runs :mod:`textgen_core.decoding` on it. Couplets keep their form: the input's whitespace is dropped
(datasets often space the characters) and, with a character tokenizer, the output has exactly the
input's length. Attention is computed on request for the hypothesis actually chosen, from a
separate forward pass, so decoding itself never pays for it.

Every model writes every task it has learnt. A language model continues a story from the prompt's
own tokens; on pairs it writes as a prefix LM after ``source <sep>`` (the tokenizer's newline as
separator, :mod:`textgen_core.data`), with the couplet rules and forced length counted on the
target alone. A sequence-to-sequence model continues a story passage by passage: the prompt's last
passage is the first source, and each passage it writes is fed back as the next
(:mod:`textgen_core.decoding.passage_rounds`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from textgen_core import models
from textgen_core.decoding.config import DecodeConfig
from textgen_core.decoding.couplet_rules import couplet_processors
from textgen_core.decoding.coverage import rescore
from textgen_core.decoding.passage_rounds import Story, write_passages
from textgen_core.decoding.search import Hypothesis, generate, generate_batch
from textgen_core.decoding.tones import tone_report
from textgen_core.devices import resolve_device
from textgen_core.errors import CheckpointError, NotTrainedError, TextGenError, first_line
from textgen_core.generation_result import Alternative, Attention, Candidate, GenerationResult
from textgen_core.output_form import same_length_output
from textgen_core.passages import last_passage
from textgen_core.project import Project
from textgen_core.tokenizer import Tokenizer
from textgen_core.training.checkpoint import load_checkpoint

log = logging.getLogger(__name__)

# ASCII marks typed in a couplet -> the full-width marks couplet corpora use
_FULL_WIDTH = {",": "，", ".": "。", "!": "！", "?": "？", ";": "；", ":": "：", "(": "（", ")": "）"}
_EMPTY = {"couplet": "type the first line of the couplet", "translation": "type the text to translate",
          "continuation": "type the beginning of the story"}


class Generator:
    """A loaded model with its tokenizers, ready to write."""

    def __init__(self, model: nn.Module, task: str, src_tok: Tokenizer, tgt_tok: Tokenizer,
                 device: torch.device, step: int = 0) -> None:
        self.model, self.task = model.eval(), task
        self.spec = models.spec_of(model)
        self.src_tok, self.tgt_tok, self.device, self.step = src_tok, tgt_tok, device, step

    @classmethod
    def from_checkpoint(cls, path: Path, device: str = "auto") -> Generator:
        dev = resolve_device(device)
        ckpt = load_checkpoint(path)
        try:
            src = Tokenizer.from_bytes(ckpt["tokenizers"]["src"])
            tgt_bytes = ckpt["tokenizers"].get("tgt")
            tgt = Tokenizer.from_bytes(tgt_bytes) if tgt_bytes else src
            config = models.config_from_dict(ckpt["model_name"], ckpt["model_config"])
            model = models.build_model(ckpt["model_name"], config)
            model.load_state_dict(ckpt["model"])
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            reason = first_line(exc)
            raise CheckpointError(f"{path}: checkpoint does not describe a usable model: {reason}") from None
        return cls(model.to(dev), str(ckpt["task"]), src, tgt, dev, int(ckpt["step"]))

    @classmethod
    def open(cls, project: Project, checkpoint: str = "best", device: str = "auto") -> Generator:
        """``checkpoint`` is "best", "last" or the path of a ``.pt`` file."""
        if checkpoint.endswith(".pt"):
            return cls.from_checkpoint(Path(checkpoint), device)
        return cls.from_project(project, checkpoint, device)

    @classmethod
    def from_project(cls, project: Project, which: str = "best", device: str = "auto") -> Generator:
        """The project's best checkpoint (or last, when there is no best yet)."""
        path = project.checkpoint_path(which)
        if not path.is_file():
            path = project.checkpoint_path("last")
        if not path.is_file():
            raise NotTrainedError(f"{project.root}: no trained model yet")
        return cls.from_checkpoint(path, device)

    @property
    def is_lm(self) -> bool:
        return self.spec.kind == "lm"

    @property
    def reads_stream(self) -> bool:
        """A language model continuing a story: it goes on from the prompt's own tokens."""
        return self.is_lm and self.task == "continuation"

    def prepare(self, text: str) -> str:
        """Normalise user input the way training data was normalised.

        Couplets lose their whitespace, and an ASCII mark the vocabulary lacks becomes its
        full-width form when the vocabulary has that (春风得意! -> 春风得意！).
        """
        if self.task != "couplet":
            return text.strip()
        tok = self.src_tok
        return "".join(
            _FULL_WIDTH[ch] if ch in _FULL_WIDTH and tok.kind == "char" and not tok.has_char(ch)
            and tok.has_char(_FULL_WIDTH[ch]) else ch
            for ch in "".join(text.split())
        )

    @torch.inference_mode()
    def generate(
        self,
        text: str,
        config: DecodeConfig,
        *,
        with_attention: bool = False,
        on_token: Callable[[int], bool] | None = None,
        locks: Mapping[int, str] | None = None,
        forced_prefix: Sequence[int] = (),
    ) -> GenerationResult:
        """Write for one input. ``locks`` (couplets) fix characters of the second line (1-based
        positions); ``forced_prefix`` are output ids to start from (branching from a chosen token)."""
        if self.task == "continuation" and not self.is_lm:
            prompt = self.prepare(text)
            if not prompt:
                raise TextGenError(f"empty input: {_EMPTY[self.task]}")
            return self._write_passages(prompt, config, with_attention, on_token)
        request = self._request(text, config, locks or {})
        result = self._decode([request], config, on_token, [list(forced_prefix)])[0]
        if with_attention and result.hypotheses:
            result = replace(result, attention=self.attention(request.prompt_ids, result.hypotheses[0].ids))
        return result

    @torch.inference_mode()
    def generate_many(
        self,
        texts: Sequence[str],
        config: DecodeConfig,
        *,
        locks: Sequence[Mapping[int, str]] | None = None,
        batch_size: int = 32,
        fit: bool = False,
    ) -> list[GenerationResult]:
        """Write for many inputs, ``batch_size`` at a time through one search (one model call per
        step for the whole batch); the results are in input order. ``fit``: cut inputs that are
        too long for the model, as training does, instead of refusing them."""
        if batch_size < 1:
            raise TextGenError(f"batch size must be at least 1, got {batch_size}")
        if self.task == "continuation" and not self.is_lm:      # passage by passage: one at a time
            return [self.generate(text, config) for text in texts]
        requests = []
        for n, text in enumerate(texts, 1):
            try:
                requests.append(self._request(text, config, (locks or {}) and locks[n - 1], fit=fit))
            except TextGenError as exc:
                raise TextGenError(f"input {n}: {exc}") from None
        results: list[GenerationResult | None] = [None] * len(requests)
        for chunk in _chunks(requests, batch_size, same_width=self.is_lm):
            outs = self._decode([requests[i] for i in chunk], config, None, [[] for _ in chunk])
            for i, out in zip(chunk, outs):
                results[i] = out
        return [r for r in results if r is not None]

    def _request(self, text: str, config: DecodeConfig, locks: Mapping[int, str],
                 fit: bool = False) -> _Request:
        """One input made ready for the search: its ids, the stepper's row, its length and rules."""
        prompt = self.prepare(text)
        if not prompt and not self.reads_stream:
            raise TextGenError(f"empty input: {_EMPTY.get(self.task, 'type the input text')}")
        if self.reads_stream:
            ids = self.src_tok.encode(prompt) if prompt else self.src_tok.encode("\n")
            return _Request(prompt, ids, [], ids, self.model.config.block_size, None, [])
        forced = self.forces_length and (config.couplet_length or self.spec.same_length)
        if forced and fit:
            prompt = prompt[: self._most_tokens(forced)]
        ids = self.src_tok.encode(prompt, per_char=self.forces_length)
        if fit:
            ids = ids[: self._most_tokens(forced)]
        most = self._most_tokens(forced)
        if len(ids) > most:
            raise TextGenError(f"input is {len(ids)} tokens long; this model reads at most {most}")
        block = self.model.config.block_size
        if self.is_lm:
            row = [*ids, self.src_tok.newline_id]                # source <sep>
            room = block - len(row) + 1                          # tokens it can write, eos included
        else:
            row, room = [*ids, self.src_tok.eos_id], block - 1
        rules = self._rules(prompt, config, locks) if self.task == "couplet" else []
        return _Request(prompt, ids, row, [self.tgt_tok.bos_id], room,
                        len(prompt) if forced else None, rules)

    def _most_tokens(self, forced: bool) -> int:
        """The longest input the model reads (a prefix LM writes as many characters after it)."""
        block = self.model.config.block_size
        if not self.is_lm:
            return block - 1
        return block // 2 if forced else block - 1

    def _decode(self, requests: Sequence[_Request], config: DecodeConfig,
                on_token: Callable[[int], bool] | None, forced_prefixes: Sequence[Sequence[int]]
                ) -> list[GenerationResult]:
        """One search over ``requests`` (of one row width for a language model)."""
        tok = self.tgt_tok
        src = None
        if requests[0].row:
            width = max(len(r.row) for r in requests)
            src = torch.full((len(requests), width), tok.pad_id, dtype=torch.long)   # (B, S)
            for b, r in enumerate(requests):
                src[b, : len(r.row)] = torch.tensor(r.row)
            src = src.to(self.device)
        stepper = models.make_stepper(self.model, src)
        found = generate_batch(
            stepper, [r.prefix for r in requests], eos_id=tok.eos_id,
            config=_fit_max_tokens(config, min(r.room for r in requests)),
            banned_ids=self._banned_ids(), on_token=on_token,
            forced_lengths=[r.forced_length for r in requests],
            constraints=[r.constraints for r in requests], forced_prefixes=forced_prefixes,
        )
        if self._covers(config):
            found = [rescore(hyps, lambda ids, r=r: self._coverage_weights(r.prompt_ids, ids),
                             config.coverage_penalty)
                     for r, hyps in zip(requests, found)]
        return [
            GenerationResult(r.prompt, r.prompt_ids, [self._candidate(h, r) for h in hyps], None,
                             self._why_no_attention())
            for r, hyps in zip(requests, found)
        ]

    def _banned_ids(self) -> tuple[int, ...]:
        """Tokens an output never holds: pad, bos, unk, and in a pair's answer (a couplet's second
        line, a translation) the newline, which a prefix LM reads as the pair's separator."""
        tok = self.tgt_tok
        specials = (tok.pad_id, tok.bos_id, tok.unk_id)
        if self.task == "continuation":
            return specials
        try:
            return (*specials, tok.newline_id)
        except TextGenError:            # a tokenizer from before the newline token existed
            return specials

    def _covers(self, config: DecodeConfig) -> bool:
        """The coverage penalty applies: beam search, beta > 0, a model with cross-attention."""
        return (config.strategy == "beam" and config.coverage_penalty > 0 and self.spec.has_attention
                and self.spec.attention_kind == "cross" and not self.is_lm)

    def _coverage_weights(self, prompt_ids: list[int], ids: Sequence[int]) -> torch.Tensor | None:
        """(T, S) attention of one output over the source's real tokens (its eos left out)."""
        src = torch.tensor([[*prompt_ids, self.src_tok.eos_id]], device=self.device)          # (1, S)
        tgt_in = torch.tensor([[self.tgt_tok.bos_id, *list(ids)[:-1]]], device=self.device)  # (1, T)
        weights = self.spec.attention(self.model, src, tgt_in)      # (L, 1, H, T, S)
        return weights[-1, 0].float().mean(dim=0)[:, :-1]          # last layer, mean of heads

    def answer(
        self, source_ids: list[int], config: DecodeConfig,
        on_token: Callable[[int], bool] | None = None,
    ) -> list[Hypothesis]:
        """The output for one source of a sequence-to-sequence model (a story's next passage)."""
        tok = self.tgt_tok
        block = self.model.config.block_size
        row = [*source_ids, self.src_tok.eos_id]
        if len(row) > block:
            raise TextGenError(
                f"input is {len(source_ids)} tokens long; this model reads at most {block - 1}"
            )
        stepper = models.make_stepper(self.model, torch.tensor([row], device=self.device))  # (1, S)
        return generate(stepper, [tok.bos_id], eos_id=tok.eos_id,
                        config=_fit_max_tokens(config, block - 1),
                        banned_ids=(tok.pad_id, tok.bos_id, tok.unk_id), on_token=on_token)

    def _write_passages(self, prompt: str, config: DecodeConfig, with_attention: bool,
                        on_token: Callable[[int], bool] | None) -> GenerationResult:
        """A story continued passage by passage from the prompt's last passage."""
        most = self.model.config.block_size - 1
        source = self.src_tok.encode(last_passage(prompt, most))[-most:]
        stories = write_passages(self.answer, source, config, max_source=most, on_token=on_token)
        candidates = [self._story(story) for story in stories]
        attention = None
        if with_attention and stories and stories[0].passages:
            attention = self.attention(list(stories[0].sources[-1]), list(stories[0].passages[-1]))
        return GenerationResult(prompt, self.src_tok.encode(prompt), candidates, attention,
                                self._why_no_attention())

    def _why_no_attention(self) -> str | None:
        return None if self.spec.has_attention else f"{self.spec.name} has no attention to show"

    @torch.inference_mode()
    def attention(self, prompt_ids: list[int], output_ids: list[int]) -> Attention | None:
        """Attention weights of one produced output (all layers and heads); None for a model
        without attention (its spec has no ``attention``)."""
        if self.spec.attention is None or (not output_ids and not self.is_lm):
            return None
        if self.is_lm:
            context = prompt_ids if self.reads_stream else [*prompt_ids, self.src_tok.newline_id]
            ids = (context + output_ids)[-self.model.config.block_size :]
            x = torch.tensor([ids], device=self.device)                    # (1, T)
            weights = self.spec.attention(self.model, None, x)             # (L, 1, H, T, T)
            labels = self.src_tok.pieces(ids)
            return Attention(self.spec.attention_kind, _numpy(weights), labels, labels)
        src_ids = prompt_ids + [self.src_tok.eos_id]
        src = torch.tensor([src_ids], device=self.device)                  # (1, S)
        tgt_in = torch.tensor([[self.tgt_tok.bos_id, *output_ids[:-1]]], device=self.device)
        weights = self.spec.attention(self.model, src, tgt_in)             # (L, 1, H, T, S)
        return Attention(self.spec.attention_kind, _numpy(weights), self.tgt_tok.pieces(output_ids),
                         self.src_tok.pieces(src_ids))

    def _rules(self, first_line: str, config: DecodeConfig, locks: Mapping[int, str]) -> list[Any]:
        """The couplet rules for the second line of ``first_line`` (see :mod:`.decoding.couplet_rules`)."""
        if not self.forces_length:          # subword pieces: no position-by-position rules
            if locks:
                raise TextGenError("locked characters need a project with a character tokenizer")
            return []
        return couplet_processors(first_line, self.tgt_tok, config, locks)

    @property
    def forces_length(self) -> bool:
        """Couplets with character tokens: the answer has exactly the first line's length."""
        return same_length_output(self.task, self.tgt_tok)

    def _candidate(self, hyp: Hypothesis, request: _Request) -> Candidate:
        ids, tok = list(hyp.ids), self.tgt_tok
        text = tok.decode(ids)
        seen = sorted({t for step in hyp.alternatives for t, _ in step})
        names = dict(zip(seen, tok.pieces(seen)))
        alternatives = [[Alternative(names[t], t, p) for t, p in step] for step in hyp.alternatives]
        tone = tone_report(request.prompt, text) if self.task == "couplet" else None
        return Candidate(text, float(hyp.score), ids, tok.pieces(ids), hyp.finished,
                         token_logprobs=list(hyp.token_logprobs), alternatives=alternatives, tone=tone)

    def _story(self, story: Story) -> Candidate:
        ids = story.ids
        return Candidate(self.tgt_tok.decode(ids), story.score, ids, self.tgt_tok.pieces(ids),
                         story.finished, tuple(self.tgt_tok.decode(list(p)) for p in story.passages))


@dataclass(frozen=True)
class _Request:
    """One input made ready for the search."""

    prompt: str                  # the normalised input
    prompt_ids: list[int]
    row: list[int]               # the stepper's source row (empty: a story for a language model)
    prefix: list[int]            # the search's start: [bos], or a story's own tokens
    room: int                    # tokens it may write, eos included
    forced_length: int | None    # couplets: exactly the first line's length
    constraints: list[Any]       # couplets: the rules of the second line


def _chunks(requests: Sequence[_Request], size: int, *, same_width: bool) -> list[list[int]]:
    """Indices of the requests decoded together: consecutive ones, or (a language model, which has
    no padding mask) ones of one row width and prefix length."""
    if not same_width:
        return [list(range(i, min(i + size, len(requests)))) for i in range(0, len(requests), size)]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault((len(r.row), len(r.prefix)), []).append(i)
    return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]


def _fit_max_tokens(config: DecodeConfig, limit: int) -> DecodeConfig:
    return config if config.max_tokens <= limit else replace(config, max_tokens=limit)


def _numpy(attn: torch.Tensor) -> np.ndarray:
    return attn[:, 0].float().cpu().numpy()          # (L, 1, H, Tq, Tk) -> (L, H, Tq, Tk)
