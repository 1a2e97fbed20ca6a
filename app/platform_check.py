"""Before Qt starts: can its X11 (xcb) platform plugin load on this Linux desktop?

Since Qt 6.5 the xcb plugin needs system libraries that many Ubuntu, Debian and WSL installations lack
(``libxcb-cursor0``, ``libxcb-icccm4``, ``libxcb-keysyms1`` ...). Without them creating the
``QApplication`` aborts the process (exit code 134) with a message that names the wrong package, and
started from a desktop icon the studio shows nothing at all. This module reads the libraries the
plugin needs from its ELF files, tries to load each one that is not shipped with Qt, and names the
missing ones with the ``apt-get install`` command that provides them. It imports no Qt, takes a few
milliseconds, and any surprise in the check itself only lets the studio start as before.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

# Extra library names to require, separated by commas: lets a test stand in for a machine that lacks one.
EXTRA_ENV = "TEXTGEN_XCB_CHECK_EXTRA"

# What the xcb plugin of PySide6 6.5+ needs outside Qt; used when its ELF files cannot be read.
KNOWN_XCB_LIBRARIES = (
    "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-image.so.0",
    "libxcb-render-util.so.0", "libxcb-util.so.1", "libxkbcommon-x11.so.0", "libxkbcommon.so.0",
    "libxcb-randr.so.0", "libxcb-shape.so.0", "libxcb-xkb.so.1", "libxcb-shm.so.0", "libxcb-sync.so.1",
    "libxcb-xfixes.so.0", "libxcb-render.so.0", "libxcb.so.1", "libX11-xcb.so.1", "libX11.so.6",
    "libGL.so.1", "libEGL.so.1",
)

# Debian/Ubuntu packages whose names do not follow the soname rule in `debian_package`.
_PACKAGE_EXCEPTIONS = {
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
}

# Part of the C library itself, always there when Python runs.
_C_LIBRARY = {"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1"}

_CANNOT_OPEN = re.compile(r"^\s*([^\s:]+\.so[^\s:]*): cannot open shared object file")


def check_before_qt(env: Mapping[str, str] | None = None) -> int | None:
    """Return 2 after telling the user which system libraries Qt lacks; None when Qt may start.

    Never raises: a failure of the check itself is logged at debug level and lets the studio start.
    """
    env = os.environ if env is None else env
    try:
        if not sys.platform.startswith("linux") or not xcb_will_be_used(env):
            return None
        plugin = find_xcb_plugin()
        if plugin is None:
            return None
        extra = [name.strip() for name in env.get(EXTRA_ENV, "").split(",") if name.strip()]
        qt_lib = plugin.parent.parent.parent / "lib"
        missing = missing_libraries(needed_libraries(plugin) + extra, qt_lib, bundled_library_dirs())
        if not missing:
            return None
        message = missing_message(missing)
        print(message, file=sys.stderr, flush=True)
        if not _stderr_is_terminal():
            show_desktop_notice(message)
        return 2
    except Exception:  # the check must never be the reason the studio does not start
        log.debug("platform check skipped", exc_info=True)
        return None


def xcb_will_be_used(env: Mapping[str, str]) -> bool:
    """Would Qt 6 try its xcb plugin, with an X display to connect to, before any other plugin?

    Qt tries the plugins of ``QT_QPA_PLATFORM`` in order (``"wayland;xcb"``); unset, it tries wayland
    first when ``WAYLAND_DISPLAY`` is set or ``XDG_SESSION_TYPE`` is ``wayland``, then xcb. Wayland only
    fails over to xcb when no compositor listens.
    """
    requested = env.get("QT_QPA_PLATFORM", "").strip()
    if requested:
        order = [name.split(":")[0].strip().lower() for name in requested.split(";")]
    elif env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland":
        order = ["wayland", "xcb"]
    else:
        order = ["xcb"]
    for name in order:
        if name.startswith("wayland") and _wayland_compositor_listens(env):
            return False
        if name == "xcb":
            return bool(env.get("DISPLAY"))
        if name and not name.startswith("wayland"):
            return False                    # offscreen, eglfs, vnc ...: no X libraries involved
    return False


def _wayland_compositor_listens(env: Mapping[str, str]) -> bool:
    socket = Path(env.get("WAYLAND_DISPLAY") or "wayland-0")
    if not socket.is_absolute():
        runtime_dir = env.get("XDG_RUNTIME_DIR")
        if not runtime_dir:
            return False
        socket = Path(runtime_dir) / socket
    return socket.exists()


def find_xcb_plugin() -> Path | None:
    """The ``libqxcb.so`` of the installed PySide6, located without importing Qt."""
    spec = importlib.util.find_spec("PySide6")
    for location in (spec.submodule_search_locations or []) if spec else []:
        plugin = Path(location) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def needed_libraries(plugin: Path) -> list[str]:
    """Sonames that the plugin and Qt's xcb support library (next to Qt's other libraries) need."""
    qt_lib = plugin.parent.parent.parent / "lib"
    files = [plugin, *sorted(qt_lib.glob("libQt6XcbQpa.so*"))[:1]]
    names: list[str] = []
    for file in files:
        try:
            names += [n for n in elf_needed(file) if n not in names]
        except (OSError, ValueError, IndexError, struct.error):
            log.debug("cannot read the libraries %s needs", file, exc_info=True)
            return list(KNOWN_XCB_LIBRARIES)
    return names or list(KNOWN_XCB_LIBRARIES)


def elf_needed(path: Path) -> list[str]:
    """The DT_NEEDED entries of an ELF shared object, read from its section headers."""
    with open(path, "rb") as f:
        ident = f.read(16)
        if ident[:4] != b"\x7fELF":
            raise ValueError(f"{path} is not an ELF file")
        wide, end = ident[4] == 2, "<" if ident[5] == 1 else ">"
        header = f.read(48 if wide else 36)
        if wide:
            shoff, = struct.unpack_from(end + "Q", header, 24)
            shentsize, shnum = struct.unpack_from(end + "HH", header, 42)
        else:
            shoff, = struct.unpack_from(end + "I", header, 16)
            shentsize, shnum = struct.unpack_from(end + "HH", header, 30)
        f.seek(shoff)
        table = f.read(shentsize * shnum)
        shdr = end + ("IIQQQQIIQQ" if wide else "IIIIIIIIII")
        sections = [struct.unpack_from(shdr, table, i * shentsize) for i in range(shnum)]
        names: list[str] = []
        for _, sh_type, _, _, offset, size, link, _, _, entsize in sections:
            if sh_type != 6:                                # SHT_DYNAMIC
                continue
            f.seek(sections[link][4])
            strings = f.read(sections[link][5])
            f.seek(offset)
            dynamic = f.read(size)
            entry = end + ("qQ" if wide else "iI")
            for i in range(size // (entsize or struct.calcsize(entry))):
                tag, value = struct.unpack_from(entry, dynamic, i * struct.calcsize(entry))
                if tag == 0:                                # DT_NULL
                    break
                if tag == 1:                                # DT_NEEDED
                    names.append(strings[value:strings.index(b"\0", value)].decode())
        return names


def bundled_library_dirs() -> list[Path]:
    """Where the frozen (PyInstaller) app keeps the libraries it ships: the X libraries the xcb
    plugin needs (libxcb-cursor, -icccm, -keysyms ...) travel there and are found by the loader
    before the system's. Empty when running from source."""
    bundle = getattr(sys, "_MEIPASS", None)
    if not getattr(sys, "frozen", False) or not bundle:
        return []
    return [Path(bundle)]


def missing_libraries(names: Iterable[str], qt_lib: Path, bundled: Sequence[Path] = ()) -> list[str]:
    """Those of ``names`` (or the libraries they need) that the dynamic loader cannot find.

    Libraries shipped in Qt's own folder (or in one of the ``bundled`` folders of a frozen app) are
    skipped: the plugin finds them through its RUNPATH or the bundle's library path. A library that
    is found but fails to load for another reason is not reported.
    """
    missing: list[str] = []
    shipped = [qt_lib, *bundled]
    for name in names:
        if name in _C_LIBRARY or any((folder / name).exists() for folder in shipped):
            continue
        try:
            ctypes.CDLL(name, mode=os.RTLD_LAZY | os.RTLD_LOCAL)
        except OSError as exc:
            match = _CANNOT_OPEN.match(str(exc))
            if match is None:
                log.debug("%s is present but does not load: %s", name, exc)
                continue
            if match.group(1) not in missing:
                missing.append(match.group(1))
    return missing


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships a library: ``libxcb-icccm.so.4`` -> ``libxcb-icccm4``."""
    if soname in _PACKAGE_EXCEPTIONS:
        return _PACKAGE_EXCEPTIONS[soname]
    stem, _, version = soname.partition(".so")
    major = version.lstrip(".").split(".")[0]
    stem = stem.lower().replace("_", "-")
    if not major:
        return stem
    return f"{stem}-{major}" if stem[-1].isdigit() else f"{stem}{major}"


def missing_message(missing: Sequence[str]) -> str:
    """One line: what is missing, and the command that installs it."""
    packages = " ".join(dict.fromkeys(debian_package(name) for name in missing))
    command = f"sudo apt-get install {packages}"
    how = (f"install them with: {command}" if shutil.which("apt-get")
           else f"install your distribution's packages for them (Debian/Ubuntu: {command})")
    return (f"textgen-studio: cannot start on this X11 desktop: Qt's xcb platform plugin needs "
            f"{', '.join(missing)}, which this system lacks; {how}")


def show_desktop_notice(message: str) -> None:
    """Best effort, without Qt and without waiting: tell a user who started the studio from an icon."""
    tools = (("notify-send", ["--urgency=critical", "TextGen Studio cannot start", message]),
             ("zenity", ["--error", "--title=TextGen Studio", f"--text={message}"]),
             ("xmessage", ["-center", message]))
    for tool, args in tools:
        path = shutil.which(tool)
        if path is None:
            continue
        try:
            subprocess.Popen([path, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
            return
        except OSError:
            log.debug("%s could not show the notice", tool, exc_info=True)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
