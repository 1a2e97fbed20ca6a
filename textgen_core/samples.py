"""The sample corpora bundled in ``resources/samples`` and the ready-made sample projects.

Sample projects are created on first use in the user's data folder (platformdirs), never inside the
installation, so the app works from a read-only install or a PyInstaller bundle.
"""

from __future__ import annotations

import sys
from pathlib import Path

from platformdirs import user_data_path

from textgen_core.errors import TextGenError

SAMPLE_FILES = {
    "couplet": ("couplets.in.txt", "couplets.out.txt"),
    "translation": ("cmn-eng.tsv",),
    "continuation": ("hongloumeng_ch1-10.txt",),
}


def resources_dir() -> Path:
    """``resources/`` beside the packages (or inside a PyInstaller bundle)."""
    bundle = getattr(sys, "_MEIPASS", None)
    base = Path(bundle) if bundle else Path(__file__).resolve().parent.parent
    return base / "resources"


def sample_files(task: str) -> list[Path]:
    folder = resources_dir() / "samples"
    paths = [folder / name for name in SAMPLE_FILES[task]]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise TextGenError(f"{missing[0]}: bundled sample corpus is missing from the installation")
    return paths


def user_projects_dir() -> Path:
    return user_data_path("TextGen Studio", appauthor=False) / "projects"


def ensure_sample_project(task: str = "couplet", root: Path | None = None):  # -> Project
    """Open the sample project for ``task``, creating it from the bundled corpus when absent."""
    from textgen_core.project import Project

    folder = (root or user_projects_dir()) / f"sample-{task}"
    if (folder / "project.toml").is_file():
        return Project.open(folder)
    return Project.create(folder, task, sample_files(task), preset="tiny")
