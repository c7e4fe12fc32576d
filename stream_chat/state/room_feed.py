"""One broadcast per room per worker: every open tab of a room gets the same batch.

A room's changes arrive here once per worker (from the Chat context's subscription), are
turned into stream ops once, encoded once, and emitted to a socket.io room holding the
worker's tabs of that room. No tab's state is locked, loaded or saved per message: a tab
only joins (one state update: the history with `reset=True` and a `join` op naming the
room's channel and its current sequence number) and leaves.

The batches are channel batches of the `messages` stream: `{"channel", "cseq", "ops"}`,
numbered by the broker's per-room sequence, so a tab that misses one sees the gap and asks
for a resync (see `docs/stream-wire-format.md`). One task per room does all of the room's
emits, joins included, so each socket receives the batches in order: a joining tab is sent
the recent batches past its starting number, then added to the room.
"""

import asyncio
import collections
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from reflex.event import Event
from reflex.state import StateUpdate
from reflex_base.constants.state import FIELD_MARKER

from stream_chat import accounts, assistant, chat, pubsub
from stream_chat.streams import StreamRecorder, StreamSpec, channel_batch
from stream_chat.streams.binding import BATCHES_VAR

log = logging.getLogger(__name__)

_feed_numbers = itertools.count(1)
MESSAGES = "messages"
MESSAGES_SPEC = StreamSpec(MESSAGES)
# Batches kept for tabs that are joining: a tab reads the room's number, then its history,
# and is added after its history went out; whatever was broadcast meanwhile is replayed.
RECENT_BATCHES = 512


def presented(row: chat.MessageRow) -> dict[str, Any]:
    """The row as the page shows it: with the assistant's usage note."""
    return {**row, "usage": assistant.usage_note(row["prompt_tokens"], row["completion_tokens"])}


def presented_reply_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A reply's changed status fields as the page shows them (see `presented`)."""
    if "prompt_tokens" not in fields and "completion_tokens" not in fields:
        return fields
    usage = assistant.usage_note(fields.get("prompt_tokens"), fields.get("completion_tokens"))
    return {**fields, "usage": usage}


def channel_name(room_id: int) -> str:
    return f"room:{room_id}"


class RoomFeed:
    def __init__(self, room_id: int, state_name: str) -> None:
        self.room_id = room_id
        self.channel = channel_name(room_id)
        self._state_name = state_name
        self._resync_event = f"{state_name}.resync_stream"
        # Unique per feed: a socket left in an old feed's room never hears a newer feed.
        self._socket_room = f"streamchat-{self.channel}-{next(_feed_numbers)}"
        self._recent: collections.deque[tuple[int, StateUpdate]] = collections.deque(
            maxlen=RECENT_BATCHES
        )
        # sid -> the follower that owns the membership (a later follower of the same tab
        # may join before an earlier one has left).
        self._members: dict[str, str] = {}
        # Reply id -> the generation allowed to append to it.
        self._generations: dict[int, str | None] = {}
        self._subscribed = asyncio.Event()
        self._subscription: chat.pubsub.Subscription | None = None
        self._task = asyncio.ensure_future(self._run())

    async def ready(self) -> None:
        await self._subscribed.wait()

    def is_member(self, sid: str, owner: str) -> bool:
        return self._members.get(sid) == owner

    def activate(self, sid: str, owner: str, baseline: int) -> None:
        """Adds a tab whose history (up to `baseline`) has gone out, in queue order."""
        self._members[sid] = owner
        if self._subscription is not None:
            self._subscription.deliver({"kind": "_activate", "sid": sid, "baseline": baseline})

    def pause(self, sid: str) -> None:
        """Stops sending to a tab until it is activated again (it is re-reading history)."""
        if self._subscription is not None:
            self._subscription.deliver({"kind": "_pause", "sid": sid})

    def leave(self, sid: str, owner: str) -> bool:
        """Removes the tab if `owner` still owns its membership; True when the room is empty."""
        if self._members.get(sid) == owner:
            del self._members[sid]
            self.pause(sid)
        return not self._members

    def close(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        async with chat.subscribe(self.room_id) as subscription:
            self._subscription = subscription
            self._subscribed.set()
            while True:
                event = await subscription.next()
                try:
                    await self._handle(event)
                except Exception:
                    log.exception("room %s feed failed on %s", self.room_id, event.get("kind"))

    async def _handle(self, event: dict[str, Any]) -> None:
        sio, namespace = _socket_server()
        kind = event["kind"]
        if kind == "_activate":
            sid = event["sid"]
            for cseq, update in list(self._recent):
                if cseq > event["baseline"]:
                    await sio.emit("event", update, to=sid, namespace=namespace)
            if sid in self._members:
                await sio.enter_room(sid, self._socket_room, namespace=namespace)
            return
        if kind == "_pause":
            await sio.leave_room(event["sid"], self._socket_room, namespace=namespace)
            return
        if "seq" not in event:
            # The broker was cut off and may have missed broadcasts: every tab re-reads.
            resync = Event(name=self._resync_event, payload={"name": MESSAGES})
            await sio.emit(
                "event", StateUpdate(events=[resync]), room=self._socket_room, namespace=namespace
            )
            return
        update = self._update(event["seq"], self._ops(event))
        self._recent.append((event["seq"], update))
        await sio.emit("event", update, room=self._socket_room, namespace=namespace)

    def _ops(self, event: dict[str, Any]) -> list[Any]:
        ops = StreamRecorder()
        kind = event["kind"]
        if kind == "created":
            self._track(event["message"])
            ops.insert(MESSAGES_SPEC, presented(event["message"]))
        elif kind == "updated":
            self._track(event["message"])
            ops.insert(MESSAGES_SPEC, presented(event["message"]), update_only=True)
        elif kind == "patched":
            if "generation_id" in event["fields"]:
                self._generations[event["message_id"]] = event["fields"]["generation_id"] or None
            ops.patch(
                MESSAGES_SPEC,
                {"id": event["message_id"]},
                presented_reply_fields(event["fields"]),
            )
        elif kind == "deleted":
            ops.delete(MESSAGES_SPEC, event["message"])
        elif kind == "appended" and self._current_generation(event) == event["generation_id"]:
            # A stopped or replaced generation's late text gets an empty batch: the number
            # is used, so nobody sees a gap, and nothing is shown.
            if "fields" in event:
                ops.patch(
                    MESSAGES_SPEC,
                    {"id": event["message_id"]},
                    presented_reply_fields(event["fields"]),
                )
            ops.append_text(
                MESSAGES_SPEC,
                {"id": event["message_id"]},
                "content",
                event["text"],
                offset=event["offset"],
            )
        return ops.take_ops(MESSAGES)

    def _track(self, row: chat.MessageRow) -> None:
        if row["is_assistant"]:
            self._generations[row["id"]] = row["generation_id"] or None

    def _current_generation(self, event: dict[str, Any]) -> str | None:
        reply_id = event["message_id"]
        if reply_id not in self._generations:
            # This feed started while the reply was being written.
            reply = chat.get_message(reply_id)
            self._generations[reply_id] = reply.generation_id if reply else None
        return self._generations[reply_id]

    def _update(self, cseq: int, ops: list[Any]) -> StateUpdate:
        batches = {MESSAGES: channel_batch(self.channel, cseq, ops)}
        return StateUpdate(delta={self._state_name: {BATCHES_VAR + FIELD_MARKER: batches}})


# What a tab of a revoked session is sent, outside its state (as a room's batches are).
_TO_LOGIN = Event(
    name="_redirect",
    payload={"path": "/login", "external": False, "replace": True, "popup": False},
)


class SessionFeed:
    """One session's events on this worker, for its tabs here (on any page that follows).

    When the session is revoked (a log out in any tab, on any worker), each of its tabs here
    is sent to /login at once and its follower is stopped, which takes it out of its room's
    feed: it receives nothing more, and every later event of it is refused by the session
    check. Same shape as a room feed: one subscription per worker, one task."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.sids: set[str] = set()
        self._subscribed = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def ready(self) -> None:
        await self._subscribed.wait()

    def close(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        async with accounts.subscribe_session(self.key) as subscription:
            self._subscribed.set()
            while True:
                event = await subscription.next()
                if event.get("kind") == "revoked":
                    await self._cut_off()

    async def _cut_off(self) -> None:
        sio, namespace = _socket_server()
        for sid in sorted(self.sids):
            room_feeds.end_tab(sid)
            await sio.emit("event", StateUpdate(events=[_TO_LOGIN]), to=sid, namespace=namespace)


class TopicFeed:
    """One topic's events on this worker, for its tabs here that follow it: the room feed's
    shape for other live data (the sidebars' unread counts). One subscription and one task;
    each event is turned into an update once (`render`; None sends nothing) and emitted once
    to a socket.io room holding those tabs, outside their states.

    `greeting`, when given, is what a tab is sent alone as it joins, and what every tab is
    sent again when the broker was cut off and may have missed events (a fresh start). One
    task does every emit, joins included, so a tab's greeting comes before the events that
    follow it."""

    def __init__(
        self,
        key: str,
        subscribe: Callable[[], contextlib.AbstractAsyncContextManager[pubsub.Subscription]],
        render: Callable[[pubsub.Event], StateUpdate | None],
        greeting: Callable[[], StateUpdate] | None = None,
    ) -> None:
        self.key = key
        # sid -> the follower that owns the membership (as in a room feed).
        self.members: dict[str, str] = {}
        self._subscribe = subscribe
        self._render = render
        self._greeting = greeting
        self._socket_room = f"streamchat-{key}-{next(_feed_numbers)}"
        self._subscribed = asyncio.Event()
        self._subscription: pubsub.Subscription | None = None
        self._task = asyncio.ensure_future(self._run())

    async def ready(self) -> None:
        await self._subscribed.wait()

    def join(self, sid: str, owner: str) -> None:
        self.members[sid] = owner
        self.greet(sid)

    def greet(self, sid: str) -> None:
        """Sends the tab the greeting again (it asked: it may have missed the first), and
        adds it to the room if it is not there yet."""
        if self._subscription is not None:
            self._subscription.deliver({"kind": "_join", "sid": sid})

    def leave(self, sid: str, owner: str) -> bool:
        """Removes the tab if `owner` still owns its membership; True when no tab is left."""
        if self.members.get(sid) == owner:
            del self.members[sid]
            if self._subscription is not None:
                self._subscription.deliver({"kind": "_leave", "sid": sid})
        return not self.members

    def close(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        async with self._subscribe() as subscription:
            self._subscription = subscription
            self._subscribed.set()
            while True:
                event = await subscription.next()
                try:
                    await self._handle(event)
                except Exception:
                    log.exception("%s feed failed on %s", self.key, event.get("kind"))

    async def _handle(self, event: pubsub.Event) -> None:
        sio, namespace = _socket_server()
        kind = event.get("kind")
        if kind == "_join":
            sid = event["sid"]
            if self._greeting is not None:
                await sio.emit("event", self._greeting(), to=sid, namespace=namespace)
            if sid in self.members:
                await sio.enter_room(sid, self._socket_room, namespace=namespace)
            return
        if kind == "_leave":
            if event["sid"] not in self.members:
                await sio.leave_room(event["sid"], self._socket_room, namespace=namespace)
            return
        if "seq" not in event:
            update = self._greeting() if self._greeting is not None else None
        else:
            update = self._render(event)
        if update is not None:
            await sio.emit("event", update, room=self._socket_room, namespace=namespace)


# What a tab's follower joins besides its room and its session: a topic feed's key, and how
# to start that feed when the tab is the first here to follow it.
FeedSpec = tuple[str, Callable[[], TopicFeed]]


class RoomFeeds:
    """This worker's feeds: one per room that has an open tab here, one per session that
    has one, one per other topic that has one; and the follower of each tab."""

    def __init__(self) -> None:
        self._feeds: dict[int, RoomFeed] = {}
        self._sessions: dict[str, SessionFeed] = {}
        self._topics: dict[str, TopicFeed] = {}
        self._tabs: dict[str, tuple[str, asyncio.Event]] = {}

    async def join_topic(self, spec: FeedSpec, sid: str, owner: str) -> None:
        key, start = spec
        feed = self._topics.get(key)
        if feed is None:
            feed = self._topics[key] = start()
        # A member from now on, so the feed stays open while it subscribes.
        feed.members[sid] = owner
        await feed.ready()
        feed.join(sid, owner)

    def leave_topic(self, key: str, sid: str, owner: str) -> None:
        feed = self._topics.get(key)
        if feed is not None and feed.leave(sid, owner):
            del self._topics[key]
            feed.close()

    def topic(self, key: str) -> TopicFeed | None:
        return self._topics.get(key)

    async def join_session(self, key: str, sid: str) -> None:
        feed = self._sessions.get(key)
        if feed is None:
            feed = self._sessions[key] = SessionFeed(key)
        feed.sids.add(sid)
        await feed.ready()

    def leave_session(self, key: str, sid: str) -> None:
        feed = self._sessions.get(key)
        if feed is None:
            return
        feed.sids.discard(sid)
        if not feed.sids:
            del self._sessions[key]
            feed.close()

    def end_tab(self, sid: str) -> None:
        """Stops the tab's follower (it leaves its feeds on the way out)."""
        if sid in self._tabs:
            self._tabs[sid][1].set()

    async def join(self, room_id: int, state_name: str, sid: str, owner: str) -> RoomFeed:
        feed = self._feeds.get(room_id)
        if feed is None:
            feed = self._feeds[room_id] = RoomFeed(room_id, state_name)
        # A member from now on, so the feed stays open while this tab reads its history.
        feed._members[sid] = owner
        await feed.ready()
        return feed

    def claim_tab(self, sid: str, owner: str) -> asyncio.Event:
        """Makes `owner` the tab's follower; the previous one's event is set, so it stops
        (Reflex cancels a page's follower, but not one started again by the same page)."""
        previous = self._tabs.get(sid)
        if previous is not None:
            previous[1].set()
        superseded = asyncio.Event()
        self._tabs[sid] = (owner, superseded)
        return superseded

    def release_tab(self, sid: str, owner: str) -> None:
        if sid in self._tabs and self._tabs[sid][0] == owner:
            del self._tabs[sid]

    def get(self, room_id: int) -> RoomFeed | None:
        return self._feeds.get(room_id)

    def leave(self, room_id: int, sid: str, owner: str) -> None:
        feed = self._feeds.get(room_id)
        if feed is not None and feed.leave(sid, owner):
            # Nobody left here: the feed stops, and its room subscription with it.
            del self._feeds[room_id]
            feed.close()


room_feeds = RoomFeeds()


def _socket_server() -> tuple[Any, str]:
    # Imported late: the app module imports the states that use this module.
    from stream_chat.stream_chat import app

    return app.sio, app.event_namespace.namespace  # type: ignore[union-attr]


@contextlib.asynccontextmanager
async def following_session(
    session_key: str, sid: str, owner: str, feeds: Sequence[FeedSpec] = ()
) -> AsyncIterator[asyncio.Event]:
    """A tab's follower, made the tab's only one and a member of its session's feed (and of
    the topic feeds `feeds`) for as long as it runs; with the event that tells it to stop (a
    newer follower took over the tab, or the session was revoked)."""
    superseded = room_feeds.claim_tab(sid, owner)
    joined_keys: list[str] = []
    try:
        await room_feeds.join_session(session_key, sid)
        for spec in feeds:
            joined_keys.append(spec[0])
            await room_feeds.join_topic(spec, sid, owner)
        yield superseded
    finally:
        for key in joined_keys:
            room_feeds.leave_topic(key, sid, owner)
        room_feeds.leave_session(session_key, sid)
        room_feeds.release_tab(sid, owner)


@contextlib.asynccontextmanager
async def joined(
    room_id: int,
    state_name: str,
    sid: str,
    owner: str,
    session_key: str,
    feeds: Sequence[FeedSpec] = (),
) -> AsyncIterator[tuple[RoomFeed, asyncio.Event]]:
    """A tab's membership of the room's feed (and its session's, and the topic feeds
    `feeds`), for as long as its follower runs; with the event that tells it to stop."""
    async with following_session(session_key, sid, owner, feeds) as superseded:
        try:
            feed = await room_feeds.join(room_id, state_name, sid, owner)
            yield feed, superseded
        finally:
            room_feeds.leave(room_id, sid, owner)
