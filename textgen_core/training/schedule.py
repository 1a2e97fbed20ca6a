"""Learning-rate schedules: linear warm-up followed by cosine decay, inverse square root or constant.

The rate is a pure function of the step, so resuming needs nothing but the step counter.
Cosine decay follows Loshchilov & Hutter (2017, SGDR) as used by nanoGPT; inverse square root is the
schedule of Vaswani et al. (2017), scaled so that it peaks at ``learning_rate`` after warm-up.
"""

from __future__ import annotations

import math

from textgen_core.config import TrainConfig


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based)."""
    warmup = cfg.warmup_steps
    if warmup and step < warmup:
        return cfg.learning_rate * (step + 1) / (warmup + 1)
    if cfg.schedule == "constant":
        return cfg.learning_rate
    if cfg.schedule == "inverse_sqrt":
        return max(cfg.min_lr, cfg.learning_rate * math.sqrt(max(warmup, 1) / (step + 1)))
    span = max(1, cfg.steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))
    return cfg.min_lr + coeff * (cfg.learning_rate - cfg.min_lr)
