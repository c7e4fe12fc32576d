"""Server half of LiveView-style streams, with no dependency on Reflex.

The browser owns the items of a stream; the server only records the operations
that are still to be sent, numbers them into batches, and forgets them once a
batch has been taken for a delta. The wire format is specified in
``docs/stream-wire-format.md``; ``client_model.py`` is the reference client.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypedDict

__all__ = [
    "Batch",
    "DomIdFn",
    "Entry",
    "Op",
    "StreamRecorder",
    "StreamSpec",
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


class Batch(TypedDict):
    """What ``stream_batches[name]`` holds on the wire for one stream."""

    seq: int
    epoch: str
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
    ) -> None:
        """Append ``text`` to ``item[field]`` in the browser, for token-by-token replies.

        ``target`` is a DOM id or an item. Appends to the same item and field
        that follow each other within one batch are merged, so a flush carries
        one op per growing field however many tokens arrived.
        """
        dom_id = target if isinstance(target, str) else spec.dom_id_of(target)
        _require_str(field, "field", spec.name)
        _require_str(text, "text", spec.name)
        if field == "dom_id":
            # The client sets that field itself; growing it would desync the key.
            raise ValueError(f"stream {spec.name!r}: cannot append to the 'dom_id' field")
        if not text:
            return
        ops = self._ops(spec.name)
        # Appends to different (dom_id, field) pairs commute, so the trailing run
        # of appends can absorb this one even when two replies are interleaved.
        for op in reversed(ops):
            if op[0] != OP_APPEND:
                break
            if op[1] == dom_id and op[2] == field:
                op[3] += text
                return
        ops.append([OP_APPEND, dom_id, field, text])

    # -- sending ----------------------------------------------------------------

    def has_pending(self) -> bool:
        """Whether any stream has ops waiting for the next delta."""
        return any(self._pending.values())

    def pending_ops(self, name: str) -> list[Op]:
        """A copy of the ops pending for stream ``name`` (for inspection and tests)."""
        return [list(op) for op in self._pending.get(name, [])]

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
