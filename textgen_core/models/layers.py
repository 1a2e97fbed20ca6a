"""Pieces shared by the model zoo: attention, positions, feed-forward, decoder output, checks.

Multi-head attention and the sinusoidal position encoding follow Vaswani et al. 2017,
"Attention Is All You Need" (§3.2.1 scaled dot-product attention, §3.2.2 multi-head attention,
§3.3 position-wise feed-forward networks, §3.5 positional encoding).

Masks are boolean and use PyTorch's ``scaled_dot_product_attention`` convention: ``True`` means
"this query may attend to this key". Padding masks handed in by the models use the opposite
convention (``True`` = padding), matching ``tokens == pad_id``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textgen_core.errors import ConfigError

# --------------------------------------------------------------------------- config checks


def require_positive(config: object, names: Iterable[str], *, optional: bool = False) -> None:
    """Raise ConfigError unless each named field is a whole number >= 1 (or None if optional)."""
    for name in names:
        value = getattr(config, name)
        if optional and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"model.{name} must be a whole number >= 1, got {value!r}")


def require_bool(config: object, names: Iterable[str]) -> None:
    """Raise ConfigError unless each named field is True or False."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, bool):
            raise ConfigError(f"model.{name} must be true or false, got {value!r}")


def require_dropout(value: object) -> None:
    """Raise ConfigError unless ``value`` is a probability in [0, 1)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value < 1.0
    if not ok:
        raise ConfigError(f"model.dropout must be a number in [0, 1), got {value!r}")


def require_heads_divide(n_embd: int, n_head: int) -> None:
    """Multi-head attention splits n_embd into n_head equal slices (Vaswani et al. §3.2.2)."""
    if n_embd % n_head != 0:
        raise ConfigError(f"model.n_embd={n_embd} must be divisible by model.n_head={n_head}")


def check_length(length: int, block_size: int) -> None:
    """Raise ConfigError when an input is longer than the model's position table."""
    if length > block_size:
        raise ConfigError(f"input of {length} tokens exceeds model.block_size={block_size}")


# --------------------------------------------------------------------------- outputs


@dataclass
class DecoderOutput:
    """What an encoder-decoder's ``decode`` returns.

    Attention weights are only computed when asked for (``need_weights=True``); they are the
    softmax probabilities before attention dropout, stacked over decoder layers.
    """

    logits: Tensor  # (B, T, V)
    self_attn: Tensor | None = None  # (L, B, H, T, T) when need_weights
    cross_attn: Tensor | None = None  # (L, B, H, T, S) when need_weights


# --------------------------------------------------------------------------- KV cache


@dataclass
class KVCache:
    """Keys and values of one attention layer, kept between decoding steps (incremental decoding).

    ``k`` and ``v`` are (N, H, capacity, D) buffers whose first ``length`` positions hold the keys
    and values of the tokens fed so far. :meth:`append` writes new positions in place and doubles
    the capacity when full, so feeding one token costs no copy of the whole cache (amortised).
    A cross-attention cache is built full with :meth:`of` and never appended to.
    """

    k: Tensor  # (N, H, capacity, D)
    v: Tensor  # (N, H, capacity, D)
    length: int = 0

    @classmethod
    def empty(cls, rows: int, n_head: int, head_dim: int, *, device: torch.device | None = None,
              dtype: torch.dtype | None = None) -> KVCache:
        """A cache of ``rows`` rows and no position yet (the first append sizes the buffers)."""
        k = torch.empty(rows, n_head, 0, head_dim, device=device, dtype=dtype)  # (N, H, 0, D)
        return cls(k, k.clone(), 0)

    @classmethod
    def of(cls, k: Tensor, v: Tensor) -> KVCache:
        """A full cache holding ``k``, ``v`` (N, H, S, D), e.g. a projected encoder memory."""
        return cls(k, v, k.size(2))

    @property
    def rows(self) -> int:
        return self.k.size(0)

    def keys_values(self) -> tuple[Tensor, Tensor]:
        """The filled part: k, v (N, H, length, D) (views, no copy)."""
        return self.k[:, :, : self.length], self.v[:, :, : self.length]

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add k, v (N, H, t, D) after the cached positions -> all keys, values (N, H, length, D)."""
        end = self.length + k.size(2)
        if end > self.k.size(2) or self.k.dtype != k.dtype:
            capacity = max(end, 2 * self.k.size(2), 16)
            self.k = _regrow(self.k, self.length, capacity, k)
            self.v = _regrow(self.v, self.length, capacity, v)
        self.k[:, :, self.length : end] = k
        self.v[:, :, self.length : end] = v
        self.length = end
        return self.keys_values()

    def cleared(self) -> KVCache:
        """A new cache of the same rows, heads and dtype with no position (fresh buffers)."""
        N, H, _, D = self.k.shape
        return KVCache.empty(N, H, D, device=self.k.device, dtype=self.k.dtype)

    def index_select(self, index: Tensor) -> KVCache:
        """A new cache whose row i is this cache's row ``index[i]`` (beam reordering, expansion)."""
        return KVCache(self.k.index_select(0, index), self.v.index_select(0, index), self.length)


def _regrow(buffer: Tensor, length: int, capacity: int, like: Tensor) -> Tensor:
    """A (N, H, capacity, D) buffer of ``like``'s dtype holding ``buffer``'s first ``length``."""
    N, H, _, D = buffer.shape
    out = like.new_empty(N, H, capacity, D)
    out[:, :, :length] = buffer[:, :, :length]
    return out


# --------------------------------------------------------------------------- masks


def attention_mask(
    q_len: int,
    k_len: int,
    *,
    key_padding_mask: Tensor | None = None,
    causal: bool = False,
    device: torch.device | None = None,
) -> Tensor | None:
    """Boolean mask (B|1, 1, T|1, S), True where a query may attend to a key; None = no mask.

    ``key_padding_mask`` is (B, S) with True on padding keys. ``causal`` lets query t see keys
    0..t (aligned to the end when T < S). A query whose every key is padding (an all-padding
    source row, say) would get a softmax over nothing, i.e. NaN; such a row falls back to the
    unpadded mask (every key, or the causal prefix), so causality is never broken.
    """
    base = None
    if causal:
        base = torch.ones(q_len, k_len, dtype=torch.bool, device=device)
        base = base.tril(diagonal=k_len - q_len).view(1, 1, q_len, k_len)  # (1, 1, T, S)
    if key_padding_mask is None:
        return base
    keep = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, S)
    allowed = keep if base is None else base & keep  # (B, 1, T|1, S)
    fallback = torch.ones_like(keep) if base is None else base
    return torch.where(allowed.any(dim=-1, keepdim=True), allowed, fallback)


# --------------------------------------------------------------------------- attention


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention (Vaswani et al. 2017, §3.2).

    ``Attention(Q, K, V) = softmax(Q Kᵀ / sqrt(d_k)) V``, computed in ``n_head`` parallel heads of
    size ``d_k = n_embd / n_head`` whose outputs are concatenated and projected.

    Two paths give the same output: the fast path calls ``F.scaled_dot_product_attention`` (flash /
    memory-efficient kernels where available); the explicit path (``need_weights=True``) writes the
    softmax out and also returns the attention weights. With dropout active (training mode) the
    two paths draw different dropout masks, so compare them in eval mode.
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        require_heads_divide(n_embd, n_head)
        self.n_head = n_head
        self.n_embd = n_embd
        self.dropout = dropout
        self.q_proj = nn.Linear(n_embd, n_embd, bias=bias)  # W^Q for all heads
        self.kv_proj = nn.Linear(n_embd, 2 * n_embd, bias=bias)  # W^K and W^V for all heads
        self.out_proj = nn.Linear(n_embd, n_embd, bias=bias)  # W^O

    def project_kv(self, source: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of ``source`` (B, S, C) -> k, v (B, H, S, hs) each."""
        B, S, C = source.shape
        k, v = self.kv_proj(source).split(C, dim=2)  # (B, S, C) each
        k = k.view(B, S, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, S, hs)
        v = v.view(B, S, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, S, hs)
        return k, v

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
        cache: KVCache | None = None,
        memory_kv: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``x`` (B, T, C) to ``memory`` (B, S, C), or to ``x`` itself if None.

        ``mask`` is a boolean (B|1, 1, T|1, S) mask from :func:`attention_mask` (True = may
        attend) and already carries any causality; ``causal`` is used only when ``mask`` is None
        (queries are then the last T of the S key positions).
        Incremental decoding: with ``cache`` (self-attention) the keys and values of ``x`` are
        appended to it and the queries attend to every cached position; with ``memory_kv``
        (cross-attention) the keys and values are the ones projected once from the memory.
        Returns the output (B, T, C) and, when ``need_weights``, the weights (B, H, T, S).
        """
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, hs)
        if memory_kv is not None:
            k, v = memory_kv.keys_values()  # (B, H, S, hs)
        else:
            k, v = self.project_kv(x if memory is None else memory)  # (B, H, S, hs)
            if cache is not None:
                k, v = cache.append(k, v)  # (B, H, S_cached + T, hs)
        S = k.size(2)
        dropout_p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            if mask is None and causal:
                mask = attention_mask(T, S, causal=True, device=x.device)
            y, weights = _explicit_attention(q, k, v, mask, dropout_p)
        else:
            is_causal = mask is None and causal and T == S
            if mask is None and causal and not is_causal and T > 1:  # one query sees every key
                mask = attention_mask(T, S, causal=True, device=x.device)
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal
            )  # (B, H, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble heads: (B, T, C)
        return self.out_proj(y), weights


def _explicit_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float
) -> tuple[Tensor, Tensor]:
    """softmax(Q Kᵀ / sqrt(d_k)) V written out; returns (B, H, T, hs) and weights (B, H, T, S)."""
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))  # (B, H, T, S)
    if mask is not None:
        att = att.masked_fill(~mask, float("-inf"))
    weights = att.softmax(dim=-1)  # (B, H, T, S)
    att = F.dropout(weights, p=dropout_p, training=True) if dropout_p > 0 else weights
    return att @ v, weights


# --------------------------------------------------------------------------- positions


class SinusoidalPositions(nn.Module):
    """Fixed encodings PE(pos, 2i) = sin(pos / 10000^(2i/C)), PE(pos, 2i+1) = cos(...) (§3.5).

    Kept as a non-persistent buffer: it is recomputed on load and never stored in checkpoints.
    """

    def __init__(self, block_size: int, n_embd: int) -> None:
        super().__init__()
        position = torch.arange(block_size, dtype=torch.float32).unsqueeze(1)  # (P, 1)
        freq = torch.exp(
            torch.arange(0, n_embd, 2, dtype=torch.float32) * (-math.log(10000.0) / n_embd)
        )  # (ceil(C/2),)
        pe = torch.zeros(block_size, n_embd)  # (P, C)
        pe[:, 0::2] = torch.sin(position * freq)
        pe[:, 1::2] = torch.cos(position * freq)[:, : n_embd // 2]
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, length: int, start: int = 0) -> Tensor:
        """Encodings of positions ``start .. start + length - 1`` -> (T, C)."""
        return self.pe[start : start + length]  # (T, C)


class LearnedPositions(nn.Module):
    """A learned embedding per position (Gehring et al. 2017; GPT, Radford et al. 2018)."""

    def __init__(self, block_size: int, n_embd: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(block_size, n_embd))
        nn.init.normal_(self.weight, std=n_embd**-0.5)

    def forward(self, length: int, start: int = 0) -> Tensor:
        """Embeddings of positions ``start .. start + length - 1`` -> (T, C)."""
        return self.weight[start : start + length]  # (T, C)


POSITIONAL_KINDS = ("sinusoidal", "learned")


def make_positions(kind: str, block_size: int, n_embd: int) -> nn.Module:
    """Build the position module named by ``kind`` (one of POSITIONAL_KINDS)."""
    if kind == "sinusoidal":
        return SinusoidalPositions(block_size, n_embd)
    if kind == "learned":
        return LearnedPositions(block_size, n_embd)
    kinds = ", ".join(POSITIONAL_KINDS)
    raise ConfigError(f"model.positional must be one of {kinds}, got {kind!r}")


# --------------------------------------------------------------------------- feed-forward


class FeedForward(nn.Module):
    """Position-wise feed-forward network FFN(x) = act(x W1 + b1) W2 + b2 (§3.3).

    The paper uses ReLU; GPT-2 uses GELU (Hendrycks & Gimpel 2016). Residual dropout is applied
    by the caller, around the sublayer.
    """

    def __init__(self, n_embd: int, hidden: int, *, bias: bool = True, gelu: bool = False) -> None:
        super().__init__()
        self.fc1 = nn.Linear(n_embd, hidden, bias=bias)
        self.act = nn.GELU() if gelu else nn.ReLU()
        self.fc2 = nn.Linear(hidden, n_embd, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))  # (B, T, C) -> (B, T, hidden) -> (B, T, C)
