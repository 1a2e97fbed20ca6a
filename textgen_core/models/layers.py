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

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``x`` (B, T, C) to ``memory`` (B, S, C), or to ``x`` itself if None.

        ``mask`` is a boolean (B|1, 1, T|1, S) mask from :func:`attention_mask` (True = may
        attend) and already carries any causality; ``causal`` is used only when ``mask`` is None.
        Returns the output (B, T, C) and, when ``need_weights``, the weights (B, H, T, S).
        """
        B, T, C = x.shape
        source = x if memory is None else memory
        S = source.size(1)
        hs = C // self.n_head
        q = self.q_proj(x).view(B, T, self.n_head, hs).transpose(1, 2)  # (B, H, T, hs)
        k, v = self.kv_proj(source).split(C, dim=2)  # (B, S, C) each
        k = k.view(B, S, self.n_head, hs).transpose(1, 2)  # (B, H, S, hs)
        v = v.view(B, S, self.n_head, hs).transpose(1, 2)  # (B, H, S, hs)
        dropout_p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            if mask is None and causal:
                mask = attention_mask(T, S, causal=True, device=x.device)
            y, weights = _explicit_attention(q, k, v, mask, dropout_p)
        else:
            is_causal = mask is None and causal and T == S
            if mask is None and causal and not is_causal:
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

    def forward(self, length: int) -> Tensor:
        return self.pe[:length]  # (T, C)


class LearnedPositions(nn.Module):
    """A learned embedding per position (Gehring et al. 2017; GPT, Radford et al. 2018)."""

    def __init__(self, block_size: int, n_embd: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(block_size, n_embd))
        nn.init.normal_(self.weight, std=n_embd**-0.5)

    def forward(self, length: int) -> Tensor:
        return self.weight[:length]  # (T, C)


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
