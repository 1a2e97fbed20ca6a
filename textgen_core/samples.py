"""The sample corpora bundled in ``resources/samples``, the ready-made sample projects and the
ready-to-write models in ``resources/pretrained``.

Sample projects are created on first use in the user's data folder (platformdirs), never inside the
installation, so the app works from a read-only install or a PyInstaller bundle. A ready-to-write
model is a whole trained project folder; it is copied there on first use in the same way.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

from platformdirs import user_data_path

from textgen_core.errors import TextGenError

log = logging.getLogger(__name__)

SAMPLE_FILES = {
    "couplet": ("couplets.in.txt", "couplets.out.txt"),
    "translation": ("cmn-eng.tsv",),
    "continuation": ("hongloumeng_ch1-10.txt",),
}
# task -> (folder in resources/pretrained, folder in the user's projects folder)
PRETRAINED = {"couplet": ("couplets", "ready-couplets")}


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


def pretrained_dir(task: str = "couplet") -> Path | None:
    """The bundled trained project for ``task`` (None when this installation has none)."""
    if task not in PRETRAINED:
        return None
    folder = resources_dir() / "pretrained" / PRETRAINED[task][0]
    return folder if (folder / "project.toml").is_file() else None


def ensure_ready_project(task: str = "couplet", root: Path | None = None):  # -> Project | None
    """Open the ready-to-write project for ``task``, copying the bundled one into the projects
    folder on first use; None when this installation bundles none."""
    from textgen_core.project import Project

    source = pretrained_dir(task)
    if source is None:
        return None
    folder = (root or user_projects_dir()) / PRETRAINED[task][1]
    if not (folder / "project.toml").is_file():
        log.info("copying the ready-to-write %s model to %s", task, folder)
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(source, partial)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        if folder.exists():
            shutil.rmtree(partial, ignore_errors=True)
            raise TextGenError(f"{folder}: exists but is not a project; move it away to get the "
                               "ready-to-write model")
        partial.rename(folder)       # the copy appears whole or not at all
    return Project.open(folder)


def ensure_start_project(task: str = "couplet", root: Path | None = None):  # -> Project
    """What the studio opens when no project is named: the ready-to-write model, or else the
    sample project to train."""
    return ensure_ready_project(task, root) or ensure_sample_project(task, root)
