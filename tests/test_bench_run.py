"""bench/run.py: the plan (--quick, --only, --skip), docs/BENCHMARKS.md from JSON records, and a
failing or missing benchmark reported while the others run. No real benchmark runs here."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_runner():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


run = _load_runner()


def _names(steps) -> list[str]:
    return [s.bench.name for s in steps]


def _args(steps, name: str) -> list[str]:
    return next(s.command[2:] for s in steps if s.bench.name == name)


def test_full_plan_runs_everything_with_default_arguments(tmp_path):
    steps = run.plan(run.benches(gpu=False), results=tmp_path)
    assert _names(steps) == ["train_throughput", "studio_throughput", "studio_startup", "memory",
                             "decoding", "models", "quality", "shakespeare", "seqgan_oracle"]
    for step in steps:
        assert step.command[-2:] == ["--json", str(tmp_path / f"{step.bench.name}.json")]
        assert step.json_path == tmp_path / f"{step.bench.name}.json"
    assert _args(steps, "train_throughput") == ["--json", str(tmp_path / "train_throughput.json")]
    assert "--gpu-config" not in _args(steps, "shakespeare")
    gpu = run.plan(run.benches(gpu=True), results=tmp_path)
    assert "--gpu-config" in _args(gpu, "shakespeare")


def test_quick_plan_uses_small_arguments_and_leaves_out_seqgan(tmp_path):
    steps = run.plan(run.benches(gpu=False), quick=True, results=tmp_path)
    assert "seqgan_oracle" not in _names(steps)
    assert _args(steps, "train_throughput")[:4] == ["--steps", "20", "--rounds", "2"]
    assert _args(steps, "studio_throughput")[:4] == ["--steps", "40", "--rounds", "2"]
    assert _args(steps, "studio_startup")[:2] == ["--rounds", "1"]
    assert _args(steps, "memory")[:2] == ["--presets", "tiny"]
    assert "--quick" in _args(steps, "quality")
    assert "--quick" in _args(steps, "shakespeare")
    models = _args(steps, "models")
    assert models[models.index("--presets") + 1] == "tiny" and models[models.index("--budget") + 1] == "5"
    decoding = _args(steps, "decoding")
    assert decoding[decoding.index("--sections") + 1] == "kv-cache"
    # the quick run writes its own pages beside the records, not over docs/decoding.md, docs/models.md
    assert "docs/" not in " ".join(decoding + models)


def test_only_and_skip(tmp_path):
    benches = run.benches(gpu=False)
    only = run.plan(benches, quick=True, only=["memory", "train_throughput"], results=tmp_path)
    assert _names(only) == ["train_throughput", "memory"]           # in the plan's order
    seqgan = run.plan(benches, quick=True, only=["seqgan_oracle"], results=tmp_path)
    assert _names(seqgan) == ["seqgan_oracle"]           # named: runs, though --quick leaves it out
    skipped = run.plan(benches, skip=["models", "quality"], results=tmp_path)
    assert "models" not in _names(skipped) and "quality" not in _names(skipped)
    assert len(skipped) == len(benches) - 2
    with pytest.raises(ValueError, match="nonsense"):
        run.plan(benches, only=["nonsense"])


def _record(bench: str, markdown: str, *, gpu: str | None = None, seconds: float = 12.3) -> dict:
    return {"bench": bench, "command": f"python bench/{bench}.py --json bench/results/{bench}.json",
            "machine": {"cpu": "Test CPU 9000", "cores": 2, "torch_threads": 2, "load_average": 0.1,
                        "gpu": gpu, "python": "3.12", "torch": "2.x", "platform": "Linux"},
            "started": "2026-12-03T10:00:00Z", "seconds": seconds, "results": {"x": 1},
            "markdown": markdown}


def test_report_from_two_hand_made_records(tmp_path):
    results, docs = tmp_path / "results", tmp_path / "docs" / "BENCHMARKS.md"
    results.mkdir()
    (results / "memory.json").write_text(json.dumps(_record("memory", "| memory table |")))
    (results / "train_throughput.json").write_text(json.dumps(
        _record("train_throughput", "Median ratio Trainer/bare: **0.970**", seconds=300)))
    (results / "notes.json").write_text("not json at all")               # skipped, not fatal
    run.write_report(results, docs, run.benches(gpu=False))
    text = docs.read_text()
    assert text.startswith("# Benchmarks")
    assert ">= 0.95" in text and "1.4697" in text and "100 %" in text     # the targets
    # one section each, in the plan's order, with command, date, duration, machine and markdown
    assert text.index("## Trainer overhead (CLI)") < text.index("## Memory of training")
    assert "`python bench/train_throughput.py --json bench/results/train_throughput.json`" in text
    assert "2026-12-03 10:00:00 UTC, 5.0 min" in text and "2026-12-03 10:00:00 UTC, 12 s" in text
    assert "2 cores of Test CPU 9000" in text and "Median ratio Trainer/bare: **0.970**" in text
    assert "| memory table |" in text
    assert "not measured (no GPU)" in text
    assert "| Decoding speed | not run yet | | |" in text                # no record: not invented
    assert "## Decoding speed" not in text
    # a section whose markdown already names the machine does not get the line twice
    (results / "decoding.json").write_text(json.dumps(
        _record("decoding", "kv table\n\nMachine: 2 cores of Test CPU 9000, torch 2.x.")))
    run.write_report(results, docs, run.benches(gpu=False))
    section = docs.read_text().split("## Decoding speed")[1].split("\n## ")[0]
    assert section.count("cores of Test CPU 9000") == 1 and "kv table" in section


def test_report_only_rebuilds_without_running(tmp_path, capsys):
    results, docs = tmp_path / "results", tmp_path / "BENCHMARKS.md"
    results.mkdir()
    (results / "decoding.json").write_text(json.dumps(_record("decoding", "kv table", gpu="H200")))
    boom = run.Bench("decoding", "Decoding speed", "x", folder=tmp_path / "nowhere")
    assert run.main(["--report-only", "--results", str(results), "--docs", str(docs)],
                    all_benches=[boom]) == 0
    text = docs.read_text()
    assert "## Decoding speed" in text and "kv table" in text and "GPU H200" in text
    assert "not measured (no GPU)" not in text.split("## Decoding speed")[1]


def _script(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


def test_failing_and_missing_benchmarks_are_reported_and_the_others_run(tmp_path, capsys):
    scripts, results, docs = tmp_path / "scripts", tmp_path / "results", tmp_path / "BENCHMARKS.md"
    scripts.mkdir()
    writer = """
        import json, sys
        path = sys.argv[sys.argv.index("--json") + 1]
        json.dump({"bench": "NAME", "command": "python NAME.py", "machine": {"cores": 2, "cpu": "c"},
                   "started": "2026-12-03T10:00:00Z", "seconds": 1.0, "results": {},
                   "markdown": "figures of NAME"}, open(path, "w"))
    """
    _script(scripts, "first", writer.replace("NAME", "first"))
    _script(scripts, "broken", """
        import sys
        print("some progress")
        print("Traceback: ValueError: the broken bench broke", file=sys.stderr)
        sys.exit(3)
    """)
    _script(scripts, "silent", "print('ran, but wrote nothing')\n")
    _script(scripts, "last", writer.replace("NAME", "last"))
    benches = [run.Bench(n, n.title(), "x", folder=scripts)
               for n in ("first", "broken", "missing", "silent", "last")]
    code = run.main(["--results", str(results), "--docs", str(docs)], all_benches=benches, cwd=tmp_path)
    out = capsys.readouterr().out
    assert code == 1
    assert "exit code 3" in out and "the broken bench broke" in out      # the stderr tail
    assert "missing.py does not exist" in out
    assert "wrote no" in out                                            # exit 0 without a record
    text = docs.read_text()
    assert "figures of first" in text and "figures of last" in text     # the others still ran
    assert "| Broken | not run yet | | |" in text


def test_a_stale_record_is_not_taken_for_a_fresh_one(tmp_path):
    scripts, results = tmp_path / "scripts", tmp_path / "results"
    scripts.mkdir()
    results.mkdir()
    _script(scripts, "old", "pass\n")
    stale = results / "old.json"
    stale.write_text(json.dumps(_record("old", "last week's figures")))
    week_ago = time.time() - 7 * 86400
    os.utime(stale, (week_ago, week_ago))
    [step] = run.plan([run.Bench("old", "Old", "x", folder=scripts)], results=results)
    outcome = run.run_step(step, cwd=tmp_path, echo=lambda line: None)
    assert outcome.status == "failed" and "wrote no" in outcome.detail
