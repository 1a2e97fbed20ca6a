"""The form of a task's output that follows from the task and its tokenizer (no torch here).

Both writing (:mod:`textgen_core.generation`) and scoring (:mod:`textgen_core.evaluation`, the
trainer's validation) ask it, so a couplet is held to its first line's length everywhere alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textgen_core.tokenizer import Tokenizer


def same_length_output(task: str, tokenizer: Tokenizer) -> bool:
    """Couplets with character tokens: the answer has exactly the first line's length."""
    return task == "couplet" and tokenizer.kind == "char"
