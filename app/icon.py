"""The application icon (``resources/icons``), from source and from the frozen app alike."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon

from textgen_core.samples import resources_dir

ICON_NAME = "textgen-studio"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def app_icon() -> QIcon:
    """The icon in every rendered size; a null icon if the files are missing."""
    folder = resources_dir() / "icons"
    icon = QIcon()
    for size in SIZES:
        path = folder / f"{ICON_NAME}-{size}.png"
        if path.is_file():
            icon.addFile(str(path), QSize(size, size))
    return icon
