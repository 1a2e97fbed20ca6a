"""A new project that starts from a trained one (``textgen init DIR --from PROJECT``).

The new project takes the base project's tokenizer, architecture and settings and a copy of its
weights (``checkpoints/base.pt``); only the corpus is the user's. Training it starts from those
weights instead of from random ones, so fine-tuning the bundled couplet model on a few thousand
couplets of one's own takes minutes. Characters of the new corpus that the base tokenizer lacks are
reported (how many, which) and are read as ``<unk>``, one per character.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from textgen_core.config import ProjectConfig, TrainConfig
from textgen_core.corpus import load_corpus
from textgen_core.errors import ConfigError
from textgen_core.project import Project, check_new_folder
from textgen_core.tokenizer import Tokenizer
from textgen_core.training.checkpoint import (
    LEGACY_TRAINING_KEYS,
    TRAINING_KEYS,
    atomic_write_bytes,
    load_checkpoint,
    save_checkpoint,
)

log = logging.getLogger(__name__)

# Fine-tuning needs fewer, gentler steps than training from nothing.
FINE_TUNE_STEPS = 1000
FINE_TUNE_WARMUP = 50
FINE_TUNE_EVAL_EVERY = 100
UNKNOWN_SHOWN = 20         # characters named in the report


@dataclass(frozen=True)
class VocabularyReport:
    """Characters of the new corpus's training split that the base tokenizer cannot read."""

    unknown: tuple[tuple[str, int], ...]     # (character, occurrences), most frequent first
    characters: int                          # characters in the split (spaces excluded)

    @property
    def occurrences(self) -> int:
        return sum(n for _, n in self.unknown)

    def message(self) -> str:
        if not self.unknown:
            return "every character of the corpus is in the base model's vocabulary"
        shown = " ".join(f"{ch}×{n}" if n > 1 else ch for ch, n in self.unknown[:UNKNOWN_SHOWN])
        more = f" and {len(self.unknown) - UNKNOWN_SHOWN} more" if len(self.unknown) > UNKNOWN_SHOWN else ""
        share = 100.0 * self.occurrences / max(1, self.characters)
        return (f"{len(self.unknown)} characters of the corpus are not in the base model's vocabulary "
                f"({self.occurrences:,} occurrences, {share:.2f} % of the text): {shown}{more}; "
                "each is read as <unk>")


def base_checkpoint(base: Project) -> Path:
    """The base project's best checkpoint (its last when it has no best)."""
    for which in ("best", "last"):
        path = base.checkpoint_path(which)
        if path.is_file():
            return path
    raise ConfigError(f"{base.root}: no trained model to start from (train it first)")


def create_from(
    root: str | os.PathLike,
    base_dir: str | os.PathLike,
    data_files: Sequence[str | os.PathLike],
    *,
    task: str | None = None,
    overrides: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
) -> tuple[Project, VocabularyReport]:
    """Create a project at ``root`` from ``data_files`` that starts from ``base_dir``'s model."""
    say = progress or log.info
    root = Path(root)
    base = Project.open(base_dir)
    if task is not None and task != base.config.task:
        raise ConfigError(f"{base.root}: is a {base.config.task} model; it cannot start a {task} "
                          "project")
    check_new_folder(root)
    ckpt_path = base_checkpoint(base)
    say(f"reading the model of {ckpt_path}")
    ckpt = load_checkpoint(ckpt_path)
    config = fine_tune_config(base, root, data_files).with_overrides(overrides)
    project = Project(root, config)
    project.validate_model()
    say(f"reading {', '.join(str(f) for f in data_files)}")
    corpus = load_corpus(config.task, data_files, swap=config.data.swap)
    for warning in corpus.warnings:
        say(f"warning: {warning}")
    root.mkdir(parents=True, exist_ok=True)
    project.write_splits(corpus)
    _write_tokenizers(project, ckpt)
    weights = {k: v for k, v in ckpt.items() if k not in TRAINING_KEYS + LEGACY_TRAINING_KEYS}
    weights["base"] = {"project": str(base.root.resolve()), "checkpoint": ckpt_path.name,
                       "step": int(ckpt["step"])}
    save_checkpoint(project.base_checkpoint_path, weights)
    project.save_config()
    return project, vocabulary_report(project)


def fine_tune_config(base: Project, root: Path, data_files: Sequence[str | os.PathLike]
                     ) -> ProjectConfig:
    """The base project's settings for a new corpus, with a short, gentle training schedule that
    decays (cosine) whatever the base used."""
    train: TrainConfig = base.config.train
    learning_rate = train.learning_rate / 2
    train = replace(
        train, steps=min(train.steps, FINE_TUNE_STEPS), learning_rate=learning_rate,
        min_lr=min(train.min_lr, learning_rate), warmup_steps=min(train.warmup_steps, FINE_TUNE_WARMUP),
        eval_every=min(train.eval_every, FINE_TUNE_EVAL_EVERY), schedule="cosine",
    )
    return replace(base.config, name=root.name or "project", train=train,
                   base=str(base.root.resolve()), sources=tuple(str(Path(f).resolve()) for f in data_files))


def _write_tokenizers(project: Project, ckpt: dict[str, Any]) -> None:
    """The base model's own tokenizers (the ones its weights were trained with)."""
    tokenizers = ckpt["tokenizers"]
    atomic_write_bytes(project.tokenizer_path("src"), tokenizers["src"])
    if tokenizers.get("tgt") and project.tokenizer_path("tgt") != project.tokenizer_path("src"):
        atomic_write_bytes(project.tokenizer_path("tgt"), tokenizers["tgt"])


def vocabulary_report(project: Project) -> VocabularyReport:
    """Which characters of the training split the project's tokenizers read as ``<unk>``."""
    src_tok, tgt_tok = project.tokenizers()
    if project.config.task == "continuation":
        sides = [(project.load_text("train"), src_tok)]
    else:
        pairs = project.load_pairs("train")
        sides = [("".join(p.source for p in pairs), src_tok), ("".join(p.target for p in pairs), tgt_tok)]
    unknown: Counter[str] = Counter()
    total = 0
    for text, tok in sides:
        counts = Counter(ch for ch in text if not ch.isspace())
        total += sum(counts.values())
        for ch, n in counts.items():
            if _unknown(tok, ch):
                unknown[ch] += n
    return VocabularyReport(tuple(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0]))), total)


def _unknown(tok: Tokenizer, ch: str) -> bool:
    if tok.kind == "char":
        return not tok.has_char(ch)
    return tok.unk_id in tok.encode(ch)
