"""Build the one-folder TextGen Studio app: ``python packaging/build.py``.

Produces ``dist/TextGenStudio/`` with the studio (``TextGenStudio``, ``TextGenStudio.exe`` on
Windows; ``dist/TextGenStudio.app`` on macOS as well) and the command line (``textgen``) sharing the
libraries in ``dist/TextGenStudio/_internal``. Prints the build time, the folder's size and its
biggest contributors at the end, and fails when the CPU build grows past the size limit.

Options:
    --variant cpu|cuda   cpu (default): the CPU build of torch that constraints.txt installs. cuda:
                         package whatever CUDA build of torch is installed in this environment (see
                         the README's Packaging section); the size limit does not apply.
    --clean              drop PyInstaller's cache (build/pyinstaller) first.
    --max-size-mb N      fail when the folder is larger (default 700; 0 turns the check off).
    --report-only        print the size report of an existing dist/TextGenStudio and exit.

This file is a script, not a module: ``packaging/`` must never become an importable package (it would
shadow the ``packaging`` library that pip and PyInstaller import).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "TextGenStudio.spec"
NAME = "TextGenStudio"
DIST = ROOT / "dist"
WORK = ROOT / "build" / "pyinstaller"
APP_DIR = DIST / NAME
EXE_SUFFIX = ".exe" if sys.platform == "win32" else ""
DEFAULT_MAX_MB = 700
TOP = 15


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="packaging/build.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--clean", action="store_true")
    parser.add_argument("--max-size-mb", type=float, default=None)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    limit = args.max_size_mb if args.max_size_mb is not None else (
        DEFAULT_MAX_MB if args.variant == "cpu" else 0)

    if not args.report_only:
        started = time.monotonic()
        code = build(args.variant, clean=args.clean)
        if code:
            return code
        minutes, seconds = divmod(time.monotonic() - started, 60)
        print(f"\nbuilt {APP_DIR.relative_to(ROOT)} ({args.variant}) in {int(minutes)} min {seconds:.0f} s")
    missing = [p for p in (APP_DIR / f"{NAME}{EXE_SUFFIX}", APP_DIR / f"textgen{EXE_SUFFIX}")
               if not p.is_file()]
    if missing:
        print(f"error: the build did not produce {', '.join(map(str, missing))}", file=sys.stderr)
        return 1
    total = report(APP_DIR)
    if limit and total > limit * 1e6:
        print(f"error: {APP_DIR.relative_to(ROOT)} is {total / 1e6:.0f} MB, over the {limit:.0f} MB "
              f"limit: see the biggest contributors above", file=sys.stderr)
        return 1
    return 0


def build(variant: str, clean: bool) -> int:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        print("error: PyInstaller is not installed: pip install -c constraints.txt -e \".[dev]\" "
              "(or pip install pyinstaller)", file=sys.stderr)
        return 1
    check_environment(variant)
    if clean and WORK.exists():
        shutil.rmtree(WORK)
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
               "--distpath", str(DIST), "--workpath", str(WORK), str(SPEC)]
    env = {**os.environ, "TEXTGEN_BUILD_VARIANT": variant}
    print("+ " + " ".join(command), flush=True)
    code = subprocess.call(command, cwd=ROOT, env=env)
    if code:
        print(f"error: PyInstaller failed (exit code {code})", file=sys.stderr)
        return code
    if sys.platform.startswith("linux"):
        strip_symbols(APP_DIR / "_internal")
        script = ROOT / "packaging" / "linux" / "install-desktop-entry.sh"
        shutil.copy2(script, APP_DIR / script.name)
    return 0


# Only these are stripped: libraries that wheel repair tools (auditwheel/patchelf) rewrote, such as
# numpy's OpenBLAS, no longer load once strip has rewritten them again.
STRIP = ("torch/lib/libtorch*.so", "torch/lib/libc10.so", "torch/lib/libshm.so", "libpython3*.so*")


def strip_symbols(folder: Path) -> None:
    """Drop the static symbol tables (``.symtab``, not the dynamic symbols the loader uses) of the
    libraries in :data:`STRIP`: torch's CPU library alone loses about 90 MB."""
    strip = shutil.which("strip")
    if strip is None:
        print("warning: no strip command (binutils): the libraries keep their symbol tables",
              file=sys.stderr)
        return
    saved = 0
    for path in sorted({p for pattern in STRIP for p in folder.glob(pattern)}):
        if path.is_symlink() or not path.is_file() or not has_symbol_table(path):
            continue
        before = path.stat().st_size
        result = subprocess.run([strip, "--strip-unneeded", str(path)], capture_output=True, text=True)
        if result.returncode:
            print(f"warning: strip {path.name}: {result.stderr.strip()}", file=sys.stderr)
            continue
        saved += before - path.stat().st_size
    print(f"stripped symbol tables: {saved / 1e6:.0f} MB saved")


def has_symbol_table(path: Path) -> bool:
    """Does this ELF file have a ``.symtab`` section (SHT_SYMTAB)? False for anything else."""
    import struct

    try:
        with open(path, "rb") as f:
            ident = f.read(16)
            if ident[:4] != b"\x7fELF" or ident[4] != 2:          # 64-bit ELF only
                return False
            end = "<" if ident[5] == 1 else ">"
            header = f.read(48)
            shoff, = struct.unpack_from(end + "Q", header, 24)
            shentsize, shnum = struct.unpack_from(end + "HH", header, 42)
            f.seek(shoff)
            table = f.read(shentsize * shnum)
        return any(struct.unpack_from(end + "I", table, i * shentsize + 4)[0] == 2  # SHT_SYMTAB
                   for i in range(shnum))
    except (OSError, struct.error):
        return False


def check_environment(variant: str) -> None:
    """Warn when the installed torch does not match the variant asked for."""
    try:
        from importlib.metadata import version
        torch_version = version("torch")
    except Exception:
        print("warning: torch is not installed in this environment", file=sys.stderr)
        return
    cuda_build = "+cpu" not in torch_version and sys.platform.startswith(("linux", "win"))
    try:
        from importlib.metadata import distribution
        requires = distribution("torch").requires or []
        cuda_build = cuda_build and any(r.startswith(("nvidia-", "cuda-")) for r in requires)
    except Exception:
        pass
    if variant == "cpu" and cuda_build:
        print(f"warning: torch {torch_version} looks like a CUDA build; the CPU variant will still "
              "leave its CUDA libraries out, so the app can only use the CPU (install the pinned "
              "CPU build with pip install -c constraints.txt -e . for a CPU package)", file=sys.stderr)
    if variant == "cuda" and not cuda_build:
        print(f"warning: torch {torch_version} is not a CUDA build: the cuda variant will not use "
              "a GPU (install a CUDA build of torch first, see the README)", file=sys.stderr)


def folder_files(folder: Path) -> list[tuple[Path, int]]:
    """Every regular file under ``folder`` with its size; symbolic links count as nothing and
    hard links once."""
    seen: set[tuple[int, int]] = set()
    files: list[tuple[Path, int]] = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        stat = path.stat()
        if (stat.st_dev, stat.st_ino) in seen:
            continue
        seen.add((stat.st_dev, stat.st_ino))
        files.append((path.relative_to(folder), stat.st_size))
    return files


def group_of(relative: Path) -> str:
    """The package or folder a file belongs to, for the contributors table: the first folder under
    ``_internal`` (the second for torch and PySide6, whose parts differ a lot)."""
    parts = relative.parts
    if parts and parts[0] == "_internal":
        parts = parts[1:]
    if len(parts) <= 1:
        return "/".join(parts)
    depth = 2 if parts[0] in ("torch", "PySide6") and len(parts) > 2 else 1
    return "/".join(parts[:depth]) + "/"


def report(folder: Path) -> int:
    files = folder_files(folder)
    total = sum(size for _, size in files)
    groups: dict[str, int] = defaultdict(int)
    for path, size in files:
        groups[group_of(path)] += size
    print(f"\n{folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder}: "
          f"{total / 1e6:.0f} MB ({total / 2**20:.0f} MiB) in {len(files)} files")
    print(f"\nthe {TOP} biggest contributors (folders and files under _internal):")
    for name, size in sorted(groups.items(), key=lambda item: -item[1])[:TOP]:
        print(f"  {size / 1e6:8.1f} MB  {size / total:5.1%}  {name}")
    print(f"\nthe {TOP} biggest files:")
    for path, size in sorted(files, key=lambda item: -item[1])[:TOP]:
        print(f"  {size / 1e6:8.1f} MB  {path}")
    return total


if __name__ == "__main__":
    sys.exit(main())
