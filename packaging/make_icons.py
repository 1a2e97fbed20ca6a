"""Render resources/icons/textgen-studio.svg into the PNG sizes, .ico and .icns the app and the
installers use. Run after editing the SVG: ``python packaging/make_icons.py`` (needs PySide6 only)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (needed by QPainter)
    renderer = QSvgRenderer(str(ICONS / "textgen-studio.svg"))
    if not renderer.isValid():
        print("cannot read the SVG", file=sys.stderr)
        return 1
    images = {}
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        images[size] = image
        image.save(str(ICONS / f"textgen-studio-{size}.png"))
    images[256].save(str(ICONS / "textgen-studio.ico"))
    images[512].save(str(ICONS / "textgen-studio.icns"))
    print(f"wrote {len(SIZES)} PNGs, .ico and .icns into {ICONS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
