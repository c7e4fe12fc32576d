"""Reference model of the browser's stream store, in pure Python.

``assets/streams.js`` implements the same rules for the real browser; the
property tests run both on the same batches and require identical results, so
this module is the executable form of ``docs/stream-wire-format.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from .core import (
    CHANNEL_FORBIDDEN_OPS,
    OP_APPEND,
    OP_DELETE,
    OP_INSERT,
    OP_JOIN,
    OP_PATCH,
    OP_RESET,
    OP_TAIL,
)

__all__ = ["BatchOutcome", "ClientStream", "ClientStreams"]


class BatchOutcome(StrEnum):
    """What the client did with one batch (the same strings as streams.js)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    # A gap was found: the client asks the server for a resync, once.
    GAP = "gap"
    # Already waiting for a reset after a gap: non-reset batches are dropped;
    # also a channel batch of a channel this stream has not joined.
    IGNORED = "ignored"


def _is_reset_batch(ops: Sequence[Any]) -> bool:
    return len(ops) > 0 and len(ops[0]) > 0 and ops[0][0] == OP_RESET


def _is_count(value: object) -> bool:
    """A non-negative int as JSON carries it (``bool`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class ClientStream:
    """The items of one stream as the browser holds them, keyed by DOM id."""

    def __init__(self) -> None:
        # Order and lookup are kept apart so an update in place is a dict write.
        self._order: list[str] = []
        self._items: dict[str, dict[str, Any]] = {}
        self.last_seq: int = 0
        self.epoch: str | None = None
        self.awaiting_reset: bool = False
        # Set by a join op, cleared by a reset: which channel batches apply.
        self.channel: str | None = None
        self.channel_seq: int = 0
        # Set by a tail op, restored by a reset: whether channel batches may add
        # items, and how many they tried to add while they could not.
        self.tail: bool = True
        self.unseen: int = 0

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
        if "channel" in batch:
            return self._apply_channel_batch(batch)
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

    def _apply_channel_batch(self, batch: Mapping[str, Any]) -> BatchOutcome:
        """The cseq rules of a channel batch; ``seq``, ``epoch`` are left alone."""
        cseq = batch.get("cseq")
        if self.channel is None or batch["channel"] != self.channel or not _is_count(cseq):
            # Another room's broadcast (or none joined yet): not for this stream.
            return BatchOutcome.IGNORED
        if cseq <= self.channel_seq:
            return BatchOutcome.DUPLICATE
        if self.awaiting_reset:
            return BatchOutcome.IGNORED
        if cseq != self.channel_seq + 1:
            self.awaiting_reset = True
            return BatchOutcome.GAP
        self.apply_ops(batch["ops"], from_channel=True)
        self.channel_seq = cseq
        return BatchOutcome.APPLIED

    def apply_ops(self, ops: Sequence[Sequence[Any]], *, from_channel: bool = False) -> None:
        """Apply ops in order, ignoring the seq rules.

        With ``from_channel`` (the ops of a channel batch) reset and join ops are
        skipped: a batch shared by a whole room cannot clear or rebind a tab.
        """
        for op in ops:
            kind = op[0]
            if from_channel and kind in CHANNEL_FORBIDDEN_OPS:
                continue
            if kind == OP_RESET:
                self._order.clear()
                self._items.clear()
                self.channel = None
                self.channel_seq = 0
                self.tail = True
                self.unseen = 0
            elif kind == OP_INSERT:
                self._insert(op[1], op[2], op[3], op[4], skip_new=from_channel and not self.tail)
            elif kind == OP_DELETE:
                self._delete(op[1])
            elif kind == OP_APPEND:
                if len(op) > 4 and op[4] is not None:
                    self._append_at(op[1], op[2], op[3], op[4])
                else:
                    self._append(op[1], op[2], op[3])
            elif kind == OP_PATCH and len(op) > 2 and isinstance(op[2], dict):
                # (Fields that are not a JSON object are skipped like an unknown op.)
                self._patch(op[1], op[2])
            elif kind == OP_JOIN and isinstance(op[1], str) and _is_count(op[2]):
                # (A malformed join is skipped like an unknown op.)
                self.channel = op[1]
                self.channel_seq = op[2]
            elif kind == OP_TAIL and len(op) > 1 and isinstance(op[1], bool):
                # (A tail without a JSON boolean is skipped like an unknown op.)
                self.tail = op[1]
                if op[1]:
                    self.unseen = 0
            # Unknown ops are skipped so an older client survives a newer server.

    # -- ops ----------------------------------------------------------------------

    def _insert(
        self,
        at: int,
        limit: int | None,
        update_only: bool,
        entries: Sequence[Sequence[Any]],
        *,
        skip_new: bool = False,
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
            if skip_new:
                # Not tailing: a new item is counted, not shown.
                self.unseen += 1
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

    def _patch(self, dom_id: str, fields: Mapping[str, Any]) -> None:
        item = self._items.get(dom_id)
        if item is None:
            return
        # A new dict, never moved; ``dom_id`` is the client's own key field and
        # stays whatever the fields say.
        self._items[dom_id] = {**item, **fields, "dom_id": dom_id}

    def _append(self, dom_id: str, field: str, text: str) -> None:
        current = self._appendable(dom_id, field, text)
        if current is not None:
            self._items[dom_id] = {**self._items[dom_id], field: current + text}

    def _append_at(self, dom_id: str, field: str, text: str, offset: Any) -> None:
        """``item[field] = current[:offset] + text``; offsets count code points."""
        current = self._appendable(dom_id, field, text)
        # A bad offset, or text this client does not have yet: do nothing
        # rather than write the new text at the wrong place.
        if current is None or not _is_count(offset) or offset > len(current):
            return
        self._items[dom_id] = {**self._items[dom_id], field: current[:offset] + text}

    def _appendable(self, dom_id: str, field: str, text: str) -> str | None:
        """The field's current text if an append may change it, else ``None``."""
        item = self._items.get(dom_id)
        # Empty text changes nothing, not even a missing field (the recorder
        # drops such appends, so the client must agree). ``dom_id`` is the
        # client's own key field; the server never appends to it.
        if item is None or not text or field == "dom_id":
            return None
        current = item.get(field)
        if current is None:
            return ""
        if not isinstance(current, str):
            # Concatenating onto a number would differ between Python and JS.
            return None
        return current


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
