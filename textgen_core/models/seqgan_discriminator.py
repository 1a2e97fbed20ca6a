"""SeqGAN's discriminator: a CNN text classifier with a highway layer, real text vs generated text.

Yu et al. 2017, "SeqGAN: Sequence Generative Adversarial Nets with Policy Gradient", §4 and
Appendix: the discriminator is the CNN of Kim 2014 ("Convolutional Neural Networks for Sentence
Classification") and Zhang & LeCun 2015: token embeddings, convolutions of several window widths
with many filters each, ReLU, max-over-time pooling, a highway layer (Srivastava et al. 2015,
"Highway Networks") over the pooled features, dropout, and a linear output giving the probability
that the sequence is real. Here the output is one logit (sigmoid = P(real)), which is the paper's
two-way softmax with one degree of freedom less.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def parse_widths(text: str) -> tuple[int, ...]:
    """``"2,3,4,5"`` -> (2, 3, 4, 5); ValueError naming the setting for anything else."""
    try:
        widths = tuple(int(part) for part in str(text).replace(" ", "").split(",") if part)
    except ValueError:
        widths = ()
    if not widths or any(w < 1 for w in widths):
        raise ValueError(f"model.d_filter_sizes must be positive whole numbers like '2,3,4,5', got {text!r}")
    return widths


class Highway(nn.Module):
    """One highway layer: ``t * relu(W_H y) + (1 - t) * y`` with the gate ``t = sigmoid(W_T y)``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)
        nn.init.constant_(self.gate.bias, -1.0)   # start close to carrying y through (Srivastava et al.)

    def forward(self, y: Tensor) -> Tensor:
        """y (B, F) -> (B, F)."""
        t = torch.sigmoid(self.gate(y))
        return t * F.relu(self.transform(y)) + (1.0 - t) * y


class CNNDiscriminator(nn.Module):
    """P(real) of whole token sequences: ``forward(tokens (B, T)) -> logits (B,)``.

    Sequences shorter than the widest filter are padded on the right with ``pad_id`` (whose
    embedding is learned like any other token's).
    """

    def __init__(self, vocab_size: int, emb_dim: int, widths: tuple[int, ...], filters: int,
                 dropout: float, pad_id: int = 0) -> None:
        super().__init__()
        self.widths, self.pad_id = widths, pad_id
        self.embed = nn.Embedding(vocab_size, emb_dim)
        self.convs = nn.ModuleList(nn.Conv1d(emb_dim, filters, w) for w in widths)
        features = filters * len(widths)
        self.highway = Highway(features)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(features, 1)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, T) long -> logits (B,) (sigmoid gives P(real))."""
        short = max(self.widths) - tokens.size(1)
        if short > 0:
            tokens = F.pad(tokens, (0, short), value=self.pad_id)
        x = self.embed(tokens).transpose(1, 2)                       # (B, E, T)
        pooled = [F.relu(conv(x)).amax(dim=2) for conv in self.convs]  # each (B, filters)
        y = self.highway(torch.cat(pooled, dim=1))                   # (B, F)
        return self.out(self.dropout(y)).squeeze(1)                 # (B,)
