"""The search dialog's state (`stream_chat/state/message_search.py`) through the real event
processor, over the memory and the Redis state managers (`room_fixtures.room_app`): what a
tab is shown is read from the deltas it received, as the browser reads them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from reflex.event import Event
from reflex_base.utils import format as rx_format
from sqlalchemy import delete

from stream_chat import accounts, chat, repo, search, throttle
from stream_chat.models import Room, User
from stream_chat.state.message_search import CAPPED_NOTE, MAX_RESULTS, SearchState
from stream_chat.state.session import login_path_returning_to

from . import room_fixtures
from .room_fixtures import RoomApp, Tab, insert_messages, make_room, make_user
from .test_room_messages import toasts

migrated_template = room_fixtures.migrated_template
room_db = room_fixtures.room_db
room_broker = room_fixtures.room_broker
room_app = room_fixtures.room_app

SEARCH_STATE = SearchState.get_full_name()
_MISSING = object()


def shown(tab: Tab, name: str) -> Any:
    """The last value of a SearchState var that reached this tab's browser."""
    key = name + "_rx_state_"
    value: Any = _MISSING
    for delta in tab.deltas:
        if key in delta.get(SEARCH_STATE, {}):
            value = delta[SEARCH_STATE][key]
    return None if value is _MISSING else value


def results(tab: Tab) -> list[dict[str, Any]]:
    return shown(tab, "results") or []


def result_ids(tab: Tab) -> list[int]:
    return [result["message_id"] for result in results(tab)]


def marked(result: dict[str, Any]) -> list[str]:
    return [part["text"] for part in result["snippet"] if part["is_match"]]


def redirects(events: list[dict[str, Any]]) -> list[str]:
    return [e["payload"]["path"] for e in events if e["name"] == "_redirect"]


async def searching(app: RoomApp, user: User, room: Room | None) -> Tab:
    """A tab of `user` on the room's page (or /rooms) with the search dialog open."""
    tab = app.tab(user)
    await tab.connect(f"/rooms/{room.id}" if room is not None else "/rooms")
    await tab.send(SearchState.open_search)
    assert shown(tab, "dialog_open") is True
    return tab


@pytest.fixture
def two_rooms() -> tuple[User, User, Room, Room]:
    ann, bob = make_user("Ann"), make_user("Bob")
    return ann, bob, make_room("deploys"), make_room("lunch")


async def test_results_are_newest_first_with_room_sender_and_marked_words(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, bob, deploys, lunch = two_rooms
    ids = insert_messages(
        [
            (deploys, ann, "We deploy on Friday"),
            (deploys, bob, "nothing to see"),
            (deploys, bob, "Deployment went fine, deploying again"),
            (lunch, ann, "deploy lunch?"),
        ]
    )
    tab = await searching(room_app, ann, deploys)
    assert shown(tab, "scope") == "room"

    await tab.send(SearchState.run_search, query="deplo")

    assert result_ids(tab) == [ids[2], ids[0]]
    newest, oldest = results(tab)
    assert (newest["room_name"], newest["sender_name"]) == ("deploys", "Bob")
    assert marked(newest) == ["Deployment", "deploying"]
    assert "".join(part["text"] for part in newest["snippet"]) == newest_text(ids[2])
    assert marked(oldest) == ["deploy"]
    assert newest["inserted_at"] == chat.get_message(ids[2]).inserted_at.isoformat()  # type: ignore[union-attr]
    assert (shown(tab, "searched_query"), shown(tab, "cursor"), shown(tab, "error")) == (
        "deplo",
        0,
        "",
    )
    assert shown(tab, "active_result_id") == "search-result-0"
    assert shown(tab, "has_more") is False


def newest_text(message_id: int) -> str:
    return chat.get_message(message_id).content  # type: ignore[union-attr]


async def test_more_results_appends_the_next_page_until_the_last(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, _, deploys, _ = two_rooms
    ids = insert_messages([(deploys, ann, f"release number {n}") for n in range(45)])
    tab = await searching(room_app, ann, deploys)

    await tab.send(SearchState.run_search, query="release")
    assert result_ids(tab) == ids[::-1][:20]
    assert shown(tab, "has_more") is True
    await tab.send(SearchState.move_cursor, step=1)
    await tab.send(SearchState.load_more, query="release")
    assert result_ids(tab) == ids[::-1][:40]
    # The selection stays where the reader put it.
    assert shown(tab, "cursor") == 1
    await tab.send(SearchState.load_more, query="release")
    assert result_ids(tab) == ids[::-1]
    assert shown(tab, "has_more") is False
    assert shown(tab, "capped") is False


async def test_more_results_of_a_query_no_longer_shown_is_ignored(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, _, deploys, _ = two_rooms
    insert_messages([(deploys, ann, f"alpha {n}") for n in range(30)])
    beta = insert_messages([(deploys, ann, f"beta {n}") for n in range(25)])
    tab = await searching(room_app, ann, deploys)
    await tab.send(SearchState.run_search, query="alpha")
    await tab.send(SearchState.run_search, query="beta")

    # The click was on alpha's button; beta's results came in meanwhile.
    await tab.send(SearchState.load_more, query="alpha")

    assert result_ids(tab) == beta[::-1][:20]


async def test_the_last_query_sent_is_the_one_shown_whatever_the_timing(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, _, deploys, _ = two_rooms
    insert_messages([(deploys, ann, f"alpha {n}") for n in range(500)])
    [beta] = insert_messages([(deploys, ann, "beta")])
    tab = await searching(room_app, ann, deploys)

    # Both sent before either is answered, as after a pause and an Enter in quick succession.
    for query in ("alpha", "beta"):
        event = Event(
            name=rx_format.format_event_handler(SearchState.run_search),  # type: ignore[arg-type]
            payload={"query": query},
            router_data=room_fixtures.router_data(tab.path, tab.token, tab.sid, tab.cookie_header),
        )
        await room_app.processor.enqueue(tab.token, event)
    await room_app.quiet()

    assert result_ids(tab) == [beta]
    assert shown(tab, "searched_query") == "beta"


async def test_results_stop_at_the_cap_and_say_so(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, _, deploys, _ = two_rooms
    ids = insert_messages([(deploys, ann, f"common {n}") for n in range(MAX_RESULTS + 30)])
    tab = await searching(room_app, ann, deploys)
    await tab.send(SearchState.run_search, query="common")
    for _ in range(MAX_RESULTS // chat.PAGE_SIZE + 3):
        await tab.send(SearchState.load_more, query="common")

    assert result_ids(tab) == ids[::-1][:MAX_RESULTS]
    assert shown(tab, "capped") is True
    assert shown(tab, "has_more") is False
    assert "200" in CAPPED_NOTE


async def test_scope_this_room_by_default_and_all_rooms_on_request(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, bob, deploys, lunch = two_rooms
    here, there = insert_messages([(deploys, ann, "pizza here"), (lunch, bob, "pizza there")])
    tab = await searching(room_app, ann, deploys)
    await tab.send(SearchState.run_search, query="pizza")
    assert result_ids(tab) == [here]

    await tab.send(SearchState.set_search_scope, scope="all")

    assert shown(tab, "scope") == "all"
    assert result_ids(tab) == [there, here]
    assert [r["room_name"] for r in results(tab)] == ["lunch", "deploys"]
    await tab.send(SearchState.set_search_scope, scope="room")
    assert result_ids(tab) == [here]


async def test_without_a_room_open_the_search_is_of_all_rooms(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, bob, deploys, lunch = two_rooms
    ids = insert_messages([(deploys, ann, "pizza here"), (lunch, bob, "pizza there")])
    for path in ("/rooms", "/rooms/999999"):
        tab = room_app.tab(ann)
        await tab.connect(path)
        await tab.send(SearchState.open_search)
        assert shown(tab, "scope") == "all"
        # A crafted "this room" with no room open (the room does not exist) changes nothing.
        await tab.send(SearchState.set_search_scope, scope="room")
        await tab.send(SearchState.set_search_scope, scope="everywhere")
        assert shown(tab, "scope") == "all"
        await tab.send(SearchState.run_search, query="pizza")
        assert result_ids(tab) == ids[::-1]


async def test_a_room_deleted_while_open_says_so(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, _, deploys, _ = two_rooms
    tab = await searching(room_app, ann, deploys)
    with repo.session() as db:
        db.exec(delete(Room).where(Room.id == deploys.id))  # type: ignore[call-overload,arg-type]
        db.commit()
    await tab.send(SearchState.run_search, query="pizza")
    assert shown(tab, "error") == "That room does not exist."
    assert results(tab) == []


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("", "Type the words to search for."),
        ("   ", "Type the words to search for."),
        ('-- ** "" :', "Search for words or numbers: this search has none."),
        ("x" * (search.MAX_QUERY_LENGTH + 1), "A search can be at most 200 characters."),
        (" ".join(["w"] * 17), "A search can have at most 16 words."),
    ],
    ids=["empty", "spaces", "punctuation", "too long", "too many words"],
)
async def test_a_query_that_cannot_be_searched_says_what_to_change(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room], query: str, says: str
) -> None:
    ann, _, deploys, _ = two_rooms
    insert_messages([(deploys, ann, "w x")])
    tab = await searching(room_app, ann, deploys)
    await tab.send(SearchState.run_search, query="w")
    assert results(tab) != []

    events = await tab.send(SearchState.run_search, query=query)

    assert shown(tab, "error") == says
    assert (results(tab), shown(tab, "searched_query")) == ([], "")
    assert toasts(events) == []


async def test_a_query_that_matches_nothing_is_an_empty_result_not_an_error(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, _, deploys, _ = two_rooms
    insert_messages([(deploys, ann, "hello")])
    tab = await searching(room_app, ann, deploys)
    # Injection attempts are words like any other.
    for query in ["zebra", "'; DROP TABLE messages; --", 'NEAR(a b) OR "x" *', "a:* & !b"]:
        await tab.send(SearchState.run_search, query=query)
        assert (results(tab), shown(tab, "error")) == ([], "")
        assert shown(tab, "searched_query") == query
    assert [row[3] for row in room_fixtures.stored_messages()] == ["hello"]


async def test_crafted_input_is_refused_or_harmless(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, _, deploys, _ = two_rooms
    [alpha] = insert_messages([(deploys, ann, "alpha")])
    tab = await searching(room_app, ann, deploys)

    [toast] = toasts(await tab.send(SearchState.run_search, query=5))
    assert "`query` must be text" in toast
    [toast] = toasts(await tab.send(SearchState.open_result, index="first", query="alpha"))
    assert "`index` must be a whole number" in toast

    # NUL and a lone surrogate are stripped before the handler sees the text.
    await tab.send(SearchState.run_search, query="al\x00ph\ud800a")
    assert result_ids(tab) == [alpha]
    assert shown(tab, "searched_query") == "alpha"

    # A megabyte is refused by length, and never echoed back to the page.
    before = len(json.dumps(tab.deltas))
    await tab.send(SearchState.run_search, query="alpha " * 200_000)
    assert shown(tab, "error") == "A search can be at most 200 characters."
    assert len(json.dumps(tab.deltas)) - before < 2_000

    await tab.send(SearchState.run_search, query="alpha")
    for index in (-1, 1, 10**12):
        assert redirects(await tab.send(SearchState.open_result, index=index, query="alpha")) == []
    await tab.send(SearchState.move_cursor, step=10**12)
    assert shown(tab, "cursor") == 0
    assert shown(tab, "dialog_open") is True


async def test_opening_a_result_closes_the_dialog_and_goes_to_its_permalink(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, bob, deploys, lunch = two_rooms
    first, second = insert_messages([(lunch, bob, "ramen tonight"), (lunch, bob, "ramen again")])
    tab = await searching(room_app, ann, deploys)
    await tab.send(SearchState.set_search_scope, scope="all")
    await tab.send(SearchState.run_search, query="ramen")
    assert result_ids(tab) == [second, first]
    await tab.send(SearchState.move_cursor, step=1)
    await tab.send(SearchState.move_cursor, step=1)
    assert shown(tab, "cursor") == 1

    # An open of the results of another query (a stale Enter) does nothing.
    assert redirects(await tab.send(SearchState.open_result, index=1, query="ramen ")) == []
    events = await tab.send(SearchState.open_result, index=1, query="ramen")

    assert redirects(events) == [f"/rooms/{lunch.id}?m={first}"]
    assert shown(tab, "dialog_open") is False
    assert results(tab) == []


async def test_closing_clears_and_a_late_search_after_it_shows_nothing(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, _, deploys, _ = two_rooms
    insert_messages([(deploys, ann, "alpha")])
    tab = await searching(room_app, ann, deploys)
    await tab.send(SearchState.run_search, query="alpha")
    await tab.send(SearchState.dialog_toggled, is_open=False)
    assert (shown(tab, "dialog_open"), results(tab)) == (False, [])

    await tab.send(SearchState.run_search, query="alpha")

    assert results(tab) == []
    await tab.send(SearchState.dialog_toggled, is_open=True)
    assert shown(tab, "dialog_open") is True


async def test_replies_being_written_are_not_found_and_deleted_messages_go(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, _, deploys, _ = two_rooms
    assistant_id = accounts.assistant_user_id()
    [question] = insert_messages([(deploys, ann, "what about kubernetes?")])
    reply = chat.create_reply(deploys.id, assistant_id, ann.id)  # type: ignore[arg-type]
    chat.update_reply(reply.id, status=chat.STREAMING, content="kubernetes is")  # type: ignore[arg-type]
    tab = await searching(room_app, ann, deploys)

    await tab.send(SearchState.run_search, query="kubernetes")
    assert result_ids(tab) == [question]

    chat.update_reply(reply.id, status=chat.DONE, content="kubernetes is a scheduler")  # type: ignore[arg-type]
    await tab.send(SearchState.run_search, query="kubernetes")
    assert result_ids(tab) == [reply.id, question]

    chat.delete_message(question, ann.id, room_id=deploys.id)  # type: ignore[arg-type]
    await tab.send(SearchState.run_search, query="kubernetes")
    assert result_ids(tab) == [reply.id]


async def test_searching_too_fast_is_refused_with_the_wait(
    room_app: RoomApp,
    two_rooms: tuple[User, User, Room, Room],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEARCHES_BURST", "2")
    monkeypatch.setenv("SEARCHES_PER_SECOND", "0.01")
    # Time stands still: the wait said is one whole token's, however slow the run.
    monkeypatch.setattr(throttle, "clock", lambda: 1_000_000.0)
    ann, _, deploys, _ = two_rooms
    [alpha] = insert_messages([(deploys, ann, "alpha")])
    tab = await searching(room_app, ann, deploys)
    await tab.send(SearchState.run_search, query="alpha")
    await tab.send(SearchState.run_search, query="alpha")
    assert result_ids(tab) == [alpha]

    await tab.send(SearchState.run_search, query="alpha")

    assert shown(tab, "error") == "You are searching too fast. Try again in 100 s."


async def test_without_a_session_nothing_is_searched_or_shown(
    room_app: RoomApp, two_rooms: tuple[User, User, Room, Room]
) -> None:
    ann, _, deploys, _ = two_rooms
    insert_messages([(deploys, ann, "secret plans")])
    nobody = room_app.tab()
    await nobody.connect("/login")
    await nobody.send(SearchState.open_search)
    await nobody.send(SearchState.dialog_toggled, is_open=True)
    await nobody.send(SearchState.run_search, query="secret")
    assert shown(nobody, "dialog_open") is not True
    assert results(nobody) == []

    revoked = await searching(room_app, ann, deploys)
    accounts.delete_session_token(revoked.session_token)
    events = await revoked.send(SearchState.run_search, query="secret")
    assert results(revoked) == []
    # (The session's feed also sends the tab to /login, on its own.)
    assert login_path_returning_to(f"/rooms/{deploys.id}") in redirects(events)
