"""The header's search button and its dialog. Render-only: behaviour lives in `SearchState`
and in `assets/search.js` (the shortcuts, the pause before searching, the field's keys)."""

import reflex as rx
from reflex.vars import Var

from stream_chat.components.hooks import event_name, hook_result
from stream_chat.search import MAX_QUERY_LENGTH
from stream_chat.state.message_search import (
    ALL_ROOMS,
    CAPPED_NOTE,
    THIS_ROOM,
    SearchResult,
    SearchState,
    SnippetPart,
)

SEARCH_MODULE = rx.asset("search.js").importable_path
BUTTON_ID = "search-button"
HINT_ID = "search-shortcut-hint"
INPUT_ID = "search-query"
RESULTS_ID = "search-results"
OPTION_ID_PREFIX = "search-result-"
# Typing pauses this long (ms) before the field's text is searched; Enter searches at once.
PAUSE_MS = 250


def _search_behaviour() -> Var:
    """A Var whose only job is to mount the `useSearchDialog` hook in the page's component."""
    options = {
        "buttonId": BUTTON_ID,
        "hintId": HINT_ID,
        "inputId": INPUT_ID,
        "optionIdPrefix": OPTION_ID_PREFIX,
        "pauseMs": PAUSE_MS,
        "runSearch": event_name(SearchState.run_search),
        "moveCursor": event_name(SearchState.move_cursor),
        "openResult": event_name(SearchState.open_result),
        "open": SearchState.dialog_open,
        "cursor": SearchState.cursor,
        "resultCount": SearchState.results.length(),
        "shownQuery": SearchState.searched_query,
    }
    return hook_result("searchBehaviour", SEARCH_MODULE, "useSearchDialog", options)


def search_button() -> rx.Component:
    return rx.dialog.trigger(
        rx.button(
            rx.icon("search", size=16),
            rx.text("Search", display=["none", "none", "inline"]),
            rx.el.kbd(
                # `search.js` writes "⌘K" instead on a Mac.
                "Ctrl K",
                id=HINT_ID,
                display=["none", "none", "inline"],
                font_size="11px",
                color=rx.color("gray", 11),
                border=f"1px solid {rx.color('gray', 7)}",
                border_radius="4px",
                padding="0 4px",
            ),
            id=BUTTON_ID,
            variant="soft",
            color_scheme="gray",
            size="2",
            aria_label="Search messages",
            aria_keyshortcuts="Control+K Meta+K /",
            flex_shrink="0",
            data_behaviour=_search_behaviour(),
        ),
    )


def snippet_part(part: SnippetPart) -> rx.Component:
    # Text nodes only: a message's text never becomes markup here.
    return rx.cond(part.is_match, rx.el.mark(part.text, class_name="search-match"), part.text)


def result_option(result: SearchResult, index: Var[int]) -> rx.Component:
    selected = index == SearchState.cursor
    return rx.el.li(
        rx.hstack(
            rx.text("# ", result.room_name, size="1", weight="bold", class_name="result-room"),
            rx.text(result.sender_name, size="1", class_name="result-sender"),
            rx.text(
                rx.moment(result.inserted_at, format="D MMM YYYY, HH:mm"),
                size="1",
                color=rx.color("gray", 10),
                class_name="result-time",
            ),
            spacing="2",
            align="baseline",
            wrap="wrap",
        ),
        rx.text(rx.foreach(result.snippet, snippet_part), size="2", class_name="result-snippet"),
        id=OPTION_ID_PREFIX + index.to_string(),
        role="option",
        aria_selected=rx.cond(selected, "true", "false"),
        on_click=SearchState.open_result(index, SearchState.searched_query),
        class_name="search-result",
        padding="0.5rem 0.75rem",
        border_radius="6px",
        cursor="pointer",
        list_style="none",
        background_color=rx.cond(selected, rx.color("accent", 4), "transparent"),
        _hover={"background_color": rx.color("accent", 3)},
    )


def scope_choice() -> rx.Component:
    return rx.cond(
        SearchState.current_room_id.is_not_none(),
        rx.radio_group.root(
            rx.hstack(
                rx.radio_group.item("This room", value=THIS_ROOM),
                rx.radio_group.item("All rooms", value=ALL_ROOMS),
                spacing="4",
            ),
            value=SearchState.scope,
            on_change=SearchState.set_search_scope,
            aria_label="Search in",
            size="2",
        ),
        rx.text("Searching all rooms.", size="1", color=rx.color("gray", 10)),
    )


def search_outcome() -> rx.Component:
    """What the last search said, where a screen reader hears it."""
    nothing_found = (
        (SearchState.searched_query != "")
        & (SearchState.results.length() == 0)
        & (SearchState.error == "")
    )
    return rx.box(
        rx.cond(
            SearchState.error != "",
            rx.text(SearchState.error, id="search-error", color=rx.color("red", 11), size="2"),
        ),
        rx.cond(
            nothing_found,
            rx.text(
                "No messages match “",
                SearchState.searched_query,
                "”.",
                id="search-nothing",
                size="2",
                color=rx.color("gray", 11),
            ),
        ),
        rx.cond(
            SearchState.capped,
            rx.text(CAPPED_NOTE, id="search-capped", size="1", color=rx.color("gray", 10)),
        ),
        role="status",
        aria_live="polite",
    )


def search_dialog() -> rx.Component:
    return rx.dialog.root(
        search_button(),
        rx.dialog.content(
            rx.dialog.title("Search messages", size="3", margin="0"),
            rx.dialog.description(
                'Words, "a phrase" in quotes; the last word also matches as a prefix.',
                size="1",
                color=rx.color("gray", 10),
            ),
            rx.vstack(
                rx.input(
                    rx.input.slot(rx.icon("search", size=16)),
                    id=INPUT_ID,
                    type="search",
                    placeholder="Search messages",
                    aria_label="Search for",
                    role="combobox",
                    aria_autocomplete="list",
                    aria_expanded=rx.cond(SearchState.results.length() > 0, "true", "false"),
                    aria_controls=RESULTS_ID,
                    aria_activedescendant=SearchState.active_result_id,
                    auto_complete="off",
                    spell_check=False,
                    # Longer than the context accepts, so that a pasted paragraph gets its
                    # "at most … characters" rather than being cut without a word.
                    max_length=MAX_QUERY_LENGTH * 2,
                    size="3",
                    width="100%",
                ),
                scope_choice(),
                search_outcome(),
                rx.el.ul(
                    rx.foreach(SearchState.results, result_option),
                    id=RESULTS_ID,
                    role="listbox",
                    aria_label="Results, newest first",
                    padding="0",
                    margin="0",
                    width="100%",
                    # On a phone the whole dialog scrolls; on a desktop the list does, under
                    # the field.
                    max_height=["none", "none", "min(60vh, 520px)"],
                    overflow_y="auto",
                ),
                rx.cond(
                    SearchState.has_more,
                    rx.button(
                        "More results",
                        id="search-more",
                        on_click=SearchState.load_more(SearchState.searched_query),
                        variant="soft",
                        width="100%",
                    ),
                ),
                spacing="3",
                margin_top="0.75rem",
                width="100%",
            ),
            # Last in the DOM, so that the dialog opens with the focus in the field (Radix
            # focuses the first focusable element); shown at the top right.
            rx.dialog.close(
                rx.icon_button(rx.icon("x", size=16), variant="ghost", aria_label="Close search"),
                position="absolute",
                top="1rem",
                right="1rem",
            ),
            width="640px",
            max_width="100%",
            position="relative",
            style={"& mark.search-match": MARK_STYLE, PHONE: FULL_SCREEN},
        ),
        open=SearchState.dialog_open,
        on_open_change=SearchState.dialog_toggled,
    )


# Below Reflex's "md" breakpoint (48em) the dialog takes the whole screen: no rounded card
# in the padding Radix keeps around dialogs, which is the content's parent (`&`).
PHONE = "@media (max-width: 47.99em)"
FULL_SCREEN = {
    "width": "100vw",
    "max_width": "100vw",
    "min_height": "100dvh",
    "max_height": "none",
    "border_radius": "0",
    ".rt-DialogScrollPadding:has(> &)": {"padding": "0"},
}

# Radix's amber scale flips with the theme: a light wash with dark text in light mode, a
# deep amber with light text in dark mode; both read at AA contrast.
MARK_STYLE = {
    "background_color": rx.color("amber", 5),
    "color": rx.color("amber", 12),
    "border_radius": "3px",
    "padding": "0 1px",
}
