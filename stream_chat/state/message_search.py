"""The search dialog: this tab's query, scope, the results it shows and the selected one.

Only `search.search_messages` is read. The query's text lives in the browser's field (an
uncontrolled input, so no response ever rewrites what the reader is typing); the page sends
it after a pause in typing, or at once on Enter (`assets/search.js`).

Stale answers: Reflex runs one tab's ordinary events one at a time, in the order they came,
so the last query sent is the last one answered, and its results replace the others whole.
What refers to the results on screen ("More results", opening the n-th one) carries the
query those results answer, as the browser shows it (`searched_query`); when a newer search
has been answered in between, that query is no longer the state's and the event is ignored,
so an older page is never appended to a newer query's results, nor the wrong one opened.
"""

from dataclasses import dataclass

import reflex as rx

from stream_chat import search, throttle
from stream_chat.chat import PAGE_SIZE, ChatError
from stream_chat.state.rooms import RoomsState

THIS_ROOM = "room"
ALL_ROOMS = "all"
SCOPES = (THIS_ROOM, ALL_ROOMS)
# The most results one tab holds (the list travels whole each time it grows): past it the
# reader is asked to narrow the search instead of paging further.
MAX_RESULTS = 200
CAPPED_NOTE = f"Showing the newest {MAX_RESULTS} results. Add words to narrow the search."


@dataclass
class SnippetPart:
    text: str
    is_match: bool


@dataclass
class SearchResult:
    message_id: int
    room_id: int
    room_name: str
    sender_name: str
    inserted_at: str
    snippet: list[SnippetPart]


def _result(hit: search.SearchHit) -> SearchResult:
    message = hit.message
    return SearchResult(
        message_id=message.id,  # type: ignore[arg-type]
        room_id=message.room_id,
        room_name=hit.room_name,
        sender_name=message.sender.name if message.sender else "",
        inserted_at=message.inserted_at.isoformat(),
        snippet=[SnippetPart(part.text, part.is_match) for part in hit.snippet],
    )


class SearchState(RoomsState):
    __state_name__ = "search"

    dialog_open: bool = False
    scope: str = ALL_ROOMS
    results: list[SearchResult] = []
    # The query the results answer, as the field sent it: what "No messages match …" quotes,
    # and what the events about these results carry back.
    searched_query: str = ""
    # The selected result's index (arrows move it, Enter opens it).
    cursor: int = 0
    has_more: bool = False
    capped: bool = False
    error: str = ""
    _next_before_id: int | None = None

    @rx.var
    def active_result_id(self) -> str:
        """The selected option's DOM id, for the field's aria-activedescendant."""
        return f"search-result-{self.cursor}" if self.results else ""

    def _clear_results(self) -> None:
        self.results, self.searched_query, self.cursor = [], "", 0
        self.has_more, self.capped, self.error = False, False, ""
        self._next_before_id = None

    @rx.event
    def open_search(self) -> rx.event.EventSpec | None:
        """The header's button, Ctrl+K (Cmd+K) and `/`: a fresh search, in this room when
        one is open."""
        if self._session_user_id() is None:
            return self._session_lost()
        self._clear_results()
        self.scope = THIS_ROOM if self.current_room_id is not None else ALL_ROOMS
        self.dialog_open = True
        return None

    @rx.event
    def dialog_toggled(self, is_open: bool) -> rx.event.EventSpec | None:
        """Radix's open and close (the trigger; Esc, the overlay, the close button)."""
        if is_open:
            return SearchState.open_search
        self.dialog_open = False
        self._clear_results()
        return None

    @rx.event
    def set_search_scope(self, scope: str) -> rx.event.EventSpec | None:
        if (user_id := self._session_user_id()) is None:
            return self._session_lost()
        if scope not in SCOPES or (scope == THIS_ROOM and self.current_room_id is None):
            return None
        self.scope = scope
        if self.searched_query:
            self._run(user_id, self.searched_query)
        return None

    @rx.event
    def run_search(self, query: str) -> rx.event.EventSpec | None:
        """The field's text, after a pause in typing or on Enter."""
        if (user_id := self._session_user_id()) is None:
            return self._session_lost()
        if not self.dialog_open:
            # A pause that ended after the dialog closed: nothing to show it in.
            return None
        self._run(user_id, query)
        return None

    @rx.event
    def load_more(self, query: str) -> rx.event.EventSpec | None:
        """The "More results" button: the next page below those shown, of the query shown."""
        if (user_id := self._session_user_id()) is None:
            return self._session_lost()
        if query != self.searched_query or self._next_before_id is None:
            return None
        self._run(user_id, query, before_id=self._next_before_id)
        return None

    @rx.event
    def move_cursor(self, step: int) -> rx.event.EventSpec | None:
        """Arrow keys: the selection moves one result, and stops at either end."""
        if self._session_user_id() is None:
            return self._session_lost()
        if self.results:
            direction = (step > 0) - (step < 0)
            self.cursor = max(0, min(len(self.results) - 1, self.cursor + direction))
        return None

    @rx.event
    def open_result(self, index: int, query: str) -> rx.event.EventSpec | None:
        """A click on a result, or Enter: `index` among the results of `query`."""
        if self._session_user_id() is None:
            return self._session_lost()
        if query != self.searched_query:
            return None
        return self._open(index)

    def _open(self, index: int) -> rx.event.EventSpec | None:
        """Closes the dialog and opens the room at the result (a client navigation)."""
        if not 0 <= index < len(self.results):
            return None
        chosen = self.results[index]
        self.dialog_open = False
        self._clear_results()
        return rx.redirect(f"/rooms/{chosen.room_id}?m={chosen.message_id}")

    def _run(self, user_id: int, query: str, *, before_id: int | None = None) -> None:
        """Searches (the first page, or the page below `before_id`) and shows the outcome:
        results, or what to change. A page of more results that fails keeps those shown."""
        shown = self.results if before_id is not None else []
        if wait := throttle.search_wait(user_id):
            self._show_error(f"You are searching too fast. {throttle.wait_note(wait)}", shown)
            return
        room_id = self.current_room_id if self.scope == THIS_ROOM else None
        try:
            page = search.search_messages(
                user_id,
                query,
                room_id=room_id,
                before_id=before_id,
                limit=min(PAGE_SIZE, MAX_RESULTS - len(shown)),
            )
        except ChatError as error:
            self._show_error(str(error), shown)
            return
        results = shown + [_result(hit) for hit in page.hits]
        self.capped = page.next_before_id is not None and len(results) >= MAX_RESULTS
        self._next_before_id = None if self.capped else page.next_before_id
        self.has_more = self._next_before_id is not None
        self.results, self.error = results, ""
        # A query the context accepted: at most search.MAX_QUERY_LENGTH characters, so a
        # crafted megabyte never reaches this var (it is an InvalidSearch).
        self.searched_query = query
        if before_id is None:
            self.cursor = 0

    def _show_error(self, message: str, shown: list[SearchResult]) -> None:
        if not shown:
            self._clear_results()
        self.error = message
