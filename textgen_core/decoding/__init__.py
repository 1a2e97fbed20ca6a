"""Decoding: search algorithms (greedy, sampling, beam) over a model-agnostic stepper interface.

Typical use::

    stepper = models.make_stepper(model, src)   # the model's spec picks; src (1, S) or None
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
from textgen_core.decoding.steppers import (
    LMStepper,
    RecurrentStepper,
    Seq2SeqStepper,
    Stepper,
    TaggerStepper,
)

__all__ = [
    "STRATEGIES",
    "DecodeConfig",
    "Hypothesis",
    "LMStepper",
    "LogitsProcessor",
    "NoRepeatNGramProcessor",
    "RecurrentStepper",
    "RepetitionPenaltyProcessor",
    "Seq2SeqStepper",
    "Stepper",
    "SuppressTokensProcessor",
    "TaggerStepper",
    "TemperatureProcessor",
    "TopKProcessor",
    "TopPProcessor",
    "apply_processors",
    "build_processors",
    "generate",
    "length_penalty",
]
