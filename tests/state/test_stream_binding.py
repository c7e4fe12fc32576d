"""The Reflex binding of the streams (`stream_chat/streams/binding.py`), tested on real states.

Three levels:
1. Handlers called directly on a state tree, then `root.get_delta()`: the ops, their order,
   the seq/epoch numbering, the prune after each delta and the errors.
2. The per-client serialized state (what Reflex 0.10.1's Redis manager stores for a touched
   substate: `substate._serialize()`) stays the same size however many items went through.
3. Events driven through the real `BaseStateEventProcessor` (see `conftest.py`), over the memory
   and the Redis state managers: the deltas the browser would receive for a normal handler, a
   generator handler, a background task and the `resync_stream` event, with the server holding
   nothing once each delta is out.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, ClassVar

import pytest
import reflex as rx
from reflex.state import BaseState, ImmutableStateError, State

from stream_chat.streams.binding import BATCHES_VAR, StreamsState
from stream_chat.streams.client_model import BatchOutcome, ClientStream, ClientStreams
from stream_chat.streams.core import StreamSpec

from .conftest import BATCHES_KEY, EventHarness, leftovers

MSGS = StreamSpec("msgs")
NOTES = StreamSpec("notes", dom_id=lambda item: f"note-{item['slug']}")

# The "database" the states re-stream from on a resync.
SOURCE: dict[str, list[dict[str, Any]]] = {}
# Written by the background handlers, read by the tests.
BLOCKS_DONE: list[int] = []
UNLOCKED_ERRORS: list[str] = []


def _apply(state: Any, calls: list[list[Any]]) -> None:
    """Runs `[[method, args, kwargs], ...]` against the binding, in order."""
    for method, args, kwargs in calls:
        getattr(state, method)(*args, **kwargs)


class BindingRoomState(StreamsState, rx.State):
    stream_specs: ClassVar[tuple[StreamSpec, ...]] = (MSGS, NOTES)
    title: str = ""

    def restream(self, name: str) -> None:
        self.stream(name, SOURCE.get(name, []), reset=True)

    @rx.event
    def apply(self, calls: list) -> None:
        _apply(self, calls)

    @rx.event
    def set_title(self, title: str) -> None:
        self.title = title

    @rx.event
    def insert_message(self, id: str, text: str) -> None:
        self.stream_insert("msgs", {"id": id, "text": text})

    @rx.event
    def stepwise(self):
        self.stream_insert("msgs", {"id": "s1", "text": "one"})
        yield
        self.stream_insert("msgs", {"id": "s2", "text": "two"})
        self.stream_append("msgs", "msgs-s1", "text", "+")
        yield

    @rx.event(background=True)
    async def trickle(self, count: int) -> None:
        for n in range(count):
            async with self:
                self.stream_insert("msgs", {"id": f"t{n}", "text": f"trickle {n}"})
            BLOCKS_DONE.append(n)
            await asyncio.sleep(0)

    @rx.event(background=True)
    async def insert_outside_lock(self) -> None:
        try:
            self.stream_insert("msgs", {"id": "unlocked", "text": "must not be sent"})
        except ImmutableStateError as ex:
            UNLOCKED_ERRORS.append(type(ex).__name__)
        async with self:
            self.stream_insert("msgs", {"id": "locked", "text": "sent"})

    @rx.event
    async def join_room(self, room: str) -> None:
        # The canonical SharedState use: joining a room links the room's shared state.
        self.stream_insert("msgs", {"id": "joined", "text": "you joined"})
        presence = await self.get_state(BindingPresence)
        linked = await presence._link_to(room)
        linked.members += 1


class BindingPresence(rx.SharedState):
    members: int = 0


class BindingOtherState(StreamsState, rx.State):
    # Same stream name as BindingRoomState: the two must stay apart.
    stream_specs: ClassVar[tuple[StreamSpec, ...]] = (StreamSpec("msgs"),)

    def restream(self, name: str) -> None:
        self.stream(name, [], reset=True)

    @rx.event
    def apply(self, calls: list) -> None:
        _apply(self, calls)


class PlainListState(rx.State):
    """The naive alternative: the server keeps every item in a list var."""

    items: list[dict[str, Any]] = []

    @rx.event
    def add(self, item: dict[str, Any]) -> None:
        self.items.append(item)


@pytest.fixture(autouse=True)
def _reset_module_globals() -> None:
    SOURCE.clear()
    BLOCKS_DONE.clear()
    UNLOCKED_ERRORS.clear()


@pytest.fixture
def root() -> State:
    return State(_reflex_internal_init=True)


def sub(root: BaseState, state_cls: type[BaseState]) -> Any:
    return root.get_substate(state_cls.get_full_name().split("."))


def wire(value: Any) -> Any:
    return json.loads(json.dumps(value))


def take_delta(root: BaseState) -> dict[str, Any]:
    """The delta as sent (JSON round trip), with the tree cleaned as Reflex does after sending."""
    delta = wire(root.get_delta())
    root._clean()
    return delta


def batches_in(delta: dict[str, Any], state_cls: type[BaseState]) -> dict[str, Any]:
    return delta.get(state_cls.get_full_name(), {}).get(BATCHES_KEY) or {}


def call(root: BaseState, state_cls: type[BaseState], *calls: list[Any]) -> None:
    """Calls the state's `apply` handler function directly, as the event processor would."""
    state_cls.apply.fn(sub(root, state_cls), list(calls))


def assert_nothing_held(root: BaseState) -> None:
    assert leftovers(root) == {}


# --------------------------------------------------------------------------------------------
# 1. Handlers called directly
# --------------------------------------------------------------------------------------------

OP_CASES = [
    pytest.param(
        "stream",
        ["msgs", [{"id": 1, "text": "a"}, {"id": 2, "text": "b"}]],
        {},
        "msgs",
        [
            [
                "insert",
                -1,
                None,
                False,
                [["msgs-1", {"id": 1, "text": "a"}], ["msgs-2", {"id": 2, "text": "b"}]],
            ]
        ],
        id="stream",
    ),
    pytest.param(
        "stream",
        ["msgs", [{"id": 2}, {"id": 1}]],
        {"at": 0, "limit": -5},
        "msgs",
        [["insert", 0, -5, False, [["msgs-2", {"id": 2}], ["msgs-1", {"id": 1}]]]],
        id="stream-at0-limit",
    ),
    pytest.param(
        "stream",
        ["msgs", [{"id": 7}]],
        {"reset": True},
        "msgs",
        [["reset"], ["insert", -1, None, False, [["msgs-7", {"id": 7}]]]],
        id="stream-reset",
    ),
    pytest.param(
        "stream", ["msgs", []], {"reset": True}, "msgs", [["reset"]], id="stream-reset-empty"
    ),
    pytest.param(
        "stream_insert",
        ["msgs", {"id": "a", "text": "x"}],
        {},
        "msgs",
        [["insert", -1, None, False, [["msgs-a", {"id": "a", "text": "x"}]]]],
        id="insert",
    ),
    pytest.param(
        "stream_insert",
        ["msgs", {"id": "a"}],
        {"at": 3, "limit": 10, "update_only": True},
        "msgs",
        [["insert", 3, 10, True, [["msgs-a", {"id": "a"}]]]],
        id="insert-at-limit-update_only",
    ),
    pytest.param(
        "stream_insert",
        ["notes", {"slug": "x", "body": "b"}],
        {},
        "notes",
        [["insert", -1, None, False, [["note-x", {"slug": "x", "body": "b"}]]]],
        id="insert-custom-dom_id",
    ),
    pytest.param(
        "stream_delete", ["msgs", {"id": "a"}], {}, "msgs", [["delete", "msgs-a"]], id="delete"
    ),
    pytest.param(
        "stream_delete",
        ["notes", {"slug": "q"}],
        {},
        "notes",
        [["delete", "note-q"]],
        id="delete-custom-dom_id",
    ),
    pytest.param(
        "stream_delete_by_dom_id",
        ["msgs", "msgs-zz"],
        {},
        "msgs",
        [["delete", "msgs-zz"]],
        id="delete_by_dom_id",
    ),
    pytest.param(
        "stream_append",
        ["msgs", "msgs-a", "text", "tok"],
        {},
        "msgs",
        [["append", "msgs-a", "text", "tok"]],
        id="append-by-dom_id",
    ),
    pytest.param(
        "stream_append",
        ["msgs", {"id": "a"}, "text", "tok"],
        {},
        "msgs",
        [["append", "msgs-a", "text", "tok"]],
        id="append-by-item",
    ),
    pytest.param(
        "stream_patch",
        ["msgs", {"id": "a"}, {"status": "done", "usage": "3 + 4 tokens"}],
        {},
        "msgs",
        [["patch", "msgs-a", {"status": "done", "usage": "3 + 4 tokens"}]],
        id="patch",
    ),
]


@pytest.mark.parametrize(("method", "args", "kwargs", "stream", "expected_ops"), OP_CASES)
def test_each_binding_method_puts_its_op_in_the_delta(
    root: State,
    method: str,
    args: list[Any],
    kwargs: dict[str, Any],
    stream: str,
    expected_ops: list[Any],
) -> None:
    call(root, BindingRoomState, [method, args, kwargs])
    delta = take_delta(root)

    epoch = sub(root, BindingRoomState)._stream_recorder.epoch
    assert isinstance(epoch, str)
    assert epoch
    # Only the batch: no other var of the substate, and never the recorder (a backend var).
    assert delta[BindingRoomState.get_full_name()] == {
        BATCHES_KEY: {stream: {"seq": 1, "epoch": epoch, "ops": expected_ops}}
    }
    assert BindingOtherState.get_full_name() not in delta
    assert_nothing_held(root)


def test_calls_in_one_handler_form_one_batch_in_call_order(root: State) -> None:
    call(
        root,
        BindingRoomState,
        ["stream_insert", ["msgs", {"id": "a", "text": "A"}], {}],
        ["stream_insert", ["msgs", {"id": "b", "text": "B"}], {"at": 0}],
        ["stream_insert", ["notes", {"slug": "n1"}], {}],
        ["stream_delete", ["msgs", {"id": "a"}], {}],
        ["stream_append", ["msgs", "msgs-b", "text", "!"], {}],
        ["stream_insert", ["msgs", {"id": "a", "text": "A2"}], {}],
        ["stream_delete_by_dom_id", ["msgs", "msgs-zz"], {}],
    )
    delta = take_delta(root)

    batches = batches_in(delta, BindingRoomState)
    assert set(batches) == {"msgs", "notes"}
    assert batches["msgs"]["seq"] == 1
    assert batches["notes"]["seq"] == 1
    assert batches["msgs"]["ops"] == [
        ["insert", -1, None, False, [["msgs-a", {"id": "a", "text": "A"}]]],
        ["insert", 0, None, False, [["msgs-b", {"id": "b", "text": "B"}]]],
        ["delete", "msgs-a"],
        ["append", "msgs-b", "text", "!"],
        ["insert", -1, None, False, [["msgs-a", {"id": "a", "text": "A2"}]]],
        ["delete", "msgs-zz"],
    ]
    assert batches["notes"]["ops"] == [["insert", -1, None, False, [["note-n1", {"slug": "n1"}]]]]
    # Applied in call order, delete-then-insert moves "a" to the end.
    client = ClientStream()
    assert client.apply_batch(batches["msgs"]) is BatchOutcome.APPLIED
    assert client.items == [
        {"id": "b", "text": "B!", "dom_id": "msgs-b"},
        {"id": "a", "text": "A2", "dom_id": "msgs-a"},
    ]


def test_seq_grows_by_one_per_delta_and_ops_are_forgotten(root: State) -> None:
    state = sub(root, BindingRoomState)
    epochs = set()
    seqs = []
    for n in range(1, 6):
        BindingRoomState.insert_message.fn(state, id=str(n), text=f"m{n}")
        delta = take_delta(root)
        batch = batches_in(delta, BindingRoomState)["msgs"]
        seqs.append(batch["seq"])
        assert batch["ops"] == [
            ["insert", -1, None, False, [[f"msgs-{n}", {"id": str(n), "text": f"m{n}"}]]]
        ]
        epochs.add(batch["epoch"])

        # The delta was taken: nothing is left, and the next delta carries no batch.
        assert state.get_value(BATCHES_VAR) == {}
        assert not state._stream_recorder.has_pending()
        assert state._stream_recorder.pending_ops("msgs") == []
        again = wire(root.get_delta())
        assert batches_in(again, BindingRoomState) == {}
        root._clean()

        # A delta without stream ops (another var changed) does not use up a seq.
        BindingRoomState.set_title.fn(state, title=f"title {n}")
        other = take_delta(root)
        assert other[BindingRoomState.get_full_name()] == {"title_rx_state_": f"title {n}"}
    assert seqs == [1, 2, 3, 4, 5]
    assert len(epochs) == 1
    assert state._stream_recorder.last_seq("msgs") == 5
    assert state._stream_recorder.last_seq("notes") == 0


@pytest.mark.parametrize(
    "bad_call",
    [
        ["stream_insert", ["msgs", {"id": "x"}], {"at": -2}],
        ["stream", ["msgs", [{"id": "x"}]], {"at": -2}],
        ["stream", ["msgs", [{"id": "x"}]], {"at": -7, "reset": True}],
    ],
    ids=["insert", "stream", "stream-reset"],
)
def test_at_below_minus_one_raises_and_records_nothing(root: State, bad_call: list) -> None:
    state = sub(root, BindingRoomState)
    call(root, BindingRoomState, ["stream_insert", ["msgs", {"id": "kept"}], {}])
    with pytest.raises(ValueError, match="at"):
        call(root, BindingRoomState, bad_call)
    # The op recorded before is untouched, the bad one is not there.
    assert state._stream_recorder.pending_ops("msgs") == [
        ["insert", -1, None, False, [["msgs-kept", {"id": "kept"}]]]
    ]
    take_delta(root)

    with pytest.raises(ValueError, match="at"):
        call(root, BindingRoomState, bad_call)
    assert not state._stream_recorder.has_pending()
    assert batches_in(take_delta(root), BindingRoomState) == {}
    assert_nothing_held(root)


@pytest.mark.parametrize(
    "bad_call",
    [
        ["stream_insert", ["msgs", {"text": "no id"}], {}],
        ["stream_insert", ["msgs", {"id": None, "text": "id is None"}], {}],
        ["stream", ["msgs", [{"id": 1}, {"text": "no id"}]], {}],
        ["stream", ["msgs", [{"id": 1}, {"text": "no id"}]], {"reset": True}],
        ["stream_delete", ["msgs", {"text": "no id"}], {}],
        ["stream_append", ["msgs", {"text": "no id"}, "text", "t"], {}],
    ],
    ids=["insert", "insert-None", "stream", "stream-reset", "delete", "append"],
)
def test_item_without_id_raises_and_records_nothing(root: State, bad_call: list) -> None:
    with pytest.raises(ValueError, match="no 'id'"):
        call(root, BindingRoomState, bad_call)
    assert batches_in(take_delta(root), BindingRoomState) == {}
    assert_nothing_held(root)


@pytest.mark.parametrize(
    "bad_call",
    [
        ["stream", ["nope", [{"id": 1}]], {}],
        ["stream_insert", ["nope", {"id": 1}], {}],
        ["stream_delete", ["nope", {"id": 1}], {}],
        ["stream_delete_by_dom_id", ["nope", "nope-1"], {}],
        ["stream_append", ["nope", "nope-1", "text", "t"], {}],
    ],
    ids=["stream", "insert", "delete", "delete_by_dom_id", "append"],
)
def test_unknown_stream_raises_key_error(root: State, bad_call: list) -> None:
    with pytest.raises(KeyError, match="nope"):
        call(root, BindingRoomState, bad_call)
    # "msgs" of the other state does not make it known to this one.
    with pytest.raises(KeyError, match="notes"):
        call(root, BindingOtherState, ["stream_insert", ["notes", {"slug": "x"}], {}])
    assert batches_in(take_delta(root), BindingRoomState) == {}
    assert_nothing_held(root)


def test_two_state_classes_with_streams_do_not_interfere(root: State) -> None:
    call(root, BindingRoomState, ["stream_insert", ["msgs", {"id": "r1"}], {}])
    call(root, BindingOtherState, ["stream_insert", ["msgs", {"id": "o1"}], {}])
    delta = take_delta(root)
    room = batches_in(delta, BindingRoomState)["msgs"]
    other = batches_in(delta, BindingOtherState)["msgs"]
    assert room["seq"] == other["seq"] == 1
    assert room["ops"] == [["insert", -1, None, False, [["msgs-r1", {"id": "r1"}]]]]
    assert other["ops"] == [["insert", -1, None, False, [["msgs-o1", {"id": "o1"}]]]]

    # Only the room streams now: the other state is not in the delta, its seq is unchanged.
    call(root, BindingRoomState, ["stream_insert", ["msgs", {"id": "r2"}], {}])
    delta = take_delta(root)
    assert BindingOtherState.get_full_name() not in delta
    assert batches_in(delta, BindingRoomState)["msgs"]["seq"] == 2
    call(root, BindingOtherState, ["stream_delete", ["msgs", {"id": "o1"}], {}])
    delta = take_delta(root)
    assert BindingRoomState.get_full_name() not in delta
    assert batches_in(delta, BindingOtherState)["msgs"] == {
        "seq": 2,
        "epoch": other["epoch"],
        "ops": [["delete", "msgs-o1"]],
    }
    assert_nothing_held(root)


def test_two_clients_do_not_share_a_recorder(root: State) -> None:
    # The recorder is a class-level default: each client's state must get its own copy.
    other_root = State(_reflex_internal_init=True)
    call(root, BindingRoomState, ["stream_insert", ["msgs", {"id": "mine"}], {}])
    assert not sub(other_root, BindingRoomState)._stream_recorder.has_pending()
    assert batches_in(take_delta(other_root), BindingRoomState) == {}

    call(other_root, BindingRoomState, ["stream_insert", ["msgs", {"id": "theirs"}], {}])
    mine = batches_in(take_delta(root), BindingRoomState)["msgs"]
    theirs = batches_in(take_delta(other_root), BindingRoomState)["msgs"]
    assert mine["seq"] == theirs["seq"] == 1
    assert mine["ops"][0][4] == [["msgs-mine", {"id": "mine"}]]
    assert theirs["ops"][0][4] == [["msgs-theirs", {"id": "theirs"}]]
    assert mine["epoch"] != theirs["epoch"]


def _ids(*ids: Any) -> list[str]:
    return [f"msgs-{i}" for i in ids]


# (calls of one handler, the dom ids the browser must then hold)
SCENARIO: list[tuple[list[list[Any]], list[str]]] = [
    ([["stream", ["msgs", [{"id": 1}, {"id": 2}, {"id": 3}]], {}]], _ids(1, 2, 3)),
    ([["stream", ["msgs", [{"id": "a"}, {"id": "b"}]], {"at": 0}]], _ids("a", "b", 1, 2, 3)),
    (
        [["stream_insert", ["msgs", {"id": 4, "text": "four"}], {"at": 2}]],
        _ids("a", "b", 4, 1, 2, 3),
    ),
    # Already present: updated in place, not moved to the top.
    (
        [["stream_insert", ["msgs", {"id": 2, "text": "two"}], {"at": 0}]],
        _ids("a", "b", 4, 1, 2, 3),
    ),
    (
        [
            ["stream_delete", ["msgs", {"id": 1}], {}],
            ["stream_delete_by_dom_id", ["msgs", "msgs-a"], {}],
            ["stream_delete_by_dom_id", ["msgs", "msgs-unknown"], {}],
        ],
        _ids("b", 4, 2, 3),
    ),
    (
        [
            ["stream_append", ["msgs", "msgs-4", "text", " and"], {}],
            ["stream_append", ["msgs", {"id": 4}, "text", " more"], {}],
        ],
        _ids("b", 4, 2, 3),
    ),
    ([["stream_insert", ["msgs", {"id": 5}], {"limit": -4}]], _ids(4, 2, 3, 5)),
    ([["stream_insert", ["msgs", {"id": 9}], {"update_only": True}]], _ids(4, 2, 3, 5)),
    (
        [
            ["stream_insert", ["msgs", {"id": "gone"}], {}],
            ["stream_delete", ["msgs", {"id": "gone"}], {}],
        ],
        _ids(4, 2, 3, 5),
    ),
    ([["stream", ["msgs", [{"id": 3}, {"id": 6}]], {"reset": True}]], _ids(3, 6)),
]


def test_reference_client_fed_every_delta_holds_the_expected_list(root: State) -> None:
    client = ClientStreams()
    for calls, expected in SCENARIO:
        call(root, BindingRoomState, *calls)
        batches = batches_in(take_delta(root), BindingRoomState)
        assert set(batches) == {"msgs"}
        assert client.apply_batches(batches) == {"msgs": BatchOutcome.APPLIED}
        assert client.get("msgs").dom_ids == expected
        if expected == _ids(4, 2, 3, 5):
            items = {item["dom_id"]: item for item in client.get("msgs").items}
            assert items["msgs-4"]["text"] == "four and more"
            assert items["msgs-2"]["text"] == "two"
    assert client.get("msgs").last_seq == len(SCENARIO)
    assert_nothing_held(root)


# --------------------------------------------------------------------------------------------
# 2. The serialized per-client state does not grow with the items streamed through it
# --------------------------------------------------------------------------------------------


def _item(n: int) -> dict[str, Any]:
    return {"id": n, "author": f"user{n % 7}", "text": f"message number {n}: " + "lorem " * 8}


def test_serialized_state_size_is_flat_while_a_list_var_grows(root: State) -> None:
    # Reflex 0.10.1's Redis manager stores `substate._serialize()` for each touched substate
    # (reflex/istate/manager/redis.py), so that is what must stay flat.
    streams = sub(root, BindingRoomState)
    plain = sub(root, PlainListState)
    sizes: dict[int, int] = {}
    plain_sizes: dict[int, int] = {}
    sent = 0
    for checkpoint in (10, 1_000, 10_000):
        while sent < checkpoint:
            chunk = [_item(n) for n in range(sent, sent + 10)]
            call(
                root,
                BindingRoomState,
                ["stream", ["msgs", chunk], {"limit": -50}],
                ["stream_append", ["msgs", chunk[-1], "text", " (edited)"], {}],
                ["stream_delete", ["msgs", chunk[0]], {}],
            )
            for item in chunk:
                PlainListState.add.fn(plain, item)
            delta = root.get_delta()
            root._clean()
            assert delta[BindingRoomState.get_full_name()][BATCHES_KEY]["msgs"]["seq"] == (
                sent // 10 + 1
            )
            sent += 10
        sizes[checkpoint] = len(streams._serialize())
        plain_sizes[checkpoint] = len(plain._serialize())

    # Only the seq's digits may differ (1 -> 100 -> 1000 batches).
    assert max(sizes.values()) - min(sizes.values()) <= 4, sizes
    assert sizes[10_000] < 1_000, sizes
    # The naive list var: the same items make it grow with their number.
    assert plain_sizes[1_000] > 50 * plain_sizes[10], plain_sizes
    assert plain_sizes[10_000] > 9 * plain_sizes[1_000], plain_sizes
    assert sizes[10_000] * 100 < plain_sizes[10_000]


def test_counters_survive_the_serialized_round_trip(root: State) -> None:
    # A Redis-backed app loads the state from `_serialize()` bytes for the next event: the seq
    # and epoch must carry over, or the browser would see a gap (or an epoch change) each time.
    state = sub(root, BindingRoomState)
    client = ClientStream()
    for n in range(3):
        BindingRoomState.insert_message.fn(state, id=str(n), text="before")
        client.apply_batch(batches_in(take_delta(root), BindingRoomState)["msgs"])

    restored = BindingRoomState._deserialize(state._serialize())
    assert restored._stream_recorder is not state._stream_recorder
    assert restored._stream_recorder == state._stream_recorder
    assert restored.get_value(BATCHES_VAR) == {}
    BindingRoomState.insert_message.fn(restored, id="after", text="after")
    batch = batches_in(wire(restored.get_delta()), BindingRoomState)["msgs"]
    assert batch["seq"] == 4
    assert client.apply_batch(batch) is BatchOutcome.APPLIED
    assert client.dom_ids == _ids(0, 1, 2, "after")


# --------------------------------------------------------------------------------------------
# 3. The full event path: BaseStateEventProcessor over StateManagerMemory
# --------------------------------------------------------------------------------------------


def assert_nothing_held_at_any_emit(harness: EventHarness) -> None:
    assert harness.emitted, "no delta was emitted"
    for emitted in harness.emitted:
        if harness.live_root is not None:
            assert emitted.leftovers_at_emit == {}, emitted
    assert harness.leftovers_after_event
    assert all(held == {} for held in harness.leftovers_after_event), harness.leftovers_after_event


def feed(client: ClientStream, batches: list[dict[str, Any]], stream: str = "msgs") -> list[str]:
    return [str(client.apply_batch(b[stream])) for b in batches]


async def test_event_handler_insert_emits_one_delta_with_its_batch(harness: EventHarness) -> None:
    await harness.send(BindingRoomState.insert_message, id="m1", text="hello")

    assert len(harness.emitted) == 1
    room = BindingRoomState.get_full_name()
    assert harness.emitted[0].delta[room] == {
        BATCHES_KEY: {
            "msgs": {
                "seq": 1,
                "epoch": (await harness.stored_substate(BindingRoomState))._stream_recorder.epoch,
                "ops": [["insert", -1, None, False, [["msgs-m1", {"id": "m1", "text": "hello"}]]]],
            }
        }
    }
    await harness.send(BindingRoomState.insert_message, id="m2", text="again")
    assert [b["msgs"]["seq"] for b in harness.batches(BindingRoomState)] == [1, 2]
    assert_nothing_held_at_any_emit(harness)


async def test_generator_handler_emits_a_batch_per_yield(harness: EventHarness) -> None:
    await harness.send(BindingRoomState.stepwise)

    batches = harness.batches(BindingRoomState)
    assert [b["msgs"]["seq"] for b in batches] == [1, 2]
    assert batches[0]["msgs"]["ops"] == [
        ["insert", -1, None, False, [["msgs-s1", {"id": "s1", "text": "one"}]]]
    ]
    assert batches[1]["msgs"]["ops"] == [
        ["insert", -1, None, False, [["msgs-s2", {"id": "s2", "text": "two"}]]],
        ["append", "msgs-s1", "text", "+"],
    ]
    client = ClientStream()
    assert feed(client, batches) == ["applied", "applied"]
    assert [item["text"] for item in client.items] == ["one+", "two"]
    assert_nothing_held_at_any_emit(harness)


async def test_background_task_emits_a_batch_at_each_async_with_exit(
    harness: EventHarness,
) -> None:
    await harness.send(BindingRoomState.insert_message, id="first", text="foreground")
    # How many `async with self` blocks had finished when each delta went out.
    harness.probe = lambda: len(BLOCKS_DONE)
    await harness.send(BindingRoomState.trickle, count=4)

    batches = harness.batches(BindingRoomState)
    assert [b["msgs"]["seq"] for b in batches] == [1, 2, 3, 4, 5]
    assert len({b["msgs"]["epoch"] for b in batches}) == 1
    for n, batch in enumerate(batches[1:]):
        assert batch["msgs"]["ops"] == [
            ["insert", -1, None, False, [[f"msgs-t{n}", {"id": f"t{n}", "text": f"trickle {n}"}]]]
        ]
    # Block n's delta left while block n was exiting, not all at the end of the task.
    assert [e.probe for e in harness.emitted[1:]] == [0, 1, 2, 3]
    client = ClientStream()
    assert feed(client, batches) == ["applied"] * 5
    assert client.dom_ids == _ids("first", "t0", "t1", "t2", "t3")
    assert_nothing_held_at_any_emit(harness)


async def test_background_task_stream_op_outside_async_with_is_refused(
    harness: EventHarness,
) -> None:
    await harness.send(BindingRoomState.insert_outside_lock)

    assert UNLOCKED_ERRORS == ["ImmutableStateError"]
    batches = harness.batches(BindingRoomState)
    assert len(batches) == 1
    assert batches[0]["msgs"]["seq"] == 1
    assert batches[0]["msgs"]["ops"] == [
        ["insert", -1, None, False, [["msgs-locked", {"id": "locked", "text": "sent"}]]]
    ]
    assert_nothing_held_at_any_emit(harness)


async def test_resync_stream_restreams_with_a_reset_first(harness: EventHarness) -> None:
    SOURCE["msgs"] = [{"id": "db1", "text": "from db"}, {"id": "db2", "text": "also"}]
    client = ClientStream()
    for n in range(3):
        await harness.send(BindingRoomState.insert_message, id=f"m{n}", text="live")
    first, lost, third = harness.batches(BindingRoomState)
    assert client.apply_batch(first["msgs"]) is BatchOutcome.APPLIED
    del lost  # never reaches the browser
    assert client.apply_batch(third["msgs"]) is BatchOutcome.GAP

    # The browser's answer to the gap: the resync event, as useStream sends it.
    await harness.send(BindingRoomState.resync_stream, name="msgs")
    resync = harness.batches(BindingRoomState)[-1]["msgs"]
    assert resync["seq"] == 4
    assert resync["epoch"] == first["msgs"]["epoch"]
    assert resync["ops"][0] == ["reset"]
    assert resync["ops"] == [
        ["reset"],
        [
            "insert",
            -1,
            None,
            False,
            [["msgs-db1", SOURCE["msgs"][0]], ["msgs-db2", SOURCE["msgs"][1]]],
        ],
    ]
    assert client.apply_batch(resync) is BatchOutcome.APPLIED
    assert client.dom_ids == _ids("db1", "db2")

    # A resync for a stream the state does not declare sends nothing.
    count = len(harness.emitted)
    await harness.send(BindingRoomState.resync_stream, name="nope")
    assert harness.batches(BindingRoomState)[-1]["msgs"] is resync
    assert all(not e.delta for e in harness.emitted[count:])
    assert_nothing_held_at_any_emit(harness)


async def test_resync_of_one_state_leaves_the_other_alone(harness: EventHarness) -> None:
    await harness.send(BindingOtherState.apply, calls=[["stream_insert", ["msgs", {"id": 1}], {}]])
    await harness.send(BindingRoomState.resync_stream, name="msgs")
    other = harness.batches(BindingOtherState)
    room = harness.batches(BindingRoomState)
    assert [b["msgs"]["seq"] for b in other] == [1]
    assert [b["msgs"]["ops"] for b in room] == [[["reset"]]]
    assert_nothing_held_at_any_emit(harness)


async def test_linking_a_shared_state_does_not_swallow_pending_ops(harness: EventHarness) -> None:
    room = uuid.uuid4().hex  # SharedState link tokens may not contain "_"
    harness.extra_tokens.append(room)
    await harness.send(BindingRoomState.join_room, room=room)
    await harness.send(BindingRoomState.insert_message, id="next", text="after joining")

    client = ClientStream()
    assert feed(client, harness.batches(BindingRoomState)) == ["applied", "applied"]
    assert client.dom_ids == _ids("joined", "next")


def test_the_stream_api_is_not_an_event_a_client_can_send():
    """Reflex makes public state methods events; the ops are the server's own calls."""
    from stream_chat.state.messages import MessagesState
    from stream_chat.streams.binding import StreamOps

    api = {name for name in vars(StreamOps) if not name.startswith("_")}
    assert {"stream", "stream_insert", "stream_join", "stream_patch", "stream_tail"} <= api
    for state_cls in (BindingRoomState, MessagesState):
        assert not api & set(state_cls.event_handlers), state_cls
        assert "resync_stream" in state_cls.event_handlers
