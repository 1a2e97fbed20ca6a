"""``data.split = "tail"``: the end of the corpus held out (nanoGPT's first 90 % / last 10 %)."""

from __future__ import annotations

from pathlib import Path

import pytest

from textgen_core.config import DataConfig, ProjectConfig
from textgen_core.corpus import Pair, split_pairs, split_text
from textgen_core.errors import ConfigError
from textgen_core.project import Project

SPEECHES = [
    ("First Citizen", "Before we proceed any further, hear me speak."),
    ("All", "Speak, speak."),
    ("First Citizen", "You are all resolved rather to die than to famish?"),
    ("MENENIUS", "What work's, my countrymen, in hand? where go you\nWith bats and clubs?"),
]
# tiny-Shakespeare-like: speaker line, speech lines, blank line; numbered so order can be checked
PLAY = "".join(f"{who} {i}:\n{said}\n\n" for i in range(300)
               for who, said in [SPEECHES[i % len(SPEECHES)]])


def numbers(text: str) -> list[int]:
    return [int(line.split()[-1].rstrip(":")) for line in text.split("\n") if line.endswith(":")]


def test_tail_holds_out_the_last_tenth_at_a_line_boundary():
    parts = split_text(PLAY, valid_fraction=0.1, test_fraction=0.0, mode="tail")
    assert parts["test"] == ""
    assert PLAY.startswith(parts["train"] + "\n")       # train is the beginning ...
    assert PLAY.endswith("\n" + parts["valid"])         # ... validation exactly the end
    assert parts["train"] + "\n" + parts["valid"] == PLAY  # nothing lost or duplicated
    cut = len(parts["train"])                           # the cut is a line boundary near 90 %
    assert PLAY[cut] == "\n"
    assert abs(cut - 0.9 * len(PLAY)) <= max(map(len, PLAY.split("\n"))) + 1
    assert numbers(parts["train"]) + numbers(parts["valid"]) == list(range(300))


def test_tail_with_test_keeps_order_train_valid_test():
    parts = split_text(PLAY, valid_fraction=0.1, test_fraction=0.05, mode="tail")
    assert "\n".join((parts["train"], parts["valid"], parts["test"])) == PLAY
    assert numbers(parts["train"]) + numbers(parts["valid"]) + numbers(parts["test"]) \
        == list(range(300))
    assert 0.08 < len(parts["valid"]) / len(PLAY) < 0.12
    assert 0.03 < len(parts["test"]) / len(PLAY) < 0.07
    assert split_text(PLAY, valid_fraction=0.1, seed=1, mode="tail") == \
        split_text(PLAY, valid_fraction=0.1, seed=2, mode="tail")   # the seed plays no part


def test_tail_edges():
    assert split_text(PLAY, valid_fraction=0, test_fraction=0, mode="tail")["train"] == PLAY
    parts = split_text("one\ntwo\n", valid_fraction=0.4, test_fraction=0.4, n_chunks=2,
                       mode="tail")
    assert parts["train"] and "\n".join(parts.values()) == "one\ntwo\n"
    one_line = "今天天气很好。" * 2000       # no line breaks: cut after a sentence end
    parts = split_text(one_line, valid_fraction=0.2, n_chunks=20, mode="tail")
    assert parts["train"].endswith("。") and parts["valid"].endswith("。")
    assert (parts["train"] + parts["valid"]).replace("\n", "") == one_line
    with pytest.raises(ConfigError, match="random, tail"):
        split_text(PLAY, mode="end")


def test_random_is_unchanged():
    default = split_text(PLAY, valid_fraction=0.1, test_fraction=0.05, seed=9)
    assert split_text(PLAY, valid_fraction=0.1, test_fraction=0.05, seed=9, mode="random") == default
    assert not PLAY.endswith(default["valid"])          # drawn from anywhere, not the end
    assert DataConfig().split == "random"


def test_tail_pairs_are_the_last_pairs_in_order():
    pairs = [Pair(f"s{i}", f"t{i}") for i in range(100)]
    parts = split_pairs(pairs, valid_fraction=0.1, test_fraction=0.05, mode="tail")
    assert parts == {"train": pairs[:85], "valid": pairs[85:95], "test": pairs[95:]}
    repeated = [Pair(f"s{i // 2}", f"t{i}") for i in range(40)]    # two translations per source
    parts = split_pairs(repeated, valid_fraction=0.1, test_fraction=0.1, by_source=True,
                        mode="tail")
    assert parts == {"train": repeated[:32], "valid": repeated[32:36], "test": repeated[36:]}


def test_config_setting_and_override():
    config = ProjectConfig(task="continuation").with_overrides(["data.split=tail"])
    assert config.data.split == "tail"
    assert 'split = "tail"' in config.to_toml()
    with pytest.raises(ConfigError) as err:
        DataConfig(split="last")
    assert "data.split" in str(err.value) and "\n" not in str(err.value)


def test_init_with_tail_split(cli, tmp_path: Path):
    novel = tmp_path / "play.txt"
    novel.write_text(PLAY, encoding="utf-8")
    root = tmp_path / "proj"
    result = cli("init", root, "--task", "continuation", "--data", novel, "--model", "gpt",
                 "--tokenizer", "char", "--set", "data.split=tail")
    assert result.code == 0, result
    project = Project.open(root)
    assert project.config.data.split == "tail"
    text = PLAY.rstrip("\n") + "\n"          # the corpus loader keeps one final line end
    train, valid = project.load_text("train"), project.load_text("valid")
    assert valid and train + "\n" + valid == text and project.load_text("test") == ""


def test_init_rejects_a_bad_split(cli, tmp_path: Path):
    novel = tmp_path / "play.txt"
    novel.write_text(PLAY, encoding="utf-8")
    result = cli("init", tmp_path / "proj", "--task", "continuation", "--data", novel,
                 "--set", "data.split=last")
    assert result.code != 0
    message = result.err.strip()
    assert "data.split" in message and "random, tail" in message
    assert len(message.splitlines()) == 1
    assert not (tmp_path / "proj" / "project.toml").exists()
