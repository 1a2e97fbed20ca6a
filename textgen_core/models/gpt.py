"""A decoder-only GPT language model, laid out like GPT-2 and nanoGPT.

Radford et al. 2019, "Language Models are Unsupervised Multitask Learners" (GPT-2): a stack of
pre-LN Transformer blocks (LayerNorm moved to the input of each sub-block, plus a final LayerNorm),
learned position embeddings, GELU feed-forward networks, the token embedding tied to the output
projection, and weights initialised N(0, 0.02) with residual projections scaled by
1/sqrt(2 * n_layer). Attention is causal: position t sees tokens 0..t only.

It continues stories from a token stream and, as GPT-2 couplet models do, writes the second part
of a pair after ``source <sep>`` (see :class:`~textgen_core.data.PrefixLMBatcher`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import torch
from torch import Tensor, nn

from textgen_core.models.contract import ModelSpec, lm_self_attention
from textgen_core.models.layers import (
    FeedForward,
    KVCache,
    MultiHeadAttention,
    check_length,
    require_bool,
    require_dropout,
    require_heads_divide,
    require_positive,
)
from textgen_core.models.settings import setting


@dataclass(frozen=True)
class GPTConfig:
    """Settings of :class:`GPT`. ``vocab_size`` comes from the tokenizer."""

    vocab_size: int
    n_layer: int = setting(4, "Layers", "number of stacked transformer blocks", range=(1, 64, 1))
    n_head: int = setting(4, "Attention heads", "attention heads per block; must divide the embedding "
                          "size", range=(1, 64, 1))
    n_embd: int = setting(256, "Embedding size", "width of the model: size of every token vector",
                          range=(8, 16384, 32))
    block_size: int = setting(256, "Context length", "most tokens the model sees at once",
                              range=(8, 32768, 32))
    dropout: float = setting(0.0, "Dropout", "share of activations zeroed in training (0 = off)",
                             range=(0.0, 0.9, 0.05))
    bias: bool = setting(True, "Biases", "learned biases in the linear and LayerNorm layers")

    def __post_init__(self) -> None:
        require_positive(self, ("vocab_size", "n_layer", "n_head", "n_embd", "block_size"))
        require_bool(self, ("bias",))
        require_dropout(self.dropout)
        require_heads_divide(self.n_embd, self.n_head)


# Model settings only; vocab_size is injected by the registry.
GPT_PRESETS = MappingProxyType(
    {
        # trains visibly in about a minute on 2 CPU cores
        "tiny": MappingProxyType({"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 64, "dropout": 0.0}),
        # about 3M parameters in the blocks; tens of minutes on a CPU
        "small": MappingProxyType(
            {"n_layer": 4, "n_head": 4, "n_embd": 256, "block_size": 128, "dropout": 0.1}
        ),
        # nanoGPT's shakespeare_char model; for a GPU
        "base": MappingProxyType(
            {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "dropout": 0.2}
        ),
    }
)


class Block(nn.Module):
    """One GPT-2 block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        C = config.n_embd
        self.ln_1 = nn.LayerNorm(C, bias=config.bias)
        self.attn = MultiHeadAttention(C, config.n_head, config.dropout, config.bias)
        self.ln_2 = nn.LayerNorm(C, bias=config.bias)
        self.mlp = FeedForward(C, 4 * C, bias=config.bias, gelu=True)
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(
        self, x: Tensor, need_weights: bool = False, cache: KVCache | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, T, C) -> (B, T, C) and, when need_weights, attention weights (B, H, T, T).

        With ``cache`` (this block's K/V of the S tokens fed before) x holds the next T tokens;
        their keys and values are appended and the weights are (B, H, T, S + T).
        """
        a, weights = self.attn(self.ln_1(x), causal=True, need_weights=need_weights, cache=cache)
        x = x + self.resid_drop(a)
        x = x + self.resid_drop(self.mlp(self.ln_2(x)))
        return x, weights


class GPT(nn.Module):
    """GPT-2-style causal language model, built as ``GPT(config)``."""


    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        C = config.n_embd
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(config.vocab_size, C),  # token embeddings
                "wpe": nn.Embedding(config.block_size, C),  # learned position embeddings
                "drop": nn.Dropout(config.dropout),
                "h": nn.ModuleList(Block(config) for _ in range(config.n_layer)),
                "ln_f": nn.LayerNorm(C, bias=config.bias),
            }
        )
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init_weights)
        # GPT-2: scale the residual projections by 1/sqrt(2 * n_layer), two per block
        residual_std = 0.02 / math.sqrt(2 * config.n_layer)
        for name, param in self.named_parameters():
            if name.endswith(("attn.out_proj.weight", "mlp.fc2.weight")):
                nn.init.normal_(param, mean=0.0, std=residual_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def num_parameters(self) -> int:
        """Every trainable number, the tied embedding counted once and positions included.

        (nanoGPT reports the count without position embeddings; this one leaves nothing out.)
        """
        return sum(p.numel() for p in self.parameters())

    def new_cache(self, rows: int) -> GPTCache:
        """An empty decoding cache for ``rows`` rows (see ``forward(..., cache=)``)."""
        H = self.config.n_head
        D = self.config.n_embd // H
        device = self.lm_head.weight.device
        return GPTCache([KVCache.empty(rows, H, D, device=device) for _ in self.transformer.h])

    def forward(
        self, idx: Tensor, need_weights: bool = False, cache: GPTCache | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """idx (B, T) token ids -> logits (B, T, V); with need_weights also (L, B, H, T, T).

        Incremental decoding: with ``cache`` (holding the K/V of the S tokens fed before, see
        :meth:`new_cache`) ``idx`` holds the next T tokens, placed at positions S .. S + T - 1;
        their K/V are appended to the cache and the logits are those of the last T positions of
        a forward over all S + T tokens. S + T must fit ``block_size``.
        """
        T = idx.size(1)
        start = 0 if cache is None else cache.length
        check_length(start + T, self.config.block_size)
        pos = torch.arange(start, start + T, dtype=torch.long, device=idx.device)  # (T,)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)  # (B, T, C)
        x = self.transformer.drop(x)
        weights: list[Tensor] = []
        layer_caches = [None] * len(self.transformer.h) if cache is None else cache.layers
        for block, layer_cache in zip(self.transformer.h, layer_caches):
            x, w = block(x, need_weights, layer_cache)
            if need_weights:
                weights.append(w)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, V)
        if need_weights:
            return logits, torch.stack(weights)
        return logits


@dataclass
class GPTCache:
    """Per block, the keys and values (N, H, T, D) of the T tokens fed so far (a :class:`KVCache`).

    Learned absolute positions cannot slide: a cache holds at most ``block_size`` positions, and
    the stepper re-prefills the last ``block_size`` tokens once a window would exceed it.
    """

    layers: list[KVCache]

    @property
    def length(self) -> int:
        """Positions fed so far."""
        return self.layers[0].length

    @property
    def rows(self) -> int:
        return self.layers[0].rows

    def index_select(self, index: Tensor) -> GPTCache:
        """A cache whose row i is this cache's row ``index[i]`` (beam reordering, expansion)."""
        return GPTCache([kv.index_select(index) for kv in self.layers])


SPEC = ModelSpec(
    name="gpt",
    kind="lm",
    config_cls=GPTConfig,
    model_cls=GPT,
    # couplets and translation as a prefix LM: "source <sep> target <eos>", loss on the target
    tasks=("continuation", "couplet", "translation"),
    description="GPT decoder-only language model (Radford et al. 2019, GPT-2 / nanoGPT)",
    presets=GPT_PRESETS,
    attention=lm_self_attention,
    attention_kind="self",
)
