"""The deep LSTM encoder-decoder of Sutskever et al. 2014, "Sequence to Sequence Learning with
Neural Networks".

A multi-layer LSTM reads the source into its final states (h, c) of every layer; a second
multi-layer LSTM, started from those states, writes the target, and a softmax over its top layer
gives each next token. No attention: the states are the whole summary of the source.

Their trick (§3.3): the source is read in reverse order (``reverse_source``, on by default), so the
first source words end up close to the first target words they predict. Only the real tokens are
reversed (the source's eos included); padding stays at the end of each row.

Teacher forcing runs the whole target through one cuDNN ``nn.LSTM`` call; decoding feeds one token
at a time through the same module.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import Tensor, nn

from textgen_core.models.layers import require_bool
from textgen_core.models.rnn import (
    DecoderState,
    DecoderStep,
    OutputLayer,
    RecurrentConfig,
    RecurrentEncoder,
    RecurrentSeq2Seq,
    make_presets,
    make_rnn,
    recurrent_spec,
    reverse_padded,
)
from textgen_core.models.settings import setting


@dataclass(frozen=True)
class LSTMSeq2SeqConfig(RecurrentConfig):
    """Settings of :class:`LSTMSeq2Seq`."""

    num_layers: int = setting(4, "Layers", "stacked LSTM layers, in the encoder and in the decoder "
                              "(the paper's deep LSTM has 4)", range=(1, 16, 1))
    reverse_source: bool = setting(True, "Reverse source", "read the source backwards, so its first "
                                   "words are next to the first target words (§3.3)")

    def __post_init__(self) -> None:
        super().__post_init__()
        require_bool(self, ("reverse_source",))


LSTM_PRESETS = make_presets(
    # trains visibly in about a minute on 2 CPU cores
    tiny=dict(emb_dim=64, hidden_size=128, num_layers=2, dropout=0.1, block_size=64),
    # a few million parameters (plus embeddings)
    small=dict(emb_dim=256, hidden_size=512, num_layers=2, dropout=0.2, block_size=128),
    # the paper's depth (4 layers); for a GPU
    base=dict(emb_dim=512, hidden_size=1024, num_layers=4, dropout=0.3, block_size=128),
)


class LSTMSeq2Seq(RecurrentSeq2Seq):
    """Deep LSTM encoder-decoder with reversed source (Sutskever et al. 2014)."""

    def __init__(self, config: LSTMSeq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        E, H, L, p = config.emb_dim, config.hidden_size, config.num_layers, config.dropout
        self.encoder = RecurrentEncoder("lstm", config.src_vocab_size, E, H, L, p, config.pad_id)
        self.tgt_embed = nn.Embedding(config.tgt_vocab_size, E)
        self.decoder = make_rnn("lstm", E, H, L, p)
        self.drop = nn.Dropout(p)
        self.output = OutputLayer(H, self.tgt_embed, config.tie_embeddings)
        self.init_weights()

    def start(self, src: Tensor) -> DecoderState:
        if self.config.reverse_source:
            src = reverse_padded(src, self.config.pad_id)  # (B, S)
        _, (h, c), _ = self.encoder(src)           # (L, B, H) each
        return DecoderState(hidden=(h, c))

    def teacher_forced(self, state: DecoderState, tgt_in: Tensor) -> tuple[Tensor, None]:
        out, _ = self.decoder(self.drop(self.tgt_embed(tgt_in)), state.hidden)  # (B, T, H)
        return self.output(self.drop(out)), None                                # (B, T, V)

    def decode_step(self, state: DecoderState, tokens: Tensor) -> DecoderStep:
        y = self.drop(self.tgt_embed(tokens))[:, None]  # (N, 1, E)
        out, hidden = self.decoder(y, state.hidden)     # (N, 1, H)
        return DecoderStep(self.output(self.drop(out[:, 0])), replace(state, hidden=hidden), None)


SPEC = recurrent_spec(
    name="lstm-seq2seq",
    config_cls=LSTMSeq2SeqConfig,
    model_cls=LSTMSeq2Seq,
    description="Deep LSTM encoder-decoder, source read in reverse (Sutskever et al. 2014)",
    presets=LSTM_PRESETS,
)
