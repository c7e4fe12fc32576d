"""The open room's messages: a stream, an oldest-message cursor and the editor's facts.

No list of messages is kept here. History, older pages and live changes all travel as
stream ops; the state remembers only where the history ends (the cursor) and what this tab
is editing.
"""

from collections.abc import Sequence
from typing import ClassVar

import reflex as rx

from stream_chat import chat
from stream_chat.models import Message
from stream_chat.state.rooms import RoomsState
from stream_chat.streams import StreamSpec
from stream_chat.streams.binding import StreamsState

MESSAGES = "messages"


class MessagesState(StreamsState, RoomsState):
    stream_specs: ClassVar[tuple[StreamSpec, ...]] = (StreamSpec(MESSAGES),)

    oldest_id: int | None = None
    at_start: bool = False
    compose_error: str = ""
    editing_id: int | None = None
    edit_draft: str = ""
    edit_error: str = ""
    deleting_id: int | None = None
    # Bumped by every new follower: an older one (a previous room, a dropped socket) that
    # wakes up later sees it is stale and stops instead of delivering twice.
    _follower: int = 0

    @rx.var
    def user_id(self) -> int:
        """Whose messages get Edit and Delete (the server checks again on every request)."""
        return self._user_id or 0

    @rx.event
    def enter_room(self) -> rx.event.EventSpec | None:
        """on_load of /rooms/[room_id]: the room's facts first, then its live messages."""
        if not self.logged_in:
            return None
        self._open_room()
        if self.room_missing:
            self.stream(MESSAGES, [], reset=True)
            return None
        # Returned rather than listed in on_load: a background event listed there starts
        # before the handlers ahead of it have run, and would not know the room yet.
        return MessagesState.follow_room

    # History

    def _show_history(self, messages: Sequence[Message], *, at_top: bool) -> None:
        rows = [chat.message_row(message) for message in messages]
        if at_top:
            self.stream(MESSAGES, rows, at=0)
        else:
            self.stream(MESSAGES, rows, reset=True)
        if rows:
            self.oldest_id = rows[0]["id"]
        self.at_start = len(rows) < chat.PAGE_SIZE

    def restream(self, name: str) -> None:
        room_id = self.current_room_id
        self.oldest_id = None
        self._show_history(chat.last_messages(room_id) if room_id else [], at_top=False)

    @rx.event
    def load_older(self) -> None:
        if self.current_room_id is None or self.oldest_id is None or self.at_start:
            return
        older = chat.messages_before(self.current_room_id, self.oldest_id)
        self._show_history(older, at_top=True)

    # Real time

    @rx.event(background=True)
    async def follow_room(self) -> None:
        """on_load: subscribe, then stream the history, then apply every change live.

        Subscribing before reading the history means nothing published in between is
        missed; anything read twice is an insert of a present id, which updates in place.
        Reflex cancels this task when the tab leaves the page, which ends the subscription.
        """
        async with self:
            if not self.logged_in or self.current_room_id is None:
                return
            room_id = self.current_room_id
            self._follower += 1
            me = self._follower
        async with chat.subscribe(room_id) as events:
            async with self:
                if self._follower != me:
                    return
                self.restream(MESSAGES)
            while True:
                first = await events.next()
                async with self:
                    if self._follower != me or self.current_room_id != room_id:
                        return
                    for event in [first, *events.drain()]:
                        self._apply(event)

    def _apply(self, event: dict) -> None:
        if event["kind"] == "resync":
            self.restream(MESSAGES)
            return
        row = event["message"]
        if event["kind"] == "created":
            self.stream_insert(MESSAGES, row)
        elif event["kind"] == "updated":
            self.stream_insert(MESSAGES, row, update_only=True)
        elif event["kind"] == "deleted":
            self.stream_delete(MESSAGES, row)

    # Compose, edit, delete

    @rx.event
    def send(self, form: dict[str, str]) -> rx.event.EventSpec | None:
        """The message reaches this tab through the room's broadcast, like everyone else's,
        so every member sees the same order."""
        content = form.get("content", "")
        if not content.strip() or self._user_id is None or self.current_room_id is None:
            return None
        try:
            chat.create_message(self.current_room_id, self._user_id, content)
        except chat.ChatError as error:
            self.compose_error = str(error)
            return None
        self.compose_error = ""
        return rx.set_value("composer", "")

    @rx.event
    def start_edit(self, message_id: int) -> rx.event.EventSpec | None:
        message = chat.get_message(message_id)
        if message is None:
            return rx.toast.error(str(chat.MessageNotFound()))
        if message.sender_id != self._user_id:
            return rx.toast.error("You can only edit your own messages.")
        self.editing_id, self.edit_draft, self.edit_error = message.id, message.content, ""
        return None

    @rx.event
    def edit_last_message(self) -> None:
        if self._user_id is None or self.current_room_id is None:
            return
        message = chat.last_message_by(self.current_room_id, self._user_id)
        if message is not None:
            self.editing_id, self.edit_draft, self.edit_error = message.id, message.content, ""

    @rx.event
    def set_edit_draft(self, text: str) -> None:
        self.edit_draft = text

    @rx.event
    def cancel_edit(self) -> None:
        self.editing_id, self.edit_draft, self.edit_error = None, "", ""

    @rx.event
    def edit_dialog_toggled(self, is_open: bool) -> None:
        if not is_open:
            self.cancel_edit()

    @rx.event
    def save_edit(self) -> rx.event.EventSpec | None:
        if self.editing_id is None or self._user_id is None:
            return None
        try:
            chat.update_message(self.editing_id, self._user_id, self.edit_draft)
        except chat.ChatError as error:
            self.edit_error = str(error)
            return None
        self.cancel_edit()
        return None

    @rx.event
    def ask_delete(self, message_id: int) -> None:
        self.deleting_id = message_id

    @rx.event
    def cancel_delete(self) -> None:
        self.deleting_id = None

    @rx.event
    def confirm_delete(self) -> rx.event.EventSpec | None:
        message_id, self.deleting_id = self.deleting_id, None
        if message_id is None or self._user_id is None:
            return None
        try:
            chat.delete_message(message_id, self._user_id)
        except chat.ChatError as error:
            return rx.toast.error(str(error))
        return None
