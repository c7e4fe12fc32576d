"""The backend worker's garbage collector, set for latency rather than for the smallest heap.

With a room open in a few hundred tabs, a worker holds a few hundred thousand long-lived
objects (each tab's state, socket and queues). CPython's default collector walks all of them
every few seconds (30-60 ms each time, measured with 200 tabs), and every tab's delivery
waits meanwhile: that was the tail of the fan-out latency (README, "Measured:
bench/fanout.py").

* What exists once the worker has started (the app, its modules, its compiled pages) is moved
  out of the collector's sight with `gc.freeze()`: it lives as long as the process.
* Collections of young objects run ten times less often than by default, so fewer objects
  that are about to die (an update on its way to 200 sockets) are promoted to the old
  generation, which is what makes full collections come round.
"""

import gc

# CPython's defaults are (700, 10, 10).
THRESHOLDS = (7000, 10, 10)


def settle_heap() -> None:
    """Lifespan task: runs once at the start of each backend worker."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
