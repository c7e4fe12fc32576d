"""The throttles as a user meets them: the message is refused with when to try again and the
draft stays in the composer; a locked login says how long. Over the memory and the Redis
state managers (`room_fixtures.room_app`), with the in-process throttle store."""

from __future__ import annotations

import pytest
from reflex.istate.manager.token import BaseStateToken

from stream_chat import accounts, throttle
from stream_chat.state.auth_forms import LoginFormState
from stream_chat.state.messages import MessagesState

from . import room_fixtures
from .room_fixtures import RoomApp, make_room, make_user, stored_messages
from .test_room_messages import clears_composer, toasts

migrated_template = room_fixtures.migrated_template
room_db = room_fixtures.room_db
room_broker = room_fixtures.room_broker
room_app = room_fixtures.room_app


async def test_a_message_past_the_rate_limit_keeps_the_draft(
    room_app: RoomApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_BURST", "3")
    monkeypatch.setenv("MESSAGES_PER_SECOND", "0.5")
    # Time stands still: the bucket refills by nothing while the messages go, however slow
    # the machine, so the wait is exactly one token's, 2 s.
    monkeypatch.setattr(throttle, "clock", lambda: 1_000_000.0)
    ann, room = make_user("Ann"), make_room("general")
    tab = room_app.tab(ann)
    await tab.connect(f"/rooms/{room.id}")
    for n in range(3):
        assert clears_composer(await tab.send(MessagesState.send, form={"content": f"m{n}"}))

    events = await tab.send(MessagesState.send, form={"content": "one too many"})

    assert not clears_composer(events) and toasts(events) == []
    assert tab.var("compose_error") == "You are sending messages too fast. Try again in 2 s."
    assert [content for *_, content, _ in stored_messages()] == ["m0", "m1", "m2"]


async def test_a_locked_login_says_how_long_and_refuses_even_the_right_password(
    room_app: RoomApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Time stands still, so the lockout said is the whole first one, however slow the run.
    monkeypatch.setattr(throttle, "clock", lambda: 1_000_000.0)
    accounts.register_user("alice@example.com", "correct horse battery staple")
    tab = room_app.tab()
    await tab.connect("/login")
    wrong = {"email": "alice@example.com", "password": "guess"}
    for _ in range(6):
        await tab.send(LoginFormState.log_in, form=wrong)
    await tab.send(
        LoginFormState.log_in, form={**wrong, "password": "correct horse battery staple"}
    )

    root = await room_app.state_manager.get_state(
        BaseStateToken(ident=tab.token, cls=LoginFormState)
    )
    form = root.get_substate(LoginFormState.get_full_name().split("."))
    assert form.error == "Too many attempts. Try again in 10 s."
    assert form._user_id is None
    assert not any(e["name"] == "_redirect" for e in tab.frontend_events)
