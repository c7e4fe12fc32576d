"""Every event handler of every state refuses what it must, whatever the client sends.

A browser is not the only client of the websocket: any socket may send any event name with
any payload. This module finds the handlers from the app's state classes themselves (every
substate of `rx.State` defined in `stream_chat`, with every handler Reflex registered on
it, inherited and mixed-in ones included), so a handler added later is called here too. Each
one is driven through Reflex's real event processing (`room_fixtures.RoomApp`) by four
hostile callers, and after every call nothing that is not the caller's own may have changed
in the database, nor may a stop have been published for someone else's reply:

* a socket that only loaded /login (no session at all);
* a tab that had room X open when its session was revoked (a log out in another tab);
* Bob, logged in with room X open, sending the ids of Ann's messages and replies in X;
* Ann, with room X open, sending the ids of her own messages and replies in room Y.

Arguments come from each handler's signature: a crafted value list per parameter name or
annotation (`CRAFTED_BY_NAME`, `crafted_by_type`). A handler whose parameters they cannot
fill fails the test, asking for a row to be added. The handlers run in their definition
order in one tab per caller, one round per crafted value, so a handler that acts on an
earlier selection (`save_edit` after `start_edit`, `confirm_delete` after `ask_delete`)
gets the hostile selection too; a call that ends the caller's session (log out) is
followed by a fresh tab of the same caller.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from reflex.state import BaseState, State
from sqlmodel import SQLModel

from stream_chat import accounts, assistant, chat, presence, repo, unread
from stream_chat.models import Message, Room, User

from . import room_fixtures
from .room_fixtures import RoomApp, Tab, make_room, make_user

# The fixtures live in room_fixtures.py; pytest finds them as attributes of this module.
migrated_template = room_fixtures.migrated_template
room_db = room_fixtures.room_db
room_broker = room_fixtures.room_broker
room_app = room_fixtures.room_app

# Only for the test suite's own page (/_stream_lab, mounted when STREAM_CHAT_TEST_PAGES=1): it
# streams canned items to its own tab and never reads a session, a room or the database.
EXCLUDED_STATES = {"StreamLabState"}

# The memory state manager only: what is checked is the handlers, not how state is stored.
memory_only = pytest.mark.parametrize("room_app", ["memory"], indirect=True)


def app_states() -> Iterator[type[BaseState]]:
    """Every state class of the app under Reflex's root state, depth first."""

    def walk(cls: type[BaseState]) -> Iterator[type[BaseState]]:
        for substate in cls.get_substates():
            if substate.__module__.startswith("stream_chat.") and (
                substate.__name__ not in EXCLUDED_STATES
            ):
                yield substate
            yield from walk(substate)

    return walk(State)


@dataclass(frozen=True)
class Handler:
    state: type[BaseState]
    name: str

    @property
    def handler(self) -> Any:
        return self.state.event_handlers[self.name]

    def __str__(self) -> str:
        return f"{self.state.__name__}.{self.name}"


def every_handler() -> list[Handler]:
    return [Handler(state, name) for state in app_states() for name in state.event_handlers]


# --------------------------------------------------------------------------------------------
# The world: Ann's messages and replies in two rooms, Bob's nothing
# --------------------------------------------------------------------------------------------


@dataclass
class World:
    ann: User
    bob: User
    open_room: Room  # X: the room the hostile tabs have open
    other_room: Room  # Y
    # Ann's person message, then her failed, finished and queued replies, per room. No reply
    # streams: a queued one is enough to see a stop published, and nothing blocks a claim.
    ids: dict[int, list[int]] = field(default_factory=dict)

    def victim_ids(self, room: Room) -> list[int]:
        return self.ids[room.id]  # type: ignore[index]


def build_world() -> World:
    ann, bob = make_user("Ann"), make_user("Bob")
    world = World(ann, bob, make_room("open"), make_room("elsewhere"))
    assistant_id = accounts.assistant_user_id()
    for room in (world.open_room, world.other_room):
        ids = [chat.create_message(room.id, ann.id, f"Ann in #{room.name}").id]  # type: ignore[arg-type]
        for status in (chat.FAILED, chat.DONE, chat.QUEUED):
            reply = chat.create_reply(room.id, assistant_id, ann.id)  # type: ignore[arg-type]
            fields = {"content": f"Ann's {status} answer"} if status != chat.QUEUED else {}
            chat.update_reply(reply.id, status=status, **fields)  # type: ignore[arg-type]
            ids.append(reply.id)
        world.ids[room.id] = ids  # type: ignore[index]
    return world


# --------------------------------------------------------------------------------------------
# Crafted arguments
# --------------------------------------------------------------------------------------------

Values = Callable[[World, Room], list[Any]]


def _forged_row(world: World, room: Room) -> dict[str, Any]:
    return {"id": world.victim_ids(room)[0], "content": "forged", "sender_id": world.ann.id}


# By parameter name first: these names carry a meaning the annotation does not.
CRAFTED_BY_NAME: dict[str, Values] = {
    # A stream's name (StreamsState's methods): the ones the room page has.
    "name": lambda world, room: ["messages", "people"],
    "var_name": lambda world, room: ["edit_draft", "room_menu_open"],
    # A search (SearchState): Ann's words, a crafted megabyte, SQL and FTS5 syntax.
    "query": lambda world, room: [
        "Ann",
        "Ann " * 250_000,
        "'; DELETE FROM messages; --",
        'Ann* OR "answer" NEAR(x)',
    ],
    "scope": lambda world, room: ["room", "all", "everything"],
}


def crafted_by_type(world: World, room: Room) -> dict[Any, list[Any]]:
    ids = world.victim_ids(room)
    form = {
        "email": world.ann.email,
        "password": "not-anns-password",
        "name": "Forger",
        "content": "forged into the room",
    }
    return {
        int: [*ids, room.id],
        bool: [True, False],
        str: ["forged text", f"messages-{ids[0]}"],
        dict[str, str]: [form],
        Any: ["forged text", True],
        Mapping[str, Any]: [_forged_row(world, room)],
        Iterable[Mapping[str, Any]]: [[_forged_row(world, room)]],
        str | Mapping[str, Any]: [f"messages-{ids[0]}", _forged_row(world, room)],
    }


def parameters(target: Handler) -> list[inspect.Parameter]:
    """The parameters a client must send (those with defaults may be left out)."""
    signature = inspect.signature(target.handler.fn)
    return [
        p for p in list(signature.parameters.values())[1:] if p.default is inspect.Parameter.empty
    ]


def crafted_calls(target: Handler, world: World, room: Room) -> list[dict[str, Any]]:
    """One payload per round: the i-th crafted value of each parameter (cycling)."""
    hints = typing.get_type_hints(target.handler.fn)
    by_type = crafted_by_type(world, room)
    columns: list[tuple[str, list[Any]]] = []
    for parameter in parameters(target):
        if parameter.name in CRAFTED_BY_NAME:
            values = CRAFTED_BY_NAME[parameter.name](world, room)
        elif hints.get(parameter.name, Any) in by_type:
            values = by_type[hints.get(parameter.name, Any)]
        else:
            pytest.fail(
                f"{target} takes {parameter.name}: {hints.get(parameter.name)!r}, which this "
                "test cannot craft: add hostile values for it to CRAFTED_BY_NAME or "
                f"crafted_by_type in {__name__}"
            )
        if target.name == "setvar" and parameter.name == "var_name":
            # Only the state's own setters are reachable through setvar.
            values = [v for v in values if f"set_{v}" in target.state.event_handlers]
        columns.append((parameter.name, values))
    if any(not values for _, values in columns):
        return []
    rounds = max((len(values) for _, values in columns), default=1)
    return [{name: values[i % len(values)] for name, values in columns} for i in range(rounds)]


# --------------------------------------------------------------------------------------------
# What must not change
# --------------------------------------------------------------------------------------------


def snapshot(owner: User | None, open_room: Room) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, less the acting user's own: their session tokens, and their
    messages, replies and assistant requests in the room their tab has open. Tables added
    later are compared whole."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with repo.engine().connect() as db:
        for table in SQLModel.metadata.sorted_tables:
            query = sa.select(table).order_by(*table.primary_key.columns)
            if owner is not None:
                query = query.where(~_owned_by(table, owner, open_room))
            rows[table.name] = [tuple(row) for row in db.execute(query)]
    return rows


def _owned_by(table: sa.Table, owner: User, open_room: Room) -> sa.ColumnElement[bool]:
    columns = table.c
    if table.name == "users_tokens":
        return columns.user_id == owner.id
    if table.name == Message.__tablename__:
        return (columns.room_id == open_room.id) & (
            (columns.sender_id == owner.id) | (columns.requested_by_id == owner.id)
        )
    if table.name == "assistant_requests":
        in_open_room = sa.select(Message.id).where(Message.room_id == open_room.id)  # type: ignore[arg-type]
        return (columns.user_id == owner.id) & columns.reply_id.in_(in_open_room)
    if table.name == "last_reads":
        # Their own position in the room they have open, at a message of that room: a
        # position moved to another room's message is caught.
        in_open_room = sa.select(Message.id).where(Message.room_id == open_room.id)  # type: ignore[arg-type]
        return (
            (columns.user_id == owner.id)
            & (columns.room_id == open_room.id)
            & columns.last_read_message_id.in_(in_open_room)
        )
    return sa.false()


@dataclass
class Caller:
    """One hostile caller: how to open its tab, whose rows it may touch, which topics it may
    publish on, and the room whose ids it sends."""

    label: str
    open_tab: Callable[[RoomApp, World], Any]
    acting_user: Callable[[World], User | None]
    ids_from: Callable[[World], Room]


async def _no_session(app: RoomApp, world: World) -> Tab:
    tab = app.tab()
    await tab.connect("/login")
    return tab


async def _revoked_session(app: RoomApp, world: World) -> Tab:
    tab = app.tab(world.ann)
    await tab.connect(f"/rooms/{world.open_room.id}")
    accounts.delete_session_token(tab.session_token)
    return tab


def _logged_in(user: Callable[[World], User]) -> Callable[[RoomApp, World], Any]:
    async def open_tab(app: RoomApp, world: World) -> Tab:
        tab = app.tab(user(world))
        await tab.connect(f"/rooms/{world.open_room.id}")
        return tab

    return open_tab


CALLERS = [
    Caller("no session", _no_session, lambda w: None, lambda w: w.open_room),
    Caller("revoked session", _revoked_session, lambda w: None, lambda w: w.open_room),
    Caller("another user", _logged_in(lambda w: w.bob), lambda w: w.bob, lambda w: w.open_room),
    Caller("another room", _logged_in(lambda w: w.ann), lambda w: w.ann, lambda w: w.other_room),
]


def allowed_topics(caller: Caller, world: World) -> Callable[[str], bool]:
    """A caller's own doings publish on its open room's topic (its messages, its typing, its
    presence in the room's roster), a stop of its own reply in that room on the reply's
    topic, its own reads on its read topic, a message it posts on the rooms' activity topic,
    and its own status on the presence topic; nothing else may be published."""
    acting = caller.acting_user(world)
    if acting is None:
        return lambda topic: False
    own_replies = [
        reply.id
        for reply in chat.active_replies(world.open_room.id)  # type: ignore[arg-type]
        if reply.requested_by_id == acting.id
    ]
    own = {
        chat.room_topic(world.open_room.id),  # type: ignore[arg-type]
        chat.ACTIVITY_TOPIC,
        unread.reads_topic(acting.id),  # type: ignore[arg-type]
        *map(chat.reply_topic, own_replies),
        presence.PRESENCE_TOPIC,
    }
    return own.__contains__


@pytest.fixture
def unreachable_model() -> Iterator[None]:
    # Were a hostile call to start a generation, it fails at once (nothing listens on port 9)
    # instead of waiting on the internet; its status change is what the snapshot catches.
    previous = assistant.configure(
        assistant.AssistantConfig(base_url="http://127.0.0.1:9/v1", max_retries=0)
    )
    yield
    assistant.configure(previous)


def test_the_handler_list_is_built_from_the_states() -> None:
    names = {str(h) for h in every_handler()}
    # A few that must be there: the ones whose absence would hide the reproduced defects.
    assert {
        "MessagesState.stop_reply",
        "MessagesState.retry_reply",
        "MessagesState.stop_current_reply",
        "MessagesState.save_edit",
        "MessagesState.load_newer",
        "MessagesState.jump_to_present",
        "MessagesState.jump_to_start",
        "MessagesState.run_assistant",
        "MessagesState.mark_read",
        "MessagesState.mark_room_read",
        "RoomsState.refresh_unread",
        "MessagesState.set_typing",
        "RoomsState.report_activity",
        "RoomsState.refresh_awareness",
        "SessionState.log_out",
        "LoginFormState.log_in",
        "SearchState.open_search",
        "SearchState.dialog_toggled",
        "SearchState.set_search_scope",
        "SearchState.run_search",
        "SearchState.load_more",
        "SearchState.move_cursor",
        "SearchState.open_result",
        "MentionsState.load_people",
    } <= names
    assert not any(name.startswith("StreamLabState.") for name in names)


@memory_only
@pytest.mark.parametrize("caller", CALLERS, ids=[c.label for c in CALLERS])
async def test_every_handler_refuses_a_hostile_caller(
    room_app: RoomApp,
    caller: Caller,
    unreachable_model: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = build_world()
    published: list[str] = []
    real_publish = room_app.broker.publish

    def recorded_publish(topic: str, event: dict[str, Any]) -> int:
        published.append(topic)
        return real_publish(topic, event)

    def recorded_signal(topic: str, event: dict[str, Any]) -> None:
        # A tab whose session ended leaves presence (its follower stops): that departure is
        # the refusal working, whoever the caller.
        departures = {None, False}
        if (
            event["kind"] not in (presence.STATUS_KIND, presence.ROSTER_KIND)
            or not set(event["users"].values()) <= departures
        ):
            published.append(topic)
        real_signal(topic, event)

    real_signal = room_app.broker.signal
    monkeypatch.setattr(room_app.broker, "publish", recorded_publish)
    # Signals (typing, presence) too: a refused handler sends nobody anything.
    monkeypatch.setattr(room_app.broker, "signal", recorded_signal)
    may_publish = allowed_topics(caller, world)
    acting = caller.acting_user(world)
    handlers = every_handler()
    calls = {h: crafted_calls(h, world, caller.ids_from(world)) for h in handlers}
    tab = await caller.open_tab(room_app, world)
    rounds = max(len(payloads) for payloads in calls.values())
    refusals: list[str] = []
    for round_number in range(rounds):
        for target in handlers:
            payloads = calls[target]
            if not payloads:
                continue
            payload = payloads[round_number % len(payloads)]
            before = snapshot(acting, world.open_room)
            published.clear()
            await tab.send(target.handler, **payload)
            after = snapshot(acting, world.open_room)
            changed = {name for name in before if before[name] != after[name]}
            foreign = [topic for topic in published if not may_publish(topic)]
            if changed or foreign:
                refusals.append(
                    f"{target}({payload}) by {caller.label}: changed {sorted(changed)}, "
                    f"published on {foreign}"
                )
            if acting is not None and accounts.session_user_id(tab.session_token) is None:
                # It logged the caller out: the rest runs in a fresh tab of the same caller.
                tab = await caller.open_tab(room_app, world)
    assert refusals == []
