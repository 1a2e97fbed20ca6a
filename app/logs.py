"""The studio's log file, where the platform keeps logs (worker crashes end up here)."""

from __future__ import annotations

import logging
from pathlib import Path

from platformdirs import user_log_path


def log_file() -> Path:
    return user_log_path("TextGen Studio", appauthor=False) / "studio.log"


def setup_logging() -> Path:
    path = log_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path
