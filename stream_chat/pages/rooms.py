"""/rooms and /rooms/[room_id]."""

import reflex as rx

from stream_chat.components.awareness import members_panel, members_toggle
from stream_chat.components.empty_states import pick_a_room, room_not_found
from stream_chat.components.layout import rooms_shell
from stream_chat.components.messages import chat_room
from stream_chat.state.rooms import RoomsState


def rooms_index_page() -> rx.Component:
    return rooms_shell(pick_a_room())


def room_page() -> rx.Component:
    room = rx.hstack(chat_room(), members_panel(), spacing="0", width="100%", height="100%")
    return rooms_shell(
        rx.cond(RoomsState.room_missing, room_not_found(), room),
        header_actions=rx.cond(RoomsState.room_missing, rx.fragment(), members_toggle()),
    )
