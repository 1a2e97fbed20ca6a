"""The check before Qt starts: missing X libraries are named with the apt-get command, never a Qt abort."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import platform_check as pc

ROOT = Path(__file__).resolve().parent.parent
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb plugin is Linux only")
PLUGIN = pc.find_xcb_plugin() if sys.platform.startswith("linux") else None
needs_plugin = pytest.mark.skipif(PLUGIN is None, reason="PySide6 has no xcb plugin here")


@pytest.mark.parametrize(("soname", "package"), [
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libX11.so.6", "libx11-6"),
    ("libEGL.so.1", "libegl1"),
    ("libGL.so.1", "libgl1"),
    ("libglib-2.0.so.0", "libglib2.0-0"),
])
def test_debian_package_names(soname, package):
    assert pc.debian_package(soname) == package


def test_a_missing_library_is_named_with_its_package_and_the_apt_get_command(tmp_path):
    missing = pc.missing_libraries(["libdoesnotexist.so.9"], tmp_path)
    assert missing == ["libdoesnotexist.so.9"]
    message = pc.missing_message(["libxcb-cursor.so.0", "libxcb-icccm.so.4", *missing])
    assert "\n" not in message
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4, libdoesnotexist.so.9" in message
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4 libdoesnotexist9" in message


def test_libraries_shipped_with_qt_are_not_looked_up(tmp_path):
    (tmp_path / "libQt6Gui.so.6").touch()
    assert pc.missing_libraries(["libQt6Gui.so.6", "libc.so.6"], tmp_path) == []


def test_only_an_x11_session_with_xcb_first_is_checked(tmp_path):
    x11 = {"DISPLAY": ":0"}
    assert pc.xcb_will_be_used(x11)
    assert pc.xcb_will_be_used({**x11, "QT_QPA_PLATFORM": "xcb"})
    assert pc.xcb_will_be_used({**x11, "QT_QPA_PLATFORM": "xcb:nograb;wayland"})
    assert not pc.xcb_will_be_used({})                                   # no X display to connect to
    assert not pc.xcb_will_be_used({**x11, "QT_QPA_PLATFORM": "offscreen"})
    assert not pc.xcb_will_be_used({**x11, "QT_QPA_PLATFORM": "wayland"})
    (tmp_path / "wayland-0").touch()
    wayland = {**x11, "WAYLAND_DISPLAY": "wayland-0", "XDG_RUNTIME_DIR": str(tmp_path)}
    assert not pc.xcb_will_be_used(wayland)                              # Qt picks wayland first
    assert not pc.xcb_will_be_used({**x11, "XDG_SESSION_TYPE": "wayland", "XDG_RUNTIME_DIR": str(tmp_path)})
    assert pc.xcb_will_be_used({**wayland, "WAYLAND_DISPLAY": "wayland-9"})  # no compositor: Qt falls back
    assert pc.xcb_will_be_used({**wayland, "QT_QPA_PLATFORM": "xcb"})


@linux_only
@needs_plugin
def test_the_plugin_needs_are_read_from_its_elf_file():
    needed = pc.elf_needed(PLUGIN)
    assert "libQt6XcbQpa.so.6" in needed
    xcb_libraries = {"libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxkbcommon-x11.so.0"}
    assert xcb_libraries <= set(pc.needed_libraries(PLUGIN))


@linux_only
@needs_plugin
def test_check_reports_once_and_returns_2(monkeypatch, capsys):
    notices = []
    monkeypatch.setattr(pc, "show_desktop_notice", notices.append)
    monkeypatch.setattr(pc, "_stderr_is_terminal", lambda: False)
    code = pc.check_before_qt({"DISPLAY": ":0", pc.EXTRA_ENV: "libdoesnotexist.so.9"})
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.splitlines()) == 1 and "libdoesnotexist9" in err
    assert notices == [err.strip()]


@linux_only
@needs_plugin
def test_check_passes_when_every_library_loads(monkeypatch, capsys):
    monkeypatch.setattr(pc.ctypes, "CDLL", lambda *args, **kwargs: object())
    assert pc.check_before_qt({"DISPLAY": ":0"}) is None
    assert capsys.readouterr().err == ""


def test_a_failing_check_lets_the_studio_start(monkeypatch):
    monkeypatch.setattr(pc, "xcb_will_be_used", lambda env: 1 / 0)
    assert pc.check_before_qt({"DISPLAY": ":0"}) is None


def test_desktop_notice_starts_a_tool_without_waiting(monkeypatch):
    started = []
    monkeypatch.setattr(pc.shutil, "which", lambda tool: f"/usr/bin/{tool}" if tool == "zenity" else None)
    monkeypatch.setattr(pc.subprocess, "Popen", lambda args, **kwargs: started.append((args, kwargs)))
    pc.show_desktop_notice("needs libfoo")
    [(args, kwargs)] = started
    assert args[0] == "/usr/bin/zenity" and "--text=needs libfoo" in args
    assert kwargs["start_new_session"]


@linux_only
@needs_plugin
@pytest.mark.skipif(shutil.which("ldd") is None, reason="ldd is not installed")
def test_the_check_agrees_with_ldd():
    """On this very machine: the libraries the check misses are the ones ldd cannot find."""
    files = [PLUGIN, *sorted((PLUGIN.parents[2] / "lib").glob("libQt6XcbQpa.so*"))[:1]]
    ldd = subprocess.run(["ldd", *map(str, files)], capture_output=True, text=True, timeout=30).stdout
    not_found = {line.split()[0] for line in ldd.splitlines() if "not found" in line}
    assert set(pc.missing_libraries(pc.needed_libraries(PLUGIN), PLUGIN.parents[2] / "lib")) == not_found


@linux_only
@needs_plugin
def test_studio_exits_2_with_one_line_instead_of_a_qt_abort():
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "DBUS_SESSION_BUS_ADDRESS")}
    env.update({"DISPLAY": ":987", "PATH": str(Path(sys.executable).parent),  # no notify-send/zenity
                pc.EXTRA_ENV: "libdoesnotexist.so.9"})
    result = subprocess.run([sys.executable, "-m", "app.main"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "libdoesnotexist.so.9" in lines[0] and "sudo apt-get install" in lines[0]
    assert "libdoesnotexist9" in lines[0]
    assert "no Qt platform plugin could be initialized" not in result.stderr
