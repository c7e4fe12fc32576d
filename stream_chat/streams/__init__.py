"""LiveView-style streams: the server records ops, the browser holds the items.

Pure Python (no Reflex import), so it can be tested alone and pickled into any
state manager. The Reflex binding builds on ``StreamSpec`` and ``StreamRecorder``.
Channel batches (``channel_batch``) are built once per room and sent to every
tab whose stream joined that channel.
"""

from .client_model import BatchOutcome, ClientStream, ClientStreams
from .core import Batch, ChannelBatch, DomIdFn, Op, StreamRecorder, StreamSpec, channel_batch

__all__ = [
    "Batch",
    "BatchOutcome",
    "ChannelBatch",
    "ClientStream",
    "ClientStreams",
    "DomIdFn",
    "Op",
    "StreamRecorder",
    "StreamSpec",
    "channel_batch",
]
