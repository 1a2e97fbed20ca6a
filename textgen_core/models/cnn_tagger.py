"""Couplets as sequence labelling: a stack of dilated gated convolutions tags each character of the
first line with the character of the second line at the same position.

A couplet's two lines have equal length and correspond position by position (树 answers 花, 风 answers
雨), so the second line can be predicted in one non-autoregressive pass, one output per input
position, as the "CNN couplet robot" of the seed articles and CoupletAI do. The encoder is built from:

* gated convolutional blocks (Dauphin et al. 2017, "Language Modeling with Gated Convolutional
  Networks"): ``h = (X * W + b) ⊗ σ(X * V + c)``, the gated linear unit, here with a pre-LayerNorm
  and a residual connection around each block;
* dilations 1, 2, 4, ... (Yu & Koltun 2016, "Multi-Scale Context Aggregation by Dilated
  Convolutions"), so the receptive field grows exponentially with depth: 4 blocks of kernel 3 see
  31 characters, a whole couplet line;
* optionally one bidirectional LSTM layer on top (``bilstm``, as in CoupletAI), whose states carry
  the whole line to every position;
* a linear layer to the target vocabulary.

Padding never leaks into real positions: padded positions are zeroed before every convolution and
the LSTM reads packed sequences (rows are right-padded, as :mod:`textgen_core.data` lays them out).
The source's eos position predicts eos, so ``forward(src)`` lines up with ``tgt_out`` of a
:class:`~textgen_core.data.Seq2SeqBatch` position for position.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textgen_core.data import Seq2SeqBatch
from textgen_core.decoding.steppers import Stepper, TaggerStepper
from textgen_core.errors import ConfigError
from textgen_core.models.contract import ModelSpec, TrainContext, token_cross_entropy
from textgen_core.models.layers import check_length, require_bool, require_dropout, require_positive
from textgen_core.models.settings import setting
from textgen_core.tokenizer import Tokenizer

NAME = "cnn-tagger"


@dataclass(frozen=True)
class CNNTaggerConfig:
    """Settings of :class:`CNNTagger`. Vocabulary sizes and ``pad_id`` come from the tokenizer."""

    src_vocab_size: int
    tgt_vocab_size: int
    pad_id: int = 0
    n_embd: int = setting(128, "Embedding size", "size of every character vector and channels of "
                          "every convolution", range=(8, 4096, 32))
    n_layer: int = setting(4, "Convolution blocks", "stacked gated convolution blocks",
                           range=(1, 64, 1))
    kernel_size: int = setting(3, "Kernel size", "characters one convolution reads (odd); with "
                               "dilation d it spans (kernel - 1) * d + 1", range=(1, 15, 2))
    dilation_cycle: int = setting(4, "Dilation cycle", "blocks use dilations 1, 2, 4, ... up to "
                                  "2^(cycle - 1), then start again at 1", range=(1, 10, 1))
    bilstm: bool = setting(False, "BiLSTM on top", "one bidirectional LSTM layer after the "
                           "convolutions, so every position sees the whole line")
    positional: bool = setting(True, "Position embeddings", "learned position embeddings added "
                               "to the characters")
    dropout: float = setting(0.1, "Dropout", "share of activations zeroed in training (0 = off)",
                             range=(0.0, 0.9, 0.05))
    block_size: int = setting(64, "Max. line length", "most characters per line, its end mark "
                              "included", range=(8, 4096, 8))

    def __post_init__(self) -> None:
        require_positive(self, ("src_vocab_size", "tgt_vocab_size", "n_embd", "n_layer", "kernel_size",
                                "dilation_cycle", "block_size"))
        require_bool(self, ("bilstm", "positional"))
        require_dropout(self.dropout)
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"model.kernel_size must be odd, got {self.kernel_size}")
        if self.bilstm and self.n_embd % 2:
            raise ConfigError(f"model.n_embd must be even with bilstm (half a direction), got {self.n_embd}")
        if isinstance(self.pad_id, bool) or not isinstance(self.pad_id, int):
            raise ConfigError(f"model.pad_id must be a whole number, got {self.pad_id!r}")
        if not 0 <= self.pad_id < min(self.src_vocab_size, self.tgt_vocab_size):
            raise ConfigError(f"model.pad_id={self.pad_id} is outside the vocabulary")

    def dilation(self, layer: int) -> int:
        return 2 ** (layer % self.dilation_cycle)


# Model settings only; vocabulary sizes and pad_id are injected by the registry.
CNN_TAGGER_PRESETS = MappingProxyType(
    {
        # trains in well under a minute on 2 CPU cores; sees 31 characters
        "tiny": MappingProxyType(dict(n_embd=128, n_layer=4, kernel_size=3, bilstm=False,
                                      dropout=0.1, block_size=64)),
        # two dilation cycles and a BiLSTM on top
        "small": MappingProxyType(dict(n_embd=256, n_layer=8, kernel_size=3, bilstm=True,
                                       dropout=0.2, block_size=128)),
        # for a GPU
        "base": MappingProxyType(dict(n_embd=512, n_layer=12, kernel_size=3, bilstm=True,
                                      dropout=0.2, block_size=128)),
    }
)

# A one-pass tagger takes a larger learning rate than the shared (Transformer-minded) presets.
CNN_TAGGER_TRAIN_PRESETS = MappingProxyType(
    {
        "tiny": MappingProxyType(dict(learning_rate=3e-3, min_lr=3e-4, warmup_steps=20)),
        "small": MappingProxyType(dict(learning_rate=2e-3, min_lr=2e-4)),
        "base": MappingProxyType(dict(learning_rate=1e-3, min_lr=1e-4, schedule="cosine")),
    }
)


class GatedConvBlock(nn.Module):
    """``x + Dropout(GLU(DilatedConv(LN(x) · mask)))``: one residual gated convolution."""

    def __init__(self, width: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        # one convolution gives both halves of the GLU: values and gates
        self.conv = nn.Conv1d(width, 2 * width, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size - 1) // 2)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, S, C), mask (B, S, 1) float with 1 on real positions -> (B, S, C)."""
        h = self.norm(x) * mask  # (B, S, C), padding zeroed
        return x + self.drop(nn.functional.glu(self._conv(h), dim=-1))  # (B, S, 2C) -> (B, S, C)

    def _conv(self, h: Tensor) -> Tensor:
        """The dilated convolution, h (B, S, C) -> (B, S, 2C).

        One line (writing interactively) is computed as one matrix product over the kernel's
        shifted copies, the same numbers without the convolution's per-call set-up, which
        dominates at this size (about 7x faster on a CPU); batches use the convolution.
        """
        if h.size(0) > 1:
            return self.conv(h.transpose(1, 2)).transpose(1, 2)
        S, (dilation,), (pad,) = h.size(1), self.conv.dilation, self.conv.padding
        padded = nn.functional.pad(h, (0, 0, pad, pad))  # (1, S + 2 pad, C)
        taps = [padded[:, j * dilation : j * dilation + S] for j in range(self.conv.kernel_size[0])]
        windows = torch.stack(taps, dim=-1).flatten(2)  # (1, S, C * k), as the weight (2C, C, k)
        return nn.functional.linear(windows, self.conv.weight.flatten(1), self.conv.bias)


class BiLSTMBlock(nn.Module):
    """``x + Dropout(BiLSTM(LN(x)))`` over the real positions only (packed sequences)."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.lstm = nn.LSTM(width, width // 2, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x (B, S, C), lengths (B,) real positions per row -> (B, S, C)."""
        packed = pack_padded_sequence(self.norm(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = self.lstm(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=x.size(1))  # (B, S, C)
        return x + self.drop(h)


class CNNTagger(nn.Module):
    """Non-autoregressive couplet tagger (see the module docstring): ``forward(src) -> (B, S, V)``."""

    def __init__(self, config: CNNTaggerConfig) -> None:
        super().__init__()
        self.config = config
        C = config.n_embd
        self.tok_emb = nn.Embedding(config.src_vocab_size, C)
        self.pos_emb = nn.Embedding(config.block_size, C) if config.positional else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            GatedConvBlock(C, config.kernel_size, config.dilation(i), config.dropout)
            for i in range(config.n_layer)
        )
        self.bilstm = BiLSTMBlock(C, config.dropout) if config.bilstm else None
        self.norm = nn.LayerNorm(C)
        self.head = nn.Linear(C, config.tgt_vocab_size)
        for emb in (self.tok_emb, self.pos_emb):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.02)

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, src: Tensor) -> Tensor:
        """src (B, S) right-padded ids, each row ending in eos -> logits (B, S, V_tgt), zero at padding."""
        S = src.size(1)
        check_length(S, self.config.block_size)
        real = src != self.config.pad_id  # (B, S)
        mask = real.unsqueeze(-1).to(self.tok_emb.weight.dtype)  # (B, S, 1)
        x = self.tok_emb(src)  # (B, S, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(S, device=src.device))  # (S, C) broadcast
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, mask)  # (B, S, C)
        if self.bilstm is not None:
            x = self.bilstm(x, real.sum(dim=1).clamp(min=1))
        # the output layer, the largest matrix, runs on the real positions only; padding gets zeros
        out = self.head(self.norm(x[real]))  # (N_real, V_tgt)
        logits = out.new_zeros(*src.shape, out.size(-1))  # (B, S, V_tgt)
        logits[real] = out
        return logits


def aligned_cross_entropy(model: nn.Module, batch: Any, ctx: TrainContext) -> Tensor:
    """Cross-entropy of ``model(src)`` against ``tgt_out``: position t of the first line (its eos
    included) predicts position t of the second line (and eos). Needs one target token per source
    token in every pair; anything else is a ConfigError."""
    if not isinstance(batch, Seq2SeqBatch):
        raise ConfigError(f"{NAME} trains on (first line, second line) pairs")
    src_len = (batch.src != batch.pad_id).sum(dim=1)  # (B,)
    tgt_len = (batch.tgt_out != batch.pad_id).sum(dim=1)  # (B,)
    if not torch.equal(src_len, tgt_len):
        row = int((src_len != tgt_len).nonzero()[0, 0])
        raise ConfigError(
            f"{NAME} needs character-aligned couplets (one output character per input character), "
            f"but a pair has {int(src_len[row]) - 1} source and {int(tgt_len[row]) - 1} target tokens; "
            "use a couplet corpus with tokenizer.kind = char"
        )
    logits = model(batch.src)  # (B, S, V); S == T since every row has equal lengths
    return token_cross_entropy(logits, batch.tgt_out, ctx)


def tagger_stepper(model: nn.Module, src: Tensor | None) -> Stepper:
    """One forward pass over the source; decoding then reads one row of it per position."""
    if src is None:
        raise ConfigError(f"{NAME} needs a first line to answer")
    return TaggerStepper(model, src, eos_id=Tokenizer.EOS_ID)


def tagger_activation_bytes(config: CNNTaggerConfig, batch_size: int) -> int:
    """A rough training-activation size: about 12 (B, S, C) tensors a block, logits and their grads."""
    per_position = config.n_embd * (config.n_layer * 12 + (16 if config.bilstm else 0))
    return batch_size * config.block_size * 4 * (per_position + config.tgt_vocab_size * 2)


SPEC = ModelSpec(
    name=NAME,
    kind="seq2seq",
    config_cls=CNNTaggerConfig,
    model_cls=CNNTagger,
    tasks=("couplet",),
    description="CNN couplet tagger: dilated gated convolutions, one character per position, one pass "
    "(Dauphin et al. 2017; Yu & Koltun 2016)",
    presets=CNN_TAGGER_PRESETS,
    train_presets=CNN_TAGGER_TRAIN_PRESETS,
    loss=aligned_cross_entropy,
    stepper=tagger_stepper,
    attention=None,
    same_length=True,
    activation_bytes=tagger_activation_bytes,
)
