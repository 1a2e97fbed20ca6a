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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from textgen_core import models
from textgen_core.decoding.config import DecodeConfig
from textgen_core.decoding.constraints import (
    CoupletPunctuation,
    CoupletRepetition,
    is_punctuation,
    punctuation_ids,
)
from textgen_core.decoding.passage_rounds import Story, write_passages
from textgen_core.decoding.search import Hypothesis, generate
from textgen_core.devices import resolve_device
from textgen_core.errors import CheckpointError, NotTrainedError, TextGenError
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


@dataclass(frozen=True)
class Attention:
    """Attention of the produced output: ``weights[layer, head, query, key]``."""

    kind: str                    # "cross": output vs input (seq2seq); "self": text vs text (LM)
    weights: np.ndarray          # (L, H, Tq, Tk) float32
    query_tokens: list[str]
    key_tokens: list[str]


@dataclass(frozen=True)
class Candidate:
    text: str
    score: float
    ids: list[int]
    tokens: list[str]
    finished: bool
    passages: tuple[str, ...] = ()   # a story written passage by passage: each passage's text


@dataclass(frozen=True)
class GenerationResult:
    prompt: str
    prompt_ids: list[int]
    hypotheses: list[Candidate]
    attention: Attention | None = field(default=None, repr=False)
    no_attention: str | None = None   # why there is none to show, for a model without attention

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "prompt_ids": self.prompt_ids,
            "hypotheses": [
                {"text": h.text, "score": h.score, "ids": h.ids,
                 **({"passages": list(h.passages)} if h.passages else {})}
                for h in self.hypotheses
            ],
        }


class Generator:
    """A loaded model with its tokenizers, ready to write."""

    def __init__(self, model: nn.Module, task: str, src_tok: Tokenizer, tgt_tok: Tokenizer,
                 device: torch.device, step: int = 0) -> None:
        self.model, self.task = model.eval(), task
        self.spec = models.spec_of(model)
        self.src_tok, self.tgt_tok, self.device, self.step = src_tok, tgt_tok, device, step
        self._punct: list[int] | None = None

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
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
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
    ) -> GenerationResult:
        prompt = self.prepare(text)
        if not prompt and not self.reads_stream:
            raise TextGenError(f"empty input: {_EMPTY.get(self.task, 'type the input text')}")
        if self.task == "continuation" and not self.is_lm:
            return self._write_passages(prompt, config, with_attention, on_token)
        if self.reads_stream:
            prompt_ids = self.src_tok.encode(prompt) if prompt else self.src_tok.encode("\n")
            tok = self.tgt_tok
            hyps = generate(models.make_stepper(self.model, None), prompt_ids, eos_id=tok.eos_id,
                            config=config, banned_ids=(tok.pad_id, tok.bos_id, tok.unk_id),
                            on_token=on_token)
        else:
            prompt_ids = self.src_tok.encode(prompt, per_char=self.forces_length)
            hyps = self.answer(prompt_ids, config, on_token, first_line=prompt)
        candidates = [self._candidate(h) for h in hyps]
        attention = None
        if with_attention and hyps:
            attention = self.attention(prompt_ids, list(hyps[0].ids))
        return GenerationResult(prompt, prompt_ids, candidates, attention, self._why_no_attention())

    def answer(
        self, source_ids: list[int], config: DecodeConfig,
        on_token: Callable[[int], bool] | None = None, *, first_line: str = "",
    ) -> list[Hypothesis]:
        """The output for one source (a seq2seq model, or a language model as a prefix LM).

        ``first_line``: the couplet's text, whose length and rules bind the answer when the output
        length is forced (couplets with characters).
        """
        tok = self.tgt_tok
        block = self.model.config.block_size
        forced = len(first_line) if self.forces_length else None  # characters, not tokens
        if self.is_lm:
            row = [*source_ids, self.src_tok.newline_id]          # source <sep>
            room = block - len(row) + 1                           # tokens it can write, eos included
            most = block - 1 if forced is None else block // 2
            if room < (forced or 1):
                raise TextGenError(f"input is {len(source_ids)} tokens long; this model reads at most {most}")
        else:
            row, room = [*source_ids, self.src_tok.eos_id], block - 1
            if len(row) > block:
                raise TextGenError(
                    f"input is {len(source_ids)} tokens long; this model reads at most {block - 1}"
                )
        stepper = models.make_stepper(self.model, torch.tensor([row], device=self.device))  # (1, S)
        constraints = self._couplet_rules(first_line) if forced is not None else []
        return generate(stepper, [tok.bos_id], eos_id=tok.eos_id, config=_fit_max_tokens(config, room),
                        banned_ids=(tok.pad_id, tok.bos_id, tok.unk_id), on_token=on_token,
                        forced_length=forced, constraints=constraints)

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

    def _couplet_rules(self, first_line: str) -> list[Any]:
        """Punctuation where the first line has it, repeats where it repeats: both found among the
        first line's characters, one output position per character (rare ones included)."""
        target_view = self.tgt_tok.encode(first_line, per_char=True)
        punct = self._punctuation()
        punct_at = [i for i, ch in enumerate(first_line) if is_punctuation(ch)]
        return [CoupletPunctuation(target_view, punct, punct_at=punct_at),
                CoupletRepetition(target_view, punct, chars=first_line)]

    def _punctuation(self) -> list[int]:
        if self._punct is None:
            self._punct = punctuation_ids(self.tgt_tok.pieces(range(self.tgt_tok.vocab_size)))
        return self._punct

    @property
    def forces_length(self) -> bool:
        """Couplets with character tokens: the answer has exactly the first line's length."""
        return same_length_output(self.task, self.tgt_tok)

    def _candidate(self, hyp: Hypothesis) -> Candidate:
        ids = list(hyp.ids)
        return Candidate(self.tgt_tok.decode(ids), float(hyp.score), ids,
                         self.tgt_tok.pieces(ids), hyp.finished)

    def _story(self, story: Story) -> Candidate:
        ids = story.ids
        return Candidate(self.tgt_tok.decode(ids), story.score, ids, self.tgt_tok.pieces(ids),
                         story.finished, tuple(self.tgt_tok.decode(list(p)) for p in story.passages))


def _fit_max_tokens(config: DecodeConfig, limit: int) -> DecodeConfig:
    return config if config.max_tokens <= limit else replace(config, max_tokens=limit)


def _numpy(attn: torch.Tensor) -> np.ndarray:
    return attn[:, 0].float().cpu().numpy()          # (L, 1, H, Tq, Tk) -> (L, H, Tq, Tk)
