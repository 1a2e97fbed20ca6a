"""The frozen app (``packaging/build.py``'s dist/TextGenStudio) in a bare environment.

Runs only when ``TEXTGEN_FROZEN_APP`` names the built folder (``.ci/run`` sets it after building):
a stale dist/ folder must not make the ordinary test suite test an old build. Every process starts
with ``env -i``-style environment: no PATH (so no Python), an empty HOME, nothing from this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
APP = Path(os.environ["TEXTGEN_FROZEN_APP"]).resolve() if os.environ.get("TEXTGEN_FROZEN_APP") else None
pytestmark = [
    pytest.mark.skipif(APP is None, reason="set TEXTGEN_FROZEN_APP to the folder packaging/build.py made"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the frozen checks are for Linux"),
]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
MAX_MB = 700
SAMPLES = ROOT / "resources" / "samples"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
# The X libraries that Qt's xcb plugin needs and desktops often lack: they travel in the bundle.
XCB_LIBRARIES = ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-image.so.0",
                 "libxcb-render-util.so.0", "libxcb-randr.so.0", "libxcb-shape.so.0",
                 "libxkbcommon-x11.so.0", "libxkbcommon.so.0")


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(home), **extra}


def run(args: list[str], home: Path, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=bare_env(home, **extra), cwd=home, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def home(tmp_path):
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def test_the_folder_holds_both_executables_and_fits_the_size_target():
    for name in ("TextGenStudio", "textgen"):
        assert os.access(APP / name, os.X_OK), name
    seen, total = set(), 0
    for path in APP.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        stat = path.stat()
        if (stat.st_dev, stat.st_ino) not in seen:
            seen.add((stat.st_dev, stat.st_ino))
            total += stat.st_size
    assert total <= MAX_MB * 1e6, f"{total / 1e6:.0f} MB"


def test_the_bundle_ships_resources_x_libraries_and_licences():
    internal = APP / "_internal"
    for name in XCB_LIBRARIES:
        assert (internal / name).exists(), name
    assert (internal / "PySide6" / "Qt" / "plugins" / "platforms" / "libqxcb.so").is_file()
    assert (internal / "PySide6" / "Qt" / "plugins" / "platforms" / "libqoffscreen.so").is_file()
    assert (internal / "resources" / "fonts" / "NotoSansCJKsc-Regular-subset.otf").is_file()
    assert (internal / "resources" / "fonts" / "LICENSE.txt").is_file()
    assert (internal / "resources" / "samples" / "couplets.in.txt").is_file()
    assert (internal / "resources" / "pretrained" / "couplets" / "checkpoints" / "best.pt").is_file()
    assert (internal / "resources" / "icons" / "textgen-studio-256.png").is_file()
    assert (internal / "resources" / "linux" / "textgen-studio.desktop").is_file()
    assert list(internal.glob("pypinyin/*.json")), "pypinyin's dictionaries"
    assert list(internal.glob("sentencepiece/_sentencepiece*.so"))
    info = json.loads((internal / "resources" / "build_info.json").read_text(encoding="utf-8"))
    assert info["version"] == VERSION
    assert list(internal.glob("torch-*.dist-info")) and list(internal.glob("pyside6_essentials-*.dist-info"))
    # what the size trimming leaves out
    for dropped in ("torch/include", "torch/test", "PySide6/Qt/translations", "PySide6/Qt/qml"):
        assert not (internal / dropped).exists(), dropped
    assert not list(internal.glob("PySide6/QtWebEngine*")) and not list(internal.glob("PySide6/Qt3D*"))
    assert (APP / "install-desktop-entry.sh").is_file()


def test_every_bundled_library_finds_what_it_needs():
    """ldd over the bundle: nothing unresolved but what PyInstaller leaves to the system on purpose
    (the GL/EGL/Wayland graphics stack, libxcb itself)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        pytest.skip("no ldd")
    internal = APP / "_internal"
    system_only = ("libGL", "libEGL", "libOpenGL", "libGLX", "libwayland-", "libxcb.so", "libdrm", "libgbm",
                   "libvulkan", "libcuda")
    problems = []
    for path in sorted(internal.rglob("*.so*")):
        if path.is_symlink() or not path.is_file():
            continue
        out = subprocess.run([ldd, str(path)], capture_output=True, text=True,
                             env={"LD_LIBRARY_PATH": str(internal)}).stdout
        missing = [line.split()[0] for line in out.splitlines() if "not found" in line]
        problems += [f"{path.relative_to(internal)}: {name}" for name in missing
                     if not name.startswith(system_only)]
    assert not problems, "\n".join(problems)


def test_version_flag():
    result = run([str(APP / "TextGenStudio"), "--version"], APP, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"textgen-studio {VERSION}"


def test_cli_trains_writes_and_evaluates_in_a_bare_environment(home):
    textgen = str(APP / "textgen")
    data = [str(SAMPLES / "couplets.in.txt"), str(SAMPLES / "couplets.out.txt")]
    steps = [
        ["init", "proj", "--task", "couplet", "--data", *data, "--set", "train.eval_every=10"],
        ["train", "proj", "--steps", "10"],
        ["generate", "proj", "春风得意", "--beam", "3", "--n-best", "2", "--json"],
        ["info", "proj", "--json"],
        ["models", "--json"],
    ]
    outputs = []
    for args in steps:
        result = run([textgen, *args], home)
        assert result.returncode == 0, f"textgen {args[0]}: {result.stderr}"
        assert "Warning" not in result.stderr, result.stderr      # e.g. torch without its sources
        outputs.append(result.stdout)
    written = json.loads(outputs[2].splitlines()[0])
    assert len(written["hypotheses"][0]["text"]) == 4
    assert json.loads(outputs[3])["checkpoints"]["last"]["step"] == 10
    bad = run([textgen, "generate", "nowhere", "x"], home)
    assert bad.returncode == 2 and bad.stderr.startswith("error:")


def test_the_bundled_ready_model_writes_from_the_frozen_cli(home):
    ready = APP / "_internal" / "resources" / "pretrained" / "couplets"
    before = sorted(p.relative_to(ready) for p in ready.rglob("*"))
    result = run([str(APP / "textgen"), "generate", str(ready), "春风得意", "--json"], home)
    assert result.returncode == 0, result.stderr
    best = json.loads(result.stdout.splitlines()[0])["hypotheses"][0]["text"]
    assert len(best) == 4 and not set(best) & set("春风得意"), best
    assert sorted(p.relative_to(ready) for p in ready.rglob("*")) == before      # read, never written


def _self_test(home: Path, shots: Path, **extra: str) -> dict:
    result = run([str(APP / "TextGenStudio"), "--self-test", "--screenshots", str(shots), "--steps", "20"],
                 home, timeout=600, **extra)
    report_lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    report = json.loads(report_lines[-1])
    assert report["ok"] and report["steps"] == 20
    assert report["window_visible_s"] < 5
    assert len(report["couplet"]["second"]) == len(report["couplet"]["first"])
    assert sorted(p.name for p in shots.glob("*.png")) == ["01-training.png", "02-writing.png",
                                                           "03-attention.png"]
    # user data lands in the platformdirs folders of the (empty) HOME, never in the bundle
    assert (home / ".local" / "state" / "TextGen Studio" / "log" / "studio.log").is_file()
    bundled = APP / "_internal" / "resources" / "pretrained"          # the ready-to-write model, shipped
    assert not [p for p in APP.rglob("project.toml") if bundled not in p.parents]
    assert not list(APP.rglob("studio.log"))
    return report


def test_gui_self_test_offscreen_in_a_bare_environment(home, tmp_path):
    _self_test(home, tmp_path / "shots", QT_QPA_PLATFORM="offscreen")


def test_gui_self_test_on_an_x_display(home, tmp_path):
    """Under Xvfb through the xcb plugin with the bundled X libraries (the platform check passes)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("no Xvfb")
    display = f":{150 + os.getpid() % 500}"
    server = subprocess.Popen([xvfb, display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        socket = Path(f"/tmp/.X11-unix/X{display[1:]}")
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert socket.exists(), "Xvfb did not start"
        fonts = {}
        if DEJAVU.is_dir():         # a desktop without CJK fonts: Chinese comes from the bundled font
            config = tmp_path / "fonts.conf"
            config.write_text(f"<?xml version='1.0'?><fontconfig><dir>{DEJAVU}</dir>"
                              f"<cachedir>{tmp_path / 'fontcache'}</cachedir></fontconfig>")
            fonts = {"FONTCONFIG_FILE": str(config)}
        _self_test(home, tmp_path / "shots", DISPLAY=display, **fonts)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
