"""Decoding: search algorithms (greedy, sampling, beam) over a model-agnostic stepper interface.

Typical use::

    stepper = models.make_stepper(model, src)   # the model's spec picks; src (1, S) or None
    hyps = generate(stepper, [bos_id], eos_id=eos_id, config=DecodeConfig(strategy="beam"),
                    banned_ids=[pad_id, bos_id, unk_id])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from textgen_core.decoding.config import STRATEGIES, DecodeConfig

if TYPE_CHECKING:
    from textgen_core.decoding.processors import (
        LogitsProcessor,
        MinPProcessor,
        NoRepeatNGramProcessor,
        RepetitionPenaltyProcessor,
        SuppressTokensProcessor,
        TemperatureProcessor,
        TopKProcessor,
        TopPProcessor,
        apply_processors,
        build_processors,
    )
    from textgen_core.decoding.search import Hypothesis, generate, generate_batch, length_penalty
    from textgen_core.decoding.steppers import (
        LMStepper,
        RecurrentStepper,
        Seq2SeqStepper,
        Stepper,
        TaggerStepper,
    )

# The torch-backed names load on first use, so the settings (decoding.config) import without torch.
_LAZY = {
    **dict.fromkeys(
        ("LogitsProcessor", "MinPProcessor", "NoRepeatNGramProcessor", "RepetitionPenaltyProcessor",
         "SuppressTokensProcessor", "TemperatureProcessor", "TopKProcessor", "TopPProcessor",
         "apply_processors", "build_processors"),
        "textgen_core.decoding.processors"),
    **dict.fromkeys(("Hypothesis", "generate", "generate_batch", "length_penalty"),
                    "textgen_core.decoding.search"),
    **dict.fromkeys(("LMStepper", "RecurrentStepper", "Seq2SeqStepper", "Stepper", "TaggerStepper"),
                    "textgen_core.decoding.steppers"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "STRATEGIES",
    "DecodeConfig",
    "Hypothesis",
    "LMStepper",
    "LogitsProcessor",
    "MinPProcessor",
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
    "generate_batch",
    "length_penalty",
]
