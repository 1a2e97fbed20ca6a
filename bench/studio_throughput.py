"""Training speed inside the studio against the same training from the CLI.

Each round trains two identical fresh copies of the sample couplet project: one with ``textgen train``
and one through the studio's TrainingController (worker QObject on a QThread, offscreen Qt, the
event loop running as in the app). Both read tokens/s from their own ``metrics.jsonl``; the rounds are
interleaved, and which one goes first alternates, so machine noise hits both. Prints the median
ratio studio/CLI (target >= 0.95).

    python bench/studio_throughput.py [--steps 150] [--rounds 6] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from common import Report, machine_line  # noqa: E402

APP_RUN = """
import sys
from PySide6.QtWidgets import QApplication
from app.controllers import TrainingController
app = QApplication([])
ctl = TrainingController()
ctl.finished.connect(lambda outcome: app.quit())
ctl.failed.connect(lambda message: (print(message, file=sys.stderr), app.exit(1)))
ctl.start(sys.argv[1], steps=int(sys.argv[2]), device="cpu")
code = app.exec()
ctl.shutdown()
sys.exit(code)
"""


def make_project(folder: Path) -> Path:
    from textgen_core.project import Project
    from textgen_core.samples import sample_files

    overrides = ["train.eval_every=100000", "train.log_every=10"]   # measure training, not eval
    return Project.create(folder, "couplet", sample_files("couplet"), overrides=overrides,
                          progress=lambda m: None).root


def tokens_per_s(project: Path) -> float:
    run = next((project / "runs").iterdir())
    events = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [e["tokens_per_s"] for e in events if e["event"] == "step"][1:]   # skip warm-up
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args()
    report = Report("studio_throughput")
    sys.path.insert(0, str(ROOT))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    ratios, rounds = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            cli_dir = make_project(Path(tmp) / f"cli{r}")
            app_dir = make_project(Path(tmp) / f"app{r}")
            runs = [
                [sys.executable, "-m", "textgen_core.cli", "-q", "train", str(cli_dir),
                 "--steps", str(args.steps), "--device", "cpu"],
                [sys.executable, "-c", APP_RUN, str(app_dir), str(args.steps)],
            ]
            for command in runs if r % 2 == 0 else runs[::-1]:   # alternate who goes first
                subprocess.run(command, check=True, env=env)
            cli, studio = tokens_per_s(cli_dir), tokens_per_s(app_dir)
            ratios.append(studio / cli)
            rounds.append({"cli_tok_s": round(cli, 1), "studio_tok_s": round(studio, 1),
                           "ratio": round(studio / cli, 4)})
            print(f"round {r + 1}: CLI {cli:9.0f} tok/s   studio {studio:9.0f} tok/s   "
                  f"ratio {studio / cli:.3f}", flush=True)
    median = statistics.median(ratios)
    print(f"median ratio studio/CLI: {median:.3f} (target >= 0.95)")
    results = {"device": "cpu", "steps": args.steps, "rounds": rounds, "median_ratio": round(median, 4),
               "target": 0.95}
    report.write(args.json, results, _markdown(results))


def _markdown(r: dict) -> str:
    rows = ["| round | CLI tok/s | studio tok/s | ratio |", "|---:|---:|---:|---:|"]
    rows += [f"| {i} | {x['cli_tok_s']:,.0f} | {x['studio_tok_s']:,.0f} | {x['ratio']:.3f} |"
             for i, x in enumerate(r["rounds"], 1)]
    verdict = "meets" if r["median_ratio"] >= r["target"] else "misses"
    return (f"The sample couplet project trained {r['steps']} steps on the CPU by `textgen train` and "
            "by the studio's TrainingController (worker thread, offscreen Qt event loop), "
            f"{len(r['rounds'])} interleaved rounds; tokens/s are the median of each run's "
            "metrics.jsonl step reports.\n\n" + "\n".join(rows)
            + f"\n\nMedian ratio studio/CLI: **{r['median_ratio']:.3f}** ({verdict} the target "
            f">= {r['target']}).\n\nMachine: {machine_line()}.")


if __name__ == "__main__":
    main()
