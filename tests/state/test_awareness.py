"""Presence and typing through the real event path: the handlers, the contexts, the feeds.

Each tab is a `room_fixtures.Tab`; what a feed emits reaches the tabs in its socket.io room
through the fake socket server, and the signals are read from the rooms state's
`live_signals` entries of the deltas, as `assets/awareness.js` reads them.
"""

import asyncio
from typing import Any

import pytest

from stream_chat import presence, typing_status
from stream_chat.models import Room, User
from stream_chat.state import room_feed
from stream_chat.state.messages import MessagesState
from stream_chat.state.room_feed import AWARENESS_INTERVAL, SIGNALS_VAR, PresenceFeed
from stream_chat.state.rooms import RoomsState
from tests.support.awareness import presence_from

from . import room_fixtures
from .room_fixtures import RoomApp, Tab, insert_messages, make_room, make_user

migrated_template = room_fixtures.migrated_template
room_db = room_fixtures.room_db
room_broker = room_fixtures.room_broker
room_app = room_fixtures.room_app

ROOMS_STATE = RoomsState.get_full_name()
SIGNALS_KEY = SIGNALS_VAR + "_rx_state_"


def signals(tab: Tab, since: int = 0) -> list[dict[str, Any]]:
    """The `live_signals` values that reached the tab (from delta number `since`)."""
    return [
        d[ROOMS_STATE][SIGNALS_KEY]
        for d in tab.deltas[since:]
        if SIGNALS_KEY in d.get(ROOMS_STATE, {})
    ]


def room_signals(tab: Tab, since: int = 0) -> list[dict[str, Any]]:
    return [s["room"] for s in signals(tab, since) if "room" in s]


def statuses_seen(tab: Tab) -> dict[str, str]:
    """The presence map as the browser's store ends up with it."""
    return presence_from(signals(tab))


def roster_seen(tab: Tab) -> dict[str, str]:
    rosters = [r["roster"] for r in room_signals(tab) if "roster" in r]
    assert rosters, "no roster reached the tab"
    return rosters[-1]


def typists_seen(tab: Tab) -> dict[str, str]:
    typing: dict[str, str] = {}
    for room in room_signals(tab):
        if room["full"]:
            typing = {}
        typing.update({user: entry[0] for user, entry in room.get("typing", {}).items()})
        for user in room.get("stopped", []):
            typing.pop(user, None)
    return typing


async def open_room(app: RoomApp, user: User, room: Room) -> Tab:
    tab = app.tab(user)
    await tab.connect(f"/rooms/{room.id}")
    return tab


def test_the_rooms_state_has_the_var_the_feeds_write() -> None:
    assert SIGNALS_VAR in RoomsState.vars


async def test_a_tab_joining_gets_the_picture_then_sees_others_come_and_go(
    room_app: RoomApp,
) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room()
    insert_messages([(room, bob, "Bob posted once")])
    a = await open_room(room_app, ann, room)

    assert statuses_seen(a) == {str(ann.id): presence.ONLINE}
    assert roster_seen(a) == {str(ann.id): "Ann"}
    [picture] = [r for r in room_signals(a) if r["full"]]
    assert picture["posters"] == {str(bob.id): "Bob"}

    b = await open_room(room_app, bob, room)
    assert (
        statuses_seen(a)
        == statuses_seen(b)
        == {
            str(ann.id): presence.ONLINE,
            str(bob.id): presence.ONLINE,
        }
    )
    assert roster_seen(a) == roster_seen(b) == {str(ann.id): "Ann", str(bob.id): "Bob"}

    await b.disconnect()
    assert statuses_seen(a) == {str(ann.id): presence.ONLINE}
    assert roster_seen(a) == {str(ann.id): "Ann"}
    assert presence.statuses() == {ann.id: presence.ONLINE}


async def test_a_user_stays_online_while_any_of_their_tabs_is_open(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room, other = make_room(), make_room()
    watcher = await open_room(room_app, bob, other)
    first = await open_room(room_app, ann, room)
    second = await open_room(room_app, ann, other)

    await first.disconnect()
    assert statuses_seen(watcher)[str(ann.id)] == presence.ONLINE
    assert presence.roster(room.id) == set()  # type: ignore[arg-type]
    assert presence.roster(other.id) == {ann.id, bob.id}  # type: ignore[arg-type]
    await second.disconnect()
    assert str(ann.id) not in statuses_seen(watcher)


async def test_the_index_page_counts_as_online_too(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room()
    b = await open_room(room_app, bob, room)
    index = room_app.tab(ann)
    await index.connect("/rooms")
    assert statuses_seen(b)[str(ann.id)] == presence.ONLINE
    # Online, but not in the room.
    assert str(ann.id) not in roster_seen(b)


async def test_typing_reaches_the_others_and_stops(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room()
    a, b = await open_room(room_app, ann, room), await open_room(room_app, bob, room)

    await a.send(MessagesState.set_typing, room_id=room.id, is_typing=True)
    assert typists_seen(b) == {str(ann.id): "Ann"}
    [started] = [r for r in room_signals(b) if r.get("typing")]
    name, seconds_left = started["typing"][str(ann.id)]
    # What is left of the 15 s once the coalesced update went out.
    assert name == "Ann"
    assert typing_status.TYPING_EXPIRES - AWARENESS_INTERVAL <= seconds_left <= 15

    await a.send(MessagesState.set_typing, room_id=room.id, is_typing=False)
    assert typists_seen(b) == {}
    assert room_signals(b)[-1]["stopped"] == [str(ann.id)]


async def test_a_tab_that_joins_sees_who_is_typing_already(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room()
    a = await open_room(room_app, ann, room)
    await a.send(MessagesState.set_typing, room_id=room.id, is_typing=True)
    b = await open_room(room_app, bob, room)
    [picture] = [r for r in room_signals(b) if r["full"]]
    name, seconds_left = picture["typing"][str(ann.id)]
    assert name == "Ann"
    assert 0 < seconds_left <= typing_status.TYPING_EXPIRES


@pytest.mark.parametrize("room_app", ["memory"], indirect=True)
async def test_twenty_typists_reach_a_tab_in_at_most_two_updates(room_app: RoomApp) -> None:
    """Coalesced per room per worker: a burst of notices is one update, or two when the
    first went out at once (the next waits for AWARENESS_INTERVAL)."""
    room = make_room()
    typists = [make_user(f"Typist {n}") for n in range(20)]
    tabs = [await open_room(room_app, user, room) for user in typists]
    reader = await open_room(room_app, make_user("Reader"), room)
    mark = reader.mark()
    # Sent in one go, as twenty browsers would within a fraction of AWARENESS_INTERVAL.
    for tab in tabs:
        await room_app.processor.enqueue(
            tab.token,
            tab._event(
                room_fixtures.rx_format.format_event_handler(MessagesState.set_typing),  # type: ignore[arg-type]
                tab.path,
                {"room_id": room.id, "is_typing": True},
            ),
        )
    await room_app.quiet()
    updates = [r for r in room_signals(reader, mark) if r.get("typing")]
    assert 1 <= len(updates) <= 2
    assert typists_seen(reader) == {str(u.id): u.name for u in typists}
    assert AWARENESS_INTERVAL >= 0.5


@pytest.mark.parametrize("room_app", ["memory"], indirect=True)
async def test_typing_anywhere_but_the_open_room_is_refused(
    room_app: RoomApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room, elsewhere = make_room(), make_room()
    # A message id of the other room (ids are global: not the open room's id by chance).
    message_ids = insert_messages([(elsewhere, bob, "Bob's"), (elsewhere, bob, "and more")])
    message_id = next(m for m in message_ids if m != room.id)
    watcher = await open_room(room_app, bob, elsewhere)
    a = await open_room(room_app, ann, room)
    signalled: list[tuple[str, dict[str, Any]]] = []
    real_signal = room_app.broker.signal
    monkeypatch.setattr(
        room_app.broker, "signal", lambda t, e: (signalled.append((t, e)), real_signal(t, e))
    )

    for room_id in (elsewhere.id, str(elsewhere.id), message_id, 0, -1, 2**40):
        await a.send(MessagesState.set_typing, room_id=room_id, is_typing=True)
    for crafted in (
        {"room_id": [room.id], "is_typing": True},
        {"room_id": room.id, "is_typing": "maybe"},
        {"room_id": room.id},
    ):
        frontend = await a.send(MessagesState.set_typing, **crafted)
        assert frontend, "a wrong type is answered"
    assert [e for _, e in signalled if e["kind"] == typing_status.TYPING_KIND] == []
    assert typists_seen(watcher) == {}

    # A tab with no session, and one whose session was revoked, say nothing either.
    stranger = room_app.tab()
    await stranger.connect("/login")
    await stranger.send(MessagesState.set_typing, room_id=room.id, is_typing=True)
    from stream_chat import accounts

    accounts.delete_session_token(a.session_token)
    await a.send(MessagesState.set_typing, room_id=room.id, is_typing=True)
    assert [e for _, e in signalled if e["kind"] == typing_status.TYPING_KIND] == []


def test_check_typing_names_what_is_wrong() -> None:
    with pytest.raises(typing_status.NotInRoom, match="only type in the room you have open"):
        typing_status.check_typing(3, 4, True)
    with pytest.raises(typing_status.NotInRoom):
        typing_status.check_typing(3, "3; drop", True)
    with pytest.raises(typing_status.chat.ChatError, match="either typing or stopped"):
        typing_status.check_typing(3, 3, "yes")
    assert typing_status.check_typing(3, "3", False) == 3


@pytest.mark.parametrize("room_app", ["memory"], indirect=True)
async def test_input_brings_an_away_user_back(
    room_app: RoomApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tabs outlive the jump in time below (live ones are renewed every 20 s meanwhile).
    monkeypatch.setenv("PRESENCE_TAB_TTL_SECONDS", "3600")
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room()
    a, b = await open_room(room_app, ann, room), await open_room(room_app, bob, room)
    now = presence.clock()
    away_after = presence.timings().away_after
    # Five minutes later, Ann's tabs have had no input; Bob typed a minute ago.
    monkeypatch.setattr(presence, "clock", lambda: now + away_after + 1)
    presence.do_report_activity(bob.id)
    presence.beat_and_sweep()
    await room_app.quiet()
    assert statuses_seen(b) == {str(ann.id): presence.AWAY, str(bob.id): presence.ONLINE}

    await a.send(RoomsState.report_activity)
    assert statuses_seen(b)[str(ann.id)] == presence.ONLINE


@pytest.mark.parametrize("room_app", ["memory"], indirect=True)
async def test_a_dead_workers_tabs_expire(
    room_app: RoomApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tab whose worker stopped renewing it (killed) is gone after its lifetime: here a
    store entry no live follower renews, as a killed worker leaves it."""
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room()
    b = await open_room(room_app, bob, room)
    now = presence.clock()
    member = presence.do_connect("a-dead-workers-tab", ann.id, room.id)  # type: ignore[arg-type]
    # Its worker is gone: nobody renews it any more.
    presence._local_tabs.discard(member)
    await room_app.quiet()
    assert statuses_seen(b)[str(ann.id)] == presence.ONLINE

    ttl = presence.timings().tab_ttl
    monkeypatch.setattr(presence, "clock", lambda: now + ttl + 0.1)
    presence.beat_and_sweep()
    await room_app.quiet()
    assert str(ann.id) not in statuses_seen(b)
    assert presence.roster(room.id) == {bob.id}  # type: ignore[arg-type]
    # Bob's tab is renewed by its live follower, so it did not expire.
    assert statuses_seen(b)[str(bob.id)] == presence.ONLINE


async def test_members_panel_toggles_on_the_tab_only(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    room = make_room()
    a = await open_room(room_app, ann, room)
    await a.send(MessagesState.toggle_members)
    assert a.var("members_open") is True
    await a.send(MessagesState.set_members_open, is_open=False)
    assert a.var("members_open") is False


async def test_a_new_poster_joins_the_members_panel(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room()
    a, b = await open_room(room_app, ann, room), await open_room(room_app, bob, room)
    await b.send(MessagesState.send, form={"content": "first words"})
    posters = [r["posters"] for r in room_signals(a) if "posters" in r]
    assert posters[-1] == {str(bob.id): "Bob"}


async def test_a_tab_whose_follower_was_replaced_still_hears_presence(room_app: RoomApp) -> None:
    """A page load run again on the same socket (a reconnect, React's double effects) starts
    a new follower before the old one has left: the old one's leaving must not take the tab
    out of the feeds the new one joined."""
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room()
    a = await open_room(room_app, ann, room)
    await a.navigate(f"/rooms/{room.id}")
    await open_room(room_app, bob, room)
    assert statuses_seen(a) == {str(ann.id): presence.ONLINE, str(bob.id): presence.ONLINE}
    assert roster_seen(a) == {str(ann.id): "Ann", str(bob.id): "Bob"}


async def test_a_lost_signal_is_made_good_by_the_feeds_next_check(room_app: RoomApp) -> None:
    """Signals are at most once (a Redis listener that reconnects misses some): each feed
    compares its picture with the store's every `sweep_every` seconds."""
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room()
    a = await open_room(room_app, ann, room)
    # Bob's tab is recorded, but its signals never reach anyone.
    presence.store().update(presence.clock(), [("add", f"{bob.id}|{room.id}|unheard")])
    await room_app.quiet()
    assert str(bob.id) not in statuses_seen(a)
    for feed in [
        room_feed.room_feeds._keyed.get(PresenceFeed.KEY),
        room_feed.room_feeds.get(room.id),
    ]:
        assert feed is not None
        feed._deliver(room_feed._RECONCILE)  # what its timer does
    await room_app.quiet()
    assert statuses_seen(a) == {str(ann.id): presence.ONLINE, str(bob.id): presence.ONLINE}
    assert roster_seen(a) == {str(ann.id): "Ann", str(bob.id): "Bob"}


async def test_a_page_that_listens_late_asks_for_the_pictures_again(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    room = make_room()
    a = await open_room(room_app, ann, room)
    mark = a.mark()
    await a.send(RoomsState.refresh_awareness)
    again = signals(a, mark)
    assert {"full": True, "users": {str(ann.id): presence.ONLINE}} in [
        s.get("presence") for s in again
    ]
    assert any(s.get("room", {}).get("full") for s in again)
    # A tab without a session gets nothing.
    stranger = room_app.tab()
    await stranger.connect("/login")
    await stranger.send(RoomsState.refresh_awareness)
    assert [s for s in signals(stranger) if s] == []


@pytest.mark.parametrize("room_app", ["memory"], indirect=True)
async def test_due_typing_rides_with_the_rooms_next_message(room_app: RoomApp) -> None:
    """One socket write for both: a due awareness update waits RIDE_WAIT for a batch of the
    room and goes out in it, instead of as an emit of its own."""
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room()
    a, b = await open_room(room_app, ann, room), await open_room(room_app, bob, room)
    await b.send(MessagesState.send, form={"content": "Bob was here first"})  # a poster now
    # The feed's last update (Bob, a new poster) is AWARENESS_INTERVAL behind: the next may go.
    await asyncio.sleep(AWARENESS_INTERVAL)
    emitted, mark = len(room_app.sio.emits), b.mark()
    # Ann's notice and a message of Bob's handled in one go, as within RIDE_WAIT.
    for tab, handler, payload in (
        (a, MessagesState.set_typing, {"room_id": room.id, "is_typing": True}),
        (b, MessagesState.send, {"form": {"content": "and again"}}),
    ):
        await room_app.processor.enqueue(
            tab.token,
            tab._event(room_fixtures.rx_format.format_event_handler(handler), tab.path, payload),  # type: ignore[arg-type]
        )
    await room_app.quiet()
    to_room = room_app.sio.emits_to_rooms(emitted)
    [together] = [e for e in to_room if e.room == room_app.socket_room_of(room.id)]
    assert together.batch is not None
    assert SIGNALS_KEY in together.wire["delta"][ROOMS_STATE]
    assert typists_seen(b) == {str(ann.id): "Ann"}
    assert [r for r in room_signals(b, mark) if r.get("typing")] != []
