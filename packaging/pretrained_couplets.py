"""Data and packing steps of the bundled ready-to-write couplet model (see its README).

    python packaging/pretrained_couplets.py split OUT      # the held-out splits and the training mix
    python packaging/pretrained_couplets.py pack PROJECT   # copy a trained project into resources/

``split`` shuffles the modern couplets (../shared/data/couplets/train.*) with a fixed seed and holds
out 1,000 for validation and 1,000 for test; it writes those, the remaining modern couplets
(``modern.train``) and ``mix`` = the classical parallel lines (``poetry.*``) followed by
``modern.train``. Every file is line-aligned ``.in.txt`` / ``.out.txt``, the ``textgen init`` input.

``pack`` copies the project folder to ``resources/pretrained/couplets`` without what writing does
not need: last.pt (the training state) is dropped (the runs' metrics stay: the loss curves), best.pt
is rewritten with fp16 weights (the loader casts them back to the model's dtype), and project.toml
is named ``ready-couplets`` and loses the corpus paths of the machine it was trained on.

Training itself is the product's own ``textgen init`` / ``textgen train``; the commands are in
``resources/pretrained/couplets/README.md``. This file is a script, not a module (``packaging/``
must not become an importable package).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "couplets"
TARGET = ROOT / "resources" / "pretrained" / "couplets"
HELD_OUT = 1000
SEED = 2026


def _pairs(stem: Path) -> list[tuple[str, str]]:
    first = stem.with_name(stem.name + ".in.txt").read_text(encoding="utf-8").splitlines()
    second = stem.with_name(stem.name + ".out.txt").read_text(encoding="utf-8").splitlines()
    if len(first) != len(second):
        raise SystemExit(f"{stem}: .in.txt has {len(first)} lines, .out.txt {len(second)}")
    return list(zip(first, second, strict=True))


def _write(out: Path, name: str, pairs: list[tuple[str, str]]) -> None:
    for side, suffix in ((0, "in"), (1, "out")):
        text = "".join(pair[side] + "\n" for pair in pairs)
        (out / f"{name}.{suffix}.txt").write_text(text, encoding="utf-8")
    print(f"{out / name}.{{in,out}}.txt: {len(pairs):,} pairs")


def split(out: Path, data: Path) -> None:
    modern = _pairs(data / "train")
    poetry = _pairs(data / "poetry")
    random.Random(SEED).shuffle(modern)
    test, valid, train = modern[:HELD_OUT], modern[HELD_OUT:2 * HELD_OUT], modern[2 * HELD_OUT:]
    held_out = {first for first, _ in test + valid}
    train = [p for p in train if p[0] not in held_out]        # a repeated first line stays out
    poetry = [p for p in poetry if p[0] not in held_out]
    out.mkdir(parents=True, exist_ok=True)
    _write(out, "modern.test", test)
    _write(out, "modern.valid", valid)
    _write(out, "modern.train", train)
    _write(out, "mix", poetry + train)


def pack(project: Path, target: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from dataclasses import replace

    from textgen_core.config import ProjectConfig
    from textgen_core.training.checkpoint import atomic_write_bytes, load_checkpoint, save_checkpoint

    best = project / "checkpoints" / "best.pt"
    content = load_checkpoint(best)
    content["model"] = {k: v.half() if v.is_floating_point() else v for k, v in content["model"].items()}
    readme = target / "README.md"
    kept = readme.read_bytes() if readme.is_file() else None      # written by hand: kept
    if target.exists():
        shutil.rmtree(target)
    keep = ("tokenizer.model", "tokenizer.tgt.model", "data", "runs")     # runs: its loss curves
    target.mkdir(parents=True)
    config = ProjectConfig.load(project / "project.toml")     # no paths of the machine it came from
    config = replace(config, name="ready-couplets", sources=(), base="")
    atomic_write_bytes(target / "project.toml", config.to_toml().encode("utf-8"))
    for name in keep:
        path = project / name
        if path.is_dir():
            shutil.copytree(path, target / name)
        elif path.is_file():
            shutil.copy2(path, target / name)
    save_checkpoint(target / "checkpoints" / "best.pt", content)
    if kept is not None:
        readme.write_bytes(kept)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"{target}: {size / 1e6:.1f} MB (step {content['step']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("split")
    p.add_argument("out", type=Path)
    p.add_argument("--data", type=Path, default=DATA)
    p = sub.add_parser("pack")
    p.add_argument("project", type=Path)
    p.add_argument("--target", type=Path, default=TARGET)
    args = parser.parse_args()
    if args.command == "split":
        split(args.out, args.data)
    else:
        pack(args.project, args.target)


if __name__ == "__main__":
    main()
