"""Reference model of the browser's stream store, in pure Python.

``assets/streams.js`` implements the same rules for the real browser; the
property tests run both on the same batches and require identical results, so
this module is the executable form of ``docs/stream-wire-format.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from .core import OP_APPEND, OP_DELETE, OP_INSERT, OP_RESET

__all__ = ["BatchOutcome", "ClientStream", "ClientStreams"]


class BatchOutcome(StrEnum):
    """What the client did with one batch (the same strings as streams.js)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    # A gap was found: the client asks the server for a resync, once.
    GAP = "gap"
    # Already waiting for a reset after a gap: non-reset batches are dropped.
    IGNORED = "ignored"


def _is_reset_batch(ops: Sequence[Any]) -> bool:
    return len(ops) > 0 and len(ops[0]) > 0 and ops[0][0] == OP_RESET


class ClientStream:
    """The items of one stream as the browser holds them, keyed by DOM id."""

    def __init__(self) -> None:
        # Order and lookup are kept apart so an update in place is a dict write.
        self._order: list[str] = []
        self._items: dict[str, dict[str, Any]] = {}
        self.last_seq: int = 0
        self.epoch: str | None = None
        self.awaiting_reset: bool = False

    # -- reading ------------------------------------------------------------------

    @property
    def dom_ids(self) -> list[str]:
        return list(self._order)

    @property
    def items(self) -> list[dict[str, Any]]:
        return [self._items[dom_id] for dom_id in self._order]

    @property
    def is_empty(self) -> bool:
        return not self._order

    @property
    def is_loaded(self) -> bool:
        """Whether any batch was applied: tells "empty" from "not received yet"."""
        return self.last_seq > 0

    def __contains__(self, dom_id: object) -> bool:
        return dom_id in self._items

    # -- batches ------------------------------------------------------------------

    def apply_batch(self, batch: Mapping[str, Any]) -> BatchOutcome:
        """Apply ``batch`` if the seq rules accept it; say what happened."""
        seq = batch["seq"]
        epoch = batch.get("epoch")
        ops = batch["ops"]
        is_reset = _is_reset_batch(ops)
        if self.last_seq > 0 and epoch != self.epoch:
            # The server's counters started over (its copy of this client's
            # state was lost or replaced), so the old seq says nothing about
            # what was missed: only a reset can resynchronise.
            accept = is_reset
            duplicate = False
        else:
            duplicate = seq <= self.last_seq
            accept = not duplicate and (seq == self.last_seq + 1 or is_reset)
        if duplicate:
            return BatchOutcome.DUPLICATE
        if accept and (is_reset or not self.awaiting_reset):
            self.apply_ops(ops)
            self.last_seq = seq
            self.epoch = epoch
            self.awaiting_reset = False
            return BatchOutcome.APPLIED
        if self.awaiting_reset:
            return BatchOutcome.IGNORED
        self.awaiting_reset = True
        return BatchOutcome.GAP

    def apply_ops(self, ops: Sequence[Sequence[Any]]) -> None:
        """Apply ops in order, ignoring the seq rules."""
        for op in ops:
            kind = op[0]
            if kind == OP_RESET:
                self._order.clear()
                self._items.clear()
            elif kind == OP_INSERT:
                self._insert(op[1], op[2], op[3], op[4])
            elif kind == OP_DELETE:
                self._delete(op[1])
            elif kind == OP_APPEND:
                self._append(op[1], op[2], op[3])
            # Unknown ops are skipped so an older client survives a newer server.

    # -- ops ----------------------------------------------------------------------

    def _insert(
        self,
        at: int,
        limit: int | None,
        update_only: bool,
        entries: Sequence[Sequence[Any]],
    ) -> None:
        # ``pos`` is where the next new entry goes, so a batch keeps its order.
        pos = at
        for dom_id, item in entries:
            held = {**item, "dom_id": dom_id}
            if dom_id in self._items:
                # Updated in place and never moved, whatever ``at`` says.
                self._items[dom_id] = held
                continue
            if update_only:
                continue
            if at == -1:
                self._order.append(dom_id)
            else:
                index = min(pos, len(self._order))
                self._order.insert(index, dom_id)
                pos = index + 1
            self._items[dom_id] = held
            dropped_front = self._apply_limit(limit)
            # Items dropped above the insertion point shift it up, so the next
            # entry still lands right after the previous one.
            pos = max(pos - dropped_front, 0)

    def _apply_limit(self, limit: int | None) -> int:
        """Trim to ``limit``; return how many items were dropped from the front."""
        if limit is None:
            return 0
        excess = len(self._order) - abs(limit)
        if excess <= 0:
            return 0
        if limit < 0:
            dropped = self._order[:excess]
            del self._order[:excess]
        else:
            dropped = self._order[limit:]
            del self._order[limit:]
        for dom_id in dropped:
            del self._items[dom_id]
        return excess if limit < 0 else 0

    def _delete(self, dom_id: str) -> None:
        if self._items.pop(dom_id, None) is not None:
            self._order.remove(dom_id)

    def _append(self, dom_id: str, field: str, text: str) -> None:
        item = self._items.get(dom_id)
        # Empty text changes nothing, not even a missing field (the recorder
        # drops such appends, so the client must agree). ``dom_id`` is the
        # client's own key field; the server never appends to it.
        if item is None or not text or field == "dom_id":
            return
        current = item.get(field)
        if current is None:
            current = ""
        elif not isinstance(current, str):
            # Concatenating onto a number would differ between Python and JS.
            return
        self._items[dom_id] = {**item, field: current + text}


class ClientStreams:
    """All streams of one substate, as fed by ``stream_batches``."""

    def __init__(self) -> None:
        self.streams: dict[str, ClientStream] = {}

    def get(self, name: str) -> ClientStream:
        stream = self.streams.get(name)
        if stream is None:
            stream = self.streams[name] = ClientStream()
        return stream

    def apply_batches(self, batches: Mapping[str, Mapping[str, Any]]) -> dict[str, BatchOutcome]:
        """Apply one delta's ``stream_batches`` value."""
        return {name: self.get(name).apply_batch(batch) for name, batch in batches.items()}
