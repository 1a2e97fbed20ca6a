"""A project folder: the unit a user creates, opens, shares and resumes.

::

    my-couplets/
      project.toml          task, data, tokenizer, model, training and generation settings
      tokenizer.model       sentencepiece model (source side, or shared)
      tokenizer.tgt.model   target-side model when the vocabularies are separate
      data/                 the splits as they were made (train/valid/test .jsonl, or .txt for novels)
      checkpoints/          last.pt (resumable: with optimizer, data and RNG state) and best.pt (for writing)
      runs/<id>/metrics.jsonl   one JSON object per training event
      training.lock         while a trainer runs: who it is (one trainer per project)

``Project.create`` reads the corpus, makes the splits reproducibly from the seed, trains the
tokenizer on the training split and writes the settings; nothing else is needed to train.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from textgen_core import models
from textgen_core.config import TRAIN_PRESETS, DataConfig, ProjectConfig, TrainConfig
from textgen_core.corpus import TASKS, Corpus, Pair, load_corpus, split_pairs, split_text, splits_by_source
from textgen_core.decoding.config import DecodeConfig
from textgen_core.errors import ConfigError, TextGenError
from textgen_core.passages import passage_pairs
from textgen_core.tokenizer import Tokenizer, TokenizerConfig
from textgen_core.training.checkpoint import atomic_write_bytes, read_summary

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
# Sensible tokenizers per task: characters for Chinese couplets and novels, subwords for translation.
DEFAULT_TOKENIZER = {"couplet": "char", "translation": "bpe", "continuation": "char"}
DEFAULT_VOCAB = {"char": 8000, "bpe": 8000, "unigram": 8000}
# Decoding people expect per task: beams for couplets and translation, sampling for stories.
DEFAULT_DECODING = {
    "couplet": DecodeConfig(strategy="beam", beam_size=4, n_best=3, max_tokens=32),
    "translation": DecodeConfig(strategy="beam", beam_size=4, n_best=3, max_tokens=64),
    "continuation": DecodeConfig(strategy="sample", temperature=0.8, top_k=40, top_p=0.95,
                                 repetition_penalty=1.1, max_tokens=200),
}


class Project:
    """Paths and settings of one project folder."""

    def __init__(self, root: Path, config: ProjectConfig) -> None:
        self.root = Path(root)
        self.config = config

    # ----------------------------------------------------------------- paths
    @property
    def config_path(self) -> Path:
        return self.root / "project.toml"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def tokenizer_path(self, side: str = "src") -> Path:
        # one vocabulary for a language model, and for a story continued by any model
        shared = self.config.tokenizer.shared or self.is_lm or self.config.task == "continuation"
        return self.root / ("tokenizer.model" if side == "src" or shared else "tokenizer.tgt.model")

    def split_path(self, split: str) -> Path:
        suffix = ".txt" if self.config.task == "continuation" else ".jsonl"
        return self.root / "data" / f"{split}{suffix}"

    def checkpoint_path(self, which: str = "last") -> Path:
        return self.checkpoint_dir / f"{which}.pt"

    @property
    def base_checkpoint_path(self) -> Path:
        """The weights training starts from in a project made with ``init --from``."""
        return self.checkpoint_dir / "base.pt"

    @property
    def is_lm(self) -> bool:
        return models.get_spec(self.config.model_name).kind == "lm"

    # ----------------------------------------------------------------- open/create
    @classmethod
    def open(cls, root: str | os.PathLike) -> Project:
        root = Path(root)
        if not root.is_dir():
            raise ConfigError(f"{root}: project folder not found")
        project = cls(root, ProjectConfig.load(root / "project.toml"))
        project.validate_model()
        return project

    @classmethod
    def create(
        cls,
        root: str | os.PathLike,
        task: str,
        data_files: Sequence[str | os.PathLike],
        *,
        model: str | None = None,
        preset: str = "tiny",
        tokenizer: str | None = None,
        vocab_size: int | None = None,
        overrides: Sequence[str] = (),
        progress: Callable[[str], None] | None = None,
    ) -> Project:
        """Make a new project from corpus files (see module docstring)."""
        say = progress or log.info
        root = Path(root)
        check_new_folder(root)
        config = initial_config(root, task, data_files, model, preset, tokenizer, vocab_size)
        config = config.with_overrides(overrides)
        project = cls(root, config)
        project.validate_model()
        say(f"reading {', '.join(str(f) for f in data_files)}")
        corpus = load_corpus(task, data_files, swap=config.data.swap)
        for warning in corpus.warnings:
            say(f"warning: {warning}")
        root.mkdir(parents=True, exist_ok=True)
        project.write_splits(corpus)
        say("training the tokenizer")
        project.train_tokenizers()
        project.save_config()
        return project

    def save_config(self) -> None:
        atomic_write_bytes(self.config_path, self.config.to_toml().encode("utf-8"))

    def validate_model(self) -> None:
        """Check the model settings now (with placeholder vocab sizes) so errors come early."""
        spec = models.get_spec(self.config.model_name)
        spec.check_task(self.config.task)
        models.build_config(
            spec.name, self.config.model, src_vocab_size=64, tgt_vocab_size=64, pad_id=0
        )

    # ----------------------------------------------------------------- data
    def write_splits(self, corpus: Corpus) -> None:
        data = self.config.data
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        if corpus.task == "continuation":
            parts = split_text(
                corpus.text, valid_fraction=data.valid_fraction,
                test_fraction=data.test_fraction, seed=data.split_seed, mode=data.split,
            )
            for split in SPLITS:
                atomic_write_bytes(self.split_path(split), parts[split].encode("utf-8"))
            return
        parts = split_pairs(
            corpus.pairs, valid_fraction=data.valid_fraction,
            test_fraction=data.test_fraction, seed=data.split_seed,
            by_source=splits_by_source(corpus.task), mode=data.split,
        )
        for split in SPLITS:
            lines = [
                json.dumps({"source": p.source, "target": p.target, "extra": p.extra},
                           ensure_ascii=False)
                for p in parts[split]
            ]
            atomic_write_bytes(self.split_path(split), ("\n".join(lines) + "\n").encode("utf-8"))

    def load_pairs(self, split: str) -> list[Pair]:
        """The split's pairs; for a novel, its consecutive passages (a seq2seq model's training
        pairs, see :mod:`textgen_core.passages`), each cut to what one side of the model holds."""
        if self.config.task == "continuation":
            return passage_pairs(self.load_text(split), self.passage_chars())
        path = self.split_path(split)
        if not path.is_file():
            raise ConfigError(f"{path}: split file missing; re-create the project with textgen init")
        pairs = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                pairs.append(Pair(obj["source"], obj["target"], obj.get("extra", "")))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise TextGenError(f"{path}:{lineno}: damaged split file") from None
        return pairs

    def passage_chars(self) -> int:
        """The longest passage of a continuation pair: the model's block (or ``data.max_len``, if
        shorter) less the eos, counted in characters (a token holds at least one)."""
        spec = models.get_spec(self.config.model_name)
        config = models.build_config(spec.name, self.config.model, src_vocab_size=64,
                                     tgt_vocab_size=64, pad_id=0)
        block = int(getattr(config, "block_size", self.config.data.max_len))
        return max(2, min(self.config.data.max_len, block) - 1)

    def load_text(self, split: str) -> str:
        path = self.split_path(split)
        if not path.is_file():
            raise ConfigError(f"{path}: split file missing; re-create the project with textgen init")
        return path.read_text(encoding="utf-8")

    # ----------------------------------------------------------------- tokenizers
    def train_tokenizers(self) -> None:
        cfg = self.config.tokenizer
        if self.config.task == "continuation":
            lines = [ln for ln in self.load_text("train").split("\n") if ln.strip()]
            Tokenizer.train(lines, cfg, self.tokenizer_path("src"))
            return
        pairs = self.load_pairs("train")
        if cfg.shared or self.is_lm:        # a language model reads source and target as one text
            lines = [p.source for p in pairs] + [p.target for p in pairs]
            Tokenizer.train(lines, cfg, self.tokenizer_path("src"))
        else:
            Tokenizer.train([p.source for p in pairs], cfg, self.tokenizer_path("src"))
            Tokenizer.train([p.target for p in pairs], cfg, self.tokenizer_path("tgt"))

    def tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        """(source, target) tokenizers; the same object when the vocabulary is shared."""
        src = Tokenizer.load(self.tokenizer_path("src"))
        if self.tokenizer_path("tgt") == self.tokenizer_path("src"):
            return src, src
        return src, Tokenizer.load(self.tokenizer_path("tgt"))

    # ----------------------------------------------------------------- runs and info
    def run_ids(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.name for p in self.runs_dir.iterdir() if (p / "metrics.jsonl").is_file())

    def read_metrics(self, run_id: str) -> list[dict[str, Any]]:
        """Events of one run (lines that are not JSON, e.g. cut off by a crash, are skipped)."""
        events = []
        path = self.runs_dir / run_id / "metrics.jsonl"
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return events

    def info(self) -> dict[str, Any]:
        """A summary for ``textgen info`` and the studio."""
        cfg = self.config
        if cfg.task == "continuation":
            examples = {s: _count_paragraphs(self.load_text(s)) for s in SPLITS}
        else:
            examples = {s: len(self.load_pairs(s)) for s in SPLITS}
        src_tok, tgt_tok = self.tokenizers()
        checkpoints = {}
        for which in ("last", "best"):
            path = self.checkpoint_path(which)
            if path.is_file():
                summary = read_summary(path)
                checkpoints[which] = {"path": str(path), "bytes": summary.bytes, "step": summary.step,
                                      "resumable": summary.resumable}
        return {
            "project": str(self.root),
            "name": cfg.name,
            "task": cfg.task,
            "model": cfg.model_name,
            "model_settings": dict(cfg.model),
            "tokenizer": {
                "kind": cfg.tokenizer.kind,
                "shared": src_tok is tgt_tok,
                "vocab_size": src_tok.vocab_size,
                "tgt_vocab_size": tgt_tok.vocab_size,
            },
            "examples": examples,
            "sources": list(cfg.sources),
            "checkpoints": checkpoints,
            "base": self.config.base or None,
            "runs": self.run_ids(),
        }


def check_new_folder(root: Path) -> None:
    """Refuse a folder that already holds a project, or a path that is a file."""
    if (root / "project.toml").exists():
        raise ConfigError(f"{root}: a project already exists here (open it, or pick a new folder)")
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root}: exists and is not a folder")


def _count_paragraphs(text: str) -> int:
    return sum(1 for line in text.split("\n") if line.strip())


def initial_config(
    root: Path,
    task: str,
    data_files: Sequence[str | os.PathLike],
    model: str | None,
    preset: str,
    tokenizer: str | None,
    vocab_size: int | None,
) -> ProjectConfig:
    """Settings for a new project from the ``textgen init`` choices."""
    if task not in TASKS:
        raise ConfigError(f"unknown task '{task}'; choose {', '.join(TASKS)}")
    model_name = model or models.default_model(task)
    spec = models.get_spec(model_name)
    spec.check_task(task)
    if preset not in spec.presets or preset not in TRAIN_PRESETS:
        raise ConfigError(f"unknown preset '{preset}'; choose tiny, small or base")
    model_settings = dict(spec.presets[preset])
    if task != "continuation":
        model_settings.update(spec.pair_settings)
    kind = tokenizer or DEFAULT_TOKENIZER.get(task, "char")
    if spec.same_length and kind != "char":
        raise ConfigError(f"{spec.name} writes one character per character of the first line: it "
                          f"needs --tokenizer char, not {kind}")
    tok = TokenizerConfig(kind=kind, vocab_size=vocab_size or DEFAULT_VOCAB.get(kind, 8000))
    block = int(model_settings.get("block_size", 64))
    data = DataConfig(max_len=block)
    if task == "continuation":
        data = replace(data, valid_fraction=0.1, test_fraction=0.0)
    return ProjectConfig(
        task=task,
        name=root.name or "project",
        data=data,
        tokenizer=tok,
        model_name=model_name,
        model=model_settings,
        train=TrainConfig(**models.train_settings(model_name, preset)),
        generate=DEFAULT_DECODING[task],
        sources=tuple(str(Path(f).resolve()) for f in data_files),
    )
