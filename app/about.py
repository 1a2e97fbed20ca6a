"""Help ▸ About: the version, where the user's data lives, and the licences of what the app bundles."""

from __future__ import annotations

import html
import sys
from pathlib import Path

from app.version import app_version, build_info, is_frozen

APP_LICENSE = "MIT"

# (name, distribution for its version, licence) of the libraries the app runs on and the frozen app
# bundles; their licence texts travel in the bundle's *.dist-info folders.
LIBRARIES = (
    ("Python", None, "PSF License"),
    ("PyTorch", "torch", "BSD-3-Clause"),
    ("Qt 6 / PySide6", "PySide6-Essentials", "LGPL-3.0 (dynamically linked, replaceable)"),
    ("pyqtgraph", "pyqtgraph", "MIT"),
    ("NumPy", "numpy", "BSD-3-Clause (OpenBLAS: BSD-3-Clause)"),
    ("SentencePiece", "sentencepiece", "Apache-2.0"),
    ("pypinyin (and its pinyin data)", "pypinyin", "MIT"),
    ("sacreBLEU", "sacrebleu", "Apache-2.0"),
    ("safetensors", "safetensors", "Apache-2.0"),
    ("SymPy", "sympy", "BSD-3-Clause"),
    ("platformdirs", "platformdirs", "MIT"),
    ("charset-normalizer", "charset-normalizer", "MIT"),
)

# Bundled data, as resources/fonts/LICENSE.txt and resources/samples/SOURCES.md describe it.
DATA = (
    ("Noto Sans CJK SC (subset), the Chinese font", "SIL OFL 1.1 — resources/fonts/LICENSE.txt"),
    ("Sample couplets: couplet-dataset by wb14123", "AGPL-3.0 — resources/samples/SOURCES.md"),
    ("Ready-to-write couplet model: trained on couplet-dataset by wb14123 and chinese-poetry",
     "AGPL-3.0 / MIT — resources/pretrained/couplets/README.md"),
    ("Sample translations: Tatoeba via manythings.org", "CC-BY 2.0 FR, per-pair attribution kept"),
    ("Sample novel: 红楼梦, chapters 1–10", "public domain"),
)


def user_data_locations() -> list[tuple[str, Path]]:
    """Where the studio keeps the user's things (never inside the installation)."""
    from PySide6.QtCore import QSettings

    from app.logs import log_file
    from textgen_core.samples import user_projects_dir

    settings = QSettings("TextGen Studio", "TextGen Studio")
    return [("Projects (the ready-to-write model and the sample projects too)", user_projects_dir()),
            ("Settings", Path(settings.fileName())),
            ("Log", log_file())]


def _library_version(dist: str | None) -> str:
    if dist is None:
        return sys.version.split()[0]
    frozen_versions = build_info().get("libraries") or {}
    if frozen_versions.get(dist):
        return str(frozen_versions[dist])
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def about_html() -> str:
    info = build_info()
    build = [f"version {html.escape(app_version())}"]
    if is_frozen():
        details = [info.get("variant", ""), info.get("commit") or "", info.get("built") or ""]
        build.append("build " + html.escape(", ".join(d for d in details if d)))
    else:
        build.append("running from source")
    esc = html.escape
    locations = "".join(f"<tr><td>{esc(what)}</td><td><code>{esc(str(where))}</code></td></tr>"
                        for what, where in user_data_locations())
    libraries = "".join(
        f"<tr><td>{esc(name)} {esc(_library_version(dist))}</td><td>{esc(lic)}</td></tr>"
        for name, dist, lic in LIBRARIES)
    data = "".join(f"<tr><td>{esc(what)}</td><td>{esc(lic)}</td></tr>" for what, lic in DATA)
    texts = ("The licence texts are in the installation's <code>_internal</code> folder "
             "(<code>*.dist-info</code>, <code>resources/fonts/LICENSE.txt</code>, "
             "<code>resources/samples/SOURCES.md</code>)." if is_frozen() else
             "The licence texts come with each installed package and in <code>resources/</code>.")
    return (
        f"<h3>TextGen Studio</h3><p>{' · '.join(build)}</p>"
        "<p>Train text generators on your own corpus and write with them: couplets, stories, "
        f"translations. Licensed under the {APP_LICENSE} licence.</p>"
        f"<p><b>Your data</b></p><table cellspacing='4'>{locations}</table>"
        f"<p><b>Bundled data and fonts</b></p><table cellspacing='4'>{data}</table>"
        f"<p><b>Libraries</b></p><table cellspacing='4'>{libraries}</table>"
        f"<p>{texts}</p>"
    )
