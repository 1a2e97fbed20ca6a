"""The ``textgen`` command line: everything the studio does, headless.

Errors in use or input exit with status 2 and one line ``error: ...`` on stderr (the full traceback
only with ``--debug``). ``textgen train`` under ``torchrun`` trains data-parallel.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from textgen_core.errors import ConfigError, NotTrainedError, TextGenError
from textgen_core.training import events
from textgen_core.training.progress import Progress, format_metrics

log = logging.getLogger("textgen")

# --no-rule NAME -> the DecodeConfig switch it turns off
COUPLET_RULES = ("length", "punctuation", "repeats", "reuse")
_RULE_FIELDS = {"length": "couplet_length", "punctuation": "couplet_punctuation",
                "repeats": "couplet_repeats", "reuse": "couplet_no_reuse"}


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one ``error:`` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="textgen", description="Train and use text generation models.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print results")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("init", help="create a project from corpus files")
    p.add_argument("dir", type=Path)
    p.add_argument("--task", choices=("couplet", "translation", "continuation"),
                   help="required unless --from gives it")
    p.add_argument("--from", dest="base", type=Path, metavar="PROJECT",
                   help="start from a trained project's tokenizer and weights (fine-tuning)")
    p.add_argument("--data", required=True, nargs="+", metavar="FILE",
                   help="one file (TSV/CSV or text) or two line-aligned files")
    p.add_argument("--model", help="architecture (see textgen models); default per task")
    p.add_argument("--preset", choices=("tiny", "small", "base"), help="model size (default tiny)")
    p.add_argument("--tokenizer", choices=("char", "bpe", "unigram"))
    p.add_argument("--vocab-size", type=int)
    p.add_argument("--swap", action="store_true", help="translation: target -> source")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting by its dotted name, e.g. train.batch_size=16")

    p = sub.add_parser("info", help="show a project's data, tokenizer, model and checkpoints")
    p.add_argument("dir", type=Path)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("train", help="train (or resume) a project's model")
    p.add_argument("dir", type=Path)
    p.add_argument("--steps", type=int, help="train up to this many steps in all")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pt")
    p.add_argument("--restart", action="store_true", help="train from scratch, replacing checkpoints")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting for this run and save it in project.toml")

    p = sub.add_parser("generate", help="write with a trained model")
    p.add_argument("dir", type=Path)
    p.add_argument("text", nargs="*", help="inputs (first lines, sources or prompts)")
    p.add_argument("--input", type=Path, help="a file with one input per line")
    p.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="inputs decoded together (default 32)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--min-p", type=float, help="sampling: drop tokens below P x the top token's probability")
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--no-repeat-ngram", type=int, metavar="N", help="never repeat an N-gram")
    p.add_argument("--greedy", action="store_true")
    p.add_argument("--beam", type=int, metavar="N", help="beam search with N beams")
    p.add_argument("--length-penalty", type=float, metavar="A", help="beam: GNMT length penalty alpha")
    p.add_argument("--coverage-penalty", type=float, metavar="B",
                   help="beam, attention models: GNMT coverage penalty beta (0 = off)")
    p.add_argument("--n-best", type=int, metavar="N", help="return N hypotheses")
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--alternatives", type=int, metavar="K",
                   help="--json: the K most likely tokens at each position (default 5)")
    p.add_argument("--lock", action="append", default=[], metavar="POS=CHAR",
                   help="couplets: the second line has CHAR at position POS (1-based); repeatable")
    p.add_argument("--tone", choices=("soft", "hard", "off"),
                   help="couplets: the last characters' 平仄 contrast as a preference, a rule, or not")
    p.add_argument("--no-rule", action="append", default=[], choices=COUPLET_RULES, metavar="RULE",
                   help="couplets: switch a form rule off: " + ", ".join(COUPLET_RULES) + "; repeatable")
    p.add_argument("--checkpoint", default="best", help="best, last, or a checkpoint file")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--json", action="store_true", help="one JSON object per input")

    p = sub.add_parser("evaluate", help="BLEU/chrF/loss of a project's model on a corpus")
    p.add_argument("dir", type=Path)
    p.add_argument("--data", required=True, nargs="+", metavar="FILE")
    p.add_argument("--checkpoint", default="best")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("export", help="write a trained model in another program's format")
    p.add_argument("dir", type=Path)
    p.add_argument("--format", required=True, choices=("hf",),
                   help="hf: a Hugging Face transformers GPT-2 folder (gpt models)")
    p.add_argument("out", type=Path, help="the folder to write (created; must be empty if it exists)")
    p.add_argument("--checkpoint", default="best", help="best, last, or a checkpoint file")

    p = sub.add_parser("models", help="list the available architectures")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Progress goes to stdout so that stderr carries nothing but problems; with --json stdout is
    # reserved for the JSON, and only warnings are shown (on stderr).
    as_json = getattr(args, "json", False)
    logging.basicConfig(
        level=logging.WARNING if args.quiet or as_json else logging.INFO,
        format="%(message)s" if not args.debug else "%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr if as_json else sys.stdout,
    )
    if not args.debug:
        for noisy in ("textgen_core.training.checkpoint", "textgen_core.training.distributed"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    code = _run(args)
    if args.command == "train" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """End a data-parallel process without C++ static destructors: the gloo process group leaves
    threads that abort the process at exit now and then ('terminate called without an active
    exception', about 1 run in 7 on 2 CPUs), which torchrun reports as a failed run although
    training finished and every checkpoint was written and synced."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _run(args: argparse.Namespace) -> int:
    commands = {"init": cmd_init, "info": cmd_info, "train": cmd_train,
                "generate": cmd_generate, "evaluate": cmd_evaluate, "export": cmd_export,
                "models": cmd_models}
    try:
        return commands[args.command](args)
    except TextGenError as exc:
        if args.debug:
            raise
        hint = f"; run textgen train {args.dir} first" if isinstance(exc, NotTrainedError) else ""
        sys.stderr.write(f"error: {exc}{hint}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # an unexpected failure: still one line unless --debug
        if args.debug:
            raise
        sys.stderr.write(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug)\n")
        return 1


def cmd_init(args: argparse.Namespace) -> int:
    from textgen_core.project import Project

    overrides = list(args.overrides) + (["data.swap=true"] if args.swap else [])
    if args.base is not None:
        project = _init_from(args, overrides)
    elif args.task is None:
        raise ConfigError("init: --task is required (or --from PROJECT to start from a trained model)")
    else:
        project = Project.create(
            args.dir, args.task, args.data, model=args.model, preset=args.preset or "tiny",
            tokenizer=args.tokenizer, vocab_size=args.vocab_size, overrides=overrides,
            progress=log.info,
        )
    info = project.info()
    ex = info["examples"]
    print(f"created {project.root}: {info['task']} with {info['model']}, "
          f"{ex['train']} train / {ex['valid']} valid / {ex['test']} test examples, "
          f"vocabulary {info['tokenizer']['vocab_size']}")
    return 0


def _init_from(args: argparse.Namespace, overrides: list[str]) -> Any:
    from textgen_core.project_from import create_from

    given = [flag for flag, value in (("--model", args.model), ("--tokenizer", args.tokenizer),
                                      ("--vocab-size", args.vocab_size),
                                      ("--preset", args.preset))
             if value is not None]
    if given:
        raise ConfigError(f"init: {given[0]} cannot be used with --from (the base project's model and "
                         "tokenizer are kept; change training settings with --set)")
    project, report = create_from(args.dir, args.base, args.data, task=args.task,
                                  overrides=overrides, progress=log.info)
    if report.unknown:
        print(report.message())
    return project


def cmd_info(args: argparse.Namespace) -> int:
    from textgen_core.project import Project

    info = Project.open(args.dir).info()
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
        return 0
    ex = info["examples"]
    print(f"project    {info['project']} ({info['task']})")
    print(f"model      {info['model']} {_settings(info['model_settings'])}")
    tok = info["tokenizer"]
    print(f"tokenizer  {tok['kind']}, vocabulary {tok['vocab_size']}"
          + ("" if tok["shared"] else f" / {tok['tgt_vocab_size']} (target)"))
    print(f"examples   train {ex['train']}, valid {ex['valid']}, test {ex['test']}")
    for which, ckpt in info["checkpoints"].items():
        print(f"checkpoint {which}: {_checkpoint_summary(ckpt)}")
    if info["runs"]:
        print(f"runs       {', '.join(info['runs'])}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from textgen_core.project import Project
    from textgen_core.training.distributed import shutdown
    from textgen_core.training.run import train_project

    project = Project.open(args.dir)
    if args.overrides:
        project.config = project.config.with_overrides(args.overrides)
        project.validate_model()
        project.save_config()
    stop = {"requested": False}

    def on_stop_signal(signum: int, frame: Any) -> None:   # Ctrl-C, and SIGTERM (logout, kill)
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        again = "Ctrl-C" if signum == signal.SIGINT else "the signal"
        log.warning("stopping after this step (%s again to abort without saving)", again)

    previous = {sig: signal.signal(sig, on_stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    progress = Progress()
    try:
        outcome = train_project(
            project, steps=args.steps, device=args.device, resume=args.resume,
            restart=args.restart, on_event=lambda event: _print_event(event, progress),
            should_stop=lambda: stop["requested"],
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutdown()
    if int(os.environ.get("RANK", "0")) == 0:      # under torchrun, rank 0 speaks for the run
        best = "" if outcome.best_val_loss == float("inf") else f", best val loss {outcome.best_val_loss:.4f}"
        print(f"{outcome.status} at step {outcome.step}{best} (run {outcome.run_id})")
    return 0


def _print_event(event: events.Event, progress: Progress) -> None:
    progress.update(event)
    if isinstance(event, events.Config):
        log.info("training %s (%s parameters) on %s%s", event.model, f"{event.parameters:,}",
                 event.device, f", {event.world_size} processes" if event.world_size > 1 else "")
    elif isinstance(event, events.Step):
        log.info("%s", progress.step_line(event))
    elif isinstance(event, events.Eval):
        parts = [f"val loss {event.val_loss:.4f}"] if event.val_loss is not None else []
        parts += [f"ppl {event.val_ppl:.2f}"] if event.val_ppl is not None else []
        parts += [f"{k} {getattr(event, k):.2f}" for k in ("bleu", "chrf") if getattr(event, k) is not None]
        log.info("%s  %s%s%s", progress.position(event.step), "  ".join(parts),
                 format_metrics(event.metrics), "  (best)" if event.best else "")
    elif isinstance(event, events.Sample):
        for sample in event.samples:
            log.info("    %s -> %s", sample.prompt, sample.output)


def cmd_generate(args: argparse.Namespace) -> int:
    from textgen_core.corpus import read_text
    from textgen_core.decoding.couplet_rules import parse_locks
    from textgen_core.generation import Generator
    from textgen_core.project import Project

    project = Project.open(args.dir)
    inputs = list(args.text)
    if args.input is not None:
        text, _ = read_text(args.input)
        inputs += [line for line in text.split("\n") if line.strip()]
    if not inputs and not (project.is_lm and project.config.task == "continuation"):
        raise TextGenError("nothing to generate from: give TEXT arguments or --input FILE")
    if args.batch_size < 1:
        raise TextGenError(f"--batch-size must be at least 1, got {args.batch_size}")
    config = decode_config(project.config.generate, args)
    locks = parse_locks(args.lock)
    if locks and project.config.task != "couplet":
        raise TextGenError("--lock fixes characters of a couplet's second line; this project writes "
                           f"{project.config.task}")
    generator = Generator.open(project, args.checkpoint, args.device)
    texts = inputs or [""]
    for start in range(0, len(texts), args.batch_size):
        chunk = texts[start : start + args.batch_size]
        try:
            results = generator.generate_many(chunk, config, locks=[locks] * len(chunk),
                                              batch_size=args.batch_size)
        except TextGenError as exc:
            raise TextGenError(_renumbered(str(exc), start)) from None
        for result in results:
            _print_result(result, generator.task, args.json)
    return 0


def _renumbered(message: str, offset: int) -> str:
    """"input 3: ..." of a batch starting at input ``offset + 1`` -> the input's number in the run."""
    head, sep, rest = message.partition(": ")
    if sep and head.startswith("input ") and head[6:].isdigit():
        return f"input {int(head[6:]) + offset}: {rest}"
    return message


def _print_result(result: Any, task: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False), flush=True)
        return
    for rank, hyp in enumerate(result.hypotheses, 1):
        shown = result.prompt + hyp.text if task == "continuation" else hyp.text
        prefix = f"{rank}. " if len(result.hypotheses) > 1 else ""
        print(f"{prefix}{shown}" + (f"  ({hyp.score:.3f})" if prefix else ""), flush=True)


def decode_config(defaults: Any, args: argparse.Namespace) -> Any:
    """The project's [generate] defaults, overridden by the command line."""
    changes: dict[str, Any] = {}
    for name in ("temperature", "top_k", "top_p", "min_p", "repetition_penalty", "no_repeat_ngram",
                 "length_penalty", "coverage_penalty", "max_tokens", "seed", "n_best", "alternatives",
                 "tone"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    for rule in getattr(args, "no_rule", None) or ():
        changes[_RULE_FIELDS[rule]] = False
    if args.greedy and args.beam:
        raise TextGenError("choose one of --greedy and --beam")
    if args.greedy:
        changes["strategy"] = "greedy"
    elif args.beam is not None:
        changes.update(strategy="beam", beam_size=args.beam)
    elif any(k in changes for k in ("temperature", "top_k", "top_p", "min_p")):
        changes["strategy"] = "sample"
    strategy = changes.get("strategy", defaults.strategy)
    n_best = changes.get("n_best", defaults.n_best)
    if strategy == "greedy":
        if "n_best" in changes and n_best != 1:
            raise TextGenError("--n-best needs --beam N or sampling; greedy decoding gives one output")
        changes["n_best"] = 1
    elif strategy == "beam" and n_best > changes.get("beam_size", defaults.beam_size):
        if "n_best" in changes:
            raise TextGenError(f"--n-best {n_best} is more than the beam size; use --beam {n_best} or more")
        changes["n_best"] = changes.get("beam_size", defaults.beam_size)
    return dataclasses.replace(defaults, **changes)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from textgen_core.project import Project
    from textgen_core.project_evaluation import evaluate_project

    result = evaluate_project(Project.open(args.dir), args.data, checkpoint=args.checkpoint,
                              device=args.device)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for key, value in result.items():
            shown = f"{value:.4f}" if isinstance(value, float) else value
            print(f"{key:10} {shown}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from textgen_core.export_hf import export_hf
    from textgen_core.project import Project

    out = export_hf(Project.open(args.dir), args.out, args.checkpoint)
    log.info("wrote %s (load it with transformers' AutoModelForCausalLM.from_pretrained)", out)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from textgen_core import models

    specs = models.list_specs()
    if args.json:
        print(json.dumps([
            {"name": s.name, "kind": s.kind, "tasks": list(s.tasks),
             "description": s.description, "presets": {k: dict(v) for k, v in s.presets.items()}}
            for s in specs
        ], ensure_ascii=False))
        return 0
    for s in specs:
        print(f"{s.name:14} {s.kind:8} {','.join(s.tasks):24} {s.description}")
    return 0


def _checkpoint_summary(ckpt: dict[str, Any]) -> str:
    """``step 300, 2.1 MB, resumable (PATH)`` from an ``info()["checkpoints"]`` entry."""
    from textgen_core.training.checkpoint import format_size

    parts = [f"step {ckpt['step']}"] if ckpt.get("step") is not None else []
    parts.append(format_size(ckpt["bytes"]))
    if ckpt.get("resumable") is not None:
        parts.append("resumable" if ckpt["resumable"] else "for writing only")
    return f"{', '.join(parts)} ({ckpt['path']})"


def _settings(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


if __name__ == "__main__":
    sys.exit(main())
