"""TextGen Studio's entry point (``textgen-studio``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="textgen-studio", description="TextGen Studio")
    parser.add_argument("project", nargs="?", type=Path,
                        help="project folder to open (default: the bundled sample couplet project)")
    args = parser.parse_args(argv)

    from PySide6.QtWidgets import QApplication

    from app.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("TextGen Studio")
    window = MainWindow()
    window.show()
    window.open_project_later(args.project)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
