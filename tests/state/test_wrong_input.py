"""Crafted payloads: wrong JSON types for every handler, unsafe text in every var.

The handlers are listed from the state classes themselves, so a handler added later is
covered (or this test says what it lacks). Each test runs over the memory and the Redis
state managers (`room_fixtures.room_app`).
"""

from __future__ import annotations

import inspect
import json
import logging
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from reflex.event import EventHandler
from reflex.istate.manager.token import BaseStateToken
from reflex.state import BaseState, State
from reflex_base.utils import format as rx_format

# Every state of the app, the test pages' included (they are mounted only in tests).
import stream_chat.testing.stream_lab  # noqa: F401
from stream_chat.state.checked import NOT_UNDERSTOOD, UNEXPECTED_ERROR, answer_unexpected_error
from stream_chat.state.messages import MessagesState

from . import room_fixtures
from .room_fixtures import RoomApp, Tab, insert_messages, make_room, make_user, stored_messages
from .test_room_messages import toasts

migrated_template = room_fixtures.migrated_template
room_db = room_fixtures.room_db
room_broker = room_fixtures.room_broker
room_app = room_fixtures.room_app

# JSON values a crafted event may carry. Those a parameter's annotation does not accept are
# its wrong values; the first it accepts stands in for it while another one is wrong.
JSON_VALUES: list[Any] = [
    None,
    [],
    {},
    1,
    True,
    "messages",
    -7,
    2.5,
    ["a"],
    {"content": 5},
    {"content": None},
    {"content": ["x"]},
]


def app_states(state: type[BaseState] = State) -> Iterator[type[BaseState]]:
    for substate in state.get_substates():
        if substate.__module__.startswith("stream_chat."):
            yield substate
        yield from app_states(substate)


def app_handlers() -> list[tuple[type[BaseState], str, EventHandler]]:
    return [
        (state, name, handler)
        for state in app_states()
        for name, handler in sorted(state.event_handlers.items())
        # Reflex's own setter: it calls the `set_<var>` handler, which is checked.
        if name != "setvar"
    ]


def parameters(handler: EventHandler) -> dict[str, Any]:
    fn = inspect.unwrap(handler.fn)
    hints = typing.get_type_hints(fn)
    return {name: hints.get(name, Any) for name in list(inspect.signature(fn).parameters)[1:]}


def accepts(annotation: Any, value: Any) -> bool:
    try:
        TypeAdapter(annotation).validate_python(value)
    except ValidationError:
        return False
    return True


def stands_in(annotation: Any) -> Any:
    return next(value for value in JSON_VALUES if accepts(annotation, value))


async def stored_tree(app: RoomApp, tab: Tab) -> str:
    root = await app.state_manager.get_state(BaseStateToken(ident=tab.token, cls=State))
    return rx_format.json_dumps(root.dict())


async def room_with_a_message(app: RoomApp) -> tuple[Tab, int]:
    ann, room = make_user("Ann"), make_room("general")
    [message_id] = insert_messages([(room, ann, "hello")])
    tab = app.tab(ann)
    await tab.connect(f"/rooms/{room.id}")
    return tab, message_id


def test_every_handler_of_the_app_is_listed() -> None:
    names = {(state.__name__, name) for state, name, _ in app_handlers()}
    assert {
        ("MessagesState", "send"),
        ("MessagesState", "set_edit_draft"),
        ("MessagesState", "start_edit"),
        ("LoginFormState", "log_in"),
        ("RegisterFormState", "register"),
        ("RoomsState", "set_room_menu_open"),
        ("SearchState", "run_search"),
        ("SearchState", "open_result"),
        ("StreamLabState", "run_script"),
    } <= names
    for state, name, handler in app_handlers():
        for parameter, annotation in parameters(handler).items():
            # An unannotated (or `Any`) parameter would accept anything unchecked.
            assert annotation is not Any, f"{state.__name__}.{name}({parameter}) needs a type"


@pytest.mark.parametrize(
    "handler",
    [handler for _, _, handler in app_handlers() if parameters(handler)],
    ids=lambda handler: handler.fn.__qualname__,
)
async def test_wrong_json_types_are_refused_clearly_and_change_nothing(
    room_app: RoomApp, handler: EventHandler
) -> None:
    tab, _ = await room_with_a_message(room_app)
    hints = parameters(handler)
    for wrong_one, annotation in hints.items():
        for wrong in [value for value in JSON_VALUES if not accepts(annotation, value)]:
            payload = {name: stands_in(hint) for name, hint in hints.items()}
            payload[wrong_one] = wrong
            messages, tree = stored_messages(), await stored_tree(room_app, tab)

            events = await tab.send(handler, **payload)

            case = f"{handler.fn.__qualname__}({payload})"
            shown = toasts(events)
            assert len(shown) == 1 and NOT_UNDERSTOOD in shown[0], case
            assert [event["name"] for event in events] == ["_call_function"], case
            assert stored_messages() == messages, case
            assert await stored_tree(room_app, tab) == tree, case


async def test_a_form_field_of_the_wrong_type_names_the_field(room_app: RoomApp) -> None:
    tab, _ = await room_with_a_message(room_app)
    [toast] = toasts(await tab.send(MessagesState.send, form={"content": 5}))
    assert "That request was not understood: `content` must be text." in toast
    [toast] = toasts(await tab.send(MessagesState.start_edit, message_id="abc"))
    assert "`message_id` must be a whole number." in toast
    [toast] = toasts(await tab.send(MessagesState.send, content="hi"))
    assert "That request was not understood." in toast


async def test_unsafe_text_sent_in_a_message_is_stripped(room_app: RoomApp) -> None:
    tab, _ = await room_with_a_message(room_app)
    events = await tab.send(MessagesState.send, form={"content": "a\x00b\ud800c"})
    assert toasts(events) == []
    assert [content for *_, content, _ in stored_messages()] == ["hello", "abc"]


def assert_sendable(tab: Tab) -> None:
    """Every delta the tab received can go over the websocket (UTF-8 JSON)."""
    for delta in tab.deltas:
        json.dumps(delta, ensure_ascii=False).encode("utf-8")


async def test_an_edit_with_a_lone_surrogate_does_not_poison_the_tab(room_app: RoomApp) -> None:
    tab, mine = await room_with_a_message(room_app)
    await tab.send(MessagesState.start_edit, message_id=mine)
    await tab.send(MessagesState.set_edit_draft, text="edited\ud800\x00")
    await tab.send(MessagesState.save_edit)
    assert [content for *_, content, _ in stored_messages()] == ["edited"]
    (await stored_tree(room_app, tab)).encode("utf-8")

    # Reflex's own setter reaches the var through the same checked handler.
    await tab.send(MessagesState.start_edit, message_id=mine)
    await tab.send(MessagesState.setvar, var_name="edit_draft", value="draft\udfff")
    state = (
        await room_app.state_manager.get_state(BaseStateToken(ident=tab.token, cls=MessagesState))
    ).get_substate(MessagesState.get_full_name().split("."))
    assert state.edit_draft == "draft"

    # The same token loads again, and everything it was sent can be sent.
    await tab.connect(tab.path)
    assert tab.var("edit_draft") == "draft"
    assert_sendable(tab)


async def test_a_cookie_with_a_lone_surrogate_does_not_poison_the_tab(room_app: RoomApp) -> None:
    tab, _ = await room_with_a_message(room_app)
    tab.session_token += "\ud800"
    await tab.connect(tab.path)
    (await stored_tree(room_app, tab)).encode("utf-8")
    assert_sendable(tab)


def test_an_unexpected_error_is_logged_and_answered_neutrally(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        try:
            raise ZeroDivisionError("secret detail")
        except ZeroDivisionError as error:
            answer = answer_unexpected_error(error)
    shown = json.dumps(rx_format.json_dumps(answer))
    assert UNEXPECTED_ERROR[:30] in shown
    assert "Contact the website administrator" not in shown and "secret detail" not in shown
    assert "secret detail" in caplog.text and "ZeroDivisionError" in caplog.text
