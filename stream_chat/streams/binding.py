"""Reflex binding of the streams: a state mixin whose ops ride in the ordinary delta.

A state that mixes in `StreamsState` and declares its streams gets `self.stream(...)`,
`self.stream_insert(...)`, `self.stream_delete(...)`, `self.stream_append(...)` and
`self.stream_patch(...)` in its event handlers. The ops are recorded in a tiny per-client
recorder, numbered into batches while Reflex builds the delta (`get_delta`, its documented
override point), put into the delta under the `stream_batches` var, and forgotten. The
server value of `stream_batches` stays `{}`: nothing about the items is kept between
events, in memory or in Redis.

`assets/streams.js` applies the batches in the browser, and `stream_items(...)` hands its
items to `rx.foreach`, so items render with ordinary components.
"""

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import reflex as rx
from reflex.istate.delta import _record_delta_values
from reflex.state import _override_base_method
from reflex.vars import Var, VarData
from reflex_base.constants.state import FIELD_MARKER
from reflex_base.utils.format import format_event_handler
from reflex_base.utils.imports import ImportVar

from stream_chat.streams.core import Batch, StreamRecorder, StreamSpec

STREAMS_MODULE = rx.asset("streams.js").importable_path
BATCHES_VAR = "stream_batches"


class StreamOps:
    """The LiveView API, for a state's own handlers to call. A plain class, not part of the
    Reflex state: Reflex makes every public method of a state an event that any websocket
    client may send, and these must only ever be called by the server's own code."""

    stream_specs: ClassVar[tuple[StreamSpec, ...]] = ()
    _stream_recorder: StreamRecorder

    @classmethod
    def _spec(cls, name: str) -> StreamSpec:
        for spec in cls.stream_specs:
            if spec.name == name:
                return spec
        raise KeyError(f"{cls.__name__} declares no stream named {name!r}")

    def _recorded(self) -> StreamRecorder:
        """The recorder, with this state marked as changed so the ops reach the next delta."""
        self.dirty_vars.add(BATCHES_VAR)
        self._mark_dirty()
        return self._stream_recorder

    def _persist_recorder(self) -> None:
        # The recorder is mutated in place; assigning it again is what tells a Redis state
        # manager that this substate changed (new sequence numbers) and must be saved.
        self._stream_recorder = self._stream_recorder

    def stream(
        self,
        name: str,
        items: Iterable[Mapping[str, Any]],
        *,
        at: int = -1,
        reset: bool = False,
        limit: int | None = None,
    ) -> None:
        self._recorded().stream(self._spec(name), items, at=at, reset=reset, limit=limit)
        self._persist_recorder()

    def stream_insert(
        self,
        name: str,
        item: Mapping[str, Any],
        *,
        at: int = -1,
        limit: int | None = None,
        update_only: bool = False,
    ) -> None:
        self._recorded().insert(self._spec(name), item, at=at, limit=limit, update_only=update_only)
        self._persist_recorder()

    def stream_delete(self, name: str, item: Mapping[str, Any]) -> None:
        self._recorded().delete(self._spec(name), item)
        self._persist_recorder()

    def stream_delete_by_dom_id(self, name: str, dom_id: str) -> None:
        self._recorded().delete_by_dom_id(self._spec(name), dom_id)
        self._persist_recorder()

    def stream_append(
        self,
        name: str,
        target: str | Mapping[str, Any],
        field: str,
        text: str,
        *,
        offset: int | None = None,
    ) -> None:
        """Appends `text` to one field of one item: bytes per token stay constant. With an
        `offset` the text replaces the field from there on, so a repeat is harmless."""
        self._recorded().append_text(self._spec(name), target, field, text, offset=offset)
        self._persist_recorder()

    def stream_patch(
        self, name: str, target: str | Mapping[str, Any], fields: Mapping[str, Any]
    ) -> None:
        """Sets only `fields` of one item, keeping its other fields and its place: a reply
        whose text went out as appends changes its status without sending the text again."""
        self._recorded().patch(self._spec(name), target, fields)
        self._persist_recorder()

    def stream_join(self, name: str, channel: str, cseq: int) -> None:
        """Binds the browser's stream to a channel: it applies the channel's batches from
        number `cseq + 1` on (they are sent to many tabs at once, outside this state)."""
        self._recorded().join(self._spec(name), channel, cseq)
        self._persist_recorder()

    def stream_tail(self, name: str, on: bool) -> None:
        """With `on` false the channel's batches stop adding items to the browser's stream
        (they are counted, see `stream_unseen`) but still change the items it holds; `on`
        true, or any reset, tails again."""
        self._recorded().tail(self._spec(name), on)
        self._persist_recorder()


class StreamsState(StreamOps, rx.State, mixin=True):
    """Mix into a state (`class RoomState(StreamsState, rx.State)`), list its `stream_specs`."""

    stream_specs: ClassVar[tuple[StreamSpec, ...]] = ()

    # Only ever non-empty inside a delta; see get_delta.
    stream_batches: dict[str, Batch] = {}
    _stream_recorder: StreamRecorder = StreamRecorder()

    def restream(self, name: str) -> Any:
        """Re-sends the stream from the source of truth with `reset=True`.

        Called when the browser saw a gap in the batch sequence (a lost delta, a
        reconnect). States override it for each stream they declare; what it returns is
        returned by the event (follow-up events).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement restream({name!r})")

    @rx.event
    def resync_stream(self, name: str) -> Any:
        if any(spec.name == name for spec in self.stream_specs):
            return self.restream(name)
        return None

    # Reflex refuses state methods that shadow its own unless marked like its own overrides
    # (reflex 0.10.1 has no public marker; the version is pinned).
    @_override_base_method
    def get_delta(self) -> dict[str, dict[str, Any]]:
        delta = super().get_delta()
        if not _record_delta_values.get():
            # Reflex builds some deltas only to throw them away (linking a SharedState
            # builds a full one). Taking the batches there would lose them: they wait.
            return delta
        batches = self._stream_recorder.take_batches()
        if batches:
            delta.setdefault(self.get_full_name(), {})[BATCHES_VAR + FIELD_MARKER] = batches
            self._persist_recorder()
        return delta

    # Rendering

    @classmethod
    def _stream_hook_var(cls, name: str) -> str:
        cls._spec(name)
        return f"stream_{cls.get_name()}_{name}"

    @classmethod
    def _stream_var_data(cls, name: str) -> VarData:
        state = cls.get_full_name()
        local = cls._stream_hook_var(name)
        hook = (
            f"const {local} = useStream({state!r}, {name!r}, "
            f"{format_event_handler(cls.resync_stream)!r});"
        )
        return VarData(
            imports={STREAMS_MODULE: [ImportVar(tag="useStream")]},
            hooks={hook: None},
        )

    @classmethod
    def stream_items(cls, name: str, item_type: type = dict) -> Var:
        """The items the browser holds, for `rx.foreach`; render each with `key=item.dom_id`."""
        return Var(
            _js_expr=f"{cls._stream_hook_var(name)}.items",
            _var_type=list[item_type],
            _var_data=cls._stream_var_data(name),
        )

    @classmethod
    def stream_is_empty(cls, name: str) -> Var:
        """True once the stream's first batch arrived and it holds no item."""
        return Var(
            _js_expr=f"({cls._stream_hook_var(name)}.isLoaded && "
            f"{cls._stream_hook_var(name)}.isEmpty)",
            _var_type=bool,
            _var_data=cls._stream_var_data(name),
        )

    @classmethod
    def stream_unseen(cls, name: str) -> Var:
        """How many items the channel tried to add while the stream did not tail (0 after
        a reset or `stream_tail(name, True)`)."""
        return Var(
            _js_expr=f"{cls._stream_hook_var(name)}.unseen",
            _var_type=int,
            _var_data=cls._stream_var_data(name),
        ).to(int)
