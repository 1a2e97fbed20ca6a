"""TrainingController: thread lifetimes across runs, and why a run ended."""

from __future__ import annotations

import gc

from app.controllers import TrainingController
from textgen_core.project import Project

QUICK = ["train.eval_every=50", "train.log_every=1", "train.bleu_examples=2", "train.eval_batches=1"]


def test_a_new_run_started_from_the_finished_signal_survives_the_old_runs_cleanup(
    qtbot, no_thread_leaks, couplet_files, tmp_path
):
    """Resume right after a pause: the old thread's queued clean-up must not touch the new run
    (it used to drop the new, running QThread, and Qt aborted the process)."""
    project = Project.create(tmp_path / "p", "couplet", couplet_files, overrides=QUICK)
    controller = TrainingController()
    outcomes: list[dict] = []

    def resume_at_once(outcome: dict) -> None:
        outcomes.append(outcome)
        if len(outcomes) == 1:
            controller.thread.wait(10_000)               # ended, but its clean-up is still queued
            controller.start(str(project.root), steps=4, resume=True, device="cpu")

    controller.finished.connect(resume_at_once)
    with qtbot.waitSignal(controller.events, timeout=60_000):
        controller.start(str(project.root), steps=4, device="cpu")
    controller.request_stop("pause")
    qtbot.waitUntil(lambda: len(outcomes) == 2, timeout=60_000)
    gc.collect()                                         # what used to free the running thread
    qtbot.waitUntil(lambda: not controller.running, timeout=5_000)
    assert outcomes[0]["requested"] == "pause" and outcomes[0]["status"] == "stopped"
    assert outcomes[1]["status"] == "finished" and outcomes[1]["step"] == 4
    assert outcomes[1]["requested"] is None
    qtbot.waitUntil(lambda: controller.thread is None, timeout=5_000)


def test_shutdown_reports_a_close(qtbot, no_thread_leaks, couplet_files, tmp_path):
    project = Project.create(tmp_path / "p", "couplet", couplet_files, overrides=QUICK)
    controller = TrainingController()
    with qtbot.waitSignal(controller.events, timeout=60_000):
        controller.start(str(project.root), steps=100_000, device="cpu")
    with qtbot.waitSignal(controller.finished, timeout=10_000) as done:
        assert controller.shutdown()
    assert done.args[0]["requested"] == "close" and done.args[0]["status"] == "stopped"
    assert controller.thread is None and not controller.running
