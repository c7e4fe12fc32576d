"""/_stream_lab: drives every stream op from the browser tests.

The lab mirrors each call into a reference client model on the server, so that a resync
(after a gap or a reconnect) can re-stream the exact list the browser should hold. Real
pages re-stream from the database instead.
"""

import asyncio
import json
import os
from typing import Any, ClassVar

import reflex as rx

from stream_chat import chat
from stream_chat.state.checked import CheckedInput
from stream_chat.streams import ClientStream, StreamRecorder, StreamSpec
from stream_chat.streams.binding import StreamsState

LAB_STREAM = StreamSpec("items")


class StreamLabState(CheckedInput, StreamsState, rx.State):
    stream_specs: ClassVar[tuple[StreamSpec, ...]] = (LAB_STREAM,)
    _mirror_recorder: StreamRecorder = StreamRecorder()
    _reference: ClientStream = ClientStream()
    trickled: int = 0
    # Which backend worker serves this tab's socket: the multi-worker tests need clients on
    # different workers and use this to prove it.
    worker_pid: int = 0
    room_subscribers: int = -1

    def _call(self, call: list[Any]) -> None:
        """Applies `[op, [args...], {options}]` to the browser's stream and the reference."""
        op, args, options = call[0], call[1], call[2] if len(call) > 2 else {}
        if op == "insert_lost":
            # A delta that never reaches the browser: its batch is numbered, then dropped,
            # so the next batch arrives after a gap and the browser must ask for a resync.
            self._call(["insert", args, options])
            self._stream_recorder.take_batches()
            return
        methods = {
            "stream": (self.stream, self._mirror_recorder.stream),
            "insert": (self.stream_insert, self._mirror_recorder.insert),
            "delete": (self.stream_delete, self._mirror_recorder.delete),
            "delete_by_dom_id": (
                self.stream_delete_by_dom_id,
                self._mirror_recorder.delete_by_dom_id,
            ),
            "append": (self.stream_append, self._mirror_recorder.append_text),
        }
        to_browser, to_mirror = methods[op]
        to_browser("items", *args, **options)
        to_mirror(LAB_STREAM, *args, **options)
        batch = self._mirror_recorder.take_batches().get("items")
        if batch is not None:
            self._reference.apply_batch(batch)
            self._reference = self._reference

    def restream(self, name: str) -> None:
        self.stream(name, self._reference.items, reset=True)

    @rx.event
    def load(self) -> None:
        self.worker_pid = os.getpid()
        self.restream("items")

    @rx.event
    def count_room_subscribers(self, form: dict[str, str]) -> None:
        """How many follower tasks of this worker are subscribed to a room right now."""
        self.room_subscribers = chat.subscriber_count(int(form["room_id"]))

    @rx.event
    def run_script(self, form: dict[str, str]) -> None:
        for call in json.loads(form["script"]):
            self._call(call)

    @rx.event
    def burst(self, form: dict[str, str]) -> list[rx.event.EventSpec]:
        count = int(form["count"])
        return [StreamLabState.insert_concurrently(n) for n in range(count)]

    @rx.event(background=True)
    async def insert_concurrently(self, n: int) -> None:
        async with self:
            self._call(["insert", [{"id": f"burst-{n}", "text": f"burst {n}"}]])

    @rx.event(background=True)
    async def trickle(self, form: dict[str, str]) -> None:
        count, interval = int(form["count"]), float(form["interval"])
        for n in range(count):
            async with self:
                self._call(["insert", [{"id": f"trickle-{n}", "text": f"trickle {n}"}]])
                self.trickled = n + 1
            await asyncio.sleep(interval)

    @rx.var
    def reference_ids(self) -> str:
        """The list the browser must end with, for the tests to compare against the DOM."""
        return json.dumps(self._reference.dom_ids)


def lab_item(item: rx.Var) -> rx.Component:
    return rx.el.li(item["text"].to(str), id=item["dom_id"].to(str), key=item["dom_id"].to(str))


def _form(on_submit: rx.EventHandler, button: str, *fields: rx.Component) -> rx.Component:
    return rx.form(rx.hstack(*fields, rx.button(button, type="submit")), on_submit=on_submit)


def stream_lab_page() -> rx.Component:
    return rx.vstack(
        _form(StreamLabState.run_script, "Run", rx.text_area(name="script", id="script")),
        _form(StreamLabState.burst, "Burst", rx.input(name="count", id="burst-count")),
        _form(
            StreamLabState.trickle,
            "Trickle",
            rx.input(name="count", id="trickle-count"),
            rx.input(name="interval", id="trickle-interval"),
        ),
        _form(
            StreamLabState.count_room_subscribers,
            "Count subscribers",
            rx.input(name="room_id", id="subscribers-room"),
        ),
        rx.text(StreamLabState.room_subscribers, id="room-subscribers"),
        rx.text(StreamLabState.trickled, id="trickled"),
        rx.text(StreamLabState.reference_ids, id="reference"),
        rx.cond(StreamLabState.stream_is_empty("items"), rx.text("empty", id="empty-flag")),
        rx.el.ul(
            rx.foreach(StreamLabState.stream_items("items"), lab_item),
            id="items",
        ),
    )
