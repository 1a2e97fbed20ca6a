"""Translation corpora are split and scored by source sentence: all translations of a source go to
one split, and validation/test BLEU decodes each source once against all its references."""

from __future__ import annotations

import json

from conftest import TRANSLATION

from textgen_core import metrics
from textgen_core.corpus import Pair, reference_groups, split_pairs, splits_by_source
from textgen_core.project import SPLITS, Project
from textgen_core.training.run import train_project

# 60 sources with 1, 2 or 3 translations each; repeats spread over the corpus (120 rows)
PAIRS = [Pair(f"source {i}", f"target {i}.{k}") for k in range(3) for i in range(60) if k <= i % 3]


def test_no_source_in_two_splits_reproducibly():
    parts = split_pairs(PAIRS, valid_fraction=0.2, test_fraction=0.1, seed=7, by_source=True)
    sources = {name: {p.source for p in parts[name]} for name in SPLITS}
    assert not sources["train"] & sources["valid"]
    assert not sources["train"] & sources["test"]
    assert not sources["valid"] & sources["test"]
    assert (len(sources["valid"]), len(sources["test"])) == (12, 6)      # fractions count sources
    assert sorted(PAIRS.index(p) for name in SPLITS for p in parts[name]) == list(range(len(PAIRS)))
    assert all(parts[k] == sorted(parts[k], key=PAIRS.index) for k in SPLITS)  # corpus order
    assert split_pairs(PAIRS, valid_fraction=0.2, test_fraction=0.1, seed=7, by_source=True) == parts
    assert split_pairs(PAIRS, valid_fraction=0.2, test_fraction=0.1, seed=8, by_source=True) != parts
    rows = split_pairs(PAIRS, valid_fraction=0.2, test_fraction=0.1, seed=7)
    assert {p.source for p in rows["train"]} & {p.source for p in rows["valid"]}  # rows would leak


def test_without_repeated_sources_the_split_is_unchanged():
    unique = [Pair(f"s{i}", f"t{i}") for i in range(50)]
    assert split_pairs(unique, seed=3, by_source=True) == split_pairs(unique, seed=3)


def test_reference_groups_and_which_tasks_group():
    pairs = [("a", "1"), ("b", "2"), ("a", "3")]
    assert reference_groups(pairs, by_source=True) == [("a", ("1", "3")), ("b", ("2",))]
    assert reference_groups(pairs, by_source=False) == [("a", ("1",)), ("b", ("2",)), ("a", ("3",))]
    assert splits_by_source("translation")
    assert not splits_by_source("couplet") and not splits_by_source("continuation")


def test_swapped_translation_project_trains_and_evaluates_by_source(cli, tmp_path, monkeypatch):
    # Chinese -> English: the bundled sample repeats some Chinese sentences with other English
    lines = TRANSLATION.read_text(encoding="utf-8").splitlines()
    data, few = tmp_path / "pairs.tsv", tmp_path / "few.tsv"
    data.write_text("\n".join(lines[:300]) + "\n", encoding="utf-8")
    few.write_text("\n".join(lines[:60]) + "\n", encoding="utf-8")   # 友善点。 twice
    project = Project.create(tmp_path / "p", "translation", [data], overrides=[
        "data.swap=true", "tokenizer.vocab_size=800", "train.eval_every=10",
        "train.bleu_examples=32", "train.eval_batches=1", "model.block_size=24"])
    splits = {name: {p.source for p in project.load_pairs(name)} for name in SPLITS}
    assert not splits["train"] & (splits["valid"] | splits["test"])
    assert not splits["valid"] & splits["test"]

    scored: list[list[object]] = []
    real_bleu = metrics.bleu

    def spy(hypotheses, references, tokenize=None):
        scored.append(list(references))
        return real_bleu(hypotheses, references, tokenize)

    monkeypatch.setattr(metrics, "bleu", spy)
    train_project(project, steps=2, device="cpu")
    valid = project.load_pairs("valid")
    assert len(scored) == 1 and len(scored[0]) == len(splits["valid"]) < len(valid)
    assert sorted(len(refs) for refs in scored[0])[-1] > 1   # a source with all its references

    r = cli("evaluate", tmp_path / "p", "--data", few, "--device", "cpu", "--json")
    assert r.code == 0, r
    scores = json.loads(r.out)
    assert scores["examples"] == 60 and scores["sources"] == 59        # each source decoded once
    assert 0 <= scores["bleu"] <= 100 and scores["loss"] > 0 and scores["chrf"] is not None

