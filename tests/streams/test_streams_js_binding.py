"""The React binding of assets/streams.js, driven through stubs of React and Reflex.

The harness stands in for a component: ``use_stream`` is one render calling
``useStream``; ``fake_dispatch`` applies deltas to a fake of Reflex 0.10.1's
state store, which calls substate listeners synchronously once per delta.
The binding's registry lives for the whole Node process, so every test uses
substate names of its own.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from stream_chat.streams import StreamRecorder, StreamSpec, channel_batch

VAR = "stream_batches_rx_state_"  # how Reflex 0.10.1 names the var in snapshots
RESYNC = "app_state.chat_state.stream_resync"
_unique = itertools.count()


class Page:
    """One fake Reflex store and helpers to render and dispatch against it."""

    def __init__(self, js: Any, var: str = VAR) -> None:
        self.js = js
        self.var = var
        n = next(_unique)
        self.handle = f"store-{n}"
        self.substate = f"reflex___state____state.chat_state_{n}"
        js.call("fake_store_new", handle=self.handle)
        self.recorder = StreamRecorder()

    def record(self, stream: str, method: str, *args: Any, **kwargs: Any) -> None:
        getattr(self.recorder, method)(StreamSpec(stream), *args, **kwargs)

    def flush_delta(self, **other_vars: Any) -> dict[str, Any]:
        """The delta the binding would send: this flush's batches."""
        return {self.var: self.recorder.take_batches(), **other_vars}

    def channel_delta(self, stream: str, channel: str, cseq: int, record: Any) -> dict[str, Any]:
        """A channel batch as the server broadcasts it: same var, same delta shape."""
        scratch = StreamRecorder()
        record(scratch, StreamSpec(stream))
        return {self.var: {stream: channel_batch(channel, cseq, scratch.take_ops(stream))}}

    def dispatch(self, *deltas: dict[str, Any], substate: str | None = None) -> None:
        self.js.call(
            "fake_dispatch",
            handle=self.handle,
            substate=substate or self.substate,
            deltas=list(deltas),
        )

    def render(self, stream: str = "messages", key: str = "c1", **kw: Any) -> dict[str, Any]:
        return self.js.call(
            "use_stream",
            handle=kw.get("handle", self.handle),
            substate=kw.get("substate", self.substate),
            stream=stream,
            resync=kw.get("resync", RESYNC),
            key=f"{self.handle}/{stream}/{key}",
        )

    def notifications(self, stream: str = "messages", key: str = "c1") -> int:
        return self.js.call("notifications", key=f"{self.handle}/{stream}/{key}")

    def listeners(self) -> int:
        return self.js.call("listener_count", handle=self.handle, substate=self.substate)

    def events(self) -> list[dict[str, Any]]:
        return self.js.call("take_events")


@pytest.fixture
def page(js: Any) -> Page:
    js.call("take_events")  # start from a clean event log
    return Page(js)


def test_first_render_applies_the_current_snapshot(page: Page) -> None:
    # The batch landed before any component using the stream rendered.
    page.record("messages", "stream", [{"id": 1}, {"id": 2}], reset=True)
    page.dispatch(page.flush_delta())
    first = page.render()
    assert first["dom_ids"] == ["messages-1", "messages-2"]
    assert first["items"] == [{"id": 1, "dom_id": "messages-1"}, {"id": 2, "dom_id": "messages-2"}]
    assert first["is_empty"] is False
    assert first["is_loaded"] is True
    assert page.events() == []


def test_every_delta_in_one_frame_is_applied_once(page: Page) -> None:
    page.render()
    deltas = []
    for i in range(1, 6):
        page.record("messages", "insert", {"id": i, "content": ""}, at=0)
        page.record("messages", "append_text", f"messages-{i}", "content", f"t{i}")
        deltas.append(page.flush_delta())
    # Five deltas arrive back to back; React renders only afterwards.
    page.dispatch(*deltas)
    after = page.render()
    assert after["dom_ids"] == [f"messages-{i}" for i in range(5, 0, -1)]
    assert [it["content"] for it in after["items"]] == ["t5", "t4", "t3", "t2", "t1"]
    # One notification per applied batch: none was skipped or applied twice.
    assert page.notifications() == 5
    assert page.events() == []


def test_subscription_is_idempotent(page: Page) -> None:
    for key in ("a", "b", "a", "c", "a"):
        page.render(key=key)
    assert page.listeners() == 1
    page.render(stream="other")
    assert page.listeners() == 2


def test_identity_kept_when_nothing_changed(page: Page) -> None:
    page.record("messages", "stream", [{"id": 1}])
    page.dispatch(page.flush_delta())
    page.render()
    # Another var of the substate changes; the same batch is still in the snapshot.
    page.dispatch({"typing_rx_state_": ["bob"]})
    # A new batch that changes nothing visible (delete of an unknown id).
    page.record("messages", "delete_by_dom_id", "messages-404")
    page.dispatch(page.flush_delta())
    again = page.render()
    assert again["same_result"] is True
    assert again["same_items"] is True
    assert page.notifications() == 0
    page.record("messages", "insert", {"id": 2})
    page.dispatch(page.flush_delta())
    changed = page.render()
    assert changed["same_result"] is False
    assert changed["frozen"] is True
    assert changed["dom_ids"] == ["messages-1", "messages-2"]


def test_gap_sends_one_resync_and_waits_for_reset(page: Page) -> None:
    page.render()
    page.record("messages", "insert", {"id": 1})
    page.dispatch(page.flush_delta())
    page.record("messages", "insert", {"id": 2})
    page.recorder.take_batches()  # seq 2 is lost on the way
    for i in (3, 4, 5):
        page.record("messages", "insert", {"id": i})
        page.dispatch(page.flush_delta())
    assert page.events() == [{"name": RESYNC, "payload": {"name": "messages"}}]
    assert page.render()["dom_ids"] == ["messages-1"]
    # The server answers the resync by re-streaming with reset=True.
    page.record("messages", "stream", [{"id": i} for i in range(1, 6)], reset=True)
    page.dispatch(page.flush_delta())
    assert page.render()["dom_ids"] == [f"messages-{i}" for i in range(1, 6)]
    # Back in sync: the next gap asks again.
    page.record("messages", "insert", {"id": 6})
    page.recorder.take_batches()
    page.record("messages", "insert", {"id": 7})
    page.dispatch(page.flush_delta())
    assert page.events() == [{"name": RESYNC, "payload": {"name": "messages"}}]


def test_gap_found_at_first_render_is_sent_after_render(page: Page) -> None:
    page.record("messages", "insert", {"id": 1})
    page.recorder.take_batches()
    page.record("messages", "insert", {"id": 2})
    page.dispatch(page.flush_delta())  # seq 2, never saw seq 1
    assert page.render()["dom_ids"] == []
    assert page.events() == [{"name": RESYNC, "payload": {"name": "messages"}}]


def test_var_name_without_reflex_marker(js: Any) -> None:
    page = Page(js, var="stream_batches")
    page.record("messages", "stream", [{"id": 1}])
    page.dispatch(page.flush_delta())
    assert page.render()["dom_ids"] == ["messages-1"]


def test_streams_and_substates_are_independent(js: Any) -> None:
    one, two = Page(js), Page(js)
    one.record("messages", "stream", [{"id": 1}])
    one.record("rooms", "stream", [{"id": 7}])
    one.dispatch(one.flush_delta())
    two.record("messages", "stream", [{"id": 2}])
    two.dispatch(two.flush_delta())
    assert one.render()["dom_ids"] == ["messages-1"]
    assert one.render(stream="rooms")["dom_ids"] == ["rooms-7"]
    assert two.render()["dom_ids"] == ["messages-2"]
    # A delta carrying only the rooms batch leaves messages alone.
    one.record("rooms", "delete", {"id": 7})
    one.dispatch(one.flush_delta())
    assert one.render(stream="rooms")["is_empty"] is True
    assert one.render()["same_result"] is True


def test_append_replaces_only_the_growing_item(js: Any) -> None:
    steps = [
        [["insert", -1, None, False, [["m-1", {"id": 1, "content": ""}], ["m-2", {"id": 2}]]]],
        [["append", "m-1", "content", "tok"]],
        [["append", "m-9", "content", "tok"], ["delete", "m-9"]],
    ]
    out = js.call("apply_ops", steps=steps)
    assert out["items"] == [
        {"id": 1, "content": "tok", "dom_id": "m-1"},
        {"id": 2, "dom_id": "m-2"},
    ]
    assert [s["changed"] for s in out["steps"]] == [True, True, False]
    assert out["steps"][1]["kept"] == ["m-2"]
    assert out["steps"][2]["items_same"] is True
    assert out["steps"][2]["snapshot_same"] is True
    assert out["notified"] == 2


def test_patch_replaces_only_the_patched_item(js: Any) -> None:
    steps = [
        [["insert", -1, None, False, [["m-1", {"id": 1, "s": "a"}], ["m-2", {"id": 2}]]]],
        [["patch", "m-1", {"s": "b", "__proto__": {"polluted": True}}]],
        # The same values again, an empty patch, an unknown id: nothing to re-render.
        [["patch", "m-1", {"s": "b"}], ["patch", "m-2", {}], ["patch", "m-9", {"s": "c"}]],
    ]
    out = js.call("apply_ops", steps=steps)
    assert out["items"] == [
        {"id": 1, "s": "b", "__proto__": {"polluted": True}, "dom_id": "m-1"},
        {"id": 2, "dom_id": "m-2"},
    ]
    assert [s["changed"] for s in out["steps"]] == [True, True, False]
    assert out["steps"][1]["kept"] == ["m-2"]
    assert out["steps"][2]["items_same"] is True
    assert out["steps"][2]["snapshot_same"] is True
    assert out["notified"] == 2


def test_unknown_ops_are_skipped(js: Any) -> None:
    out = js.call("apply_ops", steps=[[["future-op", 1], ["insert", 0, None, False, [["a", {}]]]]])
    assert out["dom_ids"] == ["a"]


def test_no_store_and_server_render_are_empty(page: Page) -> None:
    out = page.render(handle=None)
    assert out["dom_ids"] == []
    assert out["is_empty"] is True
    assert out["is_loaded"] is False
    assert page.render()["server_snapshot_empty"] is True


def test_new_epoch_reset_after_backend_restart(page: Page) -> None:
    page.render()
    for i in (1, 2, 3):
        page.record("messages", "insert", {"id": i})
        page.dispatch(page.flush_delta())
    # The backend lost this client's state: a new recorder, seq back to 1.
    page.recorder = StreamRecorder()
    page.record("messages", "stream", [{"id": 9}], reset=True)
    page.dispatch(page.flush_delta())
    assert page.render()["dom_ids"] == ["messages-9"]
    assert page.events() == []


def _ins(*entries: tuple[str, dict[str, Any]], at: int = -1) -> list[Any]:
    return ["insert", at, None, False, [list(e) for e in entries]]


def test_resending_the_same_content_keeps_identity(js: Any) -> None:
    a, b = ("m-1", {"id": 1, "t": {"x": [1]}}), ("m-2", {"id": 2})
    out = js.call(
        "apply_ops",
        steps=[
            [_ins(a, b)],
            # A reconnect re-streams the same list: nothing to re-render.
            [["reset"], _ins(a, b)],
            # An update with identical content.
            [_ins(a)],
            # Only m-2 changed: m-1 keeps its object.
            [["reset"], _ins(a, ("m-2", {"id": 2, "v": 1}))],
            # A move (delete, insert at the top) keeps the moved object.
            [["delete", "m-2"], _ins(("m-2", {"id": 2, "v": 1}), at=0)],
        ],
    )
    steps = out["steps"]
    assert [s["changed"] for s in steps] == [True, False, False, True, True]
    assert steps[1]["items_same"] and steps[1]["snapshot_same"]
    assert steps[2]["items_same"]
    assert steps[3]["kept"] == ["m-1"]
    assert steps[4]["kept"] == ["m-2", "m-1"]
    assert out["dom_ids"] == ["m-2", "m-1"]
    assert out["notified"] == 3


def _insert(i: int, **fields: Any) -> Any:
    return lambda rec, spec: rec.insert(spec, {"id": i, **fields})


def test_channel_batch_in_snapshot_is_applied_once(page: Page) -> None:
    page.render()
    page.record("messages", "stream", [{"id": 1}], reset=True)
    page.record("messages", "join", "room-1", 0)
    page.dispatch(page.flush_delta())
    assert page.notifications() == 1
    first = page.channel_delta("messages", "room-1", 1, _insert(2, text=""))
    page.dispatch(first)
    # Other vars of the substate change: the same channel batch is still in the
    # snapshot and must not be applied again.
    page.dispatch({"typing_rx_state_": ["bob"]}, {"typing_rx_state_": []})
    second = page.channel_delta(
        "messages",
        "room-1",
        2,
        lambda rec, spec: rec.append_text(spec, "messages-2", "text", "Hi😀", offset=0),
    )
    page.dispatch(second)
    # The first batch again (a re-broadcast): a duplicate, nothing changes.
    page.dispatch(first)
    # Another room's broadcast on the same socket: ignored.
    page.dispatch(page.channel_delta("messages", "room-2", 3, _insert(9)))
    # The tab's own batches go on with their own seq, undisturbed.
    page.record("messages", "append_text", "messages-2", "text", "!", offset=3)
    page.dispatch(page.flush_delta())
    after = page.render()
    assert after["items"] == [
        {"id": 1, "dom_id": "messages-1"},
        {"id": 2, "dom_id": "messages-2", "text": "Hi😀!"},
    ]
    # One notification per batch that changed something: own 1, channel 1 and
    # 2, own 2. The re-broadcast, the other room and the other vars: none.
    assert page.notifications() == 4
    assert page.events() == []


def test_channel_gap_sends_one_resync_and_waits_for_reset(page: Page) -> None:
    page.render()
    page.record("messages", "stream", [{"id": 1}], reset=True)
    page.record("messages", "join", "room-1", 0)
    page.dispatch(page.flush_delta())
    page.dispatch(page.channel_delta("messages", "room-1", 1, _insert(2)))
    # cseq 2 is lost on the way; 3 and 4 arrive.
    for cseq in (3, 4):
        page.dispatch(page.channel_delta("messages", "room-1", cseq, _insert(cseq + 1)))
    assert page.events() == [{"name": RESYNC, "payload": {"name": "messages"}}]
    # While waiting: neither broadcasts (even the next cseq) nor the tab's own
    # non-reset batches apply, and no second resync is asked for.
    page.dispatch(page.channel_delta("messages", "room-1", 2, _insert(3)))
    page.record("messages", "insert", {"id": 8})
    page.dispatch(page.flush_delta())
    page.dispatch(page.channel_delta("messages", "room-1", 5, _insert(6)))
    assert page.events() == []
    assert page.render()["dom_ids"] == ["messages-1", "messages-2"]
    # The server answers with the tab's own reset batch, joined at cseq 5.
    page.record("messages", "stream", [{"id": i} for i in range(1, 7)], reset=True)
    page.record("messages", "join", "room-1", 5)
    page.dispatch(page.flush_delta())
    page.dispatch(page.channel_delta("messages", "room-1", 6, _insert(7)))
    assert page.render()["dom_ids"] == [f"messages-{i}" for i in range(1, 8)]
    assert page.events() == []
    # Back in sync: the next channel gap asks again, once.
    page.dispatch(page.channel_delta("messages", "room-1", 8, _insert(9)))
    page.dispatch(page.channel_delta("messages", "room-1", 9, _insert(10)))
    assert page.events() == [{"name": RESYNC, "payload": {"name": "messages"}}]


def test_reset_unbinds_the_channel_in_the_browser(page: Page) -> None:
    page.render()
    page.record("messages", "stream", [{"id": 1}], reset=True)
    page.record("messages", "join", "room-1", 0)
    page.dispatch(page.flush_delta())
    # The tab moves away (a reset without a join): the room's broadcasts stop applying.
    page.record("messages", "stream", [{"id": 5}], reset=True)
    page.dispatch(page.flush_delta())
    page.dispatch(page.channel_delta("messages", "room-1", 1, _insert(2)))
    assert page.render()["dom_ids"] == ["messages-5"]
    assert page.events() == []


def test_the_unseen_count_reaches_react_and_a_reset_clears_it(page: Page) -> None:
    page.render()
    page.record("messages", "stream", [{"id": 1}], reset=True)
    page.record("messages", "join", "room-1", 0)
    page.record("messages", "tail", False)
    page.dispatch(page.flush_delta())
    first = page.render()
    assert (first["dom_ids"], first["unseen"]) == (["messages-1"], 0)
    # Two new messages while away: the list stays, the count grows, React hears of it.
    page.dispatch(page.channel_delta("messages", "room-1", 1, _insert(2)))
    page.dispatch(page.channel_delta("messages", "room-1", 2, _insert(3)))
    away = page.render()
    assert (away["dom_ids"], away["unseen"]) == (["messages-1"], 2)
    assert away["same_items"] is True
    assert away["same_result"] is False
    # Jump to present: a reset with the latest messages, joined again.
    page.record("messages", "stream", [{"id": i} for i in (1, 2, 3)], reset=True)
    page.record("messages", "join", "room-1", 2)
    page.dispatch(page.flush_delta())
    back = page.render()
    assert (back["dom_ids"], back["unseen"]) == ([f"messages-{i}" for i in (1, 2, 3)], 0)
