"""Pieces shared by the recurrent encoder-decoders of the zoo (GRU, LSTM, Bahdanau, Luong).

* :class:`RecurrentConfig`: the settings every recurrent seq2seq model has (sizes, dropout, weight
  tying, scheduled sampling); each architecture subclasses it with its own fields.
* :class:`RecurrentEncoder`: token embedding and a packed, optionally bidirectional GRU/LSTM that
  reads the real tokens only (padding never reaches the recurrence).
* Attention: :class:`AdditiveAttention` (Bahdanau et al. 2015, also Luong's ``concat``) and
  :class:`BilinearAttention` (Luong et al. 2015 ``dot`` and ``general``); both mask padded keys.
* :class:`DecoderState` / :class:`DecoderStep`: what a decoder carries from one token to the next.
* :func:`unroll`: the step-by-step decoding loop used for teacher forcing where a model needs it
  (attention feeding the recurrence, input feeding) and for scheduled sampling
  (Bengio et al. 2015, "Scheduled Sampling for Sequence Prediction with Recurrent Neural Networks").
* :class:`RecurrentSeq2Seq`: the base module with the contract's ``forward``/``start``/``step``/
  ``reorder``; a model supplies ``start``, ``decode_step`` and, where cuDNN can take the whole target
  at once, a faster ``teacher_forced``.
* The spec hooks: :func:`recurrent_loss`, :func:`recurrent_algorithm` (reports the teacher-forcing
  ratio), :func:`recurrent_stepper`, :func:`recurrent_attention`, :func:`rnn_activation_bytes` and
  :data:`RNN_TRAIN_PRESETS`.

Padding is on the right of every row and is found from ``pad_id``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textgen_core.data import Seq2SeqBatch
from textgen_core.decoding.steppers import RecurrentStepper, Stepper
from textgen_core.errors import ConfigError
from textgen_core.models.contract import ModelSpec, TrainContext, token_cross_entropy
from textgen_core.models.layers import check_length, require_bool, require_dropout, require_positive
from textgen_core.models.settings import setting
from textgen_core.training.algorithm import AlgorithmContext, LossPerBatch, StepOutput

SS_SCHEDULES = ("none", "linear", "exponential", "inverse_sigmoid")
INIT_RANGE = 0.1  # every weight starts uniform in [-0.1, 0.1] (Sutskever et al. 2014 §3.4; Luong et al.)

# Training settings per preset that suit these models better than the Transformer's: a higher
# learning rate and a short warm-up (Adam on RNNs needs little), no inverse-sqrt decay.
RNN_TRAIN_PRESETS = MappingProxyType(
    {
        "tiny": MappingProxyType({"learning_rate": 3e-3, "min_lr": 3e-4, "warmup_steps": 20}),
        "small": MappingProxyType({"learning_rate": 1e-3, "min_lr": 1e-4, "warmup_steps": 100}),
        "base": MappingProxyType(
            {"learning_rate": 1e-3, "min_lr": 5e-5, "warmup_steps": 500, "schedule": "cosine"}
        ),
    }
)


# --------------------------------------------------------------------------- config


def make_presets(**presets: dict[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """Read-only model settings per preset name (tiny / small / base)."""
    return MappingProxyType({name: MappingProxyType(dict(values)) for name, values in presets.items()})


@dataclass(frozen=True)
class RecurrentConfig:
    """Settings every recurrent encoder-decoder shares. Vocabulary sizes and ``pad_id`` come from
    the tokenizer; ``block_size`` is the most tokens per source or target sequence."""

    src_vocab_size: int
    tgt_vocab_size: int
    pad_id: int = 0
    emb_dim: int = setting(256, "Embedding size", "size of every source and target token vector",
                           range=(8, 4096, 32))
    hidden_size: int = setting(512, "Hidden size", "units of every recurrent layer (per direction)",
                               range=(8, 8192, 32))
    num_layers: int = setting(1, "Layers", "stacked recurrent layers, in the encoder and in the decoder",
                              range=(1, 16, 1))
    dropout: float = setting(0.2, "Dropout", "share of activations zeroed in training (embeddings, "
                             "between stacked layers, before the output layer; 0 = off)",
                             range=(0.0, 0.9, 0.05))
    block_size: int = setting(128, "Max. sequence length", "most tokens per source or target "
                              "sequence", range=(8, 4096, 8))
    tie_embeddings: bool = setting(True, "Tie output embedding", "the output layer reuses the target "
                                   "embedding matrix (through a projection when sizes differ)")
    ss_schedule: str = setting("none", "Scheduled sampling", "how training moves from feeding the true "
                               "previous token to feeding the model's own guess, against exposure bias "
                               "(Bengio et al. 2015)", choices=SS_SCHEDULES)
    ss_k: float = setting(5.0, "Sampling steepness", "k of the schedule: exponential exp(-k·progress), "
                          "inverse sigmoid k/(k+k^(2·progress)) (needs k > 1)", range=(0.1, 100.0, 0.5))
    ss_min: float = setting(0.0, "Min. teacher forcing", "the share of true previous tokens never drops "
                            "below this", range=(0.0, 1.0, 0.05))

    def __post_init__(self) -> None:
        require_positive(
            self, ("src_vocab_size", "tgt_vocab_size", "emb_dim", "hidden_size", "num_layers", "block_size")
        )
        require_bool(self, ("tie_embeddings",))
        require_dropout(self.dropout)
        smallest = min(self.src_vocab_size, self.tgt_vocab_size)
        pad = self.pad_id
        if isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < smallest:
            raise ConfigError(f"model.pad_id must be a whole number in [0, {smallest}), got {self.pad_id!r}")
        check_choice("ss_schedule", self.ss_schedule, SS_SCHEDULES)
        lowest = 1.0 if self.ss_schedule == "inverse_sigmoid" else 0.0
        if not math.isfinite(self.ss_k) or self.ss_k <= lowest:
            raise ConfigError(f"model.ss_k must be above {lowest:g} for {self.ss_schedule}, got {self.ss_k}")
        if not 0.0 <= self.ss_min <= 1.0:
            raise ConfigError(f"model.ss_min must be in [0, 1], got {self.ss_min}")

    @property
    def attention_width(self) -> int:
        """Numbers kept per (target, source) pair by the attention while training (0: none)."""
        return 0


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"model.{name} must be one of {', '.join(choices)}, got {value!r}")


def teacher_forcing_ratio(schedule: str, progress: float, k: float = 5.0, floor: float = 0.0) -> float:
    """The probability of feeding the true previous token, Bengio et al. 2015 §2.4.

    ``progress`` x in [0, 1] is the fraction of training done and stands for the paper's step i:
    ``linear`` 1 - x; ``exponential`` exp(-k x) (the paper's k^i); ``inverse_sigmoid``
    k / (k + exp(i / k)) with i / k = 2 x ln k, that is k / (k + k^(2x)): k / (k + 1) at the start,
    1/2 halfway, 1 / (1 + k) at the end. Never below ``floor``; ``none`` is always 1.
    """
    x = min(1.0, max(0.0, progress))
    if schedule == "none":
        return 1.0
    if schedule == "linear":
        ratio = 1.0 - x
    elif schedule == "exponential":
        ratio = math.exp(-k * x)
    elif schedule == "inverse_sigmoid":
        ratio = k / (k + k ** (2.0 * x))
    else:
        raise ConfigError(f"model.ss_schedule must be one of {', '.join(SS_SCHEDULES)}, got {schedule!r}")
    return max(floor, ratio)


# --------------------------------------------------------------------------- encoder


def reverse_padded(tokens: Tensor, pad_id: int) -> Tensor:
    """(B, S) -> (B, S): each row's real tokens in reverse order, its padding left at the end."""
    lengths = (tokens != pad_id).sum(1, keepdim=True)                         # (B, 1)
    pos = torch.arange(tokens.size(1), device=tokens.device)[None]            # (1, S)
    index = torch.where(pos < lengths, lengths - 1 - pos, pos)                # (B, S)
    return tokens.gather(1, index)


def make_rnn(cell: str, input_size: int, hidden: int, layers: int, dropout: float,
             bidirectional: bool = False) -> nn.RNNBase:
    """A batch-first cuDNN-backed ``nn.GRU`` or ``nn.LSTM`` (dropout between stacked layers only)."""
    rnn_cls = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
    return rnn_cls(input_size, hidden, layers, batch_first=True, bidirectional=bidirectional,
                   dropout=dropout if layers > 1 else 0.0)


class RecurrentEncoder(nn.Module):
    """Embedding, dropout and a GRU/LSTM run over each row's real tokens (packed by length)."""

    def __init__(self, cell: str, vocab: int, emb_dim: int, hidden: int, layers: int, dropout: float,
                 pad_id: int, bidirectional: bool = False) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab, emb_dim)
        self.drop = nn.Dropout(dropout)
        self.rnn = make_rnn(cell, emb_dim, hidden, layers, dropout, bidirectional)

    def forward(self, src: Tensor) -> tuple[Tensor, Any, Tensor]:
        """src (B, S) -> outputs (B, S, D*H) (zero at padding), the final state (L*D, B, H) (LSTM: a
        pair) after each row's last real token, and the mask of real tokens (B, S).

        A row of padding only (an empty source) reads its first position, so it stays finite."""
        mask = src != self.pad_id                                             # (B, S)
        mask[:, 0] = True
        lengths = mask.sum(1).cpu()                                           # (B,)
        x = self.drop(self.embed(src))                                        # (B, S, E)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, final = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        return out, final, mask


# --------------------------------------------------------------------------- output side


class MaxoutReadout(nn.Module):
    """A deep-output layer with maxout units (Goodfellow et al. 2013), as Cho et al. 2014 and
    Bahdanau et al. 2015 use before the softmax: pairs of linear units, the larger of each kept."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.linear = nn.Linear(in_dim, 2 * out_dim)

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x)                                                    # (..., 2 * out)
        return y.view(*y.shape[:-1], self.out_dim, 2).amax(-1)                # (..., out)


class OutputLayer(nn.Module):
    """The pre-softmax projection to the target vocabulary. Tied (Press & Wolf 2017, "Using the
    Output Embedding to Improve Language Models") it reuses the target embedding matrix, after a
    bias-free projection when its input is not the embedding's size."""

    def __init__(self, in_dim: int, embedding: nn.Embedding, tie: bool) -> None:
        super().__init__()
        vocab, emb_dim = embedding.weight.shape
        if tie:
            same = in_dim == emb_dim
            self.proj: nn.Module = nn.Identity() if same else nn.Linear(in_dim, emb_dim, bias=False)
            self.out = nn.Linear(emb_dim, vocab)
            self.out.weight = embedding.weight                                # one (V, E) matrix
        else:
            self.proj = nn.Identity()
            self.out = nn.Linear(in_dim, vocab)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.proj(x))                                         # (..., V)


# --------------------------------------------------------------------------- attention


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """scores (B, T, S), mask (B, S) True = real key -> weights (B, T, S), 0 on padding."""
    return scores.masked_fill(~mask[:, None, :], float("-inf")).softmax(-1)


class AdditiveAttention(nn.Module):
    """Bahdanau et al. 2015 §3.1 (Luong's ``concat``): score(s, h_j) = v·tanh(W s + U h_j)."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.W = nn.Linear(query_dim, attn_dim, bias=False)
        self.U = nn.Linear(key_dim, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """U h_j, computed once per source: memory (B, S, D) -> (B, S, A)."""
        return self.U(memory)

    def forward(self, query: Tensor, memory: Tensor, keys: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B, T, Q) -> context (B, T, D) and weights (B, T, S)."""
        e = self.v(torch.tanh(self.W(query)[:, :, None] + keys[:, None])).squeeze(-1)  # (B, T, S)
        weights = masked_softmax(e, mask)
        return weights @ memory, weights


class BilinearAttention(nn.Module):
    """Luong et al. 2015 §3.1: ``dot`` score(h_t, h_s) = h_t·h_s, ``general`` h_t·W_a h_s."""

    def __init__(self, score: str, query_dim: int, key_dim: int) -> None:
        super().__init__()
        if score == "dot" and query_dim != key_dim:
            raise ConfigError(f"dot attention needs equal sizes, got query {query_dim} and key {key_dim}")
        self.W = nn.Linear(key_dim, query_dim, bias=False) if score == "general" else nn.Identity()

    def keys(self, memory: Tensor) -> Tensor:
        return self.W(memory)                                                 # (B, S, Q)

    def forward(self, query: Tensor, memory: Tensor, keys: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        weights = masked_softmax(query @ keys.transpose(1, 2), mask)          # (B, T, S)
        return weights @ memory, weights                                      # (B, T, D)


# --------------------------------------------------------------------------- decoding state


@dataclass(frozen=True, eq=False)  # tensors: no field-wise == or hash
class DecoderState:
    """What a recurrent decoder carries from one token to the next (rows = batch or beams)."""

    hidden: Tensor | tuple[Tensor, Tensor]   # (L, N, H); an LSTM's (h, c)
    memory: Tensor | None = None             # (N, S, D) encoder outputs, for attention
    keys: Tensor | None = None               # (N, S, A) attention keys precomputed from memory
    src_mask: Tensor | None = None           # (N, S) True = real source token
    context: Tensor | None = None            # (N, D) a fixed context vector (Cho et al. 2014)
    feed: Tensor | None = None               # (N, H) the last attentional vector (Luong input feeding)

    def reorder(self, index: Tensor) -> DecoderState:
        """New row i = old row ``index[i]`` (RNN states have their rows on dim 1)."""
        if isinstance(self.hidden, tuple):
            hidden: Tensor | tuple[Tensor, Tensor] = tuple(h.index_select(1, index) for h in self.hidden)
        else:
            hidden = self.hidden.index_select(1, index)
        rows = {
            f.name: None if getattr(self, f.name) is None else getattr(self, f.name).index_select(0, index)
            for f in dataclasses.fields(self) if f.name != "hidden"
        }
        return DecoderState(hidden=hidden, **rows)


class DecoderStep(NamedTuple):
    logits: Tensor               # (N, V)
    state: DecoderState
    weights: Tensor | None       # (N, S) attention over the source, or None


def unroll(model: RecurrentSeq2Seq, state: DecoderState, tgt_in: Tensor,
           teacher_ratio: float = 1.0) -> tuple[Tensor, Tensor | None]:
    """Decode ``tgt_in`` (B, T) one token at a time -> logits (B, T, V), weights (B, T, S) or None.

    With ``teacher_ratio`` < 1 (scheduled sampling) each next input is, per row, the true token with
    that probability and otherwise a token sampled from the model's own previous prediction (padding
    excluded); positions where the target is padding keep it.
    """
    pad = model.config.pad_id
    logits: list[Tensor] = []
    weights: list[Tensor | None] = []
    for t in range(tgt_in.size(1)):
        tokens = tgt_in[:, t]                                                 # (B,)
        if t > 0 and teacher_ratio < 1.0:
            probs = logits[-1].detach().float().softmax(-1)                   # (B, V)
            probs[:, pad] = 0.0                                               # never feed padding
            sampled = torch.multinomial(probs, 1).squeeze(-1)                 # (B,)
            gold = torch.rand(tokens.shape, device=tokens.device) < teacher_ratio
            tokens = torch.where(gold | (tokens == pad), tokens, sampled)
        out = model.decode_step(state, tokens)
        state = out.state
        logits.append(out.logits)
        weights.append(out.weights)
    attn = None if weights[0] is None else torch.stack(weights, 1)           # (B, T, S)
    return torch.stack(logits, 1), attn                                       # (B, T, V)


# --------------------------------------------------------------------------- base module


class RecurrentSeq2Seq(nn.Module):
    """Base of the recurrent encoder-decoders: the contract's ``forward``/``start``/``step``/
    ``reorder`` on top of a model's ``start``, ``decode_step`` and (optionally) ``teacher_forced``."""

    config: RecurrentConfig

    def init_weights(self) -> None:
        for p in self.parameters():
            nn.init.uniform_(p, -INIT_RANGE, INIT_RANGE)

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def num_parameters(self) -> int:
        """Every trainable number, counting a tied matrix once."""
        return sum(p.numel() for p in self.parameters())

    def start(self, src: Tensor) -> DecoderState:
        """Encode src (B, S) and return the decoder's initial state."""
        raise NotImplementedError

    def decode_step(self, state: DecoderState, tokens: Tensor) -> DecoderStep:
        """Feed tokens (N,) (the previous outputs) -> next-token logits, new state, attention."""
        raise NotImplementedError

    def teacher_forced(self, state: DecoderState, tgt_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """All target positions with the true previous tokens -> logits (B, T, V), weights or None."""
        return unroll(self, state, tgt_in)

    def forward(self, src: Tensor, tgt_in: Tensor, teacher_ratio: float = 1.0,
                need_weights: bool = False) -> Tensor | tuple[Tensor, Tensor | None]:
        """src (B, S), tgt_in (B, T) (starting with bos) -> logits (B, T, V); with ``need_weights``
        also the attention (B, T, S) (None without attention). ``teacher_ratio`` < 1: scheduled sampling."""
        check_length(src.size(1), self.config.block_size)
        check_length(tgt_in.size(1), self.config.block_size)
        state = self.start(src)
        if teacher_ratio < 1.0:
            logits, weights = unroll(self, state, tgt_in, teacher_ratio)
        else:
            logits, weights = self.teacher_forced(state, tgt_in)
        return (logits, weights) if need_weights else logits

    def step(self, state: DecoderState, tokens: Tensor) -> tuple[Tensor, DecoderState]:
        out = self.decode_step(state, tokens)
        return out.logits, out.state                                          # (N, V)

    def reorder(self, state: DecoderState, index: Tensor) -> DecoderState:
        return state.reorder(index)


# --------------------------------------------------------------------------- spec hooks


def _unwrap(model: nn.Module) -> RecurrentSeq2Seq:
    return getattr(model, "module", model)  # DistributedDataParallel keeps the model as .module


def coverage_loss(weights: Tensor, mask: Tensor) -> Tensor:
    """See et al. 2017 eq. 12: sum_i min(a_i^t, c_i^t), with c^t the attention of all earlier
    steps; 0 when each step looks somewhere new. weights (B, T, S), mask (B, T) -> mean over tokens."""
    coverage = weights.cumsum(1) - weights                                    # (B, T, S)
    per_step = torch.minimum(weights, coverage).sum(-1)                       # (B, T)
    mask = mask.to(per_step.dtype)
    return (per_step * mask).sum() / mask.sum().clamp(min=1.0)


def recurrent_loss(model: nn.Module, batch: Seq2SeqBatch, ctx: TrainContext,
                   coverage_weight: float = 0.0) -> Tensor:
    """Cross-entropy of the next-token logits; while training, with scheduled sampling as the
    config schedules it and ``coverage_weight`` times :func:`coverage_loss` (validation: plain NLL)."""
    net = _unwrap(model)
    cfg = net.config
    training = net.training
    ratio = teacher_forcing_ratio(cfg.ss_schedule, ctx.progress, cfg.ss_k, cfg.ss_min) if training else 1.0
    coverage = coverage_weight if training else 0.0
    logits, weights = model(batch.src, batch.tgt_in, teacher_ratio=ratio, need_weights=True)
    loss = token_cross_entropy(logits, batch.tgt_out, ctx)
    if coverage > 0 and weights is not None:
        loss = loss + coverage * coverage_loss(weights.float(), batch.tgt_in != ctx.pad_id)
    return loss


class ScheduledSamplingLoss(LossPerBatch):
    """One loss per batch, reporting each step's teacher-forcing ratio as the metric ``tf_ratio``."""

    def train_step(self, step: int) -> StepOutput:
        out = super().train_step(step)
        cfg = _unwrap(self.model).config
        progress = TrainContext(step=step, total_steps=self.cfg.steps, pad_id=cfg.pad_id).progress
        out.metrics["tf_ratio"] = teacher_forcing_ratio(cfg.ss_schedule, progress, cfg.ss_k, cfg.ss_min)
        return out


def recurrent_algorithm(ctx: AlgorithmContext) -> LossPerBatch:
    """How a recurrent model trains: one loss per batch; with scheduled sampling on, the ratio is
    shown next to the loss (command line, metrics.jsonl, the studio's curves)."""
    scheduled = _unwrap(ctx.model).config.ss_schedule != "none"
    return ScheduledSamplingLoss(ctx) if scheduled else LossPerBatch(ctx)


def recurrent_stepper(model: nn.Module, src: Tensor | None) -> Stepper:
    if src is None:
        raise ConfigError("a seq2seq model needs source ids to decode from")
    return RecurrentStepper(model, src)


def recurrent_attention(model: nn.Module, src: Tensor | None, tgt_in: Tensor) -> Tensor:
    """The decoder's attention over the source, shaped like a one-layer one-head cross-attention:
    (L=1, B, H=1, T, S)."""
    if src is None:
        raise ConfigError("a seq2seq model needs source ids to show its attention")
    _, weights = model(src, tgt_in, need_weights=True)
    return weights[None, :, None]                                              # (1, B, 1, T, S)


def rnn_activation_bytes(config: Any, batch_size: int) -> int:
    """A rough training-activation size of a recurrent encoder-decoder: per token and layer, the
    gates and states of both sides (float32, with gradients), embeddings, the logits with their
    gradient, and what the attention keeps per (target, source) pair."""
    T, H, E, L = config.block_size, config.hidden_size, config.emb_dim, config.num_layers
    per_token = 24 * H * L + 6 * E + 2 * config.tgt_vocab_size + 2 * T * max(config.attention_width, 0)
    return batch_size * T * per_token * 4


def recurrent_spec(**fields: Any) -> ModelSpec:
    """A recurrent seq2seq model's spec: what all four share (tasks, training presets, loss, stepper,
    training algorithm, memory estimate) filled in; ``fields`` give the rest (name, config, module,
    description, presets, attention)."""
    shared = dict(kind="seq2seq", tasks=("couplet", "translation", "continuation"),
                  train_presets=RNN_TRAIN_PRESETS, loss=recurrent_loss, stepper=recurrent_stepper,
                  activation_bytes=rnn_activation_bytes, algorithm=recurrent_algorithm)
    return ModelSpec(**{**shared, **fields})
