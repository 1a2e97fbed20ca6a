"""``textgen generate`` with the decoding controls: JSON fields, batches, locks, tones, rule switches
and their errors (on the shared tiny couplet project)."""

from __future__ import annotations

import json

import pytest

from textgen_core.decoding.tones import tone_of

LINES = ["春风得意马蹄疾", "海阔凭鱼跃", "花开富贵", "风声雨声读书声", "一帆风顺", "明月松间照，清泉石上流"]


def objects(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_json_hypotheses_carry_scores_ids_logprobs_and_alternatives(cli, couplet_project):
    r = cli("generate", couplet_project, "春风得意", "--beam", "4", "--n-best", "3", "--alternatives", "3",
            "--json")
    assert r.code == 0, r
    (obj,) = objects(r.out)
    hyps = obj["hypotheses"]
    assert len(hyps) == 3 and [h["score"] for h in hyps] == sorted((h["score"] for h in hyps), reverse=True)
    for h in hyps:
        assert h["prompt_ids"] == obj["prompt_ids"] and len(h["ids"]) == len(h["text"]) == 4
        assert len(h["token_logprobs"]) == len(h["alternatives"]) == 4
        assert all(lp <= 0 for lp in h["token_logprobs"])
        for step in h["alternatives"]:
            assert 1 <= len(step) <= 3 and {"token", "id", "p"} <= set(step[0])
        assert h["tone"] is None or set(h["tone"]) >= {"first", "second", "contrast"}


def test_input_file_in_batches_equals_one_at_a_time(cli, couplet_project, tmp_path):
    lines = tmp_path / "first.txt"
    lines.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    for mode in (["--greedy"], ["--beam", "3", "--n-best", "2"]):
        batched = cli("generate", couplet_project, "--input", lines, "--batch-size", "4", *mode, "--json")
        assert batched.code == 0, batched
        single = [cli("generate", couplet_project, line, *mode, "--json") for line in LINES]
        got = [[h["text"] for h in o["hypotheses"]] for o in objects(batched.out)]
        want = [[h["text"] for h in objects(s.out)[0]["hypotheses"]] for s in single]
        assert got == want, mode
        assert [len(g[0]) for g in got] == [len(line) for line in LINES]
        assert got[5][0][5] == "，"                                  # punctuation where the first line has it


def test_locks_hold_and_fix_mirrored_repeats(cli, couplet_project):
    r = cli("generate", couplet_project, "风声雨声读书声", "--lock", "2=光", "--lock", "1=山",
            "--beam", "3", "--n-best", "3", "--json")
    assert r.code == 0, r
    for h in objects(r.out)[0]["hypotheses"]:
        text = h["text"]
        assert text[0] == "山" and text[1] == text[3] == text[6] == "光", text     # 声 repeats: so does 光


def test_hard_tone_rule_and_rule_switches(cli, couplet_project):
    r = cli("generate", couplet_project, "海阔凭鱼跃", "--tone", "hard", "--beam", "4", "--n-best", "4",
            "--json")
    assert r.code == 0, r
    for h in objects(r.out)[0]["hypotheses"]:
        assert tone_of("跃") == "仄" and tone_of(h["text"][-1]) in ("平", None), h["text"]
        assert h["tone"] is None or h["tone"]["contrast"]
    r = cli("generate", couplet_project, "花花", "--greedy", "--no-rule", "repeats", "--no-rule", "reuse",
            "--tone", "off", "--json")
    assert r.code == 0, r
    assert len(objects(r.out)[0]["hypotheses"][0]["text"]) == 2


@pytest.mark.parametrize(("args", "message"), [
    (["春风", "--lock", "3春"], "--lock 3春: write POS=CHAR"),
    (["春风", "--lock", "9=春"], "the first line has 2 characters"),
    (["春风", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["春风", "--min-p", "2"], "min_p"),
    (["春风", "--no-rule", "rhyme"], "invalid choice"),
    (["春风", "", "x" * 400, "--greedy"], "input 2: empty input"),
])
def test_errors_are_one_line(cli, couplet_project, args, message):
    r = cli("generate", couplet_project, *args)
    assert r.code == 2 and r.err.count("\n") == 1 and message in r.err, r


def test_coverage_penalty_rescores_the_beam(cli, couplet_project):
    plain = cli("generate", couplet_project, "海阔凭鱼跃", "--beam", "4", "--n-best", "4", "--json")
    covered = cli("generate", couplet_project, "海阔凭鱼跃", "--beam", "4", "--n-best", "4",
                  "--coverage-penalty", "2", "--json")
    assert plain.code == covered.code == 0, covered
    before = {h["text"]: h["score"] for h in objects(plain.out)[0]["hypotheses"]}
    after = {h["text"]: h["score"] for h in objects(covered.out)[0]["hypotheses"]}
    assert set(before) == set(after)                                  # the same beams, ranked anew
    assert all(after[t] <= before[t] + 1e-9 for t in before) and after != before
    assert list(after.values()) == sorted(after.values(), reverse=True)
