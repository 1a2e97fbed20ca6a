"""The studio's version and build, from source or from the frozen (PyInstaller) app.

From source the version is the installed distribution's (``importlib.metadata``, which pip writes
from ``pyproject.toml``), or ``pyproject.toml`` itself beside the packages when nothing is installed.
The frozen app carries ``resources/build_info.json``, written by ``packaging/TextGenStudio.spec``
from ``pyproject.toml`` at build time, with the commit, date and the bundled libraries' versions.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

DISTRIBUTION = "textgen-studio"
BUILD_INFO = "build_info.json"


def is_frozen() -> bool:
    """Running from a PyInstaller bundle?"""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


@cache
def build_info() -> dict[str, Any]:
    """What the frozen app was built from; from source ``{"version": ..., "variant": "source"}``."""
    from textgen_core.samples import resources_dir

    path = resources_dir() / BUILD_INFO
    if is_frozen() and path.is_file():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(info, dict) and info.get("version"):
                return info
        except (OSError, ValueError):
            pass
    return {"version": _source_version(), "variant": "source"}


def app_version() -> str:
    return str(build_info()["version"])


def _source_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
    except (OSError, KeyError, ValueError):
        from textgen_core import __version__

        return __version__
