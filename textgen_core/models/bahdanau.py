"""Attention-based encoder-decoder of Bahdanau, Cho and Bengio 2015, "Neural Machine Translation by
Jointly Learning to Align and Translate" (RNNsearch).

* Encoder (§3.2): a bidirectional GRU; the annotation of source word j is h_j = [→h_j; ←h_j].
* Alignment (§3.1): before writing word i the decoder scores every annotation with the additive
  model e_ij = v·tanh(W s_{i-1} + U h_j) (U h_j is computed once per source), masks padding,
  and takes the softmax a_ij; the context is c_i = sum_j a_ij h_j.
* Decoder: s_i = GRU([e(y_{i-1}); c_i], s_{i-1}), started from s_0 = tanh(W_s ←h_1) (the backward
  state at the first source word, appendix A.2.2).
* Output: the context is concatenated with the decoder state (and the previous word) before the
  output layer, a maxout deep output t_i over [s_i; e(y_{i-1}); c_i], then the softmax.

The context of step i depends on s_{i-1}, so teacher forcing is a step loop (one cuDNN GRU call per
target position).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from textgen_core.models.layers import require_positive
from textgen_core.models.rnn import (
    AdditiveAttention,
    DecoderState,
    DecoderStep,
    MaxoutReadout,
    OutputLayer,
    RecurrentConfig,
    RecurrentEncoder,
    RecurrentSeq2Seq,
    make_presets,
    make_rnn,
    recurrent_attention,
    recurrent_spec,
)
from textgen_core.models.settings import setting


@dataclass(frozen=True)
class BahdanauConfig(RecurrentConfig):
    """Settings of :class:`BahdanauSeq2Seq`."""

    attention_size: int | None = setting(None, "Attention size", "width of the alignment model "
                                         "v·tanh(W s + U h); auto = the hidden size", range=(8, 8192, 32))

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, ("attention_size",), optional=True)

    @property
    def attention_width(self) -> int:
        return self.hidden_size if self.attention_size is None else self.attention_size


BAHDANAU_PRESETS = make_presets(
    # trains visibly in about a minute on 2 CPU cores
    tiny=dict(emb_dim=64, hidden_size=128, num_layers=1, dropout=0.1, block_size=64),
    # a few million parameters (plus embeddings)
    small=dict(emb_dim=256, hidden_size=512, num_layers=1, dropout=0.2, block_size=128),
    # the paper's RNNsearch sizes (620-dim embeddings, 1000 hidden units); for a GPU
    base=dict(emb_dim=620, hidden_size=1000, num_layers=1, dropout=0.3, block_size=128),
)


class BahdanauSeq2Seq(RecurrentSeq2Seq):
    """Bidirectional GRU encoder, additive attention, GRU decoder (Bahdanau et al. 2015)."""

    def __init__(self, config: BahdanauConfig) -> None:
        super().__init__()
        self.config = config
        E, H, L, p = config.emb_dim, config.hidden_size, config.num_layers, config.dropout
        self.encoder = RecurrentEncoder("gru", config.src_vocab_size, E, H, L, p, config.pad_id,
                                        bidirectional=True)
        self.tgt_embed = nn.Embedding(config.tgt_vocab_size, E)
        self.init_state = nn.Linear(H, H)  # W_s
        self.attention = AdditiveAttention(H, 2 * H, config.attention_width)
        self.decoder = make_rnn("gru", E + 2 * H, H, L, p)  # input [e(y_{i-1}); c_i]
        self.readout = MaxoutReadout(H + E + 2 * H, E)      # [s_i; e(y_{i-1}); c_i]
        self.drop = nn.Dropout(p)
        self.output = OutputLayer(E, self.tgt_embed, config.tie_embeddings)
        self.init_weights()

    def start(self, src: Tensor) -> DecoderState:
        memory, h_n, mask = self.encoder(src)                        # (B, S, 2H), (2L, B, H), (B, S)
        L, H = self.config.num_layers, self.config.hidden_size
        backward = h_n.view(L, 2, -1, H)[:, 1]                       # (L, B, H) ←h_1 per layer
        hidden = torch.tanh(self.init_state(backward)).contiguous()  # s_0 (L, B, H)
        return DecoderState(hidden=hidden, memory=memory, keys=self.attention.keys(memory), src_mask=mask)

    def decode_step(self, state: DecoderState, tokens: Tensor) -> DecoderStep:
        y = self.drop(self.tgt_embed(tokens))[:, None]                                      # (N, 1, E)
        query = state.hidden[-1][:, None]  # (N, 1, H) s_{i-1}, top layer
        context, weights = self.attention(query, state.memory, state.keys, state.src_mask)  # (N, 1, 2H)
        s, hidden = self.decoder(torch.cat([y, context], dim=-1), state.hidden)             # (N, 1, H)
        t = self.readout(torch.cat([s, y, context], dim=-1))                                # (N, 1, E)
        logits = self.output(self.drop(t[:, 0]))                                            # (N, V)
        return DecoderStep(logits, replace(state, hidden=hidden), weights[:, 0])


SPEC = recurrent_spec(
    name="bahdanau-attention",
    config_cls=BahdanauConfig,
    model_cls=BahdanauSeq2Seq,
    description="Bidirectional GRU with additive attention (Bahdanau et al. 2015)",
    presets=BAHDANAU_PRESETS,
    attention=recurrent_attention,
)
