"""One broadcast per topic per worker: every tab here that follows a topic gets the same update.

`Feed` is the mechanism: one subscription to a topic per worker, one task that does all of
the feed's emits (so each socket receives them in order), and one socket.io room holding the
worker's tabs that follow it. Every kind of live data rides a feed of its own topic:

* `RoomFeed` (topic `room:<id>`): the room's messages as channel batches of the `messages`
  stream, and the room's *awareness* (who is typing, who has the room open, who has posted
  there), from the signals on the same topic;
* `PresenceFeed` (topic `presence`, one per worker): every user's online/away status, for
  the dots on avatars;
* `SessionFeed` (topic `session:<digest>`): the session's end, which sends its tabs to /login;
* `TopicFeed`: one update per event, and a greeting for a joining tab (the sidebars' unread
  counts: the rooms' activity, each user's reads; `state/unread_feeds.py`).

Signals (typing, presence, rosters) are not numbered and not stored. A feed gathers them and
emits at most one update per `AWARENESS_INTERVAL` (coalesced per topic per worker, whatever
the number of senders), into the `live_signals` var of the tabs' rooms state, which the
server never sets; `assets/awareness.js` reads each update once, as `streams.js` reads
batches. A tab that joins a feed is first sent the feed's current picture, then its updates.
A new kind of live data is a `Feed` subclass (its topic, what it sends a joining tab, what it
makes of each event), joined with `room_feeds.join_feed`.

The room's messages:

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
import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from reflex.event import Event
from reflex.state import StateUpdate
from reflex_base.constants.state import FIELD_MARKER

from stream_chat import accounts, assistant, chat, presence, pubsub, typing_status
from stream_chat.streams import StreamRecorder, StreamSpec, channel_batch
from stream_chat.streams.binding import BATCHES_VAR

log = logging.getLogger(__name__)

_feed_numbers = itertools.count(1)
MESSAGES = "messages"
MESSAGES_SPEC = StreamSpec(MESSAGES)
# Batches kept for tabs that are joining: a tab reads the room's number, then its history,
# and is added after its history went out; whatever was broadcast meanwhile is replayed.
RECENT_BATCHES = 512
# At most one awareness update per feed per 0.6 s: under 2 per tab in any second, with room
# for the jitter of a fan-out to a few hundred sockets (at 0.5 s, 3 landed within one second
# now and then in bench/awareness.py).
AWARENESS_INTERVAL = 0.6
# The rooms state's var that carries signals to the page (never set on the server).
SIGNALS_VAR = "live_signals"
_FLUSH = {"kind": "_flush"}
# How long a due awareness update waits for a room's message to ride with (one socket write
# for both instead of two); with none, it goes out alone.
RIDE_WAIT = 0.1
_RECONCILE = {"kind": "_reconcile"}


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


class Feed:
    """One topic's broadcasts on this worker, for this worker's tabs that follow it."""

    def __init__(self, key: str, signals_state: str) -> None:
        self._signals_state = signals_state
        # Unique per feed: a socket left in an old feed's room never hears a newer feed.
        self._socket_room = f"streamchat-{key}-{next(_feed_numbers)}"
        # sid -> the follower that owns the membership (as in a room feed: a later follower
        # of the same tab may join before an earlier one has left).
        self.tabs: dict[str, str] = {}
        self._subscribed = asyncio.Event()
        self._subscription: pubsub.Subscription | None = None
        self._last_flush = -math.inf
        self._flush_pending = False
        self._task = asyncio.ensure_future(self._run())

    def _subscribe(self) -> contextlib.AbstractAsyncContextManager[pubsub.Subscription]:
        raise NotImplementedError

    def _start(self) -> None:
        """Reads the current picture, once subscribed (so no change is missed)."""

    def _reconcile(self) -> None:
        """Compares the picture with the store's and takes the differences as changes.

        Signals are at most once (Redis pub/sub drops what a listener misses while it
        reconnects), so a feed of soft state checks its picture now and then instead of
        trusting that it heard everything."""

    def _reconcile_later(self) -> None:
        if type(self)._reconcile is not Feed._reconcile:
            delay = presence.timings().sweep_every
            asyncio.get_running_loop().call_later(delay, self._deliver, _RECONCILE)

    async def _handle(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    async def ready(self) -> None:
        await self._subscribed.wait()

    def close(self) -> None:
        self._task.cancel()

    def add_tab(self, sid: str) -> None:
        """Sends the tab the feed's picture, then adds it to the feed's socket room."""
        self._deliver({"kind": "_add_tab", "sid": sid})

    def remove_tab(self, sid: str) -> None:
        self._deliver({"kind": "_remove_tab", "sid": sid})

    def _picture(self) -> dict[str, Any] | None:
        """The signals a joining tab is sent first (none by default)."""
        return None

    def _welcome(self) -> StateUpdate | None:
        """What a joining tab is sent first: its picture as signals."""
        picture = self._picture()
        return self._signals_update(picture) if picture is not None else None

    async def _manage_tab(self, event: dict[str, Any]) -> bool:
        """Handles an `add_tab` or `remove_tab` event; False for any other event."""
        if event["kind"] == "_add_tab":
            if event["sid"] in self.tabs:
                if (welcome := self._welcome()) is not None:
                    await self._emit(welcome, to=event["sid"])
                await self._enter(event["sid"])
            return True
        if event["kind"] == "_remove_tab":
            await self._exit(event["sid"])
            return True
        return False

    def _deliver(self, event: dict[str, Any]) -> None:
        """Queues an event of our own behind the topic's, for the feed's one task."""
        if self._subscription is not None:
            self._subscription.deliver(event)

    async def _run(self) -> None:
        async with self._subscribe() as subscription:
            self._subscription = subscription
            try:
                self._start()
            except Exception:
                log.exception("%s could not read its starting picture", self._socket_room)
            self._subscribed.set()
            self._reconcile_later()
            while True:
                event = await subscription.next()
                try:
                    if event.get("kind") == _FLUSH["kind"]:
                        await self._flush()
                    elif event.get("kind") == _RECONCILE["kind"]:
                        self._reconcile()
                        self._reconcile_later()
                    elif not await self._manage_tab(event):
                        await self._handle(event)
                except Exception:
                    log.exception("%s failed on %s", self._socket_room, event.get("kind"))

    # Signals: gathered, then flushed at most once per AWARENESS_INTERVAL.

    def _changed(self) -> None:
        if self._flush_pending:
            return
        self._flush_pending = True
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_flush + AWARENESS_INTERVAL - loop.time())
        loop.call_later(delay + self._ride_wait(), self._deliver, _FLUSH)

    def _ride_wait(self) -> float:
        """Extra time a due update may wait for another emit to ride with (none here)."""
        return 0.0

    def _due_changes(self) -> dict[str, Any] | None:
        """The gathered changes if an update may go out now (AWARENESS_INTERVAL since the
        last), taken; None otherwise. The pending timer then finds nothing to send."""
        now = asyncio.get_running_loop().time()
        if not self._flush_pending or now < self._last_flush + AWARENESS_INTERVAL:
            return None
        signals = self._take_changes()
        if signals:
            self._last_flush = now
        return signals

    def _take_changes(self) -> dict[str, Any] | None:
        """The gathered changes as signals for the page, and forgets them."""
        return None

    async def _flush(self) -> None:
        self._flush_pending = False
        now = asyncio.get_running_loop().time()
        if now < self._last_flush + AWARENESS_INTERVAL:
            # An update rode with a message meanwhile: whatever came since waits its turn.
            self._changed()
            return
        signals = self._take_changes()
        if signals:
            self._last_flush = now
            await self._emit(self._signals_update(signals))

    def _signals_update(self, signals: dict[str, Any]) -> StateUpdate:
        return StateUpdate(delta={self._signals_state: {SIGNALS_VAR + FIELD_MARKER: signals}})

    async def _emit(self, update: StateUpdate, to: str | None = None) -> None:
        sio, namespace = _socket_server()
        if to is not None:
            await sio.emit("event", update, to=to, namespace=namespace)
        else:
            await sio.emit("event", update, room=self._socket_room, namespace=namespace)

    async def _enter(self, sid: str) -> None:
        sio, namespace = _socket_server()
        await sio.enter_room(sid, self._socket_room, namespace=namespace)

    async def _exit(self, sid: str) -> None:
        sio, namespace = _socket_server()
        await sio.leave_room(sid, self._socket_room, namespace=namespace)


class PresenceFeed(Feed):
    """Every user's status (online, away; absent: offline) for this worker's tabs."""

    KEY = "presence"

    def __init__(self, signals_state: str) -> None:
        self._statuses: dict[str, str] = {}
        self._changes: dict[str, str | None] = {}
        super().__init__(self.KEY, signals_state)

    def _subscribe(self) -> contextlib.AbstractAsyncContextManager[pubsub.Subscription]:
        return presence.subscribe()

    def _start(self) -> None:
        self._statuses = {str(user): status for user, status in presence.statuses().items()}

    def _picture(self) -> dict[str, Any]:
        return {"presence": {"full": True, "users": dict(self._statuses)}}

    async def _handle(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == presence.STATUS_KIND:
            for user, status in event["users"].items():
                if status is None:
                    self._statuses.pop(user, None)
                else:
                    self._statuses[user] = status
                self._changes[user] = status
            self._changed()
        elif kind == pubsub.RESYNC["kind"]:
            # The broker was cut off: statuses may have changed meanwhile.
            self._reconcile()

    def _reconcile(self) -> None:
        fresh = {str(user): status for user, status in presence.statuses().items()}
        changes: dict[str, str | None] = {u: None for u in self._statuses if u not in fresh}
        changes |= {u: status for u, status in fresh.items() if self._statuses.get(u) != status}
        if changes:
            self._statuses = fresh
            self._changes |= changes
            self._changed()

    def _take_changes(self) -> dict[str, Any] | None:
        changes, self._changes = self._changes, {}
        return {"presence": {"full": False, "users": changes}} if changes else None


class RoomFeed(Feed):
    def __init__(self, room_id: int, state_name: str, signals_state: str) -> None:
        self.room_id = room_id
        self.channel = channel_name(room_id)
        self._state_name = state_name
        self._resync_event = f"{state_name}.resync_stream"
        self._recent: collections.deque[tuple[int, StateUpdate]] = collections.deque(
            maxlen=RECENT_BATCHES
        )
        # sid -> the follower that owns the membership (a later follower of the same tab
        # may join before an earlier one has left).
        self._members: dict[str, str] = {}
        # Reply id -> the generation allowed to append to it.
        self._generations: dict[int, str | None] = {}
        # The room's awareness, bounded by the number of people, not by activity: who has
        # it open, who posted lately, who is typing (user id -> name, last notice's time).
        self._roster: dict[str, str] = {}
        self._posters: dict[str, str] = {}
        self._typists: dict[str, tuple[str, float]] = {}
        self._typing_changes: dict[str, str | None] = {}
        self._members_changed = False
        super().__init__(self.channel, signals_state)

    def _subscribe(self) -> contextlib.AbstractAsyncContextManager[pubsub.Subscription]:
        return chat.subscribe(self.room_id)

    def _ride_wait(self) -> float:
        return RIDE_WAIT

    def _start(self) -> None:
        self._posters = {str(u): name for u, name in chat.recent_posters(self.room_id).items()}
        here = presence.roster(self.room_id)
        self._roster = {str(u): name for u, name in chat.user_names(here).items()}

    def _reconcile(self) -> None:
        here = {str(user) for user in presence.roster(self.room_id)}
        if here == set(self._roster):
            return
        arrived = [int(u) for u in here - set(self._roster)]
        names = chat.user_names(arrived) if arrived else {}
        self._roster = {u: name for u, name in self._roster.items() if u in here}
        self._roster |= {str(u): name for u, name in names.items()}
        self._members_changed = True
        self._changed()

    def send_picture(self, sid: str) -> None:
        """The room's awareness again, to one member (a page that bound late)."""
        self._deliver({"kind": "_picture", "sid": sid})

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

    async def _handle(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "_activate":
            sid = event["sid"]
            for cseq, update in list(self._recent):
                if cseq > event["baseline"]:
                    await self._emit(update, to=sid)
            if sid in self._members:
                await self._emit(self._signals_update(self._picture()), to=sid)
                await self._enter(sid)
            return
        if kind == "_pause":
            await self._exit(event["sid"])
            return
        if kind == "_picture":
            if event["sid"] in self._members:
                await self._emit(self._signals_update(self._picture()), to=event["sid"])
            return
        if kind == pubsub.RESYNC["kind"]:
            # The broker was cut off and may have missed broadcasts: every tab re-reads.
            resync = Event(name=self._resync_event, payload={"name": MESSAGES})
            await self._emit(StateUpdate(events=[resync]))
            self._reconcile()
            return
        if "seq" not in event:
            self._take_signal(event)
            return
        if kind == "created":
            self._note_poster(event["message"])
        update = self._update(event["seq"], self._ops(event))
        self._recent.append((event["seq"], update))
        # The room's due awareness rides with the batch (the recent batch kept for joining
        # tabs stays without it: they get the room's picture instead).
        if (signals := self._due_changes()) is not None:
            delta = {**update.delta, **self._signals_update(signals).delta}
            update = StateUpdate(delta=delta)
        await self._emit(update)

    # Awareness

    def _take_signal(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == typing_status.TYPING_KIND:
            user = str(event["user_id"])
            if event["on"]:
                self._typists[user] = (event["name"], asyncio.get_running_loop().time())
                self._typing_changes[user] = event["name"]
            elif self._typists.pop(user, None) is not None:
                self._typing_changes[user] = None
            else:
                return
        elif kind == presence.ROSTER_KIND:
            arrived = [int(u) for u, here in event["users"].items() if here]
            names = chat.user_names(arrived) if arrived else {}
            for user, here in event["users"].items():
                if here and int(user) in names:
                    self._roster[user] = names[int(user)]
                elif not here:
                    self._roster.pop(user, None)
            self._members_changed = True
        else:
            return
        self._changed()

    def _note_poster(self, row: chat.MessageRow) -> None:
        user = str(row["sender_id"])
        if row["is_assistant"] or user in self._posters:
            return
        self._posters[user] = row["sender_name"]
        while len(self._posters) > chat.MAX_POSTERS:
            del self._posters[next(iter(self._posters))]
        self._members_changed = True
        self._changed()

    def _live_typists(self) -> dict[str, list[Any]]:
        """Who is typing: name and the seconds left before a receiver drops them."""
        now = asyncio.get_running_loop().time()
        expires = typing_status.TYPING_EXPIRES
        for user in [u for u, (_, at) in self._typists.items() if now - at >= expires]:
            del self._typists[user]
        typists = self._typists.items()
        return {u: [name, round(expires - (now - at), 1)] for u, (name, at) in typists}

    def _picture(self) -> dict[str, Any]:
        """All of the room's awareness, for a tab that joins."""
        room = {
            "id": self.room_id,
            "full": True,
            "typing": self._live_typists(),
            "roster": dict(self._roster),
            "posters": dict(self._posters),
        }
        return {"room": room}

    def _take_changes(self) -> dict[str, Any] | None:
        changes, self._typing_changes = self._typing_changes, {}
        room: dict[str, Any] = {"id": self.room_id, "full": False}
        if changes:
            live = self._live_typists()
            room["typing"] = {u: live[u] for u in changes if u in live}
            room["stopped"] = [u for u in changes if u not in live]
        if self._members_changed:
            self._members_changed = False
            room["roster"] = dict(self._roster)
            room["posters"] = dict(self._posters)
        return {"room": room} if len(room) > 2 else None

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


class SessionFeed(Feed):
    """One session's events on this worker, for its tabs here (on any page that follows).

    When the session is revoked (a log out in any tab, on any worker), each of its tabs here
    is sent to /login at once and its follower is stopped, which takes it out of its room's
    feed: it receives nothing more, and every later event of it is refused by the session
    check."""

    def __init__(self, key: str, signals_state: str) -> None:
        self.key = key
        super().__init__(f"session-{key}", signals_state)

    def _subscribe(self) -> contextlib.AbstractAsyncContextManager[pubsub.Subscription]:
        return accounts.subscribe_session(self.key)

    async def _handle(self, event: dict[str, Any]) -> None:
        if event.get("kind") == "revoked":
            await self._cut_off()

    async def _cut_off(self) -> None:
        for sid in sorted(self.tabs):
            room_feeds.end_tab(sid)
            await self._emit(StateUpdate(events=[_TO_LOGIN]), to=sid)


class TopicFeed(Feed):
    """A feed whose events each become one update for all its tabs (`render`; None sends
    nothing): the sidebars' unread counts (`state/unread_feeds.py`). `greeting`, when
    given, is what a tab is sent alone as it joins, and what every tab is sent again when
    the broker was cut off and may have missed events (a fresh start)."""

    def __init__(
        self,
        key: str,
        subscribe: Callable[[], contextlib.AbstractAsyncContextManager[pubsub.Subscription]],
        render: Callable[[pubsub.Event], StateUpdate | None],
        greeting: Callable[[], StateUpdate] | None = None,
    ) -> None:
        self.key = key
        self._subscribe_to = subscribe
        self._render = render
        self._greeting = greeting
        # Its updates are whole state updates of their own: no signals state of ours.
        super().__init__(key, signals_state="")

    def _subscribe(self) -> contextlib.AbstractAsyncContextManager[pubsub.Subscription]:
        return self._subscribe_to()

    def _welcome(self) -> StateUpdate | None:
        return self._greeting() if self._greeting is not None else None

    async def _handle(self, event: dict[str, Any]) -> None:
        if event.get("kind") == pubsub.RESYNC["kind"]:
            update = self._welcome()
        else:
            update = self._render(event)
        if update is not None:
            await self._emit(update)


# What a tab's follower joins besides its room, its session and presence: a feed's key, and
# how to start that feed when the tab is the first here to follow it.
FeedSpec = tuple[str, Callable[[], Feed]]


class RoomFeeds:
    """This worker's feeds: one per room that has an open tab here, one per other topic
    (a session, presence) that one of its tabs follows; and the follower of each tab."""

    def __init__(self) -> None:
        self._feeds: dict[int, RoomFeed] = {}
        self._keyed: dict[str, Feed] = {}
        self._tabs: dict[str, tuple[str, asyncio.Event]] = {}

    async def join_feed(self, key: str, make: Callable[[], Feed], sid: str, owner: str) -> Feed:
        """The feed of `key` (made by `make` if this worker has none), with `sid` in it,
        owned by the follower `owner`: sent the feed's current picture, then its updates."""
        feed = self._keyed.get(key)
        if feed is None:
            feed = self._keyed[key] = make()
        feed.tabs[sid] = owner
        await feed.ready()
        feed.add_tab(sid)
        return feed

    def leave_feed(self, key: str, sid: str, owner: str) -> None:
        """Takes the tab out, if `owner` still owns its membership (a newer follower of the
        same tab keeps it)."""
        feed = self._keyed.get(key)
        if feed is None or feed.tabs.get(sid) != owner:
            return
        del feed.tabs[sid]
        feed.remove_tab(sid)
        if not feed.tabs:
            del self._keyed[key]
            feed.close()

    def keyed(self, key: str) -> Feed | None:
        return self._keyed.get(key)

    def send_pictures(self, sid: str, room_id: int | None) -> None:
        """Every feed this tab is in sends it its current picture again: what a page asks
        for once it listens, since updates that reached it before are not kept."""
        for feed in self._keyed.values():
            if sid in feed.tabs:
                feed.add_tab(sid)
        room = self._feeds.get(room_id) if room_id is not None else None
        if room is not None:
            room.send_picture(sid)

    def end_tab(self, sid: str) -> None:
        """Stops the tab's follower (it leaves its feeds on the way out)."""
        if sid in self._tabs:
            self._tabs[sid][1].set()

    async def join(
        self, room_id: int, state_name: str, signals_state: str, sid: str, owner: str
    ) -> RoomFeed:
        feed = self._feeds.get(room_id)
        if feed is None:
            feed = self._feeds[room_id] = RoomFeed(room_id, state_name, signals_state)
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


@dataclass(frozen=True)
class Follower:
    """Who follows, from which tab: what a follower's feeds need to know."""

    sid: str
    owner: str  # the follower's own id (a later follower of the same tab has another)
    session_key: str
    user_id: int
    signals_state: str  # the full name of the state whose `live_signals` the page reads


@contextlib.asynccontextmanager
async def following_session(
    follower: Follower, room_id: int | None = None, feeds: Sequence[FeedSpec] = ()
) -> AsyncIterator[asyncio.Event]:
    """A tab's follower, made the tab's only one, a member of its session's feed, of the
    presence feed and of `feeds`, and counted as a connected tab of its user (with `room_id`
    open) for as long as it runs; with the event that tells it to stop (a newer follower
    took over the tab, or the session was revoked)."""
    sid, owner, signals_state = follower.sid, follower.owner, follower.signals_state
    session_feed = f"session:{follower.session_key}"
    superseded = room_feeds.claim_tab(sid, owner)
    tab: str | None = None
    joined_keys: list[str] = []
    try:
        await room_feeds.join_feed(
            session_feed, lambda: SessionFeed(follower.session_key, signals_state), sid, owner
        )
        await room_feeds.join_feed(
            PresenceFeed.KEY, lambda: PresenceFeed(signals_state), sid, owner
        )
        for key, make in feeds:
            joined_keys.append(key)
            await room_feeds.join_feed(key, make, sid, owner)
        tab = presence.do_connect(f"{sid}.{owner}", follower.user_id, room_id)
        yield superseded
    finally:
        if tab is not None:
            presence.do_disconnect(tab)
        for key in joined_keys:
            room_feeds.leave_feed(key, sid, owner)
        room_feeds.leave_feed(PresenceFeed.KEY, sid, owner)
        room_feeds.leave_feed(session_feed, sid, owner)
        room_feeds.release_tab(sid, owner)


@contextlib.asynccontextmanager
async def joined(
    follower: Follower, room_id: int, state_name: str, feeds: Sequence[FeedSpec] = ()
) -> AsyncIterator[tuple[RoomFeed, asyncio.Event]]:
    """A tab's membership of the room's feed (and its session's, presence's and `feeds`),
    for as long as its follower runs; with the event that tells the follower to stop."""
    async with following_session(follower, room_id, feeds) as superseded:
        try:
            feed = await room_feeds.join(
                room_id, state_name, follower.signals_state, follower.sid, follower.owner
            )
            yield feed, superseded
        finally:
            room_feeds.leave(room_id, follower.sid, follower.owner)
