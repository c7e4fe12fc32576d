"""LiveView-style streams: the server records ops, the browser holds the items.

Pure Python (no Reflex import), so it can be tested alone and pickled into any
state manager. The Reflex binding builds on ``StreamSpec`` and ``StreamRecorder``.
"""

from .client_model import BatchOutcome, ClientStream, ClientStreams
from .core import Batch, DomIdFn, Op, StreamRecorder, StreamSpec

__all__ = [
    "Batch",
    "BatchOutcome",
    "ClientStream",
    "ClientStreams",
    "DomIdFn",
    "Op",
    "StreamRecorder",
    "StreamSpec",
]
