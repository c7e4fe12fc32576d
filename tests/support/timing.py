"""For code that measures time in a process holding a large heap (a test process with
Reflex, SQLAlchemy and the openai client loaded; a benchmark's hundreds of tabs)."""

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def no_collector_pauses() -> Iterator[None]:
    """No garbage-collector pause in this process while the block runs: a full collection
    of such a heap stops everything for 100 ms or more, which a measurement would count as
    the code's own time. Collected before and after instead."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()
