"""Keep Python's cyclic garbage collector from freezing the window.

With torch, Qt and pyqtgraph loaded the interpreter tracks millions of objects, and a full (oldest
generation) collection walks all of them with the GIL held: 200-350 ms measured here, during which
no thread runs Python code and the window does not respond. Such collections are triggered by
allocation bursts anywhere, e.g. the training thread encoding a corpus.

Objects that live as long as the app (imported modules, the panels, a loaded model) never become
garbage, so after each burst of such allocations they are moved into the collector's permanent
generation with :func:`gc.freeze`; later collections only walk what was allocated since. The price:
a frozen object that later becomes part of unreachable cycle is not reclaimed (plain reference
counting still frees everything else), so only call this where what is alive stays alive.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Exclude every object alive now from future collections (cheap: no walk, no pause)."""
    gc.freeze()
