"""SIGTERM (logging out, ``kill``) ends the studio as closing its window does: training stops after
the current step, the checkpoint is saved, the process exits within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from textgen_core.project import Project
from textgen_core.training.checkpoint import load_checkpoint

# The real ``textgen-studio PROJECT``, with one addition: once the project is open, training starts
# (as if Start were pressed) and a file appears when its first progress arrives.
DRIVER = """
import sys
from pathlib import Path

from app import main as studio, window_actions
from app.window import MainWindow

opened = MainWindow.open_project


def open_and_train(self, folder):
    ok = opened(self, folder)
    self.training.events.connect(lambda events: Path(sys.argv[2]).touch())
    window_actions.start_training(self, resume=False, steps=1_000_000)
    return ok


MainWindow.open_project = open_and_train
sys.exit(studio.main([sys.argv[1]]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM cannot be caught on Windows")
@pytest.mark.timeout(240)
def test_sigterm_during_training_saves_the_checkpoint_and_exits(couplet_files, tmp_path):
    project = Project.create(tmp_path / "demo", "couplet", couplet_files,
                             overrides=["train.eval_every=100000", "train.log_every=1"])
    started = tmp_path / "training-started"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_STATE_HOME": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(project.root), str(started)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), proc.communicate(timeout=10)
        assert not project.checkpoint_path("last").exists()     # no evaluation has saved one yet
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    assert took < 10, took
    assert "Traceback" not in err
    assert load_checkpoint(project.checkpoint_path("last"))["step"] > 0
