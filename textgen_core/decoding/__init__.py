"""Decoding: search algorithms (greedy, sampling, beam) over a model-agnostic stepper interface.

Typical use::

    stepper = make_stepper(model, src)          # src (1, S) for seq2seq, None for an lm
    hyps = generate(stepper, [bos_id], eos_id=eos_id, config=DecodeConfig(strategy="beam"),
                    banned_ids=[pad_id, bos_id, unk_id])
"""

from __future__ import annotations

from textgen_core.decoding.processors import (
    LogitsProcessor,
    NoRepeatNGramProcessor,
    RepetitionPenaltyProcessor,
    SuppressTokensProcessor,
    TemperatureProcessor,
    TopKProcessor,
    TopPProcessor,
    apply_processors,
    build_processors,
)
from textgen_core.decoding.search import (
    STRATEGIES,
    DecodeConfig,
    Hypothesis,
    generate,
    length_penalty,
)
from textgen_core.decoding.steppers import LMStepper, Seq2SeqStepper, Stepper, make_stepper

__all__ = [
    "STRATEGIES",
    "DecodeConfig",
    "Hypothesis",
    "LMStepper",
    "LogitsProcessor",
    "NoRepeatNGramProcessor",
    "RepetitionPenaltyProcessor",
    "Seq2SeqStepper",
    "Stepper",
    "SuppressTokensProcessor",
    "TemperatureProcessor",
    "TopKProcessor",
    "TopPProcessor",
    "apply_processors",
    "build_processors",
    "generate",
    "length_penalty",
    "make_stepper",
]
