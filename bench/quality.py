"""Measured quality of the model zoo: couplets, translation and novel continuation.

Every model trains through the product's own API (``Project.create`` + ``train_project``) for the
same wall-clock budget at one preset, and is scored on data it never trained on:

* couplets: the modern couplets of ../shared/data/couplets (the bundled sample where absent), a
  fixed-seed held-out test set; char-level BLEU/chrF of greedy and beam-4 decoding with the couplet
  rules on (``Generator.generate_many``, as the product writes), the share of outputs that keep the
  couplet form (:mod:`textgen_core.couplet_form`; the requirement is 100 %), distinct-1/2 and three
  example outputs per model;
* translation: bahdanau-attention against the transformer on cmn-eng and eng-fra, scored like
  ``textgen evaluate`` on the project's test split (split by source sentence): BLEU and chrF;
* continuation: gpt's validation loss and perplexity on the held-out end of 红楼梦 (its last
  chapters) and of tiny Shakespeare (the last 10 %, as nanoGPT).

Prints markdown tables; ``--json PATH`` writes the record of :mod:`common`.

    python bench/quality.py [--sections couplets translation continuation] [--preset small]
        [--budget 60] [--test-pairs 500] [--max-pairs 40000] [--device auto] [--threads N]
        [--quick] [--json PATH]

``--quick`` is a few-minute CPU smoke run: tiny preset, 10 s budget, 100 test couplets and three
couplet models, cmn-eng only (5,000 pairs), Shakespeare only.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from common import Report, machine, machine_line, shared_file  # noqa: E402

from textgen_core import metrics, models  # noqa: E402
from textgen_core.config import DataConfig  # noqa: E402
from textgen_core.corpus import Pair, load_corpus  # noqa: E402
from textgen_core.couplet_form import check_form, form_share  # noqa: E402
from textgen_core.encoding import read_text  # noqa: E402
from textgen_core.generation import Generator  # noqa: E402
from textgen_core.project import Project  # noqa: E402
from textgen_core.project_evaluation import evaluate_project  # noqa: E402
from textgen_core.training.events import Config, Eval, Event, Step  # noqa: E402
from textgen_core.training.run import train_project  # noqa: E402

log = logging.getLogger("bench.quality")

SECTIONS = ("couplets", "translation", "continuation")
SEED = 1234
QUICK_COUPLET_MODELS = ("transformer", "bahdanau-attention", "cnn-tagger")
TRANSLATION_MODELS = ("bahdanau-attention", "transformer")
TRANSLATION_CORPORA = ("cmn-eng", "eng-fra")
NOVELS = {"hongloumeng": "hongloumeng_ch1-110.txt", "shakespeare": "tiny_shakespeare.txt"}
CHECKPOINT = "last"        # what training got to in the budget (it stops between evaluations)
EXAMPLES = 3
_HEADING = re.compile(r"^\s*第[一二三四五六七八九十百零〇\d]+[章回]", re.M)   # 红楼梦's chapters


def say(text: str = "") -> None:
    """Progress and tables go to stdout as they come (a run takes a while)."""
    print(text, flush=True)


# ----------------------------------------------------------------------------- training


def train_for(project: Project, budget_s: float, device: str) -> dict[str, Any]:
    """Train until the wall-clock budget is spent -> steps, seconds, parameters, last val loss."""
    seen: dict[str, Any] = {"steps": 0, "parameters": None, "train_val_loss": None}

    def on_event(event: Event) -> None:
        if isinstance(event, Config):
            seen["parameters"] = int(event.parameters)
        elif isinstance(event, Step):
            seen["steps"] = int(event.step)
        elif isinstance(event, Eval) and event.val_loss is not None:
            seen["train_val_loss"] = float(event.val_loss)

    start = time.perf_counter()
    train_project(project, steps=1_000_000, device=device, on_event=on_event,
                  should_stop=lambda: time.perf_counter() - start > budget_s)
    seen["train_seconds"] = round(time.perf_counter() - start, 1)
    return seen


def create(root: Path, task: str, files: list[Path], model: str, args: argparse.Namespace,
           overrides: list[str] | None = None) -> Project:
    """A fresh project at the run's preset (quietly: the bench prints its own progress)."""
    return Project.create(root, task, [str(f) for f in files], model=model, preset=args.preset,
                          overrides=overrides or [], progress=lambda _m: None)


def fmt(value: float | None, digits: int = 2) -> str:
    """A figure for a table; n/a for a missing or NaN one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


# ----------------------------------------------------------------------------- couplets


def couplet_data(args: argparse.Namespace, folder: Path) -> tuple[list[Path], list[Pair], str]:
    """The training files (test couplets removed), the held-out test couplets, and where they came from."""
    first, second = shared_file("couplets", "train.in.txt"), shared_file("couplets", "train.out.txt")
    if first and second:
        note = "the modern couplets of ../shared/data/couplets (train.in/out.txt)"
    else:
        first, second = (ROOT / "resources" / "samples" / f"couplets.{side}.txt" for side in ("in", "out"))
        note = "the bundled sample resources/samples/couplets.* (../shared/data/couplets is absent)"
    pairs = list(load_corpus("couplet", [str(first), str(second)]).pairs)
    random.Random(SEED).shuffle(pairs)
    test, train = pairs[: args.test_pairs], pairs[args.test_pairs:]
    files = [folder / "couplets.train.in.txt", folder / "couplets.train.out.txt"]
    files[0].write_text("\n".join(p.source for p in train) + "\n", encoding="utf-8")
    files[1].write_text("\n".join(p.target for p in train) + "\n", encoding="utf-8")
    note += f": {len(train):,} couplets to train on, {len(test):,} held out (seed {SEED})"
    return files, test, note


def decode(gen: Generator, firsts: list[str], config: Any) -> list[str]:
    """The best hypothesis for every first line, in batches of 64 (too long inputs cut, as evaluate does)."""
    results = gen.generate_many(firsts, config, batch_size=64, fit=True)
    return [r.hypotheses[0].text if r.hypotheses else "" for r in results]


def longest_input(gen: Generator) -> int:
    """The longest first line the model reads whole (a prefix LM writes as many characters after it)."""
    block = int(gen.model.config.block_size)
    return block // 2 if gen.is_lm else block - 1


def couplet_scores(project: Project, test: list[Pair], device: str) -> dict[str, Any]:
    """Greedy and beam-4 outputs for the test first lines, scored, with the form check."""
    gen = Generator.from_project(project, CHECKPOINT, device=device)
    firsts, refs = [p.source for p in test], [p.target for p in test]
    beam_config = dataclasses.replace(project.config.generate, strategy="beam", beam_size=4, n_best=1)
    out: dict[str, Any] = {"inputs_cut": sum(len(f) > longest_input(gen) for f in firsts)}
    for name, config in (("greedy", project.config.generate.greedy()), ("beam", beam_config)):
        start = time.perf_counter()
        written = decode(gen, firsts, config)
        out[name] = {
            "bleu": metrics.bleu(written, refs, tokenize="zh"),
            "chrf": metrics.chrf(written, refs),
            "form": form_share(zip(firsts, written)),
            "decode_seconds": round(time.perf_counter() - start, 1),
        }
        if name == "beam":
            out[name]["distinct_1"] = metrics.distinct_n(written, 1)
            out[name]["distinct_2"] = metrics.distinct_n(written, 2)
            out["examples"] = [{"first": f, "written": w, "reference": r, "kept": check_form(f, w).kept}
                               for f, w, r in list(zip(firsts, written, refs))[:EXAMPLES]]
            out["broken"] = [{"first": f, "written": w} for f, w in zip(firsts, written)
                             if not check_form(f, w).kept][:EXAMPLES]
    return out


def couplet_models(args: argparse.Namespace) -> list[str]:
    if args.models:
        return list(args.models)
    if args.quick:
        return list(QUICK_COUPLET_MODELS)
    return sorted(s.name for s in models.list_specs() if "couplet" in s.tasks)


def couplets_section(args: argparse.Namespace, folder: Path) -> tuple[dict[str, Any], str]:
    files, test, note = couplet_data(args, folder)
    say(f"couplets: {note}")
    results: dict[str, Any] = {"data": note, "test_pairs": len(test), "models": {}}
    for name in couplet_models(args):
        say(f"  {name}: training {args.budget:g} s ...")
        try:
            project = create(folder / f"couplet-{name}", "couplet", files, name, args,
                             ["data.test_fraction=0.0"])
            row = train_for(project, args.budget, args.device)
            row.update(couplet_scores(project, test, args.device))
        except Exception as exc:  # one model's failure is a row, not the end of the section
            log.exception("couplets: %s failed", name)
            row = {"error": f"{type(exc).__name__}: {exc}"}
        results["models"][name] = row
    markdown = couplet_markdown(results, args)
    say(markdown)
    return results, markdown


def couplet_markdown(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [f"### Couplets ({args.preset} preset, {args.budget:g} s of training each)", "",
             f"Data: {results['data']}. Scored on the {results['test_pairs']} held-out couplets, "
             f"checkpoint `{CHECKPOINT}`, with the project's couplet rules on; BLEU is char-level "
             "(sacrebleu `zh`). **Form kept** is the share of outputs with the first line's length, "
             "punctuation and mirrored repeats; the requirement is 100 %.", "",
             "| model | steps | greedy BLEU | beam-4 BLEU | beam-4 chrF | **form kept greedy** "
             "| **form kept beam** | distinct-1 | distinct-2 | inputs cut |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    flagged = []
    for name, r in results["models"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | | | | | | |")
            continue
        g, b = r["greedy"], r["beam"]
        kept_g, kept_b = g["form"]["kept"], b["form"]["kept"]
        if min(kept_g, kept_b) < 100.0:
            flagged.append(f"- **{name} breaks the couplet form**: greedy {kept_g:.1f} % kept, beam "
                           f"{kept_b:.1f} % (length {b['form']['length']:.1f} %, punctuation "
                           f"{b['form']['punctuation']:.1f} %, repeats {b['form']['repeats']:.1f} %; "
                           f"{r['inputs_cut']} first lines longer than it reads); e.g. "
                           + "; ".join(f"{e['first']} → {e['written']}" for e in r["broken"]))
        lines.append(f"| {name} | {r['steps']:,} | {fmt(g['bleu'])} | {fmt(b['bleu'])} | {fmt(b['chrf'])} "
                     f"| **{kept_g:.1f} %** | **{kept_b:.1f} %** | {fmt(b['distinct_1'], 3)} "
                     f"| {fmt(b['distinct_2'], 3)} | {r['inputs_cut']} |")
    lines += ["", *(flagged or ["Every model keeps the form in every output (100 %)."]), "",
              "Examples (first line → beam-4 output; reference in brackets):", ""]
    for name, r in results["models"].items():
        for e in r.get("examples", []):
            lines.append(f"- {name}: {e['first']} → {e['written']} ({e['reference']})")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- translation


def translation_corpus(name: str, args: argparse.Namespace, folder: Path) -> tuple[Path, int] | None:
    """The corpus file, subsampled to ``--max-pairs`` rows with the fixed seed; None when absent."""
    path = shared_file("translation", f"{name}.tsv")
    if path is None:
        return None
    rows = [row for row in read_text(path)[0].split("\n") if row.strip()]
    if len(rows) > args.max_pairs:
        rows = random.Random(SEED).sample(rows, args.max_pairs)
        path = folder / f"{name}.{args.max_pairs}.tsv"
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path, len(rows)


def translation_model(corpus: str, path: Path, name: str, args: argparse.Namespace,
                      folder: Path) -> dict[str, Any]:
    """Train one model on the corpus; ``textgen evaluate`` on the project's test split."""
    project = create(folder / f"{corpus}-{name}", "translation", [path], name, args)
    row = train_for(project, args.budget, args.device)
    test = folder / f"{corpus}-{name}.test.tsv"
    test.write_text("".join(f"{p.source}\t{p.target}\n" for p in project.load_pairs("test")),
                    encoding="utf-8")
    scores = evaluate_project(project, [str(test)], checkpoint=CHECKPOINT, device=args.device)
    row.update({key: scores.get(key) for key in ("bleu", "chrf", "loss", "ppl", "examples", "sources")})
    return row


def translation_section(args: argparse.Namespace, folder: Path) -> tuple[dict[str, Any], str]:
    results: dict[str, Any] = {"corpora": {}, "skipped": []}
    for corpus in args.corpora:
        found = translation_corpus(corpus, args, folder)
        if found is None:
            say(f"translation: {corpus}.tsv is absent, skipped")
            results["skipped"].append(corpus)
            continue
        path, rows = found
        entry: dict[str, Any] = {"pairs": rows, "models": {}}
        for name in TRANSLATION_MODELS:
            say(f"  {corpus} {name}: training {args.budget:g} s ...")
            try:
                entry["models"][name] = translation_model(corpus, path, name, args, folder)
            except Exception as exc:
                log.exception("translation: %s on %s failed", name, corpus)
                entry["models"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        results["corpora"][corpus] = entry
    markdown = translation_markdown(results, args)
    say(markdown)
    return results, markdown


def translation_markdown(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [f"### Translation ({args.preset} preset, {args.budget:g} s of training each)", "",
             "Scored like `textgen evaluate` (greedy, the project's settings, checkpoint "
             f"`{CHECKPOINT}`) on each project's test split, which is split by source sentence "
             f"(every translation of a source in one split). Corpora over {args.max_pairs:,} pairs are "
             f"subsampled with seed {SEED}. Direction as the files' columns: English → Chinese, "
             "English → French.", "",
             "| corpus | pairs | model | steps | test sources | BLEU | chrF | loss | perplexity |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for corpus, entry in results["corpora"].items():
        for name, r in entry["models"].items():
            if "error" in r:
                lines.append(f"| {corpus} | {entry['pairs']:,} | {name} | failed: {r['error']} | | | | | |")
                continue
            lines.append(f"| {corpus} | {entry['pairs']:,} | {name} | {r['steps']:,} | {r['sources']} "
                         f"| {fmt(r['bleu'])} | {fmt(r['chrf'])} | {fmt(r['loss'], 3)} | {fmt(r['ppl'])} |")
    if results["skipped"]:
        lines += ["", f"Skipped (absent): {', '.join(results['skipped'])}."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- continuation


def tail_start(text: str, novel: str) -> int:
    """Where the held-out end begins: 红楼梦 at the chapter heading nearest 90 % of the text (its
    last chapters), Shakespeare at 90 % of the characters (nanoGPT's shakespeare_char split)."""
    cut = int(len(text) * 0.9)
    if novel == "hongloumeng":
        headings = [m.start() for m in _HEADING.finditer(text)]
        if headings:
            return min(headings, key=lambda at: abs(at - cut))
    return cut


def has_tail_split() -> bool:
    """Whether projects can hold out the end of a text themselves (``data.split = "tail"``)."""
    return any(f.name == "split" for f in dataclasses.fields(DataConfig))


def continuation_model(novel: str, path: Path, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """gpt on one novel: trained on the head, validation loss and perplexity on the held-out tail."""
    root = folder / f"novel-{novel}"
    if has_tail_split():
        project = create(root, "continuation", [path], "gpt", args, ["data.split=tail"])
        held_out = project.split_path("valid")
        kept, total = len(project.load_text("valid")), len(read_text(path)[0])
        how = (f"held out by the project itself (`data.split = \"tail\"`): the last {kept:,} of "
               f"{total:,} characters, cut at a line boundary")
    else:
        text = read_text(path)[0]
        at = tail_start(text, novel)
        head, held_out = folder / f"{novel}.head.txt", folder / f"{novel}.tail.txt"
        head.write_text(text[:at], encoding="utf-8")
        held_out.write_text(text[at:], encoding="utf-8")
        project = create(root, "continuation", [head], "gpt", args)
        how = (f"held out by the bench (no `data.split` setting): the last {len(text) - at:,} of "
               f"{len(text):,} characters, trained on the rest (the project's random 10 % validation "
               "chunks are inside the head)")
    row = train_for(project, args.budget, args.device)
    scores = evaluate_project(project, [str(held_out)], checkpoint=CHECKPOINT, device=args.device)
    row.update({"held_out": how, "tokens": scores["examples"], "loss": scores["loss"], "ppl": scores["ppl"]})
    return row


def continuation_section(args: argparse.Namespace, folder: Path) -> tuple[dict[str, Any], str]:
    results: dict[str, Any] = {"novels": {}, "skipped": []}
    for novel in args.novels:
        path = shared_file("novels", NOVELS[novel])
        if path is None:
            say(f"continuation: {NOVELS[novel]} is absent, skipped")
            results["skipped"].append(novel)
            continue
        say(f"  gpt on {novel}: training {args.budget:g} s ...")
        try:
            results["novels"][novel] = continuation_model(novel, path, args, folder)
        except Exception as exc:
            log.exception("continuation: %s failed", novel)
            results["novels"][novel] = {"error": f"{type(exc).__name__}: {exc}"}
    markdown = continuation_markdown(results, args)
    say(markdown)
    return results, markdown


def continuation_markdown(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [f"### Continuation (gpt, {args.preset} preset, {args.budget:g} s of training)", "",
             "Validation loss (nats per character token) and perplexity on the held-out end of the "
             f"text, scored like `textgen evaluate` (checkpoint `{CHECKPOINT}`): 红楼梦's last "
             "chapters, Shakespeare's last 10 %.", "",
             "| novel | steps | held-out tokens | loss | perplexity |", "|---|---:|---:|---:|---:|"]
    notes = []
    for novel, r in results["novels"].items():
        if "error" in r:
            lines.append(f"| {novel} | failed: {r['error']} | | | |")
            continue
        lines.append(f"| {novel} | {r['steps']:,} | {r['tokens']:,} | {fmt(r['loss'], 3)} "
                     f"| {fmt(r['ppl'])} |")
        notes.append(f"- {novel}: {r['held_out']}.")
    if results["skipped"]:
        notes.append(f"- Skipped (absent): {', '.join(results['skipped'])}.")
    return "\n".join(lines + [""] + notes) + "\n"


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--preset", default="small", choices=("tiny", "small", "base"))
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds per model")
    parser.add_argument("--test-pairs", type=int, default=500, help="held-out test couplets")
    parser.add_argument("--max-pairs", type=int, default=40_000, help="subsample larger translation corpora")
    parser.add_argument("--models", nargs="*", help="couplet models (default: all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="a few-minute CPU smoke run")
    parser.add_argument("--json", type=Path, help="write the result record here")
    args = parser.parse_args(argv)
    args.corpora, args.novels = list(TRANSLATION_CORPORA), list(NOVELS)
    if args.quick:
        args.preset, args.budget, args.test_pairs, args.max_pairs = "tiny", 10.0, 100, 5000
        args.corpora, args.novels = ["cmn-eng"], ["shakespeare"]
    return args


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    report = Report("quality")
    header = (f"## Quality of the model zoo\n\nMeasured by `{report.command}` on {machine_line(machine())}"
              f"; device {args.device}.\n")
    say(header)
    run = {"couplets": couplets_section, "translation": translation_section,
           "continuation": continuation_section}
    results: dict[str, Any] = {"preset": args.preset, "budget_s": args.budget, "device": args.device}
    parts = [header]
    with tempfile.TemporaryDirectory(prefix="textgen-quality-") as tmp:
        for section in args.sections:
            start = time.perf_counter()
            results[section], markdown = run[section](args, Path(tmp))
            results[section]["seconds"] = round(time.perf_counter() - start, 1)
            parts.append(markdown)
    report.write(args.json, results, "\n".join(parts))
    if args.json:
        say(f"written to {args.json}")


if __name__ == "__main__":
    main()
