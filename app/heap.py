"""Keep Python's cyclic garbage collector from freezing the window.

With torch, Qt and pyqtgraph loaded the interpreter tracks millions of objects, and a full (oldest
generation) collection walks all of them with the GIL held: 200-350 ms measured here, during which
no thread runs Python code and the window does not respond. Such collections are triggered by
allocation bursts anywhere, e.g. the training thread encoding a corpus.

Objects that live as long as the app (imported modules, the panels, a loaded model) never become
garbage, so after each burst of such allocations they are moved out of the collector's sight with
:func:`gc.freeze` (the technique CPython documents for long-running processes). Later
collections only walk what was allocated since.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Exclude every object alive now from future collections (cheap: no walk, no pause)."""
    gc.freeze()
