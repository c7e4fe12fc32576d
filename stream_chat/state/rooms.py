"""The rooms pages: the sidebar's room list and the room being shown."""

from dataclasses import dataclass

import reflex as rx

from stream_chat import chat
from stream_chat.state.session import SessionState

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

    @rx.var
    def page_title(self) -> str:
        """The browser tab's title on a room page, derived here only."""
        return f"#{self.room_name} · {APP_NAME}" if self.room_name else APP_NAME

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
    def open_index(self) -> None:
        if self._session_user_id() is None:
            return
        self._load_rooms()
        self._show_room(None)
        self.room_missing = False

    def _open_room(self) -> None:
        self._load_rooms()
        room = chat.get_room(self.room_id)
        self._show_room(room)
        self.room_missing = room is None
