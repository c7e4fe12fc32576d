"""The open room's messages: a stream, the window's two cursors and the editor's facts.

No list of messages is kept here. History, older and newer pages and live changes all
travel as stream ops; the state remembers only where the window the browser holds starts
and ends (the cursors, each with whether it is the room's end) and what this tab is editing.
The window is at most `WINDOW` messages: scrolling back drops the newest, scrolling forward
drops the oldest, and away from the live end the stream does not tail the room's channel
(new messages are counted in the browser, not added; edits of the messages held still show).
"""

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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

PAGE = chat.PAGE_SIZE
# The most messages the browser holds: three pages.
WINDOW = 3 * PAGE
# The query parameter of a link to a message (`/rooms/<room id>?m=<message id>`).
LINK_PARAM = "m"
LINK_MISSING = "That message was deleted or never existed."
LINK_ELSEWHERE = "That message is in another room."


@dataclass(frozen=True)
class Window:
    """Messages to show with a reset, oldest first, and whether they reach each end."""

    messages: Sequence[Message]
    at_start: bool
    at_end: bool


def latest(room_id: int, size: int) -> Window:
    """The room's last `size` messages, read with one more: the extra one only says whether
    older messages exist."""
    page = chat.last_messages(room_id, size + 1)
    return Window(page[-size:], at_start=len(page) <= size, at_end=True)


def from_oldest(room_id: int, oldest_id: int, at_start: bool) -> Window:
    """The window that starts at `oldest_id` (the room's first window with 0)."""
    page = chat.messages_after(room_id, oldest_id - 1, WINDOW + 1)
    return Window(page[:WINDOW], at_start=at_start, at_end=len(page) <= WINDOW)


def around(room_id: int, message_id: str) -> Window:
    """A page before the message, the message and a page after it (a link to it). Raises
    MessageNotFound for a malformed id or a message that is gone, MessageNotInRoom for
    another room's."""
    page = chat.messages_around(room_id, message_id, before=PAGE + 1, after=PAGE + 1)
    at = next(n for n, message in enumerate(page) if message.id == chat.parse_id(message_id))
    before, after = page[:at], page[at + 1 :]
    return Window(
        [*before[-PAGE:], page[at], *after[:PAGE]],
        at_start=len(before) <= PAGE,
        at_end=len(after) <= PAGE,
    )


class MessagesState(StreamsState, RoomsState):
    __state_name__ = "messages"

    stream_specs: ClassVar[tuple[StreamSpec, ...]] = (MESSAGES_SPEC,)

    # The window: its first and last message, and whether they are the room's first and
    # its live end (at the live end the newest is whatever arrived last).
    oldest_id: int | None = None
    newest_id: int | None = None
    at_start: bool = False
    at_end: bool = True
    # A link to a message: the one to centre and highlight, and a number that changes each
    # time it is opened (the same message may be linked twice).
    highlight_id: int | None = None
    link_opened: int = 0
    # What a link that could not be opened says, and where its message is (another room).
    link_notice: str = ""
    link_elsewhere: str = ""
    compose_error: str = ""
    editing_id: int | None = None
    edit_draft: str = ""
    edit_error: str = ""
    deleting_id: int | None = None
    # Where the "New messages" divider goes: the first message of someone else the user
    # had not read when the room opened (None: nothing unread then, or marked read since).
    first_unread_id: int | None = None
    # Whether the user had read some of the room: only then does it open at the first
    # unread message (a room never opened opens at its live end, not at its first message).
    _has_read_before: bool = False
    members_open: bool = False
    assistant_available: bool = assistant.config().available
    # Set by every new follower to an id of its own: an older one (a previous room, a
    # dropped socket, a previous login) that wakes up later sees it is stale and stops.
    _follower_id: str = ""
    # "<user>:<room>" of the last visit: on_load runs again on every reconnect (and a
    # reload keeps this state), which must not move a reader away from where they were.
    _visit: str = ""
    # What the follower shows first: the message id of a link, or "" (the window where the
    # reader was if this is the same visit and it left the live end, else the latest page).
    _opening_link: str = ""
    _opening_same_visit: bool = False

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
        if (user_id := self._session_user_id()) is None:
            return None
        self._open_room()
        self.highlight_id, self.link_notice, self.link_elsewhere = None, "", ""
        if self.room_missing:
            self.stream(MESSAGES, [], reset=True)
            return None
        position = unread.check_room_unread(
            self._user_id,  # type: ignore[arg-type]
            self.current_room_id,  # type: ignore[arg-type]
        )
        self.first_unread_id = position.first_unread
        self._has_read_before = position.last_read > 0
        # Before the history is read: a reply whose worker died shows as interrupted.
        assistant.interrupt_abandoned_replies(self.current_room_id)
        visit = f"{user_id}:{self.current_room_id}"
        # The page drops `m` from the address once it has shown the message, so a reconnect
        # or a reload comes back without it; a link followed again carries it again.
        self._opening_link = self.router.url.query_parameters.get(LINK_PARAM, "")
        self._opening_same_visit = visit == self._visit
        self._visit = visit
        # Returned rather than listed in on_load: a background event listed there starts
        # before the handlers ahead of it have run, and would not know the room yet.
        return MessagesState.follow_room

    # History

    def _opening_window(self, room_id: int) -> Window:
        """What a visit shows first: the linked message, or where the reader was when this
        is the same visit again (a reconnect), else the latest page, or the page around the
        first unread message when it is older than that."""
        if self._opening_link:
            link, self._opening_link = self._opening_link, ""
            try:
                window = around(room_id, link)
            except chat.MessageNotInRoom:
                self.link_notice = LINK_ELSEWHERE
                message = chat.get_message(link)
                if message is not None:
                    self.link_elsewhere = f"/rooms/{message.room_id}?{LINK_PARAM}={message.id}"
            except chat.MessageNotFound:
                self.link_notice = LINK_MISSING
            else:
                self.highlight_id = chat.parse_id(link)
                self.link_opened += 1
                return window
        if self._opening_same_visit and not self.at_end and self.oldest_id is not None:
            return from_oldest(room_id, self.oldest_id, self.at_start)
        window = latest(room_id, PAGE)
        first_unread = self.first_unread_id
        if (
            first_unread is not None
            and self._has_read_before
            and not self._opening_same_visit
            and window.messages
            and first_unread < (window.messages[0].id or 0)
        ):
            # Unread from before the last page: the room opens there, with the divider at
            # the top (chat_room.js); what is above and below loads as the reader scrolls.
            with contextlib.suppress(chat.MessageNotFound):
                return around(room_id, str(first_unread))
        return window

    def _show(self, room_id: int | None, read: Callable[[int], Window]) -> int:
        """Shows what `read` returns with `reset=True`, bound to the room's channel from the
        returned sequence number on, and tailing it only if it reaches the live end. The
        number is read before the history, so whatever the history misses comes after it
        (and whatever it has twice is applied idempotently)."""
        if room_id is None or not self.logged_in:
            self.stream(MESSAGES, [], reset=True)
            self.oldest_id = self.newest_id = None
            self.at_start, self.at_end = False, True
            return 0
        baseline = chat.current_seq(room_id)
        window = read(room_id)
        rows = [presented(chat.message_row(m)) for m in window.messages]
        self.stream(MESSAGES, rows, reset=True)
        self.stream_join(MESSAGES, channel_name(room_id), baseline)
        if not window.at_end:
            self.stream_tail(MESSAGES, False)
        self.oldest_id = rows[0]["id"] if rows else None
        self.newest_id = rows[-1]["id"] if rows else None
        self.at_start, self.at_end = window.at_start, window.at_end
        return baseline

    def _reshow(self, read: Callable[[int], Window]) -> rx.event.EventSpec | None:
        """A reset of the window while the tab follows the room: it stops receiving the
        room's batches, gets the new window, then receives again from the window's sequence
        number on (once the window is out), the batches in between replayed."""
        room_id = self.current_room_id
        feed = room_feeds.get(room_id) if room_id is not None else None
        if feed is not None:
            feed.pause(self.router.session.session_id)
        if self._open_room_actor() is None:
            # Paused for good: a revoked session's tab hears nothing more of the room.
            return self._session_lost()
        baseline = self._show(room_id, read)
        if feed is None:
            return None
        return MessagesState.resume_feed(room_id, baseline)

    def restream(self, name: str) -> rx.event.EventSpec | None:
        """After a gap: the window again where it was (the latest page at the live end)."""
        if self.at_end or self.oldest_id is None:
            return self._reshow(lambda room_id: latest(room_id, PAGE))
        oldest_id, at_start = self.oldest_id, self.at_start
        return self._reshow(lambda room_id: from_oldest(room_id, oldest_id, at_start))

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
        """The page before the window at its top. A full window drops as many at the bottom,
        which leaves the live end: the browser stops adding the room's new messages."""
        if (actor := self._open_room_actor()) is None:
            return self._session_lost()
        room_id = actor[1]
        if self.oldest_id is None or self.at_start:
            return None
        older = chat.messages_before(room_id, self.oldest_id, PAGE + 1)
        rows = [presented(chat.message_row(m)) for m in older[-PAGE:]]
        self.at_start = len(older) <= PAGE
        if not rows:
            return None
        self.oldest_id = rows[0]["id"]
        # Where the window ends is the database's answer, not a guess at what the browser
        # holds: the WINDOW messages from the new oldest on (one more says whether more).
        span = chat.window_ids(room_id, after_id=self.oldest_id - 1, limit=WINDOW + 1)
        stays_live = self.at_end and len(span) <= WINDOW
        # No limit while the window still reaches the live end: a message that reached the
        # browser just before this page must not be trimmed away.
        self.stream(MESSAGES, rows, at=0, limit=None if stays_live else WINDOW)
        self.newest_id = span[min(len(span), WINDOW) - 1]
        if self.at_end and not stays_live:
            self.stream_tail(MESSAGES, False)
            self.at_end = False
        return None

    @rx.event
    def load_newer(self) -> rx.event.EventSpec | None:
        """The page after the window at its bottom, dropping as many at the top; the last
        one before the live end is shown with the latest messages, tailing again."""
        if (actor := self._open_room_actor()) is None:
            return self._session_lost()
        room_id = actor[1]
        if self.newest_id is None or self.at_end:
            return None
        newer = chat.messages_after(room_id, self.newest_id, PAGE + 1)
        if len(newer) <= PAGE:
            # The live end is in reach: the last WINDOW messages, so the rows the reader is
            # looking at stay (same keys, same DOM nodes), then the room's batches again.
            return self._reshow(lambda room_id: latest(room_id, WINDOW))
        rows = [presented(chat.message_row(m)) for m in newer[:PAGE]]
        self.stream(MESSAGES, rows, at=-1, limit=-WINDOW)
        self.newest_id = rows[-1]["id"]
        span = chat.window_ids(room_id, before_id=self.newest_id + 1, limit=WINDOW + 1)
        self.oldest_id = span[-WINDOW:][0]
        self.at_start = len(span) <= WINDOW
        return None

    @rx.event
    def jump_to_present(self) -> rx.event.EventSpec | None:
        """ "Jump to present" and End: the latest page, tailing the room again."""
        if self._open_room_actor() is None:
            return self._session_lost()
        if self.at_end:
            return None
        return self._reshow(lambda room_id: latest(room_id, PAGE))

    @rx.event
    def jump_to_start(self) -> rx.event.EventSpec | None:
        """Home: the room's first window (nothing to read when the window already has it)."""
        if self._open_room_actor() is None:
            return self._session_lost()
        if self.at_start and self.oldest_id is not None:
            return None
        return self._reshow(lambda room_id: from_oldest(room_id, 0, True))

    @rx.event
    def dismiss_link_notice(self) -> None:
        self.link_notice, self.link_elsewhere = "", ""

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
                baseline = self._show(room_id, self._opening_window)
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
        events = [rx.set_value("composer", "")]
        if not self.at_end:
            # The sender's own message always shows: away from the live end, sending goes
            # back to it (the latest page has the message).
            reattached = self._reshow(lambda room_id: latest(room_id, PAGE))
            if reattached is not None:
                events.append(reattached)
        if not mentions.mentions_assistant(content):
            return events
        if not assistant.config().available:
            return [*events, info_toast(assistant.HOW_TO_ENABLE)]
        try:
            reply = assistant.request_reply(question)
        except chat.ChatError as error:
            return [*events, error_toast(str(error))]
        return [*events, MessagesState.run_assistant(reply.id)]

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
