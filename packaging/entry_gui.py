"""Frozen entry point of ``TextGenStudio`` (the PyInstaller bundle's GUI executable)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()        # a child process of the frozen app runs its task and exits here
    from app.main import main

    sys.exit(main())
