"""The open room's messages: a stream, an oldest-message cursor and the editor's facts.

No list of messages is kept here. History, older pages and live changes all travel as
stream ops; the state remembers only where the history ends (the cursor) and what this tab
is editing.
"""

import secrets
from collections.abc import Sequence
from typing import ClassVar

import reflex as rx

from stream_chat import assistant, chat
from stream_chat.models import Message
from stream_chat.state.rooms import RoomsState
from stream_chat.streams import StreamSpec
from stream_chat.streams.binding import StreamsState

MESSAGES = "messages"


def _presented(row: chat.MessageRow) -> dict:
    """The row as the page shows it: with the assistant's usage note."""
    return {**row, "usage": assistant.usage_note(row["prompt_tokens"], row["completion_tokens"])}


def _said(status: str) -> str:
    return {chat.DONE: "complete", chat.STOPPED: "stopped"}.get(status, status)


class MessagesState(StreamsState, RoomsState):
    stream_specs: ClassVar[tuple[StreamSpec, ...]] = (StreamSpec(MESSAGES),)

    oldest_id: int | None = None
    at_start: bool = False
    compose_error: str = ""
    editing_id: int | None = None
    edit_draft: str = ""
    edit_error: str = ""
    deleting_id: int | None = None
    assistant_available: bool = assistant.config().available
    # Said once by a screen reader when a reply starts and when it ends (not per token).
    assistant_announcement: str = ""
    # The replies being written right now: reply id -> [generation id, characters shown].
    # Text from any other generation is stale and dropped; the count tells which part of
    # an appended chunk this tab already has (it may have read some from the database).
    _replies: dict[int, list] = {}
    # Set by every new follower to an id of its own: an older one (a previous room, a
    # dropped socket, a previous login) that wakes up later sees it is stale and stops.
    _follower: str = ""

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

    def _show_page(self, messages: Sequence[Message], *, at_top: bool) -> None:
        """Shows a page read with one message too many: the extra one only says whether
        older messages exist, so the start of the room is known without another request."""
        has_older = len(messages) > chat.PAGE_SIZE
        rows = [_presented(chat.message_row(m)) for m in messages[-chat.PAGE_SIZE :]]
        for row in rows:
            self._track_reply(row)
        if at_top:
            self.stream(MESSAGES, rows, at=0)
        else:
            self.stream(MESSAGES, rows, reset=True)
        if rows:
            self.oldest_id = rows[0]["id"]
        self.at_start = not has_older

    def restream(self, name: str) -> None:
        room_id = self.current_room_id if self.logged_in else None
        self.oldest_id = None
        self._replies = {}
        page = chat.last_messages(room_id, chat.PAGE_SIZE + 1) if room_id else []
        self._show_page(page, at_top=False)

    @rx.event
    def load_older(self) -> None:
        if not self.logged_in or self.current_room_id is None or self.oldest_id is None:
            return
        if self.at_start:
            return
        older = chat.messages_before(self.current_room_id, self.oldest_id, chat.PAGE_SIZE + 1)
        self._show_page(older, at_top=True)

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
            me = self._follower = secrets.token_hex(6)
        async with chat.subscribe(room_id) as events:
            async with self:
                if self._follower != me:
                    return
                self.restream(MESSAGES)
            while True:
                first = await events.next()
                async with self:
                    stale = self._follower != me or self.current_room_id != room_id
                    if stale or not self.logged_in:
                        return
                    for event in [first, *events.drain()]:
                        self._apply(event)

    def _apply(self, event: dict) -> None:
        kind = event["kind"]
        if kind == "resync":
            self.restream(MESSAGES)
        elif kind == "appended":
            self._append_reply_text(event)
        elif kind == "created":
            self._track_reply(event["message"])
            self.stream_insert(MESSAGES, _presented(event["message"]))
        elif kind == "updated":
            self._track_reply(event["message"])
            self.stream_insert(MESSAGES, _presented(event["message"]), update_only=True)
        elif kind == "deleted":
            self.stream_delete(MESSAGES, event["message"])

    def _track_reply(self, row: chat.MessageRow) -> None:
        generating = row["status"] in (chat.THINKING, chat.STREAMING)
        was_generating = row["id"] in self._replies
        if generating:
            self._replies[row["id"]] = [row["generation_id"], len(row["content"])]
            if not was_generating:
                self.assistant_announcement = "The assistant is replying."
        elif was_generating:
            del self._replies[row["id"]]
            self.assistant_announcement = f"The assistant's reply is {_said(row['status'])}."
        self._replies = self._replies

    def _append_reply_text(self, event: dict) -> None:
        tracked = self._replies.get(event["message_id"])
        if tracked is None or tracked[0] != event["generation_id"]:
            return  # a stopped or replaced generation's late text
        shown, offset, text = tracked[1], event["offset"], event["text"]
        if offset > shown:
            # A gap (this tab missed some text): take the whole reply from the database.
            message = chat.get_message(event["message_id"])
            if message is not None:
                row = chat.message_row(message)
                self.stream_insert(MESSAGES, _presented(row), update_only=True)
                tracked[1] = len(row["content"])
        elif offset + len(text) > shown:
            self.stream_append(
                MESSAGES, f"{MESSAGES}-{event['message_id']}", "content", text[shown - offset :]
            )
            tracked[1] = offset + len(text)
        self._replies = self._replies

    # Compose, edit, delete

    @rx.event
    def send(self, form: dict[str, str]) -> rx.event.EventSpec | list[rx.event.EventSpec] | None:
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
        clear = rx.set_value("composer", "")
        if not assistant.mentions_assistant(content):
            return clear
        if not assistant.config().available:
            return [clear, rx.toast.info(assistant.HOW_TO_ENABLE)]
        try:
            reply = assistant.request_reply(self.current_room_id, self._user_id)
        except chat.ChatError as error:
            return [clear, rx.toast.error(str(error))]
        return [clear, MessagesState.run_assistant(reply.id)]

    @rx.event(background=True)
    async def run_assistant(self, reply_id: int) -> None:
        """Writes the reply. Its text reaches every member through the room's broadcasts,
        so this task touches no state, and it goes on if the asker leaves the page."""
        await assistant.generate(reply_id)

    @rx.event
    def stop_reply(self, reply_id: int) -> None:
        chat.request_stop(reply_id)

    @rx.event
    def stop_current_reply(self) -> None:
        """Esc: stops the reply being written in this room, if any."""
        if self.current_room_id is None:
            return
        for reply in chat.active_replies(self.current_room_id)[:1]:
            chat.request_stop(reply.id)  # type: ignore[arg-type]

    @rx.event
    def retry_reply(self, reply_id: int) -> rx.event.EventSpec | None:
        if self._user_id is None:
            return None
        try:
            assistant.retry_reply(reply_id, self._user_id)
        except chat.ChatError as error:
            return rx.toast.error(str(error))
        return MessagesState.run_assistant(reply_id)

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
