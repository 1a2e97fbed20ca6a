"""Search over a :class:`~textgen_core.decoding.steppers.Stepper`: greedy, sampling and beam search,
batched over inputs (and over beams or samples of each input): one model call per step for all.

Conventions shared by all strategies:

* ``prefixes`` are the starts of the output sequences (seq2seq: ``[bos]``; a prefix LM: a start
  token standing for the prompt; a language model continuing a story: the prompt ids), one per
  input and all of one length. A :class:`Hypothesis` holds only the tokens generated after it,
  without the final eos.
* At most ``max_tokens`` tokens are generated, the eos included; eos is banned until
  ``min_tokens`` tokens exist. A forced length ``L`` (per input) overrides both: eos is banned for
  the first ``L`` tokens and forced after them, so every hypothesis of that input has exactly ``L``
  tokens and is finished. The forced eos has probability 1 under the constrained distribution, so
  it is not computed (no model call) and adds 0 to the score.
* ``constraints`` are per input (each couplet has its own first line, length and locks): they run
  on that input's rows only, before the configured processors, which run on all rows at once.
  Length rules act on the raw logits first, so top-k/top-p act on the allowed tokens only.
* Log-probabilities are ``log_softmax`` of the processed scores: temperature/top-k/top-p/min-p are
  part of them when sampling; greedy and beam use the temperature-free distribution after
  repetition penalty, n-gram blocking, banning and the constraints (so beam_size=1 with
  length_penalty=0 reproduces greedy exactly).
* ``forced_prefixes`` (per input) are output tokens taken first whatever the model prefers (the
  studio's "branch from here"); they are scored like any token.
* A hypothesis's raw score is the sum of its token log-probs plus the eos log-prob if it
  finished; beam search reports it divided by the GNMT length penalty (Wu et al., 2016, "Google's
  Neural Machine Translation System") ``((5 + L) / 6) ** alpha`` with L the number of scored
  tokens (eos included).
* Every token comes with the ``config.alternatives`` most likely tokens of its step and their
  probabilities (under the same distribution as its log-prob).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch

from textgen_core.decoding.beam import beam_search
from textgen_core.decoding.config import STRATEGIES, DecodeConfig, check_int
from textgen_core.decoding.hypothesis import Hypothesis, Limits, length_penalty
from textgen_core.decoding.processors import LogitsProcessor, build_processors
from textgen_core.decoding.sampling import sample_search
from textgen_core.decoding.step import StepScorer
from textgen_core.decoding.steppers import Stepper
from textgen_core.errors import ConfigError

logger = logging.getLogger(__name__)

# STRATEGIES and DecodeConfig live in textgen_core.decoding.config; kept importable from here
__all__ = ["STRATEGIES", "DecodeConfig", "Hypothesis", "generate", "generate_batch", "length_penalty"]


def generate(
    stepper: Stepper,
    prefix: Sequence[int],
    *,
    eos_id: int,
    config: DecodeConfig,
    banned_ids: Sequence[int] = (),
    on_token: Callable[[int], bool] | None = None,
    forced_length: int | None = None,
    constraints: Sequence[LogitsProcessor] = (),
    forced_prefix: Sequence[int] = (),
) -> list[Hypothesis]:
    """Decode one input from a fresh ``stepper`` holding its one row; up to ``config.n_best``
    hypotheses, best first.

    ``on_token(token_id)`` (greedy, or sample with n_best=1) is called with each token as it is
    produced; returning ``False`` (not merely a falsy value) stops generation, and the result
    keeps the tokens produced so far with ``finished=False``.
    """
    return generate_batch(
        stepper, [prefix], eos_id=eos_id, config=config, banned_ids=banned_ids, on_token=on_token,
        forced_lengths=[forced_length], constraints=[constraints], forced_prefixes=[forced_prefix],
    )[0]


def generate_batch(
    stepper: Stepper,
    prefixes: Sequence[Sequence[int]],
    *,
    eos_id: int,
    config: DecodeConfig,
    banned_ids: Sequence[int] = (),
    on_token: Callable[[int], bool] | None = None,
    forced_lengths: Sequence[int | None] | None = None,
    constraints: Sequence[Sequence[LogitsProcessor]] | None = None,
    forced_prefixes: Sequence[Sequence[int]] | None = None,
) -> list[list[Hypothesis]]:
    """Decode ``len(prefixes)`` inputs at once from a fresh ``stepper`` holding one row per input
    (row i = input i); for each input up to ``config.n_best`` hypotheses, best first.

    The per-input sequences (``forced_lengths``, ``constraints``, ``forced_prefixes``) have one
    entry per input when given. ``on_token`` streams the tokens of a single input (see
    :func:`generate`). The stepper is left in an unspecified row state afterwards.
    """
    n = len(prefixes)
    if n == 0:
        return []
    seqs = _prefix_tensor(prefixes)
    check_int("eos_id", eos_id, 0)
    limits = [_limits(config, length) for length in _per_input("forced_lengths", forced_lengths, n, None)]
    if on_token is not None and (config.strategy == "beam" or config.n_best != 1 or n != 1):
        raise ConfigError("on_token streaming needs one input and strategy greedy or sample with n_best = 1")
    forced = [[int(t) for t in p] for p in _per_input("forced_prefixes", forced_prefixes, n, ())]
    for lim, tokens in zip(limits, forced):
        if len(tokens) > lim.steps:
            raise ConfigError(f"{len(tokens)} tokens given to start from, but at most {lim.steps} "
                              "are written")
    scorer = StepScorer(
        stepper, eos_id, build_processors(config, banned_ids),
        [list(c) for c in _per_input("constraints", constraints, n, ())], config.alternatives,
    )
    with torch.inference_mode():
        if config.strategy == "beam":
            return beam_search(scorer, seqs, config, limits, forced)
        return sample_search(scorer, seqs, config, limits, forced, on_token)


def _limits(config: DecodeConfig, forced_length: int | None) -> Limits:
    if forced_length is None:
        return Limits(steps=config.max_tokens, min_tokens=config.min_tokens, forced=False)
    check_int("forced_length", forced_length, 1)
    return Limits(steps=forced_length, min_tokens=forced_length, forced=True)


def _prefix_tensor(prefixes: Sequence[Sequence[int]]) -> torch.Tensor:
    rows = [[int(t) for t in p] for p in prefixes]
    if not rows[0]:
        raise ConfigError("the prefix is empty: decoding needs at least one start token")
    if any(len(r) != len(rows[0]) for r in rows):
        raise ConfigError("the prefixes of one batch must have one length (group the inputs by length)")
    return torch.tensor(rows, dtype=torch.long)  # (B, P); moved to the model's device later


def _per_input(name: str, values: Sequence | None, n: int, default: object) -> list:
    if values is None:
        return [default] * n
    if len(values) != n:
        raise ConfigError(f"{name} has {len(values)} entries for {n} inputs")
    return list(values)
