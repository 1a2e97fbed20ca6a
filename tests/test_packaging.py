"""Packaging from source: the spec, build.py's report, version and resource lookup from source and
frozen, the .desktop entry and icons, the About text, the xcb check inside a bundle.

The frozen app itself is tested by tests/test_packaging_frozen.py (after ``packaging/build.py``).
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from app import platform_check as pc
from app import version as app_version_module

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def _load_build_module():
    spec = importlib.util.spec_from_file_location("textgen_packaging_build", PACKAGING / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build_module()


@pytest.fixture
def frozen(monkeypatch, tmp_path):
    """Pretend to run from a PyInstaller bundle whose _internal folder is ``tmp_path``."""
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    app_version_module.build_info.cache_clear()
    yield tmp_path
    app_version_module.build_info.cache_clear()


def test_packaging_is_not_a_package_and_does_not_shadow_the_library():
    assert not (PACKAGING / "__init__.py").exists()
    code = "import packaging, packaging.version; print(packaging.version.Version('1.2').major)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert out.stdout.strip() == "1"


def test_the_spec_names_files_that_exist():
    spec = (PACKAGING / "TextGenStudio.spec").read_text(encoding="utf-8")
    compile(spec, "TextGenStudio.spec", "exec")
    for script in ("entry_gui.py", "entry_cli.py"):
        assert f'"{script}"' in spec
        assert (PACKAGING / script).is_file()
    for folder in ("fonts", "samples", "pretrained", "icons", "linux"):
        assert f'"resources" / "{folder}"' in spec
        assert (ROOT / "resources" / folder).is_dir()
    assert 'name="textgen"' in spec and "COLLECT(" in spec


def test_entry_scripts_call_freeze_support_before_importing_the_app():
    for script, module in (("entry_gui.py", "app.main"), ("entry_cli.py", "textgen_core.cli")):
        text = (PACKAGING / script).read_text(encoding="utf-8")
        assert text.index("multiprocessing.freeze_support()") < text.index(f"from {module} import main")


def test_dist_and_build_are_ignored():
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "dist/" in ignored and "build/" in ignored


def test_size_report_counts_files_once_and_groups_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(build, "ROOT", tmp_path)
    app = tmp_path / "TextGenStudio"
    (app / "_internal" / "torch" / "lib").mkdir(parents=True)
    (app / "_internal" / "numpy").mkdir()
    (app / "TextGenStudio").write_bytes(b"x" * 1000)
    (app / "_internal" / "torch" / "lib" / "libtorch_cpu.so").write_bytes(b"x" * 5000)
    (app / "_internal" / "numpy" / "core.so").write_bytes(b"x" * 2000)
    (app / "_internal" / "libtorch_cpu.so").symlink_to("torch/lib/libtorch_cpu.so")   # as PyInstaller
    os.link(app / "_internal" / "numpy" / "core.so", app / "_internal" / "numpy" / "hard.so")
    assert build.report(app) == 8000
    out = capsys.readouterr().out
    assert "8000 files" not in out and "in 3 files" in out
    assert "torch/lib/" in out and "numpy/" in out
    assert build.group_of(Path("_internal/torch/lib/libtorch_cpu.so")) == "torch/lib/"
    assert build.group_of(Path("_internal/PySide6/Qt/lib/libQt6Gui.so.6")) == "PySide6/Qt/"
    assert build.group_of(Path("_internal/sympy/core/basic.pyc")) == "sympy/"
    assert build.group_of(Path("textgen")) == "textgen"


def test_only_elf_files_with_a_symbol_table_are_stripped(tmp_path):
    text = tmp_path / "notes.so"
    text.write_text("not an ELF file")
    assert not build.has_symbol_table(text)
    with_symbols = [p for p in (Path(sys.executable).resolve(),) if build.has_symbol_table(p)]
    for path in with_symbols:           # whatever the interpreter is, the answer must not raise
        assert path.is_file()


def test_version_from_source_is_pyprojects():
    app_version_module.build_info.cache_clear()
    assert app_version_module.app_version() == VERSION
    assert app_version_module.build_info()["variant"] == "source"
    assert not app_version_module.is_frozen()


def test_frozen_version_comes_from_the_baked_build_info(frozen):
    (frozen / "resources").mkdir()
    info = {"version": "9.8.7", "variant": "cpu", "commit": "abc1234", "built": "2030-01-01 00:00 UTC",
            "libraries": {"torch": "2.99.0"}}
    (frozen / "resources" / "build_info.json").write_text(json.dumps(info), encoding="utf-8")
    assert app_version_module.is_frozen()
    assert app_version_module.app_version() == "9.8.7"
    from app.about import about_html

    text = about_html()
    assert "9.8.7" in text and "abc1234" in text and "PyTorch 2.99.0" in text


def test_frozen_without_build_info_falls_back_to_the_source_version(frozen):
    assert app_version_module.app_version() == VERSION


def test_resources_are_found_from_source_and_inside_a_bundle(frozen):
    from textgen_core.samples import resources_dir

    assert resources_dir() == frozen / "resources"


def test_resources_from_source_hold_what_the_bundle_ships():
    from textgen_core.samples import SAMPLE_FILES, resources_dir

    folder = resources_dir()
    assert folder == ROOT / "resources"
    for names in SAMPLE_FILES.values():
        assert all((folder / "samples" / name).is_file() for name in names)
    assert (folder / "fonts" / "NotoSansCJKsc-Regular-subset.otf").is_file()
    from app.icon import ICON_NAME, SIZES

    for size in SIZES:
        assert (folder / "icons" / f"{ICON_NAME}-{size}.png").is_file()


def test_desktop_entry_is_well_formed():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(ROOT / "resources" / "linux" / "textgen-studio.desktop", encoding="utf-8")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application" and desktop["Name"] == "TextGen Studio"
    assert desktop["Exec"].split()[0] == "TextGenStudio" and desktop["TryExec"] == "TextGenStudio"
    assert desktop["Icon"] == "textgen-studio" and desktop["Terminal"] == "false"
    assert desktop["Categories"].endswith(";")
    script = (PACKAGING / "linux" / "install-desktop-entry.sh").read_text(encoding="utf-8")
    assert "s|^Exec=TextGenStudio|" in script and "_internal/resources/linux/textgen-studio.desktop" in script


def test_install_desktop_entry_writes_absolute_paths(tmp_path):
    app = tmp_path / "Text Gen Studio"
    internal = app / "_internal" / "resources"
    (internal / "linux").mkdir(parents=True)
    (internal / "icons").mkdir()
    (internal / "linux" / "textgen-studio.desktop").write_bytes(
        (ROOT / "resources" / "linux" / "textgen-studio.desktop").read_bytes())
    for png in (ROOT / "resources" / "icons").glob("*.png"):
        (internal / "icons" / png.name).write_bytes(png.read_bytes())
    (app / "TextGenStudio").write_text("#!/bin/sh\n")
    (app / "TextGenStudio").chmod(0o755)
    script = app / "install-desktop-entry.sh"
    script.write_bytes((PACKAGING / "linux" / "install-desktop-entry.sh").read_bytes())
    data = tmp_path / "data"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "XDG_DATA_HOME": str(data)}
    subprocess.run(["sh", str(script)], env=env, check=True, capture_output=True)
    written = (data / "applications" / "textgen-studio.desktop").read_text(encoding="utf-8")
    assert f'Exec="{app}/TextGenStudio" %f' in written
    assert (data / "icons" / "hicolor" / "256x256" / "apps" / "textgen-studio.png").is_file()
    subprocess.run(["sh", str(script), "--uninstall"], env=env, check=True, capture_output=True)
    assert not (data / "applications" / "textgen-studio.desktop").exists()


def test_about_names_version_data_folders_and_licences():
    app_version_module.build_info.cache_clear()
    from app.about import about_html
    from textgen_core.samples import user_projects_dir

    text = about_html()
    assert f"version {VERSION}" in text
    assert str(user_projects_dir()) in text.replace("&#x27;", "'")
    for licence in ("SIL OFL 1.1", "LGPL-3.0", "BSD-3-Clause", "AGPL-3.0", "CC-BY 2.0 FR", "MIT"):
        assert licence in text


def test_xcb_check_counts_the_bundled_libraries_as_present(frozen):
    assert pc.bundled_library_dirs() == [frozen]
    (frozen / "libxcb-cursor.so.0").touch()
    qt_lib = frozen / "PySide6" / "Qt" / "lib"
    qt_lib.mkdir(parents=True)
    assert pc.missing_libraries(["libxcb-cursor.so.0"], qt_lib, pc.bundled_library_dirs()) == []
    assert pc.missing_libraries(["libdoesnotexist.so.9"], qt_lib, pc.bundled_library_dirs()) == [
        "libdoesnotexist.so.9"]


def test_xcb_check_from_source_has_no_bundle():
    assert pc.bundled_library_dirs() == []


def test_pyinstaller_is_a_dev_dependency():
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"]["dev"]
    assert any(req.lower().startswith("pyinstaller") for req in dev)
