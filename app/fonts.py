"""Register the bundled CJK font so Chinese renders on machines without system CJK fonts."""

from __future__ import annotations

import logging

from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

from textgen_core.samples import resources_dir

log = logging.getLogger(__name__)
FONT_FILE = "NotoSansCJKsc-Regular-subset.otf"


def register_cjk_font(app: QApplication) -> str | None:
    """Load the bundled font and make it a fallback of the application font; returns its family."""
    path = resources_dir() / "fonts" / FONT_FILE
    font_id = QFontDatabase.addApplicationFont(str(path))
    if font_id < 0:
        log.warning("could not load the bundled CJK font %s", path)
        return None
    family = QFontDatabase.applicationFontFamilies(font_id)[0]
    font = QFont(app.font())
    font.setFamilies([app.font().family(), family])
    app.setFont(font)
    return family
