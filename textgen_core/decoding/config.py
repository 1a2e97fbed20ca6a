"""Decoding settings: :class:`DecodeConfig`, checked when it is made.

Plain Python (no torch), so the studio's forms and the project file can build and check the settings
before torch is loaded; :mod:`textgen_core.decoding.search` and
:mod:`textgen_core.decoding.processors` act on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from textgen_core.errors import ConfigError

__all__ = ["STRATEGIES", "TONE_MODES", "DecodeConfig", "check_float", "check_int", "check_top_p"]

STRATEGIES = ("greedy", "sample", "beam")
TONE_MODES = ("off", "soft", "hard")


def check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")


def check_float(name: str, value: object, low: float, *, strict: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise ConfigError(f"{name} must be {'>' if strict else '>='} {low}, got {value}")


def check_top_p(top_p: object) -> float:
    """``top_p`` as a float in (0, 1]; else :class:`ConfigError` naming it."""
    if isinstance(top_p, bool) or not isinstance(top_p, int | float):
        raise ConfigError(f"top_p must be a number, got {top_p!r}")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")
    return float(top_p)


@dataclass(frozen=True)
class DecodeConfig:
    """How to decode. ``no_repeat_ngram`` (0 = off) bans repeating any n-gram of that size."""

    strategy: str = "sample"  # "greedy" | "sample" | "beam"
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    repetition_penalty: float = 1.0
    beam_size: int = 4
    length_penalty: float = 1.0  # GNMT alpha; 0 = none
    coverage_penalty: float = 0.0  # GNMT beta for models with cross-attention (beam); 0 = none
    n_best: int = 1  # beam: <= beam_size; sample: independent samples; greedy: 1
    max_tokens: int = 64
    min_tokens: int = 0
    seed: int | None = None
    no_repeat_ngram: int = 0
    min_p: float = 0.0  # sampling: drop tokens below min_p x the top token's probability; 0 = off
    alternatives: int = 5  # top tokens (with probabilities) reported at each output position; 0 = none
    # Couplet rules (the second line of a couplet with a character tokenizer), each switchable:
    couplet_length: bool = True  # exactly the first line's length
    couplet_punctuation: bool = True  # the first line's punctuation at the same positions, none elsewhere
    couplet_repeats: bool = True  # the first line's repeated characters mirrored
    couplet_no_reuse: bool = True  # no character of the first line (or an earlier one) used again
    tone: str = "soft"  # 平仄 contrast at the last character: "off", "soft" (a score) or "hard" (a rule)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            choices = ", ".join(STRATEGIES)
            raise ConfigError(f"strategy must be one of {choices}, got {self.strategy!r}")
        check_float("temperature", self.temperature, 0.0, strict=True)
        check_int("top_k", self.top_k, 0)
        check_top_p(self.top_p)
        check_float("repetition_penalty", self.repetition_penalty, 0.0, strict=True)
        check_int("beam_size", self.beam_size, 1)
        check_float("length_penalty", self.length_penalty, 0.0, strict=False)
        check_float("coverage_penalty", self.coverage_penalty, 0.0, strict=False)
        check_int("n_best", self.n_best, 1)
        check_int("max_tokens", self.max_tokens, 1)
        check_int("min_tokens", self.min_tokens, 0)
        check_int("no_repeat_ngram", self.no_repeat_ngram, 0)
        check_float("min_p", self.min_p, 0.0, strict=False)
        if self.min_p > 1.0:
            raise ConfigError(f"min_p must be in [0, 1], got {self.min_p}")
        check_int("alternatives", self.alternatives, 0)
        for name in ("couplet_length", "couplet_punctuation", "couplet_repeats", "couplet_no_reuse"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.tone not in TONE_MODES:
            raise ConfigError(f"tone must be one of {', '.join(TONE_MODES)}, got {self.tone!r}")
        if self.min_tokens > self.max_tokens:
            raise ConfigError(
                f"min_tokens ({self.min_tokens}) must not exceed max_tokens ({self.max_tokens})"
            )
        if self.strategy == "beam" and self.n_best > self.beam_size:
            raise ConfigError(
                f"n_best ({self.n_best}) must not exceed beam_size ({self.beam_size})"
            )
        if self.strategy == "greedy" and self.n_best != 1:
            raise ConfigError(f"n_best must be 1 for greedy decoding, got {self.n_best}")
        seed = self.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(f"seed must be an integer or None, got {self.seed!r}")

    def greedy(self) -> DecodeConfig:
        """These settings for scoring: greedy decoding (one output, reproducible) with every rule
        and processor that still applies, and no alternatives recorded."""
        return replace(self, strategy="greedy", n_best=1, alternatives=0)
