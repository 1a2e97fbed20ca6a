"""The RNN encoder-decoder of Cho et al. 2014, "Learning Phrase Representations using RNN
Encoder-Decoder for Statistical Machine Translation", with GRUs (the paper's gated hidden unit:
reset and update gates).

The encoder reads the source; its last hidden state is the summary c, a fixed-size vector that is
everything the decoder knows about the source (no attention). As in the paper (§2.2, appendix A):

* the decoder's first state is h'_0 = tanh(V' c) (here one slice per decoder layer);
* c is an input of EVERY decoder step: it is concatenated to the previous word's embedding that
  enters the GRU, and again to the output layer's input;
* the output layer is a maxout deep output over [h'_t; e(y_{t-1}); c], then the softmax.

Teacher forcing runs the whole target through one cuDNN ``nn.GRU`` call; decoding feeds one token
at a time through the same module.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from textgen_core.models.rnn import (
    DecoderState,
    DecoderStep,
    MaxoutReadout,
    OutputLayer,
    RecurrentConfig,
    RecurrentEncoder,
    RecurrentSeq2Seq,
    make_presets,
    make_rnn,
    recurrent_spec,
)


@dataclass(frozen=True)
class GRUSeq2SeqConfig(RecurrentConfig):
    """Settings of :class:`GRUSeq2Seq` (all shared with the other recurrent models)."""


GRU_PRESETS = make_presets(
    # trains visibly in about a minute on 2 CPU cores
    tiny=dict(emb_dim=64, hidden_size=128, num_layers=1, dropout=0.1, block_size=64),
    # a few million parameters (plus embeddings)
    small=dict(emb_dim=256, hidden_size=512, num_layers=1, dropout=0.2, block_size=128),
    # near the paper's size (1000 hidden units); for a GPU
    base=dict(emb_dim=512, hidden_size=1024, num_layers=1, dropout=0.3, block_size=128),
)


class GRUSeq2Seq(RecurrentSeq2Seq):
    """GRU encoder-decoder with a fixed context vector (Cho et al. 2014)."""

    def __init__(self, config: GRUSeq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        E, H, L, p = config.emb_dim, config.hidden_size, config.num_layers, config.dropout
        self.encoder = RecurrentEncoder("gru", config.src_vocab_size, E, H, L, p, config.pad_id)
        self.tgt_embed = nn.Embedding(config.tgt_vocab_size, E)
        self.init_state = nn.Linear(H, L * H)           # V': c -> h'_0 of every decoder layer
        self.decoder = make_rnn("gru", E + H, H, L, p)  # input [e(y_{t-1}); c]
        self.readout = MaxoutReadout(H + E + H, E)      # [h'_t; e(y_{t-1}); c]
        self.drop = nn.Dropout(p)
        self.output = OutputLayer(E, self.tgt_embed, config.tie_embeddings)
        self.init_weights()

    def start(self, src: Tensor) -> DecoderState:
        _, h_n, _ = self.encoder(src)                          # (L, B, H)
        c = h_n[-1]                                            # (B, H) the top layer's last state
        B, L, H = c.size(0), self.config.num_layers, self.config.hidden_size
        h0 = torch.tanh(self.init_state(c)).view(B, L, H).transpose(0, 1).contiguous()  # (L, B, H)
        return DecoderState(hidden=h0, context=c)

    def _logits(self, h: Tensor, y: Tensor, c: Tensor) -> Tensor:
        """h (B, T, H), y (B, T, E), c (B, T, H) -> (B, T, V)."""
        return self.output(self.drop(self.readout(torch.cat([h, y, c], dim=-1))))

    def teacher_forced(self, state: DecoderState, tgt_in: Tensor) -> tuple[Tensor, None]:
        y = self.drop(self.tgt_embed(tgt_in))                         # (B, T, E)
        c = state.context[:, None].expand(-1, tgt_in.size(1), -1)     # (B, T, H)
        h, _ = self.decoder(torch.cat([y, c], dim=-1), state.hidden)  # (B, T, H)
        return self._logits(h, y, c), None

    def decode_step(self, state: DecoderState, tokens: Tensor) -> DecoderStep:
        y = self.drop(self.tgt_embed(tokens))[:, None]                     # (N, 1, E)
        c = state.context[:, None]                                         # (N, 1, H)
        h, hidden = self.decoder(torch.cat([y, c], dim=-1), state.hidden)  # (N, 1, H)
        return DecoderStep(self._logits(h, y, c)[:, 0], replace(state, hidden=hidden), None)


SPEC = recurrent_spec(
    name="gru-seq2seq",
    config_cls=GRUSeq2SeqConfig,
    model_cls=GRUSeq2Seq,
    description="GRU encoder-decoder with a fixed context vector (Cho et al. 2014)",
    presets=GRU_PRESETS,
)
