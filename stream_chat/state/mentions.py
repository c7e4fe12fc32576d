"""Whom the `@` autocomplete offers: the people of the app, streamed to the tab that asks.

A stream, not a list var: the browser keeps the people, the server keeps nothing of them
between events (a list var would be stored per tab and sent whole at every change). The
browser filters them as one types (`assets/mentions.js`), so a keystroke costs the server
nothing; it asks once per room, on the first `@`.
"""

from typing import ClassVar

import reflex as rx

from stream_chat import mentions
from stream_chat.state.rooms import RoomsState
from stream_chat.streams import StreamSpec
from stream_chat.streams.binding import StreamsState

PEOPLE = "people"


class MentionsState(StreamsState, RoomsState):
    __state_name__ = "mentions"

    stream_specs: ClassVar[tuple[StreamSpec, ...]] = (StreamSpec(PEOPLE),)

    @rx.event
    def load_people(self) -> rx.event.EventSpec | None:
        """The people one may mention in the open room, recent posters there first."""
        if self.current_room_id is None or (user_id := self._session_user_id()) is None:
            return self._session_lost()
        people = mentions.candidates(self.current_room_id, user_id)
        self.stream(PEOPLE, people, reset=True)  # type: ignore[arg-type]
        return None

    def restream(self, name: str) -> rx.event.EventSpec | None:
        return self.load_people()
