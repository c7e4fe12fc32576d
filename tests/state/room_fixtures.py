"""Fixtures for the room page's state tests: browser tabs talking to the real event processor.

`RoomApp` is one `BaseStateEventProcessor` (as in `conftest.py`, over the memory or the Redis
state manager) serving any number of tabs, each with its own token, against a fresh SQLite
database migrated by the real Alembic migrations and an in-process `LocalBroker`.

A `Tab` speaks the frontend's protocol (see `tests/support/reflex_client.py`):

* `connect(path)` is the boot event, `State.hydrate_and_load`, with the page's router data
  and the session cookie in the socket's request headers (the cookie is HttpOnly). The
  app's own on_load table then runs `SessionState.require_user` and
  `MessagesState.enter_room`, which returns the
  `follow_room` background task: the real on_load path, route registered by the real app
  module (`stream_chat/stream_chat.py`), `self.room_id` read from `router_data["query"]`.
* `navigate(path)` is a client-side navigation: `OnLoadInternalState.on_load_internal` with
  the new router data. Reflex cancels the previous page's unfinished on_load chain (the
  follower included) when it is enqueued, as in the running app.
* `send(handler, **payload)` is any other event, with the tab's current router data.

Each tab has a socket id of its own (`Tab.sid`), sent as `router_data["sid"]`: what Reflex
turns into `self.router.session.session_id` (`SessionData.from_router_data`), and what the
real server sets from the tab's socket.

Live room messages do not go through the tabs' states: one `RoomFeed` per room
(`stream_chat/state/room_feed.py`) emits one `StateUpdate` per change to a socket.io room.
`FakeSocketServer` replaces the app's socket server for the feeds (`_socket_server` is
monkeypatched): it keeps real room membership (`enter_room`, `leave_room`, a disconnect
leaves every room, a socket id is its own room) and hands each emitted update to the
tab(s) it addresses exactly like a state delta, so a tab's `deltas` interleave its state
deltas and the room's broadcasts in arrival order.

Every call waits until the whole app is quiet: no event queued or running except follower
tasks, every follower parked (its history sent, waiting to be cancelled), and every feed
parked on an empty subscription queue. Everything runs on one event loop and the fake
server delivers synchronously, so once quiet every delta and broadcast caused so far has
been recorded.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
import shutil
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from reflex import constants
from reflex.config import get_config
from reflex.event import Event
from reflex.istate.manager import StateManager
from reflex.istate.manager.redis import StateManagerRedis
from reflex.state import OnLoadInternalState, State, StateUpdate
from reflex_base.event.context import EventContext
from reflex_base.event.processor import BaseStateEventProcessor
from reflex_base.utils import format as rx_format
from sqlmodel import select

# The real app module: registers /rooms/[room_id] (and so State.room_id) and its on_load.
import stream_chat.stream_chat  # noqa: F401
from alembic import command
from stream_chat import presence, pubsub, repo
from stream_chat.models import Message, Room, User
from stream_chat.state import room_feed
from stream_chat.state.messages import MESSAGES, MessagesState
from stream_chat.state.rooms import RoomsState
from stream_chat.state.session import SESSION_COOKIE
from stream_chat.state.unread_feeds import UNREAD_VAR
from stream_chat.streams.client_model import BatchOutcome, ClientStream

from .conftest import BATCHES_KEY, _make_state_manager

ROOT = Path(__file__).resolve().parents[2]
QUIET_TIMEOUT = 10.0
MESSAGES_STATE = MessagesState.get_full_name()
ROOMS_STATE = RoomsState.get_full_name()
# The socket.io namespace of Reflex's events ("/_event"), where the feeds emit.
NAMESPACE = get_config().get_event_namespace()


def alembic_config() -> Config:
    # As tests/contexts/conftest.py: no logging reset, no path_separator warning.
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["skip_logging"] = True
    config.set_main_option("path_separator", "os")
    return config


# --------------------------------------------------------------------------------------------
# The database
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head by Alembic; each test gets a fresh copy of it."""
    path = tmp_path_factory.mktemp("room_db") / "template.db"
    repo.configure(f"sqlite:///{path}")
    command.upgrade(alembic_config(), "head")
    repo.engine().dispose()
    return path


@pytest.fixture
def room_db(migrated_template: Path, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated SQLite database in tmp_path that `repo` points at."""
    path = tmp_path / "stream_chat_test.db"
    shutil.copyfile(migrated_template, path)
    url = f"sqlite:///{path}"
    repo.configure(url)
    # The copy is really at head (not an empty file that happens to have tables).
    with repo.engine().connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    yield url
    repo.engine().dispose()


@pytest.fixture
def room_broker() -> Iterator[pubsub.LocalBroker]:
    """A fresh in-process broker for the test, so subscriber counts start at zero."""
    fresh = pubsub.LocalBroker()
    previous = pubsub.use_broker(fresh)
    # And a fresh presence store: nobody is online when a test starts.
    previous_presence = presence.use_store(presence.LocalStore())
    yield fresh
    pubsub.use_broker(previous)
    presence.use_store(previous_presence)


_numbers = itertools.count(1)


def make_user(name: str | None = None) -> User:
    """Inserted directly (no Argon2: these tests log in with a session token)."""
    n = next(_numbers)
    user = User(email=f"user{n}@example.com", name=name or f"User {n}", hashed_password="x")
    with repo.session() as db:
        db.add(user)
        db.commit()
        db.refresh(user)
    return user


def make_room(name: str | None = None) -> Room:
    room = Room(name=name or f"room{next(_numbers)}")
    with repo.session() as db:
        db.add(room)
        db.commit()
        db.refresh(room)
    return room


def insert_messages(rows: list[tuple[Room, User, str]]) -> list[int]:
    """Inserts the messages in this order (ids increase along the list) without broadcasting."""
    ids = []
    with repo.session() as db:
        for room, user, content in rows:
            message = Message(room_id=room.id, sender_id=user.id, content=content)  # type: ignore[arg-type]
            db.add(message)
            db.flush()
            ids.append(message.id)
        db.commit()
    return ids  # type: ignore[return-value]


def stored_messages(room_id: int | None = None) -> list[tuple[int, int, int, str, bool]]:
    """(id, room_id, sender_id, content, edited) of every stored message, by id."""
    with repo.session() as db:
        query = select(Message).order_by(Message.id)  # type: ignore[arg-type]
        if room_id is not None:
            query = query.where(Message.room_id == room_id)
        return [
            (m.id, m.room_id, m.sender_id, m.content, m.edited_at is not None)  # type: ignore[misc]
            for m in db.exec(query).all()
        ]


# --------------------------------------------------------------------------------------------
# The app and its tabs
# --------------------------------------------------------------------------------------------


def router_data(path: str, token: str, sid: str, cookie: str = "") -> dict[str, Any]:
    """What the browser sends for `path`: its URL, the route's params merged into `query`.

    `sid` is the tab's socket id: the real server overwrites `router_data["sid"]` with it
    on every event (`EventNamespace.on_event`), and Reflex derives
    `router.session.session_id` from that key.
    """
    pathname, _, search = path.partition("?")
    # The search parameters, then the route's (as the frontend merges them).
    query: dict[str, str] = dict(urllib.parse.parse_qsl(search))
    parts = pathname.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "rooms":
        query["room_id"] = parts[1]
    return {
        constants.RouteVar.PATH: pathname,
        constants.RouteVar.ORIGIN: path,
        constants.RouteVar.QUERY: query,
        constants.RouteVar.CLIENT_TOKEN: token,
        constants.RouteVar.SESSION_ID: sid,
        # The websocket request's headers, as the server caches them per socket: the session
        # cookie reaches the state only this way (it is HttpOnly).
        constants.RouteVar.HEADERS: {"cookie": cookie} if cookie else {},
        constants.RouteVar.CLIENT_IP: "127.0.0.1",
    }


def message_ops(batches: list[dict[str, Any]]) -> list[list[Any]]:
    """Every op of the `messages` stream in these batches, in order."""
    return [op for batch in batches for op in batch[MESSAGES]["ops"]]


def _wire(update: StateUpdate) -> dict[str, Any]:
    """The update as the websocket carries it (Reflex's socket.io JSON encoder): recorded
    this way, nothing recorded aliases what the server keeps mutating."""
    return json.loads(rx_format.json_dumps(update))


# The name a delta delivered by a room feed is recorded under (see `Tab.emitters`).
FEED_EMITTER = "room_feed"


@dataclass
class Tab:
    """One browser tab: its token, its socket, what it received, and the items it shows."""

    app: RoomApp
    token: str
    # The socket id: a tab's own, as socket.io would assign it (never its token).
    sid: str = field(default_factory=lambda: f"sio-{uuid.uuid4().hex[:16]}")
    session_token: str = ""
    path: str = "/"
    deltas: list[dict[str, Any]] = field(default_factory=list)
    # Who emitted each delta, index for index: the handler whose task emitted a state
    # delta ("send", "follow_room", ...), or FEED_EMITTER for a room feed's broadcast.
    emitters: list[str] = field(default_factory=list)
    # Frontend events as the browser receives them: `_call_function` (a toast), `_set_value`,
    # `_redirect`. `send` returns the ones its event (and chain) produced.
    frontend_events: list[dict[str, Any]] = field(default_factory=list)
    stream: ClientStream = field(default_factory=ClientStream)
    outcomes: list[BatchOutcome] = field(default_factory=list)

    # Marks, so that a test can look at what one step produced.
    def mark(self) -> int:
        return len(self.deltas)

    def batches(self, since: int = 0) -> list[dict[str, Any]]:
        """The `stream_batches` values of MessagesState that reached this tab (from `since`):
        its own batches and the room's channel batches, in arrival order."""
        return [
            d[MESSAGES_STATE][BATCHES_KEY]
            for d in self.deltas[since:]
            if d.get(MESSAGES_STATE, {}).get(BATCHES_KEY)
        ]

    def channel_batches(self, since: int = 0) -> list[dict[str, Any]]:
        """The `messages` channel batches among them (what room feeds broadcast)."""
        return [b[MESSAGES] for b in self.batches(since) if "channel" in b.get(MESSAGES, {})]

    def own_batches(self, since: int = 0) -> list[dict[str, Any]]:
        """The `messages` batches taken from this tab's own recorder (`seq`, `epoch`)."""
        return [b[MESSAGES] for b in self.batches(since) if "seq" in b.get(MESSAGES, {})]

    def ops(self, since: int = 0) -> list[list[Any]]:
        return message_ops(self.batches(since))

    def unread_news(self, since: int = 0) -> list[dict[str, Any]]:
        """The sidebar's unread news that reached this tab (from `since`), in order."""
        key = UNREAD_VAR + "_rx_state_"
        return [d[ROOMS_STATE][key] for d in self.deltas[since:] if d.get(ROOMS_STATE, {}).get(key)]

    def messages_delta(self, since: int = 0) -> list[dict[str, Any]]:
        """Every MessagesState entry of the deltas from `since` (vars and batches)."""
        return [d[MESSAGES_STATE] for d in self.deltas[since:] if MESSAGES_STATE in d]

    def var(self, name: str) -> Any:
        """The last value of a MessagesState var (or an inherited one) the browser received."""
        key = name + "_rx_state_"
        value: Any = _MISSING
        for delta in self.deltas:
            for state_name, changes in delta.items():
                if key in changes and (
                    state_name == MESSAGES_STATE or MESSAGES_STATE.startswith(state_name + ".")
                ):
                    value = changes[key]
        assert value is not _MISSING, f"{name} never reached the browser"
        return value

    @property
    def shown_ids(self) -> list[int]:
        return [item["id"] for item in self.stream.items]

    # The protocol

    def _event(self, name: str, path: str, payload: Mapping[str, Any] | None = None) -> Event:
        return Event(
            name=name,
            payload=dict(payload or {}),
            router_data=router_data(path, self.token, self.sid, self.cookie_header),
        )

    @property
    def cookie_header(self) -> str:
        return f"{SESSION_COOKIE}={self.session_token}" if self.session_token else ""

    async def connect(self, path: str) -> None:
        """Open `path` in a new tab: the boot event, on a socket whose request carried the
        session cookie."""
        self.path = path
        name = rx_format.format_event_handler(State.hydrate_and_load)  # type: ignore[arg-type]
        await self.app.enqueue(self, self._event(name, path))

    async def navigate(self, path: str) -> None:
        """A client-side navigation: the new page's on_load chain."""
        self.path = path
        name = rx_format.format_event_handler(OnLoadInternalState.on_load_internal)  # type: ignore[arg-type]
        await self.app.enqueue(self, self._event(name, path))

    async def send(self, handler: Any, **payload: Any) -> list[dict[str, Any]]:
        """One event from this page; returns the frontend events it (and its chain) emitted."""
        before = len(self.frontend_events)
        await self.app.enqueue(
            self, self._event(rx_format.format_event_handler(handler), self.path, payload)
        )
        return self.frontend_events[before:]

    async def disconnect(self) -> None:
        """The socket closes: socket.io takes it out of every room, and Reflex cancels the
        tab's unfinished page-load chain (python-socketio runs the namespace's disconnect
        handler, then drops the socket; the follower's cleanup runs later either way)."""
        self.app.processor._on_disconnect(self.token)
        self.app.sio.disconnect(self.sid)
        await self.app.quiet()

    def record_delta(self, delta: Mapping[str, Any]) -> None:
        """A state delta emitted for this tab's token (by the event processor)."""
        task = asyncio.current_task()
        name = task.get_name() if task is not None else ""
        # reflex_event|<state>.<handler>|<token>|<txid>
        emitter = name.split("|")[1].rpartition(".")[2] if "|" in name else name
        self.record_update(_wire(StateUpdate(delta=delta)), emitter)

    def record_update(self, wire: Mapping[str, Any], emitter: str) -> None:
        """One `StateUpdate`, as the browser receives it over the socket."""
        delta = wire.get("delta") or {}
        if delta:
            self.deltas.append(delta)
            self.emitters.append(emitter)
            batches = delta.get(MESSAGES_STATE, {}).get(BATCHES_KEY) or {}
            if MESSAGES in batches:
                self.outcomes.append(self.stream.apply_batch(batches[MESSAGES]))
        self.frontend_events.extend(wire.get("events") or [])

    def record_events(self, events: tuple[Event, ...]) -> None:
        self.frontend_events.extend(_wire(StateUpdate(events=list(events)))["events"])


_MISSING = object()


# --------------------------------------------------------------------------------------------
# The socket server the room feeds emit through
# --------------------------------------------------------------------------------------------


@dataclass
class SocketEmit:
    """One `emit` call: what it addressed and which sockets it reached."""

    event: str
    to: str | None
    room: str | None
    namespace: str | None
    recipients: frozenset[str]
    # The update as encoded on the wire (`delta`, `events`).
    wire: dict[str, Any]

    @property
    def batch(self) -> dict[str, Any] | None:
        """The `messages` batch it carries, if any."""
        return self.wire.get("delta", {}).get(MESSAGES_STATE, {}).get(BATCHES_KEY, {}).get(MESSAGES)


@dataclass
class FakeSocketServer:
    """The part of `socketio.AsyncServer` a `RoomFeed` uses, in memory, one namespace.

    Membership follows python-socketio's `BaseManager`: each connected socket id is a room
    of its own; entering a room needs a connected socket; leaving a room one is not in (or
    leaving after a disconnect) does nothing; a disconnect leaves every room; an emit to a
    room nobody is in reaches nobody. An emit reaches each addressed socket once.
    """

    app: RoomApp
    namespace: str
    connected: dict[str, Tab] = field(default_factory=dict)
    rooms: dict[str, set[str]] = field(default_factory=dict)
    emits: list[SocketEmit] = field(default_factory=list)
    # ("enter" | "leave", sid, room), in call order.
    membership_log: list[tuple[str, str, str]] = field(default_factory=list)

    def connect(self, tab: Tab) -> None:
        self.connected[tab.sid] = tab

    def disconnect(self, sid: str) -> None:
        self.connected.pop(sid, None)
        for room in list(self.rooms):
            self._leave(sid, room)

    def participants(self, room: str) -> set[str]:
        if room in self.connected:
            return {room}
        return set(self.rooms.get(room, ()))

    def rooms_of(self, sid: str) -> set[str]:
        return {room for room, sids in self.rooms.items() if sid in sids}

    def _check_namespace(self, namespace: str | None) -> None:
        # Nothing but the event namespace has Reflex's frontend listening for "event".
        assert namespace == self.namespace, f"emitted to namespace {namespace!r}"

    async def emit(
        self,
        event: str,
        data: Any = None,
        to: str | None = None,
        room: str | None = None,
        namespace: str | None = None,
    ) -> None:
        self._check_namespace(namespace)
        assert event == "event", f"Reflex's frontend only listens to 'event', not {event!r}"
        assert isinstance(data, StateUpdate), f"not a StateUpdate: {data!r}"
        target = to if to is not None else room
        recipients = set(self.connected) if target is None else self.participants(target)
        wire = _wire(data)
        self.emits.append(SocketEmit(event, to, room, namespace, frozenset(recipients), wire))
        for sid in sorted(recipients):
            self.connected[sid].record_update(wire, FEED_EMITTER)

    async def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        self._check_namespace(namespace)
        if sid not in self.connected:
            raise ValueError(f"sid {sid} is not connected to requested namespace")
        if room != sid and room in self.connected:
            raise ValueError("cannot enter a sid room")
        self.membership_log.append(("enter", sid, room))
        self.rooms.setdefault(room, set()).add(sid)

    async def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        self._check_namespace(namespace)
        self.membership_log.append(("leave", sid, room))
        self._leave(sid, room)

    def _leave(self, sid: str, room: str) -> None:
        members = self.rooms.get(room)
        if members is not None:
            members.discard(sid)
            if not members:
                del self.rooms[room]

    def emits_to_rooms(self, since: int = 0) -> list[SocketEmit]:
        """The broadcasts (emits addressed to a room, not to one socket) from `since`."""
        return [e for e in self.emits[since:] if e.to is None and e.room is not None]


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


def _innermost_awaits(coro: Any) -> Iterator[Any]:
    """The chain of coroutines `coro` is suspended in, outermost first."""
    while coro is not None and hasattr(coro, "cr_code"):
        yield coro
        coro = coro.cr_await


def follower_parked(task: asyncio.Task) -> bool:
    """Whether this `follow_room` task has done its work and only waits to be cancelled:
    suspended in `follow_room`'s own `await asyncio.Event().wait()` (not in joining the
    feed, nor in an `async with self` block, which also wait on events and locks)."""
    chain = list(_innermost_awaits(task.get_coro()))
    for outer, inner in itertools.pairwise(chain):
        if outer.cr_code in FOLLOWER_CODES:
            return inner.cr_code is EVENT_WAIT_CODE
    return False


# The handler itself, not the argument check `CheckedInput` wraps it in.
FOLLOW_ROOM_CODE = inspect.unwrap(MessagesState.follow_room.fn).__code__  # type: ignore[attr-defined]
# The /rooms page's follower, which follows the session only.
FOLLOWER_CODES = (FOLLOW_ROOM_CODE, inspect.unwrap(RoomsState.follow_session.fn).__code__)  # type: ignore[attr-defined]
EVENT_WAIT_CODE = asyncio.Event.wait.__code__


def feed_tasks() -> list[asyncio.Task]:
    """Every running feed task (`Feed._run`: rooms, sessions, presence) of this loop (closed
    feeds included until done)."""
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and getattr(task.get_coro(), "cr_code", None) in FEED_RUN_CODES
    ]


FEED_RUN_CODES = (room_feed.Feed._run.__code__,)


class _FeedErrors(logging.Handler):
    """A feed catches and logs whatever fails while it handles an event: counted as errors."""

    def __init__(self, errors: list[BaseException]) -> None:
        super().__init__(level=logging.ERROR)
        self.errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])
        else:
            self.errors.append(RuntimeError(record.getMessage()))


@dataclass
class RoomApp:
    processor: BaseStateEventProcessor
    state_manager: StateManager
    broker: pubsub.LocalBroker
    sio: FakeSocketServer = field(init=False)
    tabs: dict[str, Tab] = field(default_factory=dict)
    # Exceptions raised by handlers, followers included (the backend exception handler
    # records them), and those a room feed logged; `quiet()` raises the first one, so
    # none goes unnoticed.
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sio = FakeSocketServer(app=self, namespace=NAMESPACE)

    def tab(self, user: User | None = None) -> Tab:
        from stream_chat import accounts

        tab = Tab(app=self, token=str(uuid.uuid4()))
        if user is not None:
            tab.session_token = accounts.create_session_token(user)
        self.tabs[tab.token] = tab
        # The socket connects before the page sends its first event.
        self.sio.connect(tab)
        return tab

    async def enqueue(self, tab: Tab, event: Event) -> None:
        future = await self.processor.enqueue(tab.token, event)
        await self.quiet()
        if future.done() and not future.cancelled() and future.exception() is not None:
            raise future.exception()  # type: ignore[misc]

    def follower_tasks(
        self, token: str | None = None, handler: str = "follow_room"
    ) -> list[asyncio.Task]:
        """The room followers (or, with `handler="follow_session"`, the /rooms page's)."""
        return [
            task
            for task in self.processor._tasks.values()
            if not task.done()
            and f".{handler}|" in task.get_name()
            and (token is None or task.get_name().split("|")[2] == token)
        ]

    @staticmethod
    def feeds() -> dict[int, room_feed.RoomFeed]:
        """This worker's open room feeds, by room id."""
        return dict(room_feed.room_feeds._feeds)

    @staticmethod
    def feed_members(room_id: int) -> set[str]:
        """The socket ids the room's feed counts as members (none when it has no feed)."""
        feed = room_feed.room_feeds.get(room_id)
        return set(feed._members) if feed is not None else set()

    @staticmethod
    def live_socket_rooms() -> set[str]:
        """The socket.io rooms of the open feeds (a closed feed's room hears nothing more;
        a socket may stay listed in it until it disconnects)."""
        return {feed._socket_room for feed in room_feed.room_feeds._feeds.values()}

    def socket_room_of(self, room_id: int) -> str:
        feed = room_feed.room_feeds.get(room_id)
        assert feed is not None, f"room {room_id} has no feed"
        return feed._socket_room

    def _is_quiet(self) -> bool:
        processor = self.processor
        if processor._queue is None or not processor._queue.empty() or processor._token_queues:
            return False
        running = [task for task in processor._tasks.values() if not task.done()]
        followers = self.follower_tasks() + self.follower_tasks(handler="follow_session")
        if len(running) != len(followers) or not all(map(follower_parked, followers)):
            return False
        feeds = self.feeds().values()
        if any(feed._subscription is None for feed in feeds):
            return False
        sessions = room_feed.room_feeds._keyed.values()
        if not all(feed._subscribed.is_set() for feed in sessions):
            return False
        # A coalesced awareness update still to go out (at most AWARENESS_INTERVAL away).
        if any(feed._flush_pending for feed in [*feeds, *sessions]):
            return False
        with self.broker._lock:
            subscriptions = [s for subs in self.broker._subscriptions.values() for s in subs]
        parked = [s for s in subscriptions if s._queue.empty() and s._queue._getters]  # type: ignore[attr-defined]
        # One subscription per open feed (a closed feed's goes once its task has ended),
        # and no other feed task still running.
        open_feeds = len(feeds) + len(sessions)
        return len(parked) == len(subscriptions) == open_feeds == len(feed_tasks())

    async def quiet(self) -> None:
        """Waits until every event has finished, every follower is parked and every feed has
        handled everything it was given (see module doc)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + QUIET_TIMEOUT
        calm = 0
        while calm < 3:
            await asyncio.sleep(0 if calm else 0.002)
            calm = calm + 1 if self._is_quiet() else 0
            if loop.time() > deadline:
                names = [task.get_name() for task in self.processor._tasks.values()]
                feeds = {room: feed._subscription for room, feed in self.feeds().items()}
                raise AssertionError(f"the app did not settle: tasks={names}, feeds={feeds}")
        if self.errors:
            raise self.errors[0]

    def subscriber_count(self, room_id: int) -> int:
        from stream_chat import chat

        return chat.subscriber_count(room_id)


def _close_every_feed() -> None:
    feeds = room_feed.room_feeds
    for feed in [*feeds._feeds.values(), *feeds._keyed.values()]:
        feed.close()
    feeds._feeds.clear()
    feeds._keyed.clear()


@pytest.fixture(params=["memory", "redis"])
async def room_app(
    request: pytest.FixtureRequest,
    room_db: str,
    room_broker: pubsub.LocalBroker,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[RoomApp]:
    state_manager = await _make_state_manager(request.param)
    app_box: dict[str, RoomApp] = {}

    def record_exception(ex: Exception) -> None:
        app_box["app"].errors.append(ex)

    processor = BaseStateEventProcessor(
        backend_exception_handler=record_exception, graceful_shutdown_timeout=1
    )

    async def emit_delta(token: str, delta: Mapping[str, Mapping[str, Any]]) -> None:
        app_box["app"].tabs[token].record_delta(delta)

    async def emit_event(token: str, *events: Event) -> None:
        app_box["app"].tabs[token].record_events(events)

    processor._root_context = EventContext(
        token="",
        txid="",
        state_manager=state_manager,
        enqueue_impl=processor.enqueue_many,
        emit_delta_impl=emit_delta,
        emit_event_impl=emit_event,
    )
    app = app_box["app"] = RoomApp(
        processor=processor, state_manager=state_manager, broker=room_broker
    )
    # The feeds are per worker (module-level); a test starts with none.
    assert room_feed.room_feeds._feeds == {}, "a previous test left room feeds open"
    assert room_feed.room_feeds._keyed == {}, "a previous test left session or presence feeds open"
    monkeypatch.setattr(room_feed, "_socket_server", lambda: (app.sio, app.sio.namespace))
    feed_errors = _FeedErrors(app.errors)
    logging.getLogger(room_feed.__name__).addHandler(feed_errors)
    try:
        async with processor:
            yield app
            # Every tab closes (Reflex cancels their page-load chains, followers included);
            # anything else still running (a follower started outside a page load) is
            # cancelled here rather than waited for by the processor's graceful stop.
            for token in app.tabs:
                processor._on_disconnect(token)
            leftover = [task for task in processor._tasks.values() if not task.done()]
            for task in leftover:
                task.cancel()
            await asyncio.gather(*leftover, return_exceptions=True)
            # Once every follower has gone, so has every feed (and its subscription).
            await asyncio.sleep(0)
            open_feeds = sorted(room_feed.room_feeds._feeds)
            open_feeds += sorted(room_feed.room_feeds._keyed)  # type: ignore[arg-type]
            _close_every_feed()
            await asyncio.gather(*feed_tasks(), return_exceptions=True)
            # (A test marked xfail documents a bug; the leak may be that bug's.)
            if request.node.get_closest_marker("xfail") is None:
                assert open_feeds == [], f"feeds left open after every tab closed: {open_feeds}"
    finally:
        logging.getLogger(room_feed.__name__).removeHandler(feed_errors)
        _close_every_feed()
        if isinstance(state_manager, StateManagerRedis):
            for token in app.tabs:
                keys = [key async for key in state_manager.redis.scan_iter(match=f"{token}*")]
                if keys:
                    await state_manager.redis.delete(*keys)
        await state_manager.close()
        if isinstance(state_manager, StateManagerRedis):
            await state_manager.redis.aclose()
