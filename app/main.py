"""TextGen Studio's entry point (``textgen-studio``).

The window is shown first; the core (and torch) load from the event loop right after, so the window
appears quickly. ``--self-test`` drives the real window through training, writing and attention.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from app.version import app_version


def main(argv: Sequence[str] | None = None) -> int:
    launched = time.perf_counter()
    parser = argparse.ArgumentParser(prog="textgen-studio", description="TextGen Studio")
    parser.add_argument("project", nargs="?", type=Path,
                        help="project folder to open (default: the bundled sample couplet project)")
    parser.add_argument("--self-test", action="store_true",
                        help="train, write and show attention on the sample project, then exit")
    parser.add_argument("--screenshots", type=Path, metavar="DIR",
                        help="with --self-test: save a screenshot of each stage into DIR")
    parser.add_argument("--steps", type=int, default=40, help="with --self-test: training steps")
    parser.add_argument("--version", action="version", version=f"%(prog)s {app_version()}")
    args = parser.parse_args(argv)

    from app.platform_check import check_before_qt

    if (code := check_before_qt()) is not None:     # X libraries missing: Qt would abort the process
        return code

    from PySide6.QtWidgets import QApplication

    from app.fonts import register_cjk_font
    from app.icon import app_icon
    from app.logs import setup_logging
    from app.termination import quit_on_termination
    from app.window import MainWindow

    setup_logging()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("TextGen Studio")
    app.setOrganizationName("TextGen Studio")
    app.setApplicationVersion(app_version())
    app.setDesktopFileName("textgen-studio")        # matches resources/linux/textgen-studio.desktop
    app.setWindowIcon(app_icon())
    register_cjk_font(app)
    window = MainWindow()
    quit_on_termination(window)         # SIGTERM / logout: stop training, save, exit like a close
    window.show()
    app.processEvents()
    visible_s = time.perf_counter() - launched          # the window is on screen; torch not loaded
    logging.getLogger(__name__).info("window visible after %.2f s", visible_s)
    if args.self_test:
        from app.selftest import SelfTest

        test = SelfTest(window, args.screenshots, args.steps, visible_s)
        test.start()
        app.exec()
        return test.exit_code
    window.open_project_later(args.project)
    return app.exec()


if __name__ == "__main__":
    import multiprocessing

    multiprocessing.freeze_support()    # a no-op from source; the frozen app's entry does the same
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())
