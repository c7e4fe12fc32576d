"""Fixtures for the room page's state tests: browser tabs talking to the real event processor.

`RoomApp` is one `BaseStateEventProcessor` (as in `conftest.py`, over the memory or the Redis
state manager) serving any number of tabs, each with its own token, against a fresh SQLite
database migrated by the real Alembic migrations and an in-process `LocalBroker`.

A `Tab` speaks the frontend's protocol (see `tests/support/reflex_client.py`):

* `connect(path)` is the boot event, `State.hydrate_and_load`, carrying the session cookie as
  a client-storage var, with the page's router data. The app's own on_load table then runs
  `SessionState.require_user` and `MessagesState.enter_room`, which returns the
  `follow_room` background task: the real on_load path, route registered by the real app
  module (`stream_chat/stream_chat.py`), `self.room_id` read from `router_data["query"]`.
* `navigate(path)` is a client-side navigation: `OnLoadInternalState.on_load_internal` with
  the new router data. Reflex cancels the previous page's unfinished on_load chain (the
  follower included) when it is enqueued, as in the running app.
* `send(handler, **payload)` is any other event, with the tab's current router data.

Every call waits until the whole app is quiet: no event queued or running except follower
tasks, and every follower parked on an empty subscription queue. A follower emits its delta
when its `async with self` block exits, before it parks again, so once quiet every delta
caused so far has been recorded, including those of other tabs' followers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
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
from stream_chat import pubsub, repo
from stream_chat.models import Message, Room, User
from stream_chat.state.messages import MESSAGES, MessagesState
from stream_chat.state.session import SessionState
from stream_chat.streams.client_model import BatchOutcome, ClientStream

from .conftest import BATCHES_KEY, _make_state_manager

ROOT = Path(__file__).resolve().parents[2]
QUIET_TIMEOUT = 10.0
MESSAGES_STATE = MessagesState.get_full_name()
COOKIE_KEY = f"{SessionState.get_full_name()}.session_token"


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
    yield fresh
    pubsub.use_broker(previous)


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


def router_data(path: str, token: str) -> dict[str, Any]:
    """What the browser sends for `path`: its URL, the route's params merged into `query`."""
    query: dict[str, str] = {}
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "rooms":
        query["room_id"] = parts[1]
    return {
        "pathname": path,
        "asPath": path,
        "query": query,
        "token": token,
        "sid": f"sid-{token}",
        "headers": {},
        "ip": "127.0.0.1",
    }


def message_ops(batches: list[dict[str, Any]]) -> list[list[Any]]:
    """Every op of the `messages` stream in these batches, in order."""
    return [op for batch in batches for op in batch[MESSAGES]["ops"]]


@dataclass
class Tab:
    """One browser tab: its token, what it received, and the items it would show."""

    app: RoomApp
    token: str
    session_token: str = ""
    path: str = "/"
    deltas: list[dict[str, Any]] = field(default_factory=list)
    # Which handler's task emitted each delta ("send", "follow_room", ...), index for index.
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
        """The `stream_batches` values of MessagesState that reached this tab (from `since`)."""
        return [
            d[MESSAGES_STATE][BATCHES_KEY]
            for d in self.deltas[since:]
            if d.get(MESSAGES_STATE, {}).get(BATCHES_KEY)
        ]

    def ops(self, since: int = 0) -> list[list[Any]]:
        return message_ops(self.batches(since))

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
            name=name, payload=dict(payload or {}), router_data=router_data(path, self.token)
        )

    async def connect(self, path: str) -> None:
        """Open `path` in a new tab: the boot event with the session cookie."""
        self.path = path
        name = rx_format.format_event_handler(State.hydrate_and_load)  # type: ignore[arg-type]
        payload = {"vars": {COOKIE_KEY: self.session_token}} if self.session_token else {}
        await self.app.enqueue(self, self._event(name, path, payload))

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
        """The socket closes: Reflex cancels the tab's unfinished page-load chain."""
        self.app.processor._on_disconnect(self.token)
        await self.app.quiet()

    def record_delta(self, delta: Mapping[str, Any]) -> None:
        wire = json.loads(rx_format.json_dumps(StateUpdate(delta=delta)))["delta"]
        self.deltas.append(wire)
        task = asyncio.current_task()
        name = task.get_name() if task is not None else ""
        # reflex_event|<state>.<handler>|<token>|<txid>
        self.emitters.append(name.split("|")[1].rpartition(".")[2] if "|" in name else name)
        batches = wire.get(MESSAGES_STATE, {}).get(BATCHES_KEY) or {}
        if MESSAGES in batches:
            self.outcomes.append(self.stream.apply_batch(batches[MESSAGES]))

    def record_events(self, events: tuple[Event, ...]) -> None:
        wire = json.loads(rx_format.json_dumps(StateUpdate(events=list(events))))["events"]
        self.frontend_events.extend(wire)


_MISSING = object()


@dataclass
class RoomApp:
    processor: BaseStateEventProcessor
    state_manager: StateManager
    broker: pubsub.LocalBroker
    tabs: dict[str, Tab] = field(default_factory=dict)
    # Exceptions raised by handlers, followers included (the backend exception handler
    # records them); `quiet()` raises the first one, so none goes unnoticed.
    errors: list[BaseException] = field(default_factory=list)

    def tab(self, user: User | None = None) -> Tab:
        from stream_chat import accounts

        tab = Tab(app=self, token=str(uuid.uuid4()))
        if user is not None:
            tab.session_token = accounts.create_session_token(user)
        self.tabs[tab.token] = tab
        return tab

    async def enqueue(self, tab: Tab, event: Event) -> None:
        future = await self.processor.enqueue(tab.token, event)
        await self.quiet()
        if future.done() and not future.cancelled() and future.exception() is not None:
            raise future.exception()  # type: ignore[misc]

    def follower_tasks(self, token: str | None = None) -> list[asyncio.Task]:
        return [
            task
            for task in self.processor._tasks.values()
            if not task.done()
            and ".follow_room|" in task.get_name()
            and (token is None or task.get_name().split("|")[2] == token)
        ]

    def _is_quiet(self) -> bool:
        processor = self.processor
        if processor._queue is None or not processor._queue.empty() or processor._token_queues:
            return False
        running = [task for task in processor._tasks.values() if not task.done()]
        if len(running) != len(self.follower_tasks()):
            return False
        with self.broker._lock:
            subscriptions = [s for subs in self.broker._subscriptions.values() for s in subs]
        parked = [s for s in subscriptions if s._queue.empty() and s._queue._getters]  # type: ignore[attr-defined]
        return len(parked) == len(subscriptions) == len(running)

    async def quiet(self) -> None:
        """Waits until every event has finished and every follower is parked (see module doc)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + QUIET_TIMEOUT
        calm = 0
        while calm < 3:
            await asyncio.sleep(0 if calm else 0.002)
            calm = calm + 1 if self._is_quiet() else 0
            if loop.time() > deadline:
                names = [task.get_name() for task in self.processor._tasks.values()]
                raise AssertionError(f"the app did not settle: tasks={names}")
        if self.errors:
            raise self.errors[0]

    def subscriber_count(self, room_id: int) -> int:
        from stream_chat import chat

        return chat.subscriber_count(room_id)


@pytest.fixture(params=["memory", "redis"])
async def room_app(
    request: pytest.FixtureRequest, room_db: str, room_broker: pubsub.LocalBroker
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
    finally:
        if isinstance(state_manager, StateManagerRedis):
            for token in app.tabs:
                keys = [key async for key in state_manager.redis.scan_iter(match=f"{token}*")]
                if keys:
                    await state_manager.redis.delete(*keys)
        await state_manager.close()
        if isinstance(state_manager, StateManagerRedis):
            await state_manager.redis.aclose()
