"""Couplet rules as logits processors: locks, the tone contrast (平仄) and the form rules together.

The property test decodes random first lines with a random "model" (fixed random logits per prefix)
under random switches and locks, and checks every output against the rules.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textgen_core.decoding import DecodeConfig, generate
from textgen_core.decoding.config import TONE_MODES
from textgen_core.decoding.constraints import CoupletLocks, CoupletRepetition, CoupletTone, is_punctuation
from textgen_core.decoding.couplet_rules import (
    SOFT_TONE_PENALTY,
    couplet_processors,
    parse_locks,
    tone_of,
    tone_report,
    vocab_tones,
)
from textgen_core.errors import TextGenError
from textgen_core.tokenizer import Tokenizer, TokenizerConfig

SAMPLES = Path(__file__).resolve().parent.parent / "resources" / "samples"
RARE = "龘靐齉"                       # outside the sample couplets' vocabulary
MARKS = "，、；？！。"                 # 。 is not in the sample couplets' vocabulary
PLAIN = DecodeConfig(strategy="greedy", couplet_punctuation=False, couplet_repeats=False,
                     couplet_no_reuse=False, tone="off")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small (3, V) tensors: one thread is faster, and far faster on a busy machine (no spinning)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    lines = [
        "".join(line.split())
        for name in ("couplets.in.txt", "couplets.out.txt")
        for line in (SAMPLES / name).read_text(encoding="utf-8").splitlines()
    ]
    tok = Tokenizer.train(lines, TokenizerConfig(kind="char"), tmp_path_factory.mktemp("tok") / "c.model")
    assert not any(tok.has_char(ch) for ch in RARE + "。") and all(tok.has_char(ch) for ch in "，、；？！")
    return tok


@pytest.fixture(scope="module")
def chars(tok: Tokenizer) -> list[str]:
    """The vocabulary's Chinese characters."""
    return sorted(p for p in tok.pieces(range(tok.vocab_size)) if len(p) == 1 and "\u4e00" <= p <= "\u9fff")


def _config(**changes: object) -> DecodeConfig:
    return replace(PLAIN, **changes)


def _ids(n: int, prefix: int = 2) -> torch.Tensor:
    """ids (1, 1 + n): a start token and n tokens already written (their values do not matter)."""
    return torch.tensor([[prefix] + [10 + i for i in range(n)]])


# ------------------------------------------------------------------------------------ parse_locks


def test_parse_locks_reads_one_based_positions():
    assert parse_locks(["3=春", "7=风"]) == {3: "春", 7: "风"}
    assert parse_locks([" 1 = 天 "]) == {1: "天"}
    assert parse_locks([]) == {}


@pytest.mark.parametrize(("items", "message"), [
    (["3春"], "--lock 3春: write POS=CHAR, e.g. 3=春"),
    (["春=3"], "--lock 春=3: write POS=CHAR, e.g. 3=春"),
    (["3="], "--lock 3=: write POS=CHAR, e.g. 3=春"),
    (["0=春"], "--lock 0=春: positions count from 1 (the first character)"),
    (["-2=春"], "--lock -2=春: positions count from 1 (the first character)"),
    (["3=春风"], "--lock 3=春风: lock one character per position"),
    (["3=春", "3=秋"], "--lock 3=春 and --lock 3=秋: position 3 locked twice"),
])
def test_parse_locks_errors(items, message):
    with pytest.raises(TextGenError) as err:
        parse_locks(items)
    assert str(err.value) == message


# ----------------------------------------------------------------------------- lock checking


@pytest.mark.parametrize(("first", "locks", "changes", "message"), [
    ("春风得意马蹄疾", {9: "月"}, {}, "--lock 9=月: the first line has 7 characters"),
    ("春风，得意", {3: "月"}, {}, "--lock 3=月: the first line has punctuation there (，); "
                                   "lock a character position"),
    ("春风得意", {2: "龘"}, {}, "--lock 2=龘: 龘 is not in the model's vocabulary"),
    ("春风得意", {3: "风"}, {"couplet_no_reuse": True},
     "--lock 3=风: 风 is in the first line, and no reuse (上下联不重字) is on"),
    ("风声雨声", {2: "月", 4: "日"}, {"couplet_repeats": True},
     "--lock 2=月 and --lock 4=日: the first line repeats 声 at both positions, "
     "so the second line must repeat one character"),
    ("春风得意", {1: "月", 4: "月"}, {"couplet_no_reuse": True},
     "--lock 1=月 and --lock 4=月: 月 twice, and no reuse (上下联不重字) is on"),
    ("春风得意", {2: "，"}, {"couplet_punctuation": True},
     "--lock 2=，: punctuation goes only where the first line has it"),
    ("春风得意", {2: "月月"}, {}, "--lock 2=月月: lock one character per position"),
])
def test_couplet_processors_refuse_bad_locks(tok, first, locks, changes, message):
    with pytest.raises(TextGenError) as err:
        couplet_processors(first, tok, _config(**changes), locks)
    assert str(err.value) == message


def test_locks_that_fit_when_their_rule_is_off(tok):
    couplet_processors("春风得意", tok, _config(couplet_no_reuse=False), {3: "风", 4: "风"})
    couplet_processors("风声雨声", tok, _config(couplet_repeats=False), {2: "月", 4: "日"})
    couplet_processors("风声雨声", tok, _config(couplet_repeats=True), {2: "月", 4: "月"})


def test_couplet_rules_need_a_character_tokenizer(tmp_path):
    lines = [f"spring wind number {i} and autumn rain" for i in range(200)]
    bpe = Tokenizer.train(lines, TokenizerConfig(kind="bpe", vocab_size=60), tmp_path / "b.model")
    with pytest.raises(TextGenError, match="character tokenizer"):
        couplet_processors("春风", bpe, PLAIN)


def test_a_lock_allows_only_its_character_and_keeps_its_score(tok):
    rules = couplet_processors("春风得意", tok, _config(), {2: "月"})
    assert len(rules) == 1 and isinstance(rules[0], CoupletLocks)
    scores = torch.randn(2, tok.vocab_size, generator=torch.Generator().manual_seed(0))
    moon = tok.encode("月")[0]
    at = rules[0](_ids(1).expand(2, -1), scores)
    assert torch.equal(at[:, moon], scores[:, moon])                       # its own score, not 0
    assert torch.isfinite(at).sum().item() == 2                             # nothing else
    assert torch.equal(rules[0](_ids(0), scores[:1]), scores[:1])           # other positions free
    assert torch.equal(scores, torch.randn(2, tok.vocab_size, generator=torch.Generator().manual_seed(0)))


def test_a_lock_fixes_its_whole_repeat_group_and_no_reuse_keeps_it_for_its_place(tok):
    rules = couplet_processors("风声雨声读书声", tok, _config(couplet_repeats=True, couplet_no_reuse=True),
                               {7: "月"})
    lock = next(r for r in rules if isinstance(r, CoupletLocks))
    moon = tok.encode("月")[0]
    assert lock.locked == {1: moon, 3: moon, 6: moon}           # 声 stands at 2, 4 and 7 (1-based)
    scores = torch.zeros(1, tok.vocab_size)
    assert lock(_ids(1), scores)[0, moon] == 0 and torch.isfinite(lock(_ids(1), scores)).sum() == 1
    assert lock(_ids(0), scores)[0, moon] == -math.inf          # not before its place
    assert lock(_ids(2), scores)[0, moon] == -math.inf
    off = couplet_processors("风声雨声读书声", tok, _config(couplet_repeats=True), {7: "月"})
    assert next(r for r in off if isinstance(r, CoupletLocks))(_ids(0), scores)[0, moon] == 0


def test_repetition_halves_switch_separately():
    rule = CoupletRepetition([10, 11, 11, 12], punctuation=[2], mirror=False)    # 风 声 声 雨
    assert rule.earlier == [None, None, None, None]
    at2 = rule(torch.tensor([[1, 13, 14]]), torch.zeros(1, 16))                    # all must differ
    assert torch.isinf(at2[0, [10, 11, 12, 13, 14]]).all() and at2[0, 15] == 0
    mirror_only = CoupletRepetition([10, 11, 11, 12], punctuation=[2], no_reuse=False)
    at1 = mirror_only(torch.tensor([[1, 13]]), torch.zeros(1, 16))
    assert torch.isfinite(at1).all()                                               # reuse allowed
    at2 = mirror_only(torch.tensor([[1, 13, 14]]), torch.zeros(1, 16))
    assert torch.isfinite(at2[0]).nonzero().flatten().tolist() == [14]             # still mirrored


# ---------------------------------------------------------------------------------------- tones


@pytest.mark.parametrize(("ch", "tone"), [
    ("天", "平"), ("地", "仄"), ("风", "平"), ("雨", "仄"), ("春", "平"), ("月", "仄"), ("白", "平"),
    ("长", None), ("中", None), ("A", None), ("，", None), ("1", None), ("", None), ("春风", None),
])
def test_tone_of(ch, tone):
    assert tone_of(ch) == tone


def test_tone_report():
    assert tone_report("天高地厚", "海阔山高") == {"first": "仄", "second": "平", "contrast": True}
    assert tone_report("春风得意马蹄疾，", "秋雨生寒。") == {"first": "平", "second": "平", "contrast": False}
    assert tone_report("天高地长", "海阔山高") is None                  # 长: both classes
    assert tone_report("天高地厚", "ABC") is None
    assert tone_report("，", "海阔山高") is None


def test_vocabulary_tone_table_is_cached_and_agrees_with_tone_of(tok):
    table = vocab_tones(tok)
    assert vocab_tones(tok) is table and table.shape == (tok.vocab_size,) and table.dtype == torch.int8
    code = {None: 0, "平": 1, "仄": 2}
    pieces = tok.pieces(range(tok.vocab_size))
    assert [code[tone_of(p) if len(p) == 1 else None] for p in pieces] == table.tolist()
    assert 0.02 < (table == 0).float().mean().item() < 0.2        # specials, marks, two-class characters


def test_soft_tone_rule_moves_the_last_characters_ranking_by_exactly_the_penalty(tok):
    [rule] = couplet_processors("天高地厚", tok, _config(tone="soft"))         # 厚 仄: wants 平
    assert isinstance(rule, CoupletTone) and rule.positions == {3}
    ze, ping, both = (tok.encode(ch)[0] for ch in "雨风长")
    scores = torch.randn(3, tok.vocab_size, generator=torch.Generator().manual_seed(1))
    scores[:, ze] = scores[:, ping] + 1.0                                     # 雨 ahead of 风 by 1
    out = rule(_ids(3).expand(3, -1), scores)
    before, after = scores.log_softmax(-1), out.log_softmax(-1)
    shift = (after[:, ze] - after[:, ping]) - (before[:, ze] - before[:, ping])
    assert torch.allclose(shift, torch.full((3,), -SOFT_TONE_PENALTY), atol=1e-5)
    assert (out[:, ping] > out[:, ze]).all()                                  # the ranking flips
    assert torch.equal(out[:, [ping, both]], scores[:, [ping, both]])         # 平 and unknown kept
    wrong = vocab_tones(tok) == 2
    assert torch.allclose(out[:, wrong], scores[:, wrong] - SOFT_TONE_PENALTY)
    assert torch.equal(rule(_ids(2), scores[:1]), scores[:1])                 # only at the last one


def test_hard_tone_rule_bans_the_wrong_class_only(tok):
    [rule] = couplet_processors("地厚天高", tok, _config(tone="hard"))         # 高 平: wants 仄
    ze, ping, both = (tok.encode(ch)[0] for ch in "雨风长")
    scores = torch.zeros(1, tok.vocab_size)
    out = rule(_ids(3), scores)
    assert out[0, ping] == -math.inf and out[0, ze] == 0 and out[0, both] == 0
    assert torch.equal(torch.isinf(out[0]), vocab_tones(tok) == 1)


def test_tone_rule_placement(tok):
    assert couplet_processors("天高地长", tok, _config(tone="hard")) == []     # 长: no class, no rule
    assert couplet_processors("天高地厚", tok, _config(tone="off")) == []
    locked = couplet_processors("天高地厚", tok, _config(tone="hard"), {4: "雨"})  # the lock wins
    assert not any(isinstance(r, CoupletTone) for r in locked)
    [rule] = couplet_processors("天高地厚，", tok, _config(tone="hard"))       # trailing mark skipped
    assert rule.positions == {3}
    mirrored = couplet_processors("风声雨声", tok, _config(tone="hard", couplet_repeats=True))
    assert next(r for r in mirrored if isinstance(r, CoupletTone)).positions == {1, 3}
    assert vocab_tones(tok).device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_rules_run_on_cuda(tok):
    rules = couplet_processors("风声雨声读书厚", tok, DecodeConfig(tone="hard"), {1: "月"})
    ids = torch.tensor([[2, 5, 6, 7, 6, 8, 9]], device="cuda")
    scores = torch.randn(1, tok.vocab_size, device="cuda")
    for rule in rules:
        scores = rule(ids, scores)
    assert scores.device.type == "cuda"


# ------------------------------------------------------------------------ property: decoding


class RandomStepper:
    """A stand-in model: fixed random logits for each prefix (the same prefix, the same logits),
    with a large bonus for ``tempting`` ids (the first line's characters, the locked ones, marks)
    so that the rules have something to stop."""

    def __init__(self, vocab_size: int, seed: int, tempting: list[int] = (), scale: float = 3.0) -> None:
        self.vocab_size, self.seed, self.scale = vocab_size, seed, scale
        self.bonus = torch.zeros(vocab_size)
        self.bonus[list(tempting)] = 3.0 * scale

    def logits(self, prefix: torch.Tensor) -> torch.Tensor:
        rows = []
        for row in prefix.tolist():
            gen = torch.Generator().manual_seed(hash((self.seed, *row)) % 2**31)
            rows.append(torch.randn(self.vocab_size, generator=gen) * self.scale + self.bonus)
        return torch.stack(rows)                                            # (N, V)

    def select(self, index: torch.Tensor) -> None:
        pass                                                                # no state


def _draw_line(data: st.DataObject, chars: list[str]) -> str:
    pool = data.draw(st.lists(st.sampled_from(chars), min_size=1, max_size=3), label="pool")
    kinds = st.sampled_from(["char", "char", "char", "pool", "pool", "rare", "mark"])
    sources = {"char": chars, "pool": pool, "rare": RARE, "mark": MARKS}
    n = data.draw(st.integers(2, 12), label="length")
    return "".join(data.draw(st.sampled_from(sources[data.draw(kinds)])) for _ in range(n))


def _draw_locks(data: st.DataObject, first: str, chars: list[str], repeats: bool) -> dict[int, str]:
    """Locks that fit: character positions, one fresh character per repeat group."""
    places = [i for i, ch in enumerate(first) if not is_punctuation(ch)]
    if not places:
        return {}
    chosen = data.draw(st.lists(st.sampled_from(places), max_size=3, unique=True), label="locked")
    by_group: dict[object, str] = {}
    for i in chosen:
        group = first[i] if repeats else i
        if group not in by_group:
            fresh = [c for c in chars[:400] if c not in first and c not in by_group.values()]
            by_group[group] = data.draw(st.sampled_from(fresh))
    return {i + 1: by_group[first[i] if repeats else i] for i in chosen}


def _check(first: str, out: list[str], tok: Tokenizer, config: DecodeConfig, locks: dict[int, str]) -> None:
    assert len(out) == len(first), (first, out)
    chars = [i for i, ch in enumerate(first) if not is_punctuation(ch)]
    if config.couplet_punctuation:
        for i, ch in enumerate(first):
            if is_punctuation(ch):
                assert out[i] == ch if tok.has_char(ch) else is_punctuation(out[i]), (first, out)
            else:
                assert not is_punctuation(out[i]), (first, out)
    for i in chars:
        for j in chars[:chars.index(i)]:
            if config.couplet_repeats and first[i] == first[j]:
                assert out[i] == out[j], (first, out)
            elif config.couplet_no_reuse and not is_punctuation(out[i]):
                assert out[i] != out[j], (first, out)
        if config.couplet_no_reuse and not is_punctuation(out[i]):
            assert out[i] not in first, (first, out)
    for pos, ch in locks.items():
        assert out[pos - 1] == ch, (first, out, locks)
        if config.couplet_repeats:
            assert all(out[i] == ch for i in chars if first[i] == first[pos - 1]), (first, out, locks)
    if config.tone == "hard" and chars:
        last = chars[-1]
        group = {i for i in chars if first[i] == first[last]} if config.couplet_repeats else {last}
        if tone_of(first[last]) and not any(pos - 1 in group for pos in locks):
            assert tone_of(out[last]) != tone_of(first[last]), (first, out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_output_keeps_every_rule(tok, chars, data):
    first = _draw_line(data, chars)
    switches = {name: data.draw(st.booleans(), label=name)
                for name in ("couplet_punctuation", "couplet_repeats", "couplet_no_reuse")}
    tone = data.draw(st.sampled_from(TONE_MODES), label="tone")
    locks = _draw_locks(data, first, chars, switches["couplet_repeats"])
    seed = data.draw(st.integers(0, 2**16), label="seed")
    banned = (tok.pad_id, tok.bos_id, tok.unk_id)
    tempting = tok.encode(first + "".join(locks.values()) + "，、", per_char=True)
    for strategy in (DecodeConfig(strategy="greedy"), DecodeConfig(strategy="beam", beam_size=3, n_best=3),
                     DecodeConfig(strategy="sample", n_best=3, seed=seed)):
        config = replace(strategy, **switches, tone=tone)
        rules = couplet_processors(first, tok, config, locks)
        stepper = RandomStepper(tok.vocab_size, seed, tempting)
        hyps = generate(stepper, [tok.bos_id], eos_id=tok.eos_id, config=config, banned_ids=banned,
                        forced_length=len(first), constraints=rules)
        assert hyps and len(hyps) <= config.n_best
        for hyp in hyps:
            assert hyp.finished and all(math.isfinite(lp) for lp in hyp.token_logprobs)
            _check(first, tok.pieces(list(hyp.ids)), tok, config, locks)
