"""MentionsState.load_people: the people the `@` autocomplete offers, streamed to the tab
that asks (never kept in its state), and nothing for a tab without a session or a room."""

from __future__ import annotations

from typing import Any

from stream_chat import accounts, chat
from stream_chat.state.mentions import PEOPLE, MentionsState

from . import room_fixtures
from .conftest import BATCHES_KEY
from .room_fixtures import RoomApp, Tab, make_room, make_user

migrated_template = room_fixtures.migrated_template
room_db = room_fixtures.room_db
room_broker = room_fixtures.room_broker
room_app = room_fixtures.room_app

MENTIONS_STATE = MentionsState.get_full_name()


def people_batches(tab: Tab, since: int = 0) -> list[dict[str, Any]]:
    return [
        d[MENTIONS_STATE][BATCHES_KEY][PEOPLE]
        for d in tab.deltas[since:]
        if d.get(MENTIONS_STATE, {}).get(BATCHES_KEY)
    ]


def streamed_people(tab: Tab, since: int = 0) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for batch in people_batches(tab, since):
        for op in batch["ops"]:
            if op[0] == "reset":
                items = []
            elif op[0] == "insert":
                items.append(op[1]["item"] if "item" in op[1] else op[1])
    return items


async def test_the_open_rooms_people_stream_to_the_tab_that_asks(room_app: RoomApp) -> None:
    ann, bob, cy = make_user("Ann"), make_user("Bob"), make_user("Cy")
    room = make_room("general")
    chat.create_message(room.id, cy.id, "hi")  # type: ignore[arg-type]
    tab = room_app.tab(ann)
    await tab.connect(f"/rooms/{room.id}")
    mark = tab.mark()

    await tab.send(MentionsState.load_people)

    batches = people_batches(tab, mark)
    assert len(batches) == 1
    assert batches[0]["ops"][0] == ["reset"]
    text = str(batches[0])
    # Cy posted in the room lately: first. Ann is the viewer: not offered.
    assert text.index(f"@**Cy|{cy.id}**") < text.index(f"@**Bob|{bob.id}**")
    assert "@**Ann|" not in text
    assert "Assistant|" not in text
    # Nothing of them stays in the tab's state: asking again sends them again, whole.
    again = tab.mark()
    await tab.send(MentionsState.load_people)
    assert str(people_batches(tab, again)[0]["ops"][1:]) == str(batches[0]["ops"][1:])


async def test_no_session_or_a_revoked_one_gets_nobody(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    make_user("Bob")
    room = make_room("general")

    stranger = room_app.tab(None)
    await stranger.connect("/login")
    await stranger.send(MentionsState.load_people)
    assert people_batches(stranger) == []

    revoked = room_app.tab(ann)
    await revoked.connect(f"/rooms/{room.id}")
    accounts.delete_session_token(revoked.session_token)
    mark = revoked.mark()
    events = await revoked.send(MentionsState.load_people)
    assert people_batches(revoked, mark) == []
    # Sent to log in again (by the handler, and by the session feed that heard the log out).
    assert events and {e["name"] for e in events} == {"_redirect"}


async def test_a_tab_without_an_open_room_gets_nobody(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    make_user("Bob")
    tab = room_app.tab(ann)
    await tab.connect("/rooms")
    mark = tab.mark()
    assert await tab.send(MentionsState.load_people) == []
    assert people_batches(tab, mark) == []


async def test_a_resync_streams_the_people_again(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    tab = room_app.tab(ann)
    await tab.connect(f"/rooms/{room.id}")
    mark = tab.mark()
    await tab.send(MentionsState.resync_stream, name=PEOPLE)
    assert f"@**Bob|{bob.id}**" in str(people_batches(tab, mark))
