"""Global attention of Luong, Pham and Manning 2015, "Effective Approaches to Attention-based Neural
Machine Translation", on a stacked LSTM encoder-decoder.

* The decoder's top state h_t (after reading the previous word) is scored against every encoder
  state h_s (§3.1): ``dot`` h_t·h_s, ``general`` h_t·W_a h_s or ``concat`` v·tanh(W_a[h_t; h_s]);
  padding is masked and the softmax gives a_t, the context c_t = sum_s a_t(s) h_s.
* The attentional vector h~_t = tanh(W_c [c_t; h_t]) feeds the softmax layer.
* Input feeding (§3.3, ``input_feeding``): h~_{t-1} is concatenated to the next input, so the
  decoder knows where it looked before. With it teacher forcing is a step loop; without it the
  whole target runs through one cuDNN ``nn.LSTM`` call and the attention is computed for all
  positions at once.
* ``coverage_weight`` > 0 adds the coverage loss of See et al. 2017 ("Get To The Point", eq. 12;
  after Tu et al. 2016, "Modeling Coverage for Neural Machine Translation") to the training loss: at
  each step sum_s min(a_t(s), sum_{t'<t} a_{t'}(s)), which is large when attention keeps piling
  onto the same source positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from textgen_core.data import Seq2SeqBatch
from textgen_core.errors import ConfigError
from textgen_core.models.contract import TrainContext
from textgen_core.models.layers import require_bool
from textgen_core.models.rnn import (
    AdditiveAttention,
    BilinearAttention,
    DecoderState,
    DecoderStep,
    OutputLayer,
    RecurrentConfig,
    RecurrentEncoder,
    RecurrentSeq2Seq,
    check_choice,
    make_presets,
    make_rnn,
    recurrent_attention,
    recurrent_loss,
    recurrent_spec,
    unroll,
)
from textgen_core.models.settings import setting

SCORES = ("dot", "general", "concat")


@dataclass(frozen=True)
class LuongConfig(RecurrentConfig):
    """Settings of :class:`LuongSeq2Seq`."""

    score: str = setting("general", "Attention score", "how the decoder state is compared with the "
                         "encoder states: dot h·h_s, general h·W h_s, concat v·tanh(W[h; h_s])",
                         choices=SCORES)
    input_feeding: bool = setting(True, "Input feeding", "the last attentional vector is part of the "
                                  "next input, so the decoder knows where it looked (§3.3)")
    coverage_weight: float = setting(0.0, "Coverage penalty", "weight of a loss that grows when "
                                     "attention keeps returning to the same source positions (0 = off)",
                                     range=(0.0, 10.0, 0.1))

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("score", self.score, SCORES)
        require_bool(self, ("input_feeding",))
        if not (math.isfinite(self.coverage_weight) and self.coverage_weight >= 0):
            raise ConfigError(f"model.coverage_weight must be a number >= 0, got {self.coverage_weight}")

    @property
    def attention_width(self) -> int:
        return self.hidden_size if self.score == "concat" else 1


LUONG_PRESETS = make_presets(
    # trains visibly in about a minute on 2 CPU cores
    tiny=dict(emb_dim=64, hidden_size=128, num_layers=1, dropout=0.1, block_size=64),
    # a few million parameters (plus embeddings)
    small=dict(emb_dim=256, hidden_size=512, num_layers=2, dropout=0.2, block_size=128),
    # the paper's 4 layers of 1000 cells; for a GPU
    base=dict(emb_dim=1000, hidden_size=1000, num_layers=4, dropout=0.2, block_size=128),
)


class LuongSeq2Seq(RecurrentSeq2Seq):
    """Stacked LSTM encoder-decoder with Luong global attention and input feeding."""

    def __init__(self, config: LuongConfig) -> None:
        super().__init__()
        self.config = config
        E, H, L, p = config.emb_dim, config.hidden_size, config.num_layers, config.dropout
        self.encoder = RecurrentEncoder("lstm", config.src_vocab_size, E, H, L, p, config.pad_id)
        self.tgt_embed = nn.Embedding(config.tgt_vocab_size, E)
        self.attention: nn.Module = (
            AdditiveAttention(H, H, H) if config.score == "concat" else BilinearAttention(config.score, H, H)
        )
        self.decoder = make_rnn("lstm", E + (H if config.input_feeding else 0), H, L, p)
        self.combine = nn.Linear(2 * H, H, bias=False)  # W_c
        self.drop = nn.Dropout(p)
        self.output = OutputLayer(H, self.tgt_embed, config.tie_embeddings)  # W_s
        self.init_weights()

    def start(self, src: Tensor) -> DecoderState:
        memory, hidden, mask = self.encoder(src)                            # (B, S, H), (h, c), (B, S)
        feed = memory.new_zeros(src.size(0), self.config.hidden_size) if self.config.input_feeding else None
        return DecoderState(hidden=hidden, memory=memory, keys=self.attention.keys(memory), src_mask=mask,
                            feed=feed)

    def _attend(self, h: Tensor, state: DecoderState) -> tuple[Tensor, Tensor, Tensor]:
        """Top decoder states h (B, T, H) -> logits (B, T, V), h~ (B, T, H), weights (B, T, S)."""
        context, weights = self.attention(h, state.memory, state.keys, state.src_mask)  # (B, T, H)
        h_tilde = torch.tanh(self.combine(torch.cat([context, h], dim=-1)))             # (B, T, H)
        return self.output(self.drop(h_tilde)), h_tilde, weights

    def teacher_forced(self, state: DecoderState, tgt_in: Tensor) -> tuple[Tensor, Tensor]:
        if self.config.input_feeding:
            return unroll(self, state, tgt_in)
        out, _ = self.decoder(self.drop(self.tgt_embed(tgt_in)), state.hidden)  # (B, T, H)
        logits, _, weights = self._attend(out, state)
        return logits, weights

    def decode_step(self, state: DecoderState, tokens: Tensor) -> DecoderStep:
        x = self.drop(self.tgt_embed(tokens))  # (N, E)
        if self.config.input_feeding:
            x = torch.cat([x, state.feed], dim=-1)            # (N, E + H)
        out, hidden = self.decoder(x[:, None], state.hidden)  # (N, 1, H)
        logits, h_tilde, weights = self._attend(out, state)
        feed = h_tilde[:, 0] if self.config.input_feeding else None
        return DecoderStep(logits[:, 0], replace(state, hidden=hidden, feed=feed), weights[:, 0])


def luong_loss(model: nn.Module, batch: Seq2SeqBatch, ctx: TrainContext) -> Tensor:
    """The recurrent loss plus the configured coverage penalty."""
    config = getattr(model, "module", model).config
    return recurrent_loss(model, batch, ctx, coverage_weight=config.coverage_weight)


SPEC = recurrent_spec(
    name="luong-attention",
    config_cls=LuongConfig,
    model_cls=LuongSeq2Seq,
    description="Stacked LSTM with Luong dot/general/concat attention and input feeding (Luong et al. 2015)",
    presets=LUONG_PRESETS,
    loss=luong_loss,
    attention=recurrent_attention,
)
