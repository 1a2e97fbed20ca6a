"""Studio start-up and responsiveness: time to the main window, and GUI event-loop latency in training.

Both figures come from the studio's own self-test (``python -m app.main --self-test``, see
app/selftest.py): it shows the main window, creates the sample couplet project in a temporary folder,
trains it in the worker thread while a 10 ms timer measures how late the GUI thread serves it, writes
a couplet, shows its attention, and prints one JSON line. Each round is a fresh process with
``QT_QPA_PLATFORM=offscreen``; the process's peak resident memory comes from ``os.wait4``.

The self-test reports the 99th percentile and the maximum of the event-loop delays. For the 50th, the
source run is started through ``runpy`` (exactly what ``python -m app.main`` does) with
``LatencyProbe.stop`` wrapped to save every delay to a file; the packaged app (``--frozen``) cannot be
wrapped, so its p50 reads "not reported".

    python bench/studio_startup.py [--rounds 3] [--steps 40] [--frozen dist/TextGenStudio/TextGenStudio]
                                   [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from common import Report, machine_line  # noqa: E402

DELAYS_ENV = "TEXTGEN_BENCH_DELAYS"
# ``python -m app.main --self-test ...``, with LatencyProbe.stop also writing its delays to a file
SOURCE_RUN = f"""
import json, os, runpy, sys
import app.latency

_stop = app.latency.LatencyProbe.stop
def stop(self):
    _stop(self)
    with open(os.environ[{DELAYS_ENV!r}], "w") as f:
        json.dump(self.delays_ms, f)
app.latency.LatencyProbe.stop = stop
sys.argv = ["app.main", *sys.argv[1:]]
runpy.run_module("app.main", run_name="__main__", alter_sys=True)
"""
VISIBLE_LOG = "window visible after"     # app/main.py logs it once the window is shown
TIMEOUT_S = 900          # the self-test gives up by itself after 600 s


def percentile(delays: list[float], q: float) -> float:
    """The same order statistic as app.latency.LatencyProbe.p99_ms, for any q in [0, 1]."""
    ordered = sorted(delays)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_child(command: list[str], env: dict[str, str],
              timeout_s: float = TIMEOUT_S) -> tuple[int, str, str, int, float | None]:
    """Run ``command`` to its end -> exit code, stdout, stderr, peak resident memory in KiB (its own
    ``ru_maxrss`` through ``os.wait4``, so rounds do not mix), and the seconds from the launch until
    its log said "window visible" (None where it did not say so)."""
    seen: list[float] = []
    err_lines: list[str] = []
    with tempfile.TemporaryFile() as out:
        launched = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, env=env, cwd=ROOT)

        def read_stderr() -> None:
            assert proc.stderr is not None
            for raw in proc.stderr:
                line = raw.decode("utf-8", "replace")
                if not seen and VISIBLE_LOG in line:
                    seen.append(time.perf_counter() - launched)
                err_lines.append(line)

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        killer = threading.Timer(timeout_s, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        reader.join(timeout=10)
        out.seek(0)
        return (proc.returncode, out.read().decode("utf-8", "replace"), "".join(err_lines),
                usage.ru_maxrss, seen[0] if seen else None)


def visible_in_log(state: Path, launched: float) -> float | None:
    """Seconds from ``launched`` (time.time()) to the "window visible" line of the studio's log file
    under ``state`` (XDG_STATE_HOME; app/logs.py stamps lines to the millisecond, local time)."""
    for log in state.rglob("studio.log"):
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if VISIBLE_LOG in line:
                try:
                    stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                except ValueError:
                    return None
                return max(0.0, stamp - launched)
    return None


def self_test_report(stdout: str) -> dict[str, Any] | None:
    """The self-test's JSON line (the last line of stdout that parses as a JSON object)."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def one_round(app: list[str] | None, steps: int) -> dict[str, Any]:
    """One self-test in a fresh process; ``app`` is the packaged executable, or None for the source."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="textgen-bench-") as tmp:
        delays_file = Path(tmp) / "delays.json"
        env[DELAYS_ENV] = str(delays_file)
        env["XDG_STATE_HOME"] = str(Path(tmp) / "state")    # the studio's log file goes there
        args = ["--self-test", "--steps", str(steps)]
        command = [*app, *args] if app else [sys.executable, "-c", SOURCE_RUN, *args]
        start, launched = time.perf_counter(), time.time()
        code, stdout, stderr, peak_kib, from_launch = run_child(command, env)
        wall = time.perf_counter() - start
        delays = json.loads(delays_file.read_text()) if delays_file.is_file() else None
        if from_launch is None:      # the packaged app logs to its file only, not to stderr
            from_launch = visible_in_log(Path(tmp) / "state", launched)
    report = self_test_report(stdout)
    if code != 0 or not report or not report.get("ok"):
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"self-test failed (exit code {code}): {(report or {}).get('error', '')}\n{tail}")
    out = {"window_visible_s": report["window_visible_s"],
           "window_from_launch_s": round(from_launch, 2) if from_launch is not None else None,
           "process_s": round(wall, 2),
           "self_test_s": report.get("seconds"), "steps": report.get("steps"),
           "event_loop_p99_ms": report.get("event_loop_p99_ms"),
           "event_loop_max_ms": report.get("event_loop_max_ms"),
           "event_loop_samples": report.get("event_loop_samples"),
           "event_loop_p50_ms": None, "peak_rss_mib": round(peak_kib / 1024, 1)}
    if delays:
        out["event_loop_p50_ms"] = round(percentile(delays, 0.50), 1)
        out["event_loop_p99_ms"] = round(percentile(delays, 0.99), 1)
    return out


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median over rounds of each figure (None where a round has none)."""
    keys = ("window_visible_s", "window_from_launch_s", "event_loop_p50_ms", "event_loop_p99_ms",
            "event_loop_max_ms", "peak_rss_mib", "process_s")
    summary: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in rounds if r.get(key) is not None]
        summary[key] = round(statistics.median(values), 2) if values else None
    summary["rounds"] = rounds
    return summary


def _cell(value: Any, fmt: str) -> str:
    return "not reported" if value is None else format(value, fmt)


def markdown(results: dict[str, Any]) -> str:
    rows = ["| build | rounds | window visible, from main() (s) | from launch (s) | event loop p50 (ms) "
            "| p99 (ms) | max (ms) | peak RSS (MiB) | whole self-test (s) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, key in (("from source", "source"), ("packaged app", "frozen")):
        s = results.get(key)
        if not s:
            continue
        rows.append(f"| {label} | {len(s['rounds'])} | {_cell(s['window_visible_s'], '.2f')} "
                    f"| {_cell(s['window_from_launch_s'], '.2f')} "
                    f"| {_cell(s['event_loop_p50_ms'], '.1f')} | {_cell(s['event_loop_p99_ms'], '.1f')} "
                    f"| {_cell(s['event_loop_max_ms'], '.1f')} | {_cell(s['peak_rss_mib'], ',.0f')} "
                    f"| {_cell(s['process_s'], '.1f')} |")
    frozen = results.get("frozen_path")
    note = (f" The packaged app is `{frozen}`." if frozen else
            " The packaged app was not measured (no `--frozen PATH`).")
    return ("`textgen-studio --self-test` in a fresh process per round (offscreen Qt): seconds until "
            "the main window is on screen (before torch loads) as the app measures it, from the start "
            "of its main(), and from the launch of the process (when its log line appears; includes "
            "the interpreter's start and imports), and how late the GUI "
            f"thread served a 10 ms timer while the sample couplet project trained {results['steps']} "
            "steps in the worker thread (percentiles of the delays over the whole training). Peak RSS "
            "is the process's resident-memory high-water mark. Medians over the rounds." + note
            + "\n\n" + "\n".join(rows) + f"\n\nMachine: {machine_line()}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="training steps of each self-test")
    parser.add_argument("--frozen", type=Path, metavar="PATH",
                        help="also time the packaged app, e.g. dist/TextGenStudio/TextGenStudio")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    report = Report("studio_startup")
    results: dict[str, Any] = {"steps": args.steps, "frozen_path": None}
    builds: list[tuple[str, list[str] | None]] = [("source", None)]
    if args.frozen:
        if not args.frozen.is_file():
            parser.error(f"{args.frozen}: no packaged app there (build it with packaging/, or drop --frozen)")
        results["frozen_path"] = str(args.frozen)
        builds.append(("frozen", [str(args.frozen.resolve())]))
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in builds}
    for r in range(args.rounds):
        for name, app in builds:
            got = one_round(app, args.steps)
            rounds[name].append(got)
            print(f"round {r + 1} {name}: window {got['window_visible_s']:.2f} s "
                  f"({_cell(got['window_from_launch_s'], '.2f')} from launch), event loop p50 "
                  f"{_cell(got['event_loop_p50_ms'], '.1f')}, p99 {got['event_loop_p99_ms']:.1f} ms, "
                  f"max {got['event_loop_max_ms']:.1f} ms, peak RSS {got['peak_rss_mib']:.0f} MiB, "
                  f"{got['process_s']:.1f} s in all", flush=True)
    for name, _ in builds:
        results[name] = summarise(rounds[name])
    text = markdown(results)
    print(text)
    report.write(args.json, results, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
