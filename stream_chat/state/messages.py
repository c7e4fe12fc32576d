"""The open room's messages: a stream, an oldest-message cursor and the editor's facts.

No list of messages is kept here. History, older pages and live changes all travel as
stream ops; the state remembers only where the history ends (the cursor) and what this tab
is editing.
"""

import contextlib
from collections.abc import Sequence
from typing import ClassVar

import reflex as rx

from stream_chat import assistant, chat, mentions, typing_status, unread
from stream_chat.models import Message
from stream_chat.state.room_feed import (
    MESSAGES,
    MESSAGES_SPEC,
    channel_name,
    joined,
    presented,
    room_feeds,
)
from stream_chat.state.rooms import RoomsState
from stream_chat.state.toasts import error_toast, info_toast
from stream_chat.streams import StreamSpec
from stream_chat.streams.binding import StreamsState


class MessagesState(StreamsState, RoomsState):
    __state_name__ = "messages"

    stream_specs: ClassVar[tuple[StreamSpec, ...]] = (MESSAGES_SPEC,)

    oldest_id: int | None = None
    at_start: bool = False
    compose_error: str = ""
    editing_id: int | None = None
    edit_draft: str = ""
    edit_error: str = ""
    deleting_id: int | None = None
    # Where the "New messages" divider goes: the first message of someone else the user
    # had not read when the room opened (None: nothing unread then, or marked read since).
    first_unread_id: int | None = None
    members_open: bool = False
    assistant_available: bool = assistant.config().available
    # Set by every new follower to an id of its own: an older one (a previous room, a
    # dropped socket, a previous login) that wakes up later sees it is stale and stops.
    _follower_id: str = ""

    def _open_room_actor(self) -> tuple[int, int] | None:
        """(the caller, the room this tab has open) while the caller's session holds: what
        every handler that reads or changes the room checks first. The contexts check
        that the ids the client sent belong to that room and that person."""
        if self.current_room_id is None or (user_id := self._session_user_id()) is None:
            return None
        return user_id, self.current_room_id

    @rx.event
    def enter_room(self) -> rx.event.EventSpec | None:
        """on_load of /rooms/[room_id]: the room's facts first, then its live messages."""
        if self._session_user_id() is None:
            return None
        self._open_room()
        if self.room_missing:
            self.stream(MESSAGES, [], reset=True)
            return None
        self.first_unread_id = unread.check_room_unread(
            self._user_id,  # type: ignore[arg-type]
            self.current_room_id,  # type: ignore[arg-type]
        ).first_unread
        # Before the history is read: a reply whose worker died shows as interrupted.
        assistant.interrupt_abandoned_replies(self.current_room_id)
        # Returned rather than listed in on_load: a background event listed there starts
        # before the handlers ahead of it have run, and would not know the room yet.
        return MessagesState.follow_room

    # History

    def _show_page(self, messages: Sequence[Message], *, at_top: bool) -> None:
        """Shows a page read with one message too many: the extra one only says whether
        older messages exist, so the start of the room is known without another request."""
        has_older = len(messages) > chat.PAGE_SIZE
        rows = [presented(chat.message_row(m)) for m in messages[-chat.PAGE_SIZE :]]
        if at_top:
            self.stream(MESSAGES, rows, at=0)
        else:
            self.stream(MESSAGES, rows, reset=True)
        if rows:
            self.oldest_id = rows[0]["id"]
        self.at_start = not has_older

    def _show_latest(self, room_id: int | None) -> int:
        """The room's last page with `reset=True`, bound to the room's channel from the
        returned sequence number on. The number is read before the history, so whatever the
        history misses comes after it (and whatever it has twice is applied idempotently)."""
        self.oldest_id = None
        if room_id is None or not self.logged_in:
            self.stream(MESSAGES, [], reset=True)
            return 0
        baseline = chat.current_seq(room_id)
        self._show_page(chat.last_messages(room_id, chat.PAGE_SIZE + 1), at_top=False)
        self.stream_join(MESSAGES, channel_name(room_id), baseline)
        return baseline

    def restream(self, name: str) -> rx.event.EventSpec | None:
        """After a gap: this tab stops receiving the room's batches, gets the latest page,
        then receives again from the page's sequence number on (once the page is out)."""
        room_id = self.current_room_id
        feed = room_feeds.get(room_id) if room_id is not None else None
        if feed is not None:
            feed.pause(self.router.session.session_id)
        if self._open_room_actor() is None:
            # Paused for good: a revoked session's tab hears nothing more of the room.
            return self._session_lost()
        baseline = self._show_latest(room_id)
        if feed is None:
            return None
        return MessagesState.resume_feed(room_id, baseline)

    @rx.event
    def resume_feed(self, room_id: int, baseline: int) -> None:
        """After a resync's history went out: batches again, if this tab still follows
        that room (a room switch or a newer follower may have come in between)."""
        feed = room_feeds.get(room_id)
        sid = self.router.session.session_id
        if feed is None or room_id != self.current_room_id or self._open_room_actor() is None:
            return
        if feed.is_member(sid, self._follower_id):
            feed.activate(sid, self._follower_id, baseline)

    @rx.event
    def load_older(self) -> rx.event.EventSpec | None:
        if self._open_room_actor() is None:
            return self._session_lost()
        if self.current_room_id is None or self.oldest_id is None or self.at_start:
            return None
        older = chat.messages_before(self.current_room_id, self.oldest_id, chat.PAGE_SIZE + 1)
        self._show_page(older, at_top=True)
        return None

    # Real time

    @rx.event(background=True)
    async def follow_room(self) -> None:
        """on_load: joins the room's feed, sends the history, then lets the feed deliver.

        Joining before reading the history means nothing published in between is missed.
        From then on this tab costs the worker one websocket write per change, not a state
        update. Reflex cancels this task when the tab leaves the page, which leaves the feed.
        """
        async with self:
            if (actor := self._open_room_actor()) is None:
                return
            user_id, room_id = actor
            follower = self._follower(user_id)
            self._follower_id = follower.owner
            state_name = self.get_full_name()
            feeds = self._sidebar_feeds(user_id)
        async with joined(follower, room_id, state_name, feeds) as (feed, superseded):
            async with self:
                if self._follower_id != follower.owner:
                    return
                baseline = self._show_latest(room_id)
            # The history has gone out with the block above: now the room's batches.
            feed.activate(follower.sid, follower.owner, baseline)
            await superseded.wait()

    # Unread

    @rx.event
    def mark_read(self, message_id: int) -> rx.event.EventSpec | None:
        """The page has shown the bottom of the room up to `message_id` (debounced): the
        user's position moves there, for all their tabs, if it is a message of this room
        and past the position. A message deleted meanwhile moves nothing, quietly."""
        if (actor := self._open_room_actor()) is None:
            return self._session_lost()
        with contextlib.suppress(chat.MessageNotFound):
            unread.do_mark_read(*actor, message_id)
        return None

    @rx.event
    def mark_room_read(self) -> rx.event.EventSpec | None:
        """The divider's "Mark as read": read up to the room's newest message."""
        if (actor := self._open_room_actor()) is None:
            return self._session_lost()
        unread.do_mark_room_read(*actor)
        self.first_unread_id = None
        return None

    # Awareness

    @rx.event
    def set_typing(self, room_id: int, is_typing: bool) -> rx.event.EventSpec | None:
        """The composer's throttled notice (see `typing_status`). A notice for a room this
        tab does not have open is dropped without a word: a tab that just switched rooms
        may still send the last one for the room it left."""
        if (actor := self._open_room_actor()) is None:
            return self._session_lost()
        user_id, open_room_id = actor
        try:
            checked_room = typing_status.check_typing(open_room_id, room_id, is_typing)
        except chat.ChatError:
            return None
        typing_status.do_typing(checked_room, user_id, self.user_name, is_typing)
        return None

    @rx.event
    def set_members_open(self, is_open: bool) -> None:
        self.members_open = is_open

    @rx.event
    def toggle_members(self) -> None:
        self.members_open = not self.members_open

    # Compose, edit, delete

    @rx.event
    def send(self, form: dict[str, str]) -> rx.event.EventSpec | list[rx.event.EventSpec] | None:
        """The message reaches this tab through the room's broadcast, like everyone else's,
        so every member sees the same order."""
        content = form.get("content", "")
        if (actor := self._open_room_actor()) is None:
            return self._session_lost()
        user_id, room_id = actor
        if not content.strip():
            return None
        try:
            question = chat.post_message(room_id, user_id, content)
        except chat.ChatError as error:
            self.compose_error = str(error)
            return None
        if self.compose_error:
            # Only when there is one: an untouched state sends no delta back.
            self.compose_error = ""
        clear = rx.set_value("composer", "")
        if not mentions.mentions_assistant(content):
            return clear
        if not assistant.config().available:
            return [clear, info_toast(assistant.HOW_TO_ENABLE)]
        try:
            reply = assistant.request_reply(question)
        except chat.ChatError as error:
            return [clear, error_toast(str(error))]
        return [clear, MessagesState.run_assistant(reply.id)]

    @rx.event(background=True)
    async def run_assistant(self, reply_id: int) -> rx.event.EventSpec | None:
        """Writes the reply. Its text reaches every member through the room's broadcasts,
        so this task touches no state, and it goes on if the asker leaves the page."""
        if (actor := self._open_room_actor()) is None:
            return None
        try:
            await assistant.run_reply(reply_id, *actor)
        except chat.ChatError as error:
            return error_toast(str(error))
        return None

    @rx.event
    def stop_reply(self, reply_id: int) -> rx.event.EventSpec | None:
        if (actor := self._open_room_actor()) is None:
            return self._session_lost()
        try:
            chat.request_stop(reply_id, *actor)
        except chat.ChatError as error:
            return error_toast(str(error))
        return None

    @rx.event
    def stop_current_reply(self) -> rx.event.EventSpec | None:
        """Esc: stops the caller's own reply being written in this room, else their next
        one queued; other people's replies are theirs to stop."""
        if (actor := self._open_room_actor()) is None:
            return self._session_lost()
        user_id, room_id = actor
        chat.stop_own_current_reply(room_id, user_id)
        return None

    @rx.event
    def retry_reply(self, reply_id: int) -> rx.event.EventSpec | None:
        if (actor := self._open_room_actor()) is None:
            return self._session_lost()
        try:
            assistant.retry_reply(reply_id, *actor)
        except chat.ChatError as error:
            return error_toast(str(error))
        return MessagesState.run_assistant(reply_id)

    @rx.event
    def start_edit(self, message_id: int) -> rx.event.EventSpec | None:
        if (actor := self._open_room_actor()) is None:
            return self._session_lost()
        user_id, room_id = actor
        try:
            message = chat.editable_message(message_id, user_id, room_id=room_id)
        except chat.ChatError as error:
            return error_toast(str(error))
        self.editing_id, self.edit_draft, self.edit_error = message.id, message.content, ""
        return None

    @rx.event
    def edit_last_message(self) -> rx.event.EventSpec | None:
        if (actor := self._open_room_actor()) is None:
            return self._session_lost()
        user_id, room_id = actor
        message = chat.last_message_by(room_id, user_id)
        if message is not None:
            self.editing_id, self.edit_draft, self.edit_error = message.id, message.content, ""
        return None

    # Drafts and dialogs: this tab's own facts, no room data read or changed.

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
        if self.editing_id is None:
            return None
        if (actor := self._open_room_actor()) is None:
            return self._session_lost()
        user_id, room_id = actor
        try:
            chat.update_message(self.editing_id, user_id, self.edit_draft, room_id=room_id)
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
        if message_id is None:
            return None
        if (actor := self._open_room_actor()) is None:
            return self._session_lost()
        user_id, room_id = actor
        try:
            chat.delete_message(message_id, user_id, room_id=room_id)
        except chat.ChatError as error:
            return error_toast(str(error))
        return None
