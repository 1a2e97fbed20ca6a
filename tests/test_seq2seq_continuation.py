"""Sequence-to-sequence models continue a story passage by passage (a novel as consecutive pairs)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import NOVEL

from textgen_core.decoding.config import DecodeConfig
from textgen_core.decoding.passage_rounds import write_passages
from textgen_core.generation import Generator
from textgen_core.passages import passage_pairs
from textgen_core.project import Project


@dataclass(frozen=True)
class _Hyp:
    ids: tuple[int, ...]
    score: float


class _Answers:
    """A stand-in model: answers source ids with the next ``length`` ids after the source's last."""

    def __init__(self, length: int = 3) -> None:
        self.length, self.calls = length, []

    def __call__(self, source, config, on_token):
        self.calls.append((list(source), config))
        start = source[-1] + 1
        ids = tuple(range(start, start + min(self.length, config.max_tokens)))
        if on_token is not None:
            for k, token in enumerate(ids):
                if on_token(token) is False:
                    return [_Hyp(ids[: k + 1], -1.0)]
        return [_Hyp(ids, -1.0), _Hyp(tuple(t + 100 for t in ids), -5.0)][: config.n_best]


def test_each_passage_is_the_next_source_until_the_budget_is_spent():
    answers = _Answers(length=3)
    stories = write_passages(answers, [7, 8], DecodeConfig(max_tokens=8, seed=5), max_source=2)
    story = stories[0]
    assert story.passages == ((9, 10, 11), (12, 13, 14), (15, 16))       # 3 + 3 + 2 = the budget
    assert story.sources == ((7, 8), (10, 11), (13, 14))                   # cut to their last 2 ids
    assert [c.max_tokens for _, c in answers.calls] == [8, 5, 2]
    assert [c.seed for _, c in answers.calls] == [5, 6, 7]                 # reproducible, not repeated
    assert all(c.min_tokens == 1 for _, c in answers.calls)               # no empty passage
    assert story.ids == list(range(9, 17)) and story.score == -3.0 and story.finished


def test_n_best_stories_start_from_the_first_rounds_hypotheses():
    answers = _Answers(length=2)
    stories = write_passages(answers, [0], DecodeConfig(strategy="beam", beam_size=2, n_best=2,
                                                        max_tokens=4), max_source=8)
    assert [s.passages for s in stories] == [((1, 2), (3, 4)), ((101, 102), (103, 104))]
    assert [c.n_best for _, c in answers.calls] == [2, 1, 1]


def test_streaming_relays_every_passage_and_stops_when_asked():
    seen: list[int] = []
    story = write_passages(_Answers(3), [0], DecodeConfig(max_tokens=30), max_source=4,
                           on_token=lambda t: seen.append(t) or len(seen) < 5)[0]
    assert seen == [1, 2, 3, 4, 5] and story.ids == seen and not story.finished


@pytest.fixture(scope="module")
def story_project(tmp_path_factory) -> Path:
    """A transformer continuation project trained 30 steps through the command line."""
    from textgen_core.cli import main

    root = tmp_path_factory.mktemp("story")
    novel = root / "novel.txt"
    novel.write_text(NOVEL.read_text(encoding="utf-8")[:20000], encoding="utf-8")
    quick = ["--set", "train.eval_every=15", "--set", "train.eval_batches=1", "--set", "train.batch_size=16",
             "--set", "train.log_every=5"]
    assert main(["init", str(root / "p"), "--task", "continuation", "--data", str(novel),
                 "--model", "transformer", *quick]) == 0
    assert main(["-q", "train", str(root / "p"), "--steps", "30", "--device", "cpu"]) == 0
    return root / "p"


def test_the_project_trains_on_consecutive_passages_of_its_splits(story_project):
    project = Project.open(story_project)
    src, tgt = project.tokenizers()
    assert src is tgt                                                       # one vocabulary
    pairs = project.load_pairs("train")
    assert pairs == passage_pairs(project.load_text("train"), project.passage_chars())
    assert project.passage_chars() == 63 and len(pairs) > 200
    assert all(len(p.source) <= 63 and len(p.target) <= 63 for p in pairs)
    run = next((story_project / "runs").iterdir())
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [e["train_loss"] for e in events if e["event"] == "step"]
    assert losses[-1] < losses[0] - 0.5, losses
    evals = [e for e in events if e["event"] == "eval"]
    assert evals and all(e["val_loss"] > 0 and e.get("bleu") is None for e in evals), evals


def test_writing_goes_on_passage_by_passage_and_streams(story_project):
    gen = Generator.from_project(Project.open(story_project), device="cpu")
    streamed: list[int] = []
    config = DecodeConfig(strategy="sample", temperature=0.8, top_k=40, max_tokens=130, seed=1)
    result = gen.generate("却说宝玉。", config, on_token=lambda t: streamed.append(t) or True,
                          with_attention=True)
    story = result.hypotheses[0]
    assert len(story.passages) >= 3 and "".join(story.passages) == story.text   # 63 tokens at most each
    assert streamed == story.ids and len(story.ids) == 130
    assert gen.tgt_tok.decode(streamed) == story.text                      # what the studio shows
    att = result.attention
    assert att is not None and att.kind == "cross" and len(att.query_tokens) == len(story.passages[-1])
    again = gen.generate("却说宝玉。", config)
    assert again.hypotheses[0].text == story.text                          # seeded: reproducible


def test_the_command_line_writes_and_evaluates_a_story(cli, story_project):
    r = cli("generate", story_project, "却说宝玉", "--greedy", "--max-tokens", "90", "--json")
    assert r.code == 0, r
    hyp = json.loads(r.out)["hypotheses"][0]
    assert len(hyp["passages"]) >= 2 and "".join(hyp["passages"]) == hyp["text"]
    r = cli("generate", story_project, "却说宝玉", "--greedy", "--max-tokens", "20")
    assert r.code == 0 and r.out.startswith("却说宝玉") and len(r.out) > 4 + 10, r   # the prompt, then more
    novel = story_project.parent / "novel.txt"
    r = cli("evaluate", story_project, "--data", novel, "--json")
    assert r.code == 0, r
    scores = json.loads(r.out)
    assert scores["bleu"] is None and scores["chrf"] is None and 1 < scores["ppl"] < 5000
    assert scores["examples"] == len(passage_pairs(novel.read_text(encoding="utf-8"), 63))
