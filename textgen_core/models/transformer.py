"""The Transformer encoder-decoder of Vaswani et al. 2017, "Attention Is All You Need".

Read top to bottom: config, one sublayer connection, encoder layer, decoder layer, the model.
Differences from the paper, all switchable in :class:`TransformerConfig`:

* ``pre_norm=True`` (default) puts LayerNorm before each sublayer and a final LayerNorm after the
  encoder and decoder stacks (Xiong et al. 2020, "On Layer Normalization in the Transformer
  Architecture"); it trains without warm-up tricks. ``pre_norm=False`` is the paper's post-LN.
* ``positional="learned"`` swaps the sinusoids of §3.5 for learned position embeddings.

As in §3.4 the token embeddings are scaled by sqrt(n_embd) and (``tie_embeddings``) the decoder's
input embedding is the pre-softmax projection. Padding is derived from ``pad_id``: padded keys are
masked in every attention, and the decoder's self-attention is causal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import torch
from torch import Tensor, nn

from textgen_core.errors import ConfigError
from textgen_core.models.contract import ModelSpec, transformer_attention
from textgen_core.models.layers import (
    POSITIONAL_KINDS,
    DecoderOutput,
    FeedForward,
    KVCache,
    MultiHeadAttention,
    attention_mask,
    check_length,
    make_positions,
    require_bool,
    require_dropout,
    require_heads_divide,
    require_positive,
)
from textgen_core.models.settings import setting


@dataclass(frozen=True)
class TransformerConfig:
    """Settings of :class:`Transformer`. Vocabulary sizes and ``pad_id`` come from the tokenizer."""

    src_vocab_size: int
    tgt_vocab_size: int
    pad_id: int = 0
    n_layer: int = setting(3, "Layers", "encoder layers (N in the paper)", range=(1, 64, 1))
    n_decoder_layer: int | None = setting(None, "Decoder layers", "decoder layers; auto = the same as "
                                          "n_layer", range=(1, 64, 1))
    n_head: int = setting(4, "Attention heads", "attention heads per layer (h); must divide the "
                          "embedding size", range=(1, 64, 1))
    n_embd: int = setting(256, "Embedding size", "width of the model (d_model): size of every token "
                          "vector", range=(8, 16384, 32))
    ffn_dim: int | None = setting(None, "Feed-forward size", "hidden size of the feed-forward "
                                  "sublayer (d_ff); auto = 4 × n_embd", range=(8, 65536, 64))
    dropout: float = setting(0.1, "Dropout", "share of activations zeroed in training (residual, "
                             "embedding, attention; 0 = off, 0.1–0.3 for small data)", range=(0.0, 0.9, 0.05))
    bias: bool = setting(True, "Biases", "learned biases in the linear and LayerNorm layers")
    pre_norm: bool = setting(True, "Pre-LayerNorm", "LayerNorm before each sublayer (more stable) "
                             "instead of after it, as in the paper")
    positional: str = setting("sinusoidal", "Positions", "sinusoidal (fixed, as in the paper) or "
                              "learned position embeddings", choices=POSITIONAL_KINDS)
    block_size: int = setting(256, "Max. sequence length", "most tokens per source or target "
                              "sequence", range=(8, 32768, 32))
    tie_embeddings: bool = setting(True, "Tie output embedding", "the decoder's input embedding is "
                                   "its output projection (§3.4)")
    share_src_tgt_embeddings: bool = setting(False, "Share source/target embeddings", "one embedding "
                                             "table for both sides (needs a shared vocabulary)")

    def __post_init__(self) -> None:
        require_positive(
            self, ("src_vocab_size", "tgt_vocab_size", "n_layer", "n_head", "n_embd", "block_size")
        )
        require_positive(self, ("n_decoder_layer", "ffn_dim"), optional=True)
        require_bool(self, ("bias", "pre_norm", "tie_embeddings", "share_src_tgt_embeddings"))
        require_dropout(self.dropout)
        require_heads_divide(self.n_embd, self.n_head)
        if self.positional not in POSITIONAL_KINDS:
            raise ConfigError(
                f"model.positional must be one of {', '.join(POSITIONAL_KINDS)}, got {self.positional!r}"
            )
        smallest = min(self.src_vocab_size, self.tgt_vocab_size)
        if isinstance(self.pad_id, bool) or not isinstance(self.pad_id, int):
            raise ConfigError(f"model.pad_id must be a whole number, got {self.pad_id!r}")
        if not 0 <= self.pad_id < smallest:
            raise ConfigError(f"model.pad_id={self.pad_id} must be in [0, {smallest})")
        if self.share_src_tgt_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ConfigError(
                "model.share_src_tgt_embeddings needs equal vocabularies, got "
                f"src_vocab_size={self.src_vocab_size}, tgt_vocab_size={self.tgt_vocab_size}"
            )

    @property
    def decoder_layers(self) -> int:
        return self.n_layer if self.n_decoder_layer is None else self.n_decoder_layer

    @property
    def ffn_hidden(self) -> int:
        return 4 * self.n_embd if self.ffn_dim is None else self.ffn_dim


# Model settings only; vocabulary sizes and pad_id are injected by the registry.
TRANSFORMER_PRESETS = MappingProxyType(
    {
        # trains visibly in about a minute on 2 CPU cores
        "tiny": MappingProxyType(
            dict(n_layer=2, n_head=4, n_embd=64, ffn_dim=128, dropout=0.1, block_size=64)
        ),
        # a few million parameters (plus embeddings); tens of minutes on a CPU
        "small": MappingProxyType(
            dict(n_layer=3, n_head=4, n_embd=256, ffn_dim=1024, dropout=0.1, block_size=256)
        ),
        # the paper's base model (6 + 6 layers, d_model 512, 8 heads, d_ff 2048); for a GPU
        "base": MappingProxyType(
            dict(n_layer=6, n_head=8, n_embd=512, ffn_dim=2048, dropout=0.1, block_size=256)
        ),
    }
)


class SublayerConnection(nn.Module):
    """Residual connection around one sublayer, with LayerNorm and dropout (§5.4).

    post-LN (paper): ``LN(x + Dropout(f(x)))``; pre-LN: ``x + Dropout(f(LN(x)))``.
    Use as ``y = f(conn.inp(x)); x = conn.out(x, y)``.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.pre_norm = config.pre_norm
        self.norm = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def inp(self, x: Tensor) -> Tensor:
        return self.norm(x) if self.pre_norm else x

    def out(self, x: Tensor, y: Tensor) -> Tensor:
        x = x + self.dropout(y)
        return x if self.pre_norm else self.norm(x)


class EncoderLayer(nn.Module):
    """Self-attention then a feed-forward network, each a residual sublayer (§3.1)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        C = config.n_embd
        self.self_attn = MultiHeadAttention(C, config.n_head, config.dropout, config.bias)
        self.ffn = FeedForward(C, config.ffn_hidden, bias=config.bias)
        self.sub_attn = SublayerConnection(config)
        self.sub_ffn = SublayerConnection(config)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        a, _ = self.self_attn(self.sub_attn.inp(x), mask=mask)  # (B, S, C)
        x = self.sub_attn.out(x, a)
        return self.sub_ffn.out(x, self.ffn(self.sub_ffn.inp(x)))  # (B, S, C)


class DecoderLayer(nn.Module):
    """Masked self-attention, attention over the encoder output, feed-forward (§3.1)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        C, H, p, bias = config.n_embd, config.n_head, config.dropout, config.bias
        self.self_attn = MultiHeadAttention(C, H, p, bias)
        self.cross_attn = MultiHeadAttention(C, H, p, bias)
        self.ffn = FeedForward(C, config.ffn_hidden, bias=bias)
        self.sub_self = SublayerConnection(config)
        self.sub_cross = SublayerConnection(config)
        self.sub_ffn = SublayerConnection(config)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None,
        self_mask: Tensor | None,
        cross_mask: Tensor | None,
        need_weights: bool = False,
        *,
        self_cache: KVCache | None = None,
        memory_kv: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """x (B, T, C), memory (B, S, C) -> x (B, T, C), weights (B, H, T, T) and (B, H, T, S).

        Incremental decoding passes ``self_cache`` (this layer's growing self-attention K/V) and
        ``memory_kv`` (the memory's K/V, projected once) instead of ``memory``.
        """
        a, self_w = self.self_attn(
            self.sub_self.inp(x), mask=self_mask, need_weights=need_weights, cache=self_cache
        )
        x = self.sub_self.out(x, a)
        a, cross_w = self.cross_attn(
            self.sub_cross.inp(x), memory, mask=cross_mask, need_weights=need_weights,
            memory_kv=memory_kv,
        )
        x = self.sub_cross.out(x, a)
        x = self.sub_ffn.out(x, self.ffn(self.sub_ffn.inp(x)))
        return x, self_w, cross_w


class Transformer(nn.Module):
    """Encoder-decoder Transformer (Vaswani et al. 2017), built as ``Transformer(config)``."""


    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        C = config.n_embd
        self.embed_scale = math.sqrt(C)  # §3.4: embeddings are multiplied by sqrt(d_model)
        self.src_tok_emb = nn.Embedding(config.src_vocab_size, C)
        self.tgt_tok_emb = (
            self.src_tok_emb if config.share_src_tgt_embeddings else nn.Embedding(config.tgt_vocab_size, C)
        )
        self.src_pos = make_positions(config.positional, config.block_size, C)
        self.tgt_pos = make_positions(config.positional, config.block_size, C)
        self.drop = nn.Dropout(config.dropout)
        self.encoder_layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layer))
        self.decoder_layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.decoder_layers))
        # pre-LN leaves the residual stream un-normalised, so each stack ends with a LayerNorm
        self.encoder_norm = nn.LayerNorm(C, bias=config.bias) if config.pre_norm else nn.Identity()
        self.decoder_norm = nn.LayerNorm(C, bias=config.bias) if config.pre_norm else nn.Identity()
        self.lm_head = nn.Linear(C, config.tgt_vocab_size, bias=False)
        self.apply(self._init_weights)
        if config.tie_embeddings:
            self.lm_head.weight = self.tgt_tok_emb.weight  # one (V_tgt, C) matrix, §3.4

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """Xavier-uniform linear layers; embeddings N(0, C^-1/2) so scaled ones have unit size."""
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=module.embedding_dim**-0.5)

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def num_parameters(self) -> int:
        """Every trainable number, counting tied/shared matrices once (positions included)."""
        return sum(p.numel() for p in self.parameters())

    def _embed(self, tokens: Tensor, tok_emb: nn.Embedding, pos: nn.Module, start: int = 0) -> Tensor:
        """tokens (B, T) at positions start .. start + T - 1 -> embedded (B, T, C)."""
        check_length(start + tokens.size(1), self.config.block_size)
        x = tok_emb(tokens) * self.embed_scale + pos(tokens.size(1), start)  # (B, T, C)
        return self.drop(x)

    def encode(self, src: Tensor) -> Tensor:
        """src (B, S) token ids -> memory (B, S, C)."""
        S = src.size(1)
        mask = attention_mask(S, S, key_padding_mask=src == self.config.pad_id)  # (B, 1, 1, S)
        x = self._embed(src, self.src_tok_emb, self.src_pos)  # (B, S, C)
        for layer in self.encoder_layers:
            x = layer(x, mask)
        return self.encoder_norm(x)  # (B, S, C)

    def decode(
        self, memory: Tensor, src: Tensor, tgt_in: Tensor, need_weights: bool = False
    ) -> DecoderOutput:
        """memory (B, S, C), src (B, S) for its padding, tgt_in (B, T) -> logits (B, T, V_tgt).

        With ``need_weights`` the explicit attention path runs and the weights of every decoder
        layer come back stacked: self (L, B, H, T, T), cross (L, B, H, T, S).
        """
        T, S = tgt_in.size(1), src.size(1)
        pad = self.config.pad_id
        self_mask = attention_mask(
            T, T, key_padding_mask=tgt_in == pad, causal=True, device=tgt_in.device
        )  # (B, 1, T, T)
        cross_mask = attention_mask(T, S, key_padding_mask=src == pad)  # (B, 1, 1, S)
        x = self._embed(tgt_in, self.tgt_tok_emb, self.tgt_pos)  # (B, T, C)
        self_ws: list[Tensor] = []
        cross_ws: list[Tensor] = []
        for layer in self.decoder_layers:
            x, self_w, cross_w = layer(x, memory, self_mask, cross_mask, need_weights)
            if need_weights:
                self_ws.append(self_w)
                cross_ws.append(cross_w)
        logits = self.lm_head(self.decoder_norm(x))  # (B, T, V_tgt)
        if not need_weights:
            return DecoderOutput(logits)
        return DecoderOutput(logits, torch.stack(self_ws), torch.stack(cross_ws))

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """src (B, S), tgt_in (B, T) (shifted right, starting with BOS) -> logits (B, T, V_tgt)."""
        return self.decode(self.encode(src), src, tgt_in).logits

    # ----------------------------------------------------------------------- incremental decoding

    def start_decoding(self, memory: Tensor, src: Tensor) -> TransformerCache:
        """A decoding cache for memory (B, S, C) of src (B, S): every decoder layer's
        cross-attention keys and values are projected here, once per source."""
        B, S = src.shape
        H, D = self.config.n_head, self.config.n_embd // self.config.n_head
        cross = [KVCache.of(*layer.cross_attn.project_kv(memory)) for layer in self.decoder_layers]
        return TransformerCache(
            self_kv=[KVCache.empty(B, H, D, device=memory.device) for _ in self.decoder_layers],
            cross_kv=cross,  # (B, H, S, D) per layer
            cross_mask=attention_mask(1, S, key_padding_mask=src == self.config.pad_id),  # (B, 1, 1, S)
            tgt_pad=torch.zeros(B, 0, dtype=torch.bool, device=src.device),
            source=torch.arange(B, device=src.device),
        )

    def decode_cached(self, tgt_new: Tensor, cache: TransformerCache) -> Tensor:
        """Feed tgt_new (N, t), the output tokens after the ``cache.length`` already fed ->
        logits (N, t, V_tgt), equal to the last t positions of :meth:`decode` over the whole
        prefix. The cache grows by t positions; the new tokens sit at their absolute positions."""
        start, t = cache.length, tgt_new.size(1)
        cache.tgt_pad = torch.cat([cache.tgt_pad, tgt_new == self.config.pad_id], dim=1)  # (N, start+t)
        self_mask = attention_mask(
            t, start + t, key_padding_mask=cache.tgt_pad, causal=True, device=tgt_new.device
        )  # (N, 1, t, start + t)
        x = self._embed(tgt_new, self.tgt_tok_emb, self.tgt_pos, start)  # (N, t, C)
        for layer, self_kv, cross_kv in zip(self.decoder_layers, cache.self_kv, cache.cross_kv):
            x, _, _ = layer(x, None, self_mask, cache.cross_mask, self_cache=self_kv, memory_kv=cross_kv)
        return self.lm_head(self.decoder_norm(x))  # (N, t, V_tgt)


@dataclass
class TransformerCache:
    """The decoder's state between steps of incremental decoding (see :meth:`Transformer.start_decoding`).

    Per decoder layer, the self-attention K/V of the output fed so far (growing, (N, H, T, D)) and
    the cross-attention K/V of the encoder memory (fixed, (N, H, S, D)); the masks that go with
    them. :meth:`index_select` reorders, repeats or drops rows for beam search.
    """

    self_kv: list[KVCache]
    cross_kv: list[KVCache]
    cross_mask: Tensor | None  # (N, 1, 1, S), True = may attend (source padding)
    tgt_pad: Tensor  # (N, T) bool, True where a fed output token is pad (masked as a key)
    source: Tensor  # (N,) long: which source each row reads (its cross K/V and mask)

    @property
    def length(self) -> int:
        """Output positions fed so far."""
        return self.tgt_pad.size(1)

    @property
    def rows(self) -> int:
        return self.tgt_pad.size(0)

    def index_select(self, index: Tensor) -> TransformerCache:
        """A cache whose row i is this cache's row ``index[i]``. The cross-attention K/V are copied
        only when rows change source: beam search reordering the beams of each input keeps every
        row on its source, so a step copies the self-attention caches alone."""
        source = self.source.index_select(0, index)
        same = torch.equal(source, self.source)
        return TransformerCache(
            self_kv=[kv.index_select(index) for kv in self.self_kv],
            cross_kv=self.cross_kv if same else [kv.index_select(index) for kv in self.cross_kv],
            cross_mask=self.cross_mask if same or self.cross_mask is None
            else self.cross_mask.index_select(0, index),
            tgt_pad=self.tgt_pad.index_select(0, index),
            source=source,
        )

    def restart(self) -> TransformerCache:
        """The same rows with no output fed yet (the cross-attention K/V are kept)."""
        return TransformerCache(
            self_kv=[kv.cleared() for kv in self.self_kv],
            cross_kv=self.cross_kv, cross_mask=self.cross_mask, tgt_pad=self.tgt_pad[:, :0],
            source=self.source,
        )


SPEC = ModelSpec(
    name="transformer",
    kind="seq2seq",
    config_cls=TransformerConfig,
    model_cls=Transformer,
    tasks=("couplet", "translation", "continuation"),   # a story: consecutive passages as pairs
    description="Transformer encoder-decoder (Vaswani et al. 2017, Attention Is All You Need)",
    presets=TRANSFORMER_PRESETS,
    attention=transformer_attention,
)
