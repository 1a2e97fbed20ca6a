"""SeqGAN: a GRU language model trained as the policy of a sequence GAN.

Yu et al. 2017, "SeqGAN: Sequence Generative Adversarial Nets with Policy Gradient" (AAAI). The
generator G is an autoregressive recurrent language model (the paper's LSTM; a GRU here, Cho et al.
2014) that writes continuations; the discriminator D (:mod:`.seqgan_discriminator`) is a CNN with a
highway layer that tells real passages from G's. Training (:mod:`textgen_core.training.seqgan`)
runs three phases: maximum-likelihood pre-training of G, pre-training of D on real versus generated
passages, then adversarial rounds in which G is updated by policy gradient (REINFORCE) with
per-token rewards from Monte-Carlo rollouts scored by D, each followed by D updates.

Only G writes: ``forward(idx)`` gives next-token logits like any language model of the zoo, and
decoding goes step by step through G's recurrent state (``start``/``step``/``reorder`` for
:class:`~textgen_core.decoding.steppers.RecurrentStepper`). It writes continuations and couplets.
For couplets G is conditional the way a prefix LM is (as ``gpt`` writes them): it reads the first
line and a separator, then writes the second line, and D judges whole rows ``first line <sep>
second line``, so that a fluent second line which does not answer its first line still looks fake.
(The recurrence that reads the first line is the one that writes the second: an encoder-decoder
whose encoder and decoder share their weights.)

The phase lengths and the adversarial settings are model settings, so a project keeps them with
the model; the adversarial phase lasts whatever ``train.steps`` leaves after the two pre-trainings.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from textgen_core.decoding.steppers import PromptedRecurrentStepper, RecurrentStepper, Stepper
from textgen_core.errors import ConfigError
from textgen_core.models.contract import ModelSpec
from textgen_core.models.layers import require_dropout, require_positive
from textgen_core.models.seqgan_discriminator import CNNDiscriminator, parse_widths
from textgen_core.models.settings import setting


@dataclass(frozen=True)
class SeqGANConfig:
    """Settings of :class:`SeqGAN`. ``vocab_size`` comes from the tokenizer."""

    vocab_size: int
    emb_dim: int = setting(64, "Embedding size", "generator's token vector size", range=(8, 4096, 16))
    hidden_size: int = setting(128, "GRU size", "generator's recurrent state size", range=(8, 8192, 32))
    n_layer: int = setting(1, "GRU layers", "stacked recurrent layers of the generator", range=(1, 8, 1))
    dropout: float = setting(0.0, "Dropout", "generator's dropout between layers and before the output "
                             "(0 = off)", range=(0.0, 0.9, 0.05))
    block_size: int = setting(32, "Sequence length", "length of the passages the generator trains on, "
                              "writes in training and the discriminator judges", range=(4, 1024, 8))
    prefix_tokens: int = setting(8, "Real tokens given", "stories: each generated training passage "
                                 "continues this many tokens of a real one (couplets: the first line)",
                                 range=(1, 1023, 1))
    d_emb_dim: int = setting(64, "Discriminator embedding", "discriminator's token vector size",
                             range=(8, 4096, 16))
    d_filter_sizes: str = setting("2,3,4,5", "Filter widths", "widths (in tokens) of the discriminator's "
                                  "convolutions, comma-separated")
    d_num_filters: int = setting(64, "Filters per width", "convolution filters of each width",
                                 range=(1, 4096, 16))
    d_dropout: float = setting(0.25, "Discriminator dropout", "dropout before the discriminator's "
                               "output (the paper keeps 75%)", range=(0.0, 0.9, 0.05))
    mle_steps: int = setting(150, "MLE pre-training steps", "steps of maximum-likelihood training of "
                             "the generator first", range=(0, 1_000_000, 50))
    d_pretrain_steps: int = setting(50, "Discriminator pre-training steps", "steps training the "
                                    "discriminator on real vs generated passages before the "
                                    "adversarial phase", range=(0, 1_000_000, 10))
    rollouts: int = setting(4, "Monte-Carlo rollouts", "completions sampled per generated token to "
                            "estimate its reward (the paper uses 16)", range=(1, 64, 1))
    d_steps: int = setting(1, "Discriminator steps per round", "discriminator updates after each "
                           "policy-gradient update of the generator", range=(0, 64, 1))
    pg_learning_rate: float = setting(1e-3, "Policy-gradient learning rate", "generator's learning "
                                      "rate in the adversarial phase", range=(1e-6, 1.0, 1e-4))
    d_learning_rate: float = setting(1e-3, "Discriminator learning rate", "discriminator's learning "
                                     "rate", range=(1e-6, 1.0, 1e-4))

    def __post_init__(self) -> None:
        require_positive(self, ("vocab_size", "emb_dim", "hidden_size", "n_layer", "block_size",
                                "prefix_tokens", "d_emb_dim", "d_num_filters", "rollouts"))
        require_dropout(self.dropout)
        require_dropout(self.d_dropout)
        for name in ("mle_steps", "d_pretrain_steps", "d_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name} must not be negative, got {getattr(self, name)}")
        for name in ("pg_learning_rate", "d_learning_rate"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"model.{name} must be a positive number, got {getattr(self, name)}")
        if self.prefix_tokens >= self.block_size:
            raise ConfigError(f"model.prefix_tokens ({self.prefix_tokens}) must be less than "
                              f"model.block_size ({self.block_size}): the generator must write something")
        try:
            parse_widths(self.d_filter_sizes)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


SEQGAN_PRESETS = MappingProxyType(
    {
        # the three phases in about two minutes on 2 CPU cores
        "tiny": MappingProxyType({"emb_dim": 32, "hidden_size": 64, "block_size": 24, "prefix_tokens": 8,
                                  "d_emb_dim": 32, "d_num_filters": 32, "rollouts": 2, "mle_steps": 150,
                                  "d_pretrain_steps": 50, "d_learning_rate": 5e-3}),
        "small": MappingProxyType({"emb_dim": 64, "hidden_size": 256, "block_size": 32, "prefix_tokens": 8,
                                   "d_num_filters": 100, "rollouts": 8, "mle_steps": 2000,
                                   "d_pretrain_steps": 500}),
        # the paper's sizes (LSTM 32/32, filters 100-200, 16 rollouts) grown for a novel; for a GPU
        "base": MappingProxyType({"emb_dim": 128, "hidden_size": 512, "n_layer": 2, "dropout": 0.1,
                                  "block_size": 48, "prefix_tokens": 16, "d_emb_dim": 128,
                                  "d_num_filters": 200, "rollouts": 16, "mle_steps": 12000,
                                  "d_pretrain_steps": 3000}),
    }
)
# A recurrent generator takes a higher learning rate than a Transformer; the runs fit their phases.
SEQGAN_TRAIN_PRESETS = MappingProxyType(
    {
        "tiny": MappingProxyType({"steps": 300, "learning_rate": 3e-3, "min_lr": 3e-4, "warmup_steps": 10,
                                  "batch_size": 32, "eval_every": 50}),
        "small": MappingProxyType({"steps": 4000, "learning_rate": 2e-3, "min_lr": 2e-4, "warmup_steps": 50}),
        "base": MappingProxyType({"steps": 20000, "learning_rate": 1e-3, "min_lr": 1e-4, "warmup_steps": 200,
                                  "schedule": "cosine"}),
    }
)


class GRUGenerator(nn.Module):
    """The policy G: embedding, GRU, linear output over the vocabulary."""

    def __init__(self, config: SeqGANConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(config.vocab_size, config.emb_dim)
        inner = config.dropout if config.n_layer > 1 else 0.0
        self.rnn = nn.GRU(config.emb_dim, config.hidden_size, config.n_layer, batch_first=True,
                          dropout=inner)
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.hidden_size, config.vocab_size)

    def run(self, idx: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """idx (B, T) -> logits (B, T, V) for the next token at each position, and h (L, B, H)."""
        y, h = self.rnn(self.embed(idx), h)                          # (B, T, H)
        return self.out(self.drop(y)), h

    def step(self, tokens: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        """tokens (N,) -> next-token logits (N, V) and the new state (L, N, H)."""
        logits, h = self.run(tokens[:, None], h)
        return logits[:, 0], h


class SeqGAN(nn.Module):
    """Generator and discriminator of one SeqGAN, built as ``SeqGAN(config)``."""

    def __init__(self, config: SeqGANConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = GRUGenerator(config)
        self.discriminator = CNNDiscriminator(
            config.vocab_size, config.d_emb_dim, parse_widths(config.d_filter_sizes),
            config.d_num_filters, config.d_dropout,
        )

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def num_parameters(self) -> int:
        """Every trainable number, the discriminator's included."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: Tensor) -> Tensor:
        """idx (B, T) -> the generator's next-token logits (B, T, V)."""
        return self.generator.run(idx)[0]

    # the recurrent decoding contract (RecurrentStepper)
    def start(self, src: Tensor) -> Tensor:
        """The state after reading ``src`` (N, P) (P may be 0: a story starts empty): (L, N, H)."""
        cfg = self.config
        if src.size(1) == 0:
            return torch.zeros(cfg.n_layer, src.size(0), cfg.hidden_size, device=src.device)
        return self.generator.run(src)[1]

    def step(self, state: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """One token per row (N,) -> logits (N, V), new state (L, N, H)."""
        return self.generator.step(tokens, state)

    def reorder(self, state: Tensor, index: Tensor) -> Tensor:
        return state.index_select(1, index)


def seqgan_stepper(model: nn.Module, src: Tensor | None) -> Stepper:
    """Decoding through the generator's recurrent state: one GRU step per token, never re-reading
    the prefix. A story (``src`` None) starts from the empty state; a pair from the prompt rows
    ``source <sep>`` (B, P)."""
    if src is None:
        return RecurrentStepper(model, torch.zeros((1, 0), dtype=torch.long))
    return PromptedRecurrentStepper(model, src)


def seqgan_activation_bytes(config: Any, batch_size: int) -> int:
    """Training memory beyond the weights: the rollouts dominate, ``rollouts x written tokens``
    copies of the batch stepping through the GRU and the discriminator at once."""
    written = config.block_size - config.prefix_tokens
    rows = batch_size * max(1, config.rollouts * written)
    per_row = config.hidden_size * config.n_layer * 4 + config.vocab_size * 4 * 2
    disc = config.block_size * (config.d_emb_dim + config.d_num_filters * 4) * 4
    return rows * (per_row + disc) + batch_size * config.block_size * config.vocab_size * 8


def seqgan_algorithm(ctx: Any) -> Any:
    """The three-phase training of :mod:`textgen_core.training.seqgan` (imported when training)."""
    from textgen_core.training.seqgan import SeqGANTraining

    return SeqGANTraining(ctx)


SPEC = ModelSpec(
    name="seqgan",
    kind="lm",
    config_cls=SeqGANConfig,
    model_cls=SeqGAN,
    tasks=("couplet", "continuation"),
    description="SeqGAN: GRU generator trained by policy gradient against a CNN discriminator (Yu 2017)",
    presets=SEQGAN_PRESETS,
    train_presets=SEQGAN_TRAIN_PRESETS,
    stepper=seqgan_stepper,
    activation_bytes=seqgan_activation_bytes,
    algorithm=seqgan_algorithm,
    # a couplet row is first line <sep> second line: 64 holds every couplet of up to 31 characters
    # (the story block of 24-48 would cut one in nine modern couplets); a GRU pays only for the
    # rows' real length, so the longer block costs nothing on short couplets
    pair_settings=MappingProxyType({"block_size": 64}),
)
