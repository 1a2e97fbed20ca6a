"""Frozen entry point of ``textgen`` (the command line, in the same folder as TextGenStudio)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from textgen_core.cli import main

    sys.exit(main())
