"""Server half of LiveView-style streams, with no dependency on Reflex.

The browser owns the items of a stream; the server only records the operations
that are still to be sent, numbers them into batches, and forgets them once a
batch has been taken for a delta. The wire format is specified in
``docs/stream-wire-format.md``; ``client_model.py`` is the reference client.

Besides the per-client batches, the server can build *channel batches* with
``channel_batch``: one batch per chat room, encoded once and sent to every tab
whose stream joined that channel (``StreamRecorder.join``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypedDict

__all__ = [
    "Batch",
    "ChannelBatch",
    "DomIdFn",
    "Entry",
    "Op",
    "StreamRecorder",
    "StreamSpec",
    "channel_batch",
    "validate_at",
    "validate_limit",
]

# Ops are JSON arrays rather than objects: they are the bulk of every token
# flush, and positional fields keep each one a few bytes long.
Op = list[Any]
# One ``[dom_id, item]`` pair of an insert op.
Entry = list[Any]
DomIdFn = Callable[[Mapping[str, Any]], str]

OP_RESET: Final = "reset"
OP_INSERT: Final = "insert"
OP_DELETE: Final = "delete"
OP_APPEND: Final = "append"
OP_JOIN: Final = "join"
OP_PATCH: Final = "patch"
OP_TAIL: Final = "tail"
# Ops a channel batch may not carry: they rebind, clear or detach one tab's
# stream, which a batch shared by every tab of a room must never do.
CHANNEL_FORBIDDEN_OPS: Final = frozenset({OP_RESET, OP_JOIN, OP_TAIL})


class Batch(TypedDict):
    """What ``stream_batches[name]`` holds on the wire for one stream."""

    seq: int
    epoch: str
    ops: list[Op]


class ChannelBatch(TypedDict):
    """A batch built once for a channel (a room) and sent to every tab in it."""

    channel: str
    cseq: int
    ops: list[Op]


def validate_at(at: object) -> int:
    """Return ``at`` if it is a valid insertion index, else raise.

    ``bool`` is refused although it is an ``int``: ``at=True`` is always a
    mistake, and silently meaning index 1 would hide it.
    """
    if not isinstance(at, int) or isinstance(at, bool):
        raise TypeError(f"stream `at` must be an int, got {at!r}")
    if at < -1:
        raise ValueError(f"stream `at` must be -1 (append) or an index >= 0, got {at}")
    return at


def validate_limit(limit: object) -> int | None:
    """Return ``limit`` if it is ``None`` or an int, else raise."""
    if limit is None:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise TypeError(f"stream `limit` must be an int or None, got {limit!r}")
    return limit


def _validate_count(value: object, what: str, minimum: int) -> int:
    """Return ``value`` if it is an int (not a bool) ``>= minimum``, else raise."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"stream `{what}` must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"stream `{what}` must be >= {minimum}, got {value}")
    return value


def _validate_channel(channel: object) -> str:
    if not isinstance(channel, str):
        raise TypeError(f"a stream channel must be a string, got {channel!r}")
    if not channel:
        raise ValueError("a stream channel must be a non-empty string")
    return channel


def channel_batch(channel: str, cseq: int, ops: Iterable[Op]) -> ChannelBatch:
    """The channel batch number ``cseq`` of ``channel``, carrying ``ops``.

    ``ops`` are recorded with the ordinary recorder API, usually on a throwaway
    recorder (``StreamRecorder.take_ops``). ``cseq`` starts at 1 and grows by
    one per batch of the channel; a tab whose stream joined the channel at
    ``cseq == n`` applies batch ``n + 1`` next. An empty ``ops`` is allowed:
    it still moves every tab's ``cseq`` on by one.

    A reset, join or tail cannot travel in a channel batch (``ValueError``): clients
    skip them there, and a server that meant them would silently diverge.
    """
    channel = _validate_channel(channel)
    cseq = _validate_count(cseq, "cseq", 1)
    checked: list[Op] = []
    for op in ops:
        if not isinstance(op, list) or not op or not isinstance(op[0], str):
            raise TypeError(
                f"channel {channel!r}: an op must be a list naming its kind, got {op!r}"
            )
        if op[0] in CHANNEL_FORBIDDEN_OPS:
            raise ValueError(
                f"channel {channel!r}: a channel batch cannot carry a {op[0]!r} op "
                "(send it in the tab's own batch)"
            )
        checked.append(op)
    return {"channel": channel, "cseq": cseq, "ops": checked}


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """Class-level description of one stream: its name and how items map to DOM ids.

    It lives on the state class, never in per-client state, so the per-client
    recorder stays free of callables and can be pickled into Redis.
    """

    name: str
    # ``None`` means the LiveView default ``f"{name}-{item['id']}"``.
    dom_id: DomIdFn | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a stream name must be a non-empty string, got {self.name!r}")

    def dom_id_of(self, item: Mapping[str, Any]) -> str:
        """The DOM id of ``item`` in this stream; raises ``ValueError`` if it has none."""
        if not isinstance(item, Mapping):
            raise TypeError(
                f"stream {self.name!r}: items must be mappings (dicts), got {type(item).__name__}"
            )
        if self.dom_id is None:
            item_id = item.get("id")
            if item_id is None:
                raise ValueError(
                    f"stream {self.name!r}: item has no 'id' (missing or None), "
                    f"so it has no DOM id: {dict(item)!r}"
                )
            return f"{self.name}-{item_id}"
        dom_id = self.dom_id(item)
        if not isinstance(dom_id, str) or not dom_id:
            raise ValueError(
                f"stream {self.name!r}: the dom_id function must return a non-empty "
                f"string, got {dom_id!r} for {dict(item)!r}"
            )
        return dom_id

    def entry(self, item: Mapping[str, Any]) -> Entry:
        """The ``[dom_id, item]`` pair sent in an insert op.

        The item is copied so that a caller who mutates its dict after the call
        (the usual token-streaming loop) does not rewrite an op still pending.
        """
        return [self.dom_id_of(item), dict(item)]


def _require_str(value: object, what: str, stream: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"stream {stream!r}: {what} must be a string, got {value!r}")
    return value


class StreamRecorder:
    """Per-client pending ops and sequence counters for every stream of a state.

    Only what has not been sent yet is held: ``take_batches`` hands the pending
    ops out and drops them, so the pickled size depends on the number of
    streams, never on how many items went through them. No callables are kept,
    which is what makes it safe to store inside a Reflex state in Redis.

    The recorder is mutated in place: code that keeps it in a Reflex backend
    var must make sure the state is marked touched when it records or takes,
    or a Redis state manager will not persist the new sequence numbers.
    """

    __slots__ = ("_epoch", "_pending", "_seq")

    def __init__(self) -> None:
        self._pending: dict[str, list[Op]] = {}
        self._seq: dict[str, int] = {}
        # Assigned on the first take, not here: a recorder used as a class
        # default is deep-copied into every new state, and each copy must get
        # an epoch of its own or two lives of a client's state could collide.
        self._epoch: str = ""

    # -- recording ------------------------------------------------------------

    def stream(
        self,
        spec: StreamSpec,
        items: Iterable[Mapping[str, Any]],
        *,
        at: int = -1,
        reset: bool = False,
        limit: int | None = None,
    ) -> None:
        """Insert ``items`` in the given order at ``at``; with ``reset`` clear the stream first."""
        at = validate_at(at)
        limit = validate_limit(limit)
        if isinstance(items, Mapping | str | bytes):
            # Iterating a single dict would stream its keys; say what went wrong.
            raise TypeError(f"stream {spec.name!r}: items must be an iterable of mappings")
        # Compute every DOM id before touching pending ops, so that a bad item
        # leaves the recorder exactly as it was.
        entries = [spec.entry(item) for item in items]
        if reset:
            # Ops recorded before a reset can have no visible effect, and a
            # batch that starts with a reset is accepted by the client even
            # after a gap, so the reset must come first.
            self._pending[spec.name] = [[OP_RESET]]
        if entries:
            self._add_insert(spec.name, at, limit, False, entries)

    def insert(
        self,
        spec: StreamSpec,
        item: Mapping[str, Any],
        *,
        at: int = -1,
        limit: int | None = None,
        update_only: bool = False,
    ) -> None:
        """Insert or update one item (an item already present is updated in place)."""
        at = validate_at(at)
        limit = validate_limit(limit)
        self._add_insert(spec.name, at, limit, bool(update_only), [spec.entry(item)])

    def delete(self, spec: StreamSpec, item: Mapping[str, Any]) -> None:
        """Remove ``item`` from the client; an unknown item is ignored there."""
        self.delete_by_dom_id(spec, spec.dom_id_of(item))

    def delete_by_dom_id(self, spec: StreamSpec, dom_id: str) -> None:
        """Remove the item with DOM id ``dom_id``; an unknown id is ignored there."""
        _require_str(dom_id, "dom_id", spec.name)
        self._ops(spec.name).append([OP_DELETE, dom_id])

    def append_text(
        self,
        spec: StreamSpec,
        target: str | Mapping[str, Any],
        field: str,
        text: str,
        *,
        offset: int | None = None,
    ) -> None:
        """Append ``text`` to ``item[field]`` in the browser, for token-by-token replies.

        ``target`` is a DOM id or an item. Appends to the same item and field
        that follow each other within one batch are merged, so a flush carries
        one op per growing field however many tokens arrived.

        With ``offset`` (in code points, Python's ``len``) the client sets
        ``item[field] = item[field][:offset] + text`` instead, and does nothing
        when its text is shorter than ``offset``: delivering the same append
        twice gives the same text, which channel batches rely on. An offset
        append merges only with the previous offset append to the same item and
        field, and only when it continues it exactly.
        """
        dom_id = target if isinstance(target, str) else spec.dom_id_of(target)
        _require_str(field, "field", spec.name)
        _require_str(text, "text", spec.name)
        if offset is not None:
            offset = _validate_count(offset, "offset", 0)
        if field == "dom_id":
            # The client sets that field itself; growing it would desync the key.
            raise ValueError(f"stream {spec.name!r}: cannot append to the 'dom_id' field")
        if not text:
            # Clients ignore empty text too, with or without an offset (an
            # offset append of "" would otherwise be a truncation).
            return
        ops = self._ops(spec.name)
        # Appends to different (dom_id, field) pairs commute, so the trailing run
        # of appends can absorb this one even when two replies are interleaved.
        # Only the latest append to the same pair may absorb it.
        for op in reversed(ops):
            if op[0] != OP_APPEND:
                break
            if op[1] != dom_id or op[2] != field:
                continue
            previous_offset = op[4] if len(op) > 4 else None
            if offset is None and previous_offset is None:
                op[3] += text
                return
            if (
                offset is not None
                and previous_offset is not None
                and offset == previous_offset + len(op[3])
            ):
                # Applying both is "cut at previous_offset, write op[3], then
                # write text right after it", which is one write of both.
                op[3] += text
                return
            break
        if offset is None:
            ops.append([OP_APPEND, dom_id, field, text])
        else:
            ops.append([OP_APPEND, dom_id, field, text, offset])

    def patch(
        self,
        spec: StreamSpec,
        target: str | Mapping[str, Any],
        fields: Mapping[str, Any],
    ) -> None:
        """Set only ``fields`` of the held item, keeping its other fields and its place.

        ``target`` is a DOM id or an item. This is how a reply whose text went
        out as appends changes its status without sending the text again. An
        unknown id does nothing in the browser. ``fields`` is copied, so the
        caller may keep mutating its dict. Consecutive patches of the same item
        within one batch are merged into one op.
        """
        dom_id = target if isinstance(target, str) else spec.dom_id_of(target)
        if not isinstance(fields, Mapping):
            raise TypeError(f"stream {spec.name!r}: patch fields must be a mapping, got {fields!r}")
        for key in fields:
            # The mapping itself is the right type; a bad key is a bad value in
            # it, as the reserved 'dom_id' key is.
            if not isinstance(key, str):
                raise ValueError(
                    f"stream {spec.name!r}: patch field names must be strings, got {key!r}"
                )
        if "dom_id" in fields:
            # The client sets that field itself; changing it would desync the key.
            raise ValueError(f"stream {spec.name!r}: cannot patch the 'dom_id' field")
        if not fields:
            return
        ops = self._ops(spec.name)
        last = ops[-1] if ops else None
        if last is not None and last[0] == OP_PATCH and last[1] == dom_id:
            # Setting a then b is setting a with b's values written over it. A
            # new dict, so ops already handed out by pending_ops stay as they were.
            last[2] = {**last[2], **fields}
            return
        ops.append([OP_PATCH, dom_id, dict(fields)])

    def join(self, spec: StreamSpec, channel: str, cseq: int) -> None:
        """Bind the client's stream to ``channel``, whose last batch it has is ``cseq``.

        The client then applies channel batches of ``channel`` from ``cseq + 1``
        on. Record it after ``stream(..., reset=True)`` with the snapshot that
        reflects channel batches up to ``cseq``; a later reset of the stream
        unbinds it again.
        """
        channel = _validate_channel(channel)
        cseq = _validate_count(cseq, "cseq", 0)
        self._ops(spec.name).append([OP_JOIN, channel, cseq])

    def tail(self, spec: StreamSpec, on: bool) -> None:
        """Whether channel batches may add items to the client's stream.

        A stream tails by default (and again after every reset). With ``on``
        false, a channel insert of an item the client does not hold is skipped
        and counted (the client's ``unseen``), while edits, deletes, patches and
        appends of the items it holds still apply: a window scrolled back into
        history stays put while the room goes on. ``on`` true tails again and
        sets the count back to 0.
        """
        if not isinstance(on, bool):
            raise TypeError(f"stream {spec.name!r}: tail takes a bool, got {on!r}")
        self._ops(spec.name).append([OP_TAIL, on])

    # -- sending ----------------------------------------------------------------

    def has_pending(self) -> bool:
        """Whether any stream has ops waiting for the next delta."""
        return any(self._pending.values())

    def pending_ops(self, name: str) -> list[Op]:
        """A copy of the ops pending for stream ``name`` (for inspection and tests)."""
        return [list(op) for op in self._pending.get(name, [])]

    def take_ops(self, name: str) -> list[Op]:
        """Return and forget the ops pending for stream ``name``; no seq is consumed.

        For building a channel batch on a throwaway recorder::

            scratch = StreamRecorder()
            scratch.insert(spec, message)
            batch = channel_batch(room, cseq, scratch.take_ops(spec.name))
        """
        return self._pending.pop(name, [])

    def last_seq(self, name: str) -> int:
        """The seq of the last batch taken for stream ``name`` (0 if none)."""
        return self._seq.get(name, 0)

    @property
    def epoch(self) -> str:
        """Identifies this life of the counters; empty until the first batch is taken."""
        return self._epoch

    def take_batches(self) -> dict[str, Batch]:
        """Number the pending ops of each stream into a batch and forget them.

        This is the prune-after-send: whatever is returned must go into the
        delta being built, because the recorder keeps no copy.
        """
        batches: dict[str, Batch] = {}
        for name, ops in self._pending.items():
            if not ops:
                continue
            if not self._epoch:
                self._epoch = secrets.token_hex(4)
            seq = self._seq.get(name, 0) + 1
            self._seq[name] = seq
            batches[name] = {"seq": seq, "epoch": self._epoch, "ops": ops}
        self._pending = {}
        return batches

    # -- internals --------------------------------------------------------------

    def _ops(self, name: str) -> list[Op]:
        return self._pending.setdefault(name, [])

    def _add_insert(
        self,
        name: str,
        at: int,
        limit: int | None,
        update_only: bool,
        entries: list[Entry],
    ) -> None:
        ops = self._ops(name)
        last = ops[-1] if ops else None
        # Appending inserts with the same options apply entry by entry exactly
        # like one op with all their entries, and save the op header each time.
        # Inserts at an index cannot be merged: a second at=0 must land above
        # the first, not after it.
        if (
            last is not None
            and last[0] == OP_INSERT
            and at == -1
            and last[1] == -1
            and last[2] == limit
            and last[3] == update_only
        ):
            last[4].extend(entries)
            return
        ops.append([OP_INSERT, at, limit, update_only, entries])

    def __repr__(self) -> str:
        pending = {name: len(ops) for name, ops in self._pending.items() if ops}
        return f"StreamRecorder(seq={self._seq!r}, pending_ops={pending!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StreamRecorder):
            return NotImplemented
        return (self._pending, self._seq, self._epoch) == (
            other._pending,
            other._seq,
            other._epoch,
        )

    # Equality is by value (Reflex compares state values), so no hashing.
    __hash__ = None  # type: ignore[assignment]
