"""The rooms pages: the sidebar's room list and the room being shown."""

import secrets
from dataclasses import dataclass
from typing import Any

import reflex as rx

from stream_chat import accounts, chat, presence, unread
from stream_chat.state.room_feed import FeedSpec, Follower, following_session, room_feeds
from stream_chat.state.session import SessionState
from stream_chat.state.unread_feeds import unread_feeds

APP_NAME = "StreamChat"


@dataclass
class RoomLink:
    id: int
    name: str


class RoomsState(SessionState):
    __state_name__ = "rooms"

    rooms: list[RoomLink] = []
    current_room_id: int | None = None
    room_name: str = ""
    room_description: str = ""
    room_missing: bool = False
    room_menu_open: bool = False
    # The sidebar's unread news, set in the browser only by the unread feeds
    # (`state/unread_feeds.py`); its server value stays empty.
    unread_news: dict[str, Any] = {}
    # Likewise the presence, typing and rosters the feeds send (`assets/awareness.js`
    # reads them); the server's value stays {}.
    live_signals: dict[str, dict] = {}

    @rx.var
    def page_title(self) -> str:
        """The browser tab's title (before its unread count), derived here only."""
        if self.room_name:
            return f"#{self.room_name} · {APP_NAME}"
        return APP_NAME if self.room_missing else f"Rooms · {APP_NAME}"

    @rx.event
    def set_room_menu_open(self, is_open: bool) -> None:
        self.room_menu_open = is_open

    def _load_rooms(self) -> None:
        self.rooms = [RoomLink(id=room.id, name=room.name) for room in chat.list_rooms()]  # type: ignore[arg-type]

    def _show_room(self, room: chat.Room | None) -> None:
        # Following a room link from the phone drawer should close the drawer.
        self.room_menu_open = False
        self.current_room_id = room.id if room else None
        self.room_name = room.name if room else ""
        self.room_description = room.description if room else ""

    @rx.event
    def open_index(self) -> rx.event.EventSpec | None:
        if self._session_user_id() is None:
            return None
        self._load_rooms()
        self._show_room(None)
        self.room_missing = False
        return RoomsState.follow_session

    def _follower(self, user_id: int) -> Follower:
        """This tab as its feeds know it, under a new follower id of its own."""
        return Follower(
            sid=self.router.session.session_id,
            owner=secrets.token_hex(6),
            session_key=accounts.session_key(self._session_token()),
            user_id=user_id,
            signals_state=RoomsState.get_full_name(),
        )

    @rx.event(background=True)
    async def follow_session(self) -> None:
        """on_load of /rooms, which follows no room: the tab still hears its session end
        (a log out in another tab sends it to /login), counts as its user being online and
        hears everyone's presence. Reflex cancels this task when the tab leaves the page;
        the room page's follower does the same itself."""
        async with self:
            if (user_id := self._session_user_id()) is None:
                return
            follower = self._follower(user_id)
        async with following_session(follower, feeds=self._sidebar_feeds(user_id)) as stop:
            await stop.wait()

    @staticmethod
    def _sidebar_feeds(user_id: int) -> list[FeedSpec]:
        return unread_feeds(user_id, RoomsState.get_full_name())

    @rx.event
    def refresh_unread(self) -> rx.event.EventSpec | None:
        """The page asks for its unread summary again (it may have missed the first): sent
        by the user's read feed, in order with the reads that follow."""
        if (user_id := self._session_user_id()) is None:
            return self._session_lost()
        feed = room_feeds.keyed(unread.reads_topic(user_id))
        sid = self.router.session.session_id
        if feed is not None and sid in feed.tabs:
            feed.add_tab(sid)
        return None

    @rx.event
    def refresh_awareness(self) -> None:
        """Sent by the page once it listens to the signals: the presence, roster and typing
        pictures again, to this tab only (what arrived before it listened is gone)."""
        if self._session_user_id() is None:
            return
        room_feeds.send_pictures(self.router.session.session_id, self.current_room_id)

    @rx.event
    def report_activity(self) -> None:
        """Input in this tab (sent at most once a minute): its user is not away."""
        try:
            user_id = presence.check_activity(self._session_user_id())
        except chat.ChatError:
            return
        presence.do_report_activity(user_id)

    def _open_room(self) -> None:
        self._load_rooms()
        room = chat.get_room(self.room_id)
        self._show_room(room)
        self.room_missing = room is None
