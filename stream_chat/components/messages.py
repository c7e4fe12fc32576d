"""The room's message list, composer and dialogs. Render-only: behaviour lives in state
(`MessagesState`) and in `assets/chat_room.js` (scrolling and keys)."""

from typing import Any

import reflex as rx
from reflex.vars import Var, VarData
from reflex_base.utils.imports import ImportVar

from stream_chat.assistant import HOW_TO_ENABLE
from stream_chat.chat import MAX_MESSAGE_LENGTH
from stream_chat.components.avatars import sender_avatar
from stream_chat.components.awareness import COMPOSER_ID, typing_line
from stream_chat.components.empty_states import notice
from stream_chat.components.hooks import event_name, hook_result
from stream_chat.components.mentions import (
    MENTION_STYLE,
    MENTIONED_ROW_STYLE,
    combobox_props,
    mention_autocomplete,
    mention_listbox,
    remark_mentions,
)
from stream_chat.components.styles import VISUALLY_HIDDEN
from stream_chat.state.messages import LINK_PARAM, MESSAGES, MessagesState

CHAT_ROOM_MODULE = rx.asset("chat_room.js").importable_path
SCROLLER_ID = "message-scroller"
LIST_ID = "message-list"
SENTINEL_ID = "history-sentinel"
END_SENTINEL_ID = "history-end-sentinel"
PILL_ID = "new-messages-pill"
JUMP_ID = "jump-to-present"
COMPOSER_MENTIONS_ID = "composer-mentions"
EDIT_DRAFT_ID = "edit-draft"
EDIT_MENTIONS_ID = "edit-draft-mentions"
COMPOSER_COUNT_ID = "composer-count"
# Past this many characters a draft shows its length against the limit.
COUNT_FROM = MAX_MESSAGE_LENGTH * 9 // 10
ANNOUNCER_ID = "assistant-announcement"


def _chat_room_behaviour() -> Var:
    """A Var whose only job is to mount the `useChatRoom` hook in the page's component."""
    options = {
        "scrollerId": SCROLLER_ID,
        "listId": LIST_ID,
        "sentinelId": SENTINEL_ID,
        "endSentinelId": END_SENTINEL_ID,
        "pillId": PILL_ID,
        "jumpId": JUMP_ID,
        "composerId": COMPOSER_ID,
        "counterId": COMPOSER_COUNT_ID,
        "maxLength": MAX_MESSAGE_LENGTH,
        "countFrom": COUNT_FROM,
        "loadOlder": event_name(MessagesState.load_older),
        "loadNewer": event_name(MessagesState.load_newer),
        "jumpToPresent": event_name(MessagesState.jump_to_present),
        "jumpToStart": event_name(MessagesState.jump_to_start),
        "editLast": event_name(MessagesState.edit_last_message),
        "stopReply": event_name(MessagesState.stop_current_reply),
        "markRead": event_name(MessagesState.mark_read),
        "announcerId": ANNOUNCER_ID,
    }
    return hook_result("chatRoomBehaviour", CHAT_ROOM_MODULE, "useChatRoom", options)


def _opened_room_behaviour() -> Var:
    """Mounts `useOpenedRoom`: the composer takes the focus when a room opens."""
    options = {"roomId": MessagesState.current_room_id, "composerId": COMPOSER_ID}
    return hook_result("openedRoomBehaviour", CHAT_ROOM_MODULE, "useOpenedRoom", options)


def unread_divider() -> rx.Component:
    """Above the first message the reader had not read when the room opened."""
    line = rx.box(flex="1", height="1px", background_color=rx.color("red", 8))
    return rx.hstack(
        line,
        rx.text("New messages", size="1", weight="bold", color=rx.color("red", 11)),
        rx.button(
            "Mark as read",
            on_click=MessagesState.mark_room_read,
            type="button",
            size="1",
            variant="soft",
            color_scheme="red",
            id="mark-as-read",
        ),
        line,
        id="unread-divider",
        align="center",
        spacing="2",
        width="100%",
        margin_bottom="0.35rem",
        # The row is a grid (avatar, text): the divider spans it, as the day's name does.
        grid_column="1 / -1",
    )


@rx.memo
def message_row(
    message: rx.Var[dict[str, Any]], mine: rx.Var[bool], first_unread: rx.Var[bool]
) -> rx.Component:
    is_assistant = message["is_assistant"].to(bool)
    return rx.el.li(
        rx.cond(first_unread, unread_divider()),
        rx.box(
            sender_avatar(
                message["sender_id"].to(int), message["sender_name"].to(str), is_assistant
            ),
            class_name="message-gutter",
        ),
        rx.box(
            rx.hstack(
                rx.text(
                    message["sender_name"].to(str), weight="bold", size="2", class_name="sender"
                ),
                rx.moment(
                    message["inserted_at"].to(str),
                    format="HH:mm",
                    with_title=True,
                    title_format="dddd, D MMMM YYYY, HH:mm:ss",
                    size="1",
                    color=rx.color("gray", 10),
                    class_name="sent-at",
                ),
                rx.cond(
                    message["edited"].to(bool),
                    rx.text("(edited)", size="1", color=rx.color("gray", 10), class_name="edited"),
                ),
                rx.cond(is_assistant, reply_status(message)),
                align="baseline",
                spacing="2",
                class_name="message-header",
            ),
            rx.box(
                # use_raw=False: user and model markdown never becomes live HTML.
                rx.markdown(
                    displayed_content(message),
                    use_raw=False,
                    component_map={"pre": code_block_with_copy, "img": image_as_link},
                    remark_plugins=remark_mentions(),
                ),
                class_name="message-body",
                style={
                    "& p": {"margin": "0.1rem 0"},
                    "& pre": {"margin": "0.3rem 0"},
                    **COPY_STYLE,
                    **MENTION_STYLE,
                },
            ),
            rx.cond(is_assistant, reply_footer(message)),
            class_name="message-main",
            min_width="0",
            display="flex",
            flex_direction="column",
        ),
        message_actions(message, mine),
        id=message["dom_id"].to(str),
        # Read by `chat_room.js`, which marks the first message of each day and of each
        # sender's group (`data-day`, `data-group`).
        data_at=message["inserted_at"].to(str),
        data_sender_id=message["sender_id"].to(int),
        data_mine=rx.cond(mine, "true", "false"),
        # The "New messages" divider is in this row: it starts a sender's group (looks.js).
        data_unread_from=rx.cond(first_unread, "true", "false"),
        data_status=message["status"].to(str),
        # Screen readers wait for a reply being written instead of reading every token.
        aria_busy=rx.cond(is_being_written(message), "true", "false"),
        class_name="message-row",
        padding="0.35rem 1rem",
        list_style="none",
        # The list is one Tab stop: `chat_room.js` moves it between rows with the arrows.
        tab_index=-1,
        _focus_visible={"outline": f"2px solid {rx.color('accent', 8)}", "outline_offset": "-2px"},
        # Hidden actions are `visibility: hidden`, not transparent: a transparent button still
        # takes a Tab stop, two per message on the way to the composer.
        _hover={
            "background_color": rx.color("gray", 2),
            "& .message-actions": {"visibility": "visible"},
        },
        style={
            "&:focus-within .message-actions": {"visibility": "visible"},
            "&[data-day]::before": DAY_SEPARATOR,
            **ROW_LAYOUT,
            **GROUPED_ROW,
            **MENTIONED_ROW_STYLE,
            # A linked message, for a moment (`chat_room.js` sets and clears the attribute);
            # the background fades out when it is cleared.
            "transition": "background-color 1.2s ease-out",
            "&[data-highlighted=true]": {
                "background_color": rx.color("amber", 4),
                "box_shadow": f"inset 3px 0 0 {rx.color('amber', 9)}",
                "transition": "none",
            },
        },
    )


# The avatar in a gutter on the left, the header, text and footer beside it; Edit and Delete
# float at the top right, so that a compact row is no taller than its text.
ROW_LAYOUT = {
    "position": "relative",
    "display": "grid",
    "grid_template_columns": "2rem minmax(0, 1fr)",
    "column_gap": "0.65rem",
    "& .message-gutter": {"padding_top": "0.15rem"},
    "& .message-header": {"min_height": "0", "flex_wrap": "wrap", "row_gap": "0"},
    "& .message-actions": {
        "position": "absolute",
        "top": "0.2rem",
        "right": "0.75rem",
        "padding": "0.15rem",
        "border_radius": "6px",
        "background_color": "var(--color-panel-solid)",
        "box_shadow": "0 0 0 1px var(--gray-a5)",
    },
}

# A row that continues its sender's group (`data-group`, set by `chat_room.js`) shows no
# avatar, name nor time: its time appears in the gutter on hover or focus. The name stays
# for screen readers, which read each row on its own.
GROUPED_ROW = {
    "&[data-group=continued]": {"padding_top": "0.05rem", "padding_bottom": "0.05rem"},
    "&[data-group=continued] .message-gutter .avatar-slot": {"display": "none"},
    "&[data-group=continued] .message-header .sender": VISUALLY_HIDDEN,
    "&[data-group=continued] .message-header .sent-at": {
        "position": "absolute",
        "left": "0.6rem",
        "top": "0.3rem",
        "width": "2.8rem",
        "text_align": "center",
        "font_size": "0.7rem",
        "opacity": "0",
    },
    # What else the header says ("(edited)", a reply's status and Stop) goes under the text.
    "&[data-group=continued] .message-header": {"order": "1"},
    "&[data-group=continued] .reply-footer": {"order": "2"},
    "&[data-group=continued]:hover .sent-at, &[data-group=continued]:focus-within .sent-at, "
    "&[data-group=continued]:focus .sent-at": {"opacity": "1"},
}


# The first message of each local day carries its day's name (`data-day`, set in
# `chat_room.js`), shown above it as a separator.
DAY_SEPARATOR = {
    "content": "attr(data-day)",
    "display": "block",
    "margin": "0.6rem 0 0.4rem",
    "padding_bottom": "0.2rem",
    "border_bottom": f"1px solid {rx.color('gray', 5)}",
    "color": rx.color("gray", 11),
    "font_size": "0.75rem",
    "font_weight": "600",
    "text_align": "center",
    # The row is a grid (avatar, text): the separator spans it.
    "grid_column": "1 / -1",
}


# A code block's copy button shows on hover and focus (always on touch screens, which have
# no hover), and a check mark once it copied.
COPY_STYLE = {
    "& .copy-code": {"opacity": "0", "transition": "opacity 120ms"},
    "& :hover > .copy-code, & .copy-code:focus-visible, & .copy-code[data-copied=true]": {
        "opacity": "1"
    },
    "@media (hover: none)": {"& .copy-code": {"opacity": "1"}},
    "& .copied-icon, & .copy-code[data-copied=true] .copy-icon": {"display": "none"},
    "& .copy-code[data-copied=true] .copied-icon": {"display": "inline"},
}


def code_block_with_copy(value: object, **props: Any) -> rx.Component:
    return rx.code_block(
        value,
        can_copy=True,
        copy_button=copy_code_button(),
        margin_y="0.5em",
        wrap_long_lines=True,
        **props,
    )


def copy_code_button() -> rx.Component:
    """A light ghost icon in the block's corner (Reflex's default is a solid square), shown
    on hover and focus; `chat_room.js` copies the block's text and says "Copied"."""
    return rx.icon_button(
        rx.icon("copy", size=14, class_name="copy-icon"),
        rx.icon("check", size=14, class_name="copied-icon"),
        type="button",
        variant="ghost",
        color_scheme="gray",
        size="1",
        aria_label="Copy code",
        title="Copy code",
        class_name="copy-code",
        position="absolute",
        top="0.5em",
        right="0.5em",
    )


# The props react-markdown gives an `img` in a component map function.
IMAGE_SRC = Var(_js_expr="props.src", _var_type=str)
IMAGE_LABEL = Var(
    _js_expr="imageLinkLabel(props.src, props.alt)",
    _var_type=str,
    _var_data=VarData(imports={CHAT_ROOM_MODULE: [ImportVar(tag="imageLinkLabel")]}),
)


def image_as_link(_alt_children: object) -> rx.Component:
    """An image in a message is a link the reader may open, never fetched on its own."""
    return rx.el.a(
        rx.icon("image", size=14),
        IMAGE_LABEL,
        href=IMAGE_SRC,
        target="_blank",
        rel="noopener noreferrer nofollow",
        class_name="image-link",
        display="inline-flex",
        align_items="center",
        gap="0.25rem",
        color=rx.color("accent", 11),
    )


def asked_by_me(message: Var) -> Var[bool]:
    """Stop and Retry are the asker's (the context refuses anyone else)."""
    return message["requested_by_id"].to(int) == MessagesState.user_id


def is_being_written(message: Var) -> Var[bool]:
    status = message["status"].to(str)
    return (status == "queued") | (status == "thinking") | (status == "streaming")


def displayed_content(message: Var) -> Var[str]:
    """While a reply streams, a code fence it has opened but not closed yet is closed for
    display, so the block renders as code from its first line instead of flipping later."""
    content = message["content"].to(str)
    fence_open = (content.split("```").length() % 2) == 0
    return rx.cond(
        (message["status"].to(str) == "streaming") & fence_open, content + "\n```", content
    )


STATUS_BADGES = {
    "queued": ("queued", "gray"),
    "thinking": ("thinking…", "blue"),
    "streaming": ("writing…", "blue"),
    "stopped": ("stopped", "amber"),
    "interrupted": ("interrupted", "orange"),
    "error": ("error", "red"),
}


def reply_status(message: Var) -> rx.Component:
    status = message["status"].to(str)
    reply_id = message["id"].to(int)
    return rx.hstack(
        rx.match(
            status,
            *[
                (
                    name,
                    rx.badge(label, color_scheme=color, variant="soft", class_name="reply-status"),
                )
                for name, (label, color) in STATUS_BADGES.items()
            ],
            rx.fragment(),
        ),
        rx.cond(
            is_being_written(message) & asked_by_me(message),
            rx.button(
                rx.icon("square", size=12),
                "Stop",
                on_click=MessagesState.stop_reply(reply_id),
                size="1",
                variant="soft",
                color_scheme="gray",
                aria_label="Stop the reply (Esc)",
                class_name="stop-reply",
            ),
        ),
        align="center",
        spacing="2",
    )


def reply_footer(message: Var) -> rx.Component:
    status = message["status"].to(str)
    failed = (status == "stopped") | (status == "interrupted") | (status == "error")
    return rx.hstack(
        rx.cond(
            message["error"].to(str) != "",
            rx.text(
                message["error"].to(str),
                size="1",
                color=rx.color("red", 11),
                class_name="reply-error",
            ),
        ),
        rx.cond(
            failed & asked_by_me(message),
            rx.button(
                rx.icon("rotate-ccw", size=12),
                "Retry",
                on_click=MessagesState.retry_reply(message["id"].to(int)),
                size="1",
                variant="soft",
                class_name="retry-reply",
            ),
        ),
        rx.cond(
            message["usage"].to(str) != "",
            rx.text(
                message["usage"].to(str),
                size="1",
                color=rx.color("gray", 9),
                class_name="reply-usage",
            ),
        ),
        spacing="3",
        align="center",
        padding_top="0.2rem",
        class_name="reply-footer",
    )


def message_link(message: Var) -> Var[str]:
    """The message's permalink path: the room opened at it."""
    return (
        "/rooms/"
        + message["room_id"].to(int).to_string()
        + f"?{LINK_PARAM}="
        + message["id"].to(int).to_string()
    )


def message_actions(message: Var, mine: Var[bool]) -> rx.Component:
    message_id = message["id"].to(int)
    return rx.hstack(
        # Everyone's messages: `chat_room.js` copies the absolute link and says so.
        rx.icon_button(
            rx.icon("link", size=14, class_name="copy-icon"),
            rx.icon("check", size=14, class_name="copied-icon"),
            type="button",
            variant="ghost",
            color_scheme="gray",
            size="1",
            aria_label="Copy link",
            title="Copy link",
            class_name="copy-link",
            data_link=message_link(message),
        ),
        rx.cond(
            mine,
            rx.fragment(
                rx.icon_button(
                    rx.icon("pencil", size=14),
                    on_click=MessagesState.start_edit(message_id),
                    variant="ghost",
                    size="1",
                    aria_label="Edit",
                ),
                rx.icon_button(
                    rx.icon("trash-2", size=14),
                    on_click=MessagesState.ask_delete(message_id),
                    variant="ghost",
                    size="1",
                    color_scheme="red",
                    aria_label="Delete",
                ),
            ),
        ),
        class_name="message-actions",
        visibility="hidden",
        spacing="1",
        style=LINK_COPIED_STYLE,
    )


LINK_COPIED_STYLE = {
    "& .copied-icon, & .copy-link[data-copied=true] .copy-icon": {"display": "none"},
    "& .copy-link[data-copied=true] .copied-icon": {"display": "inline"},
}


def history_start() -> rx.Component:
    """The top of the list: a sentinel that asks for older messages, or the room's start
    (a visible marker, announced by `chat_room.js` when the reader reaches it)."""
    return rx.box(
        rx.cond(
            MessagesState.at_start,
            # An empty room says it once, in its empty state.
            rx.cond(
                MessagesState.stream_is_empty(MESSAGES),
                rx.fragment(),
                rx.vstack(
                    rx.icon("flag", size=16, color=rx.color("gray", 9)),
                    rx.text(
                        "This is the start of #",
                        MessagesState.room_name,
                        size="2",
                        weight="medium",
                        color=rx.color("gray", 11),
                    ),
                    align="center",
                    spacing="1",
                    id="start-of-room",
                    width="100%",
                    padding_bottom="0.6rem",
                    border_bottom=f"1px dashed {rx.color('gray', 6)}",
                ),
            ),
            rx.spinner(size="1"),
        ),
        id=SENTINEL_ID,
        data_at_start=rx.cond(MessagesState.at_start, "true", "false"),
        padding="1rem",
        display="flex",
        justify_content="center",
    )


def history_end() -> rx.Component:
    """Below the list while the window has left the live end: a sentinel that asks for
    newer messages as the reader scrolls down."""
    return rx.box(
        rx.cond(~MessagesState.at_end, rx.spinner(size="1")),
        id=END_SENTINEL_ID,
        data_at_end=rx.cond(MessagesState.at_end, "true", "false"),
        padding=rx.cond(MessagesState.at_end, "0", "1rem"),
        display="flex",
        justify_content="center",
    )


def link_notice() -> rx.Component:
    """Why a link to a message did not open it (deleted, or another room's), over the room
    it opened at the present instead."""
    return rx.cond(
        MessagesState.link_notice != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("link-2-off", size=16)),
            rx.callout.text(
                MessagesState.link_notice,
                rx.cond(
                    MessagesState.link_elsewhere != "",
                    rx.link(
                        " Open it there.", href=MessagesState.link_elsewhere, id="link-elsewhere"
                    ),
                ),
            ),
            rx.icon_button(
                rx.icon("x", size=14),
                on_click=MessagesState.dismiss_link_notice,
                variant="ghost",
                color_scheme="gray",
                size="1",
                aria_label="Dismiss",
                margin_left="auto",
            ),
            color_scheme="amber",
            size="1",
            role="status",
            id="link-notice",
            margin="0.5rem 1rem 0",
            display="flex",
            align_items="center",
        ),
    )


def empty_room() -> rx.Component:
    return rx.box(
        notice(
            "message-circle",
            "This is the start of #" + MessagesState.room_name,
            "No messages yet. Say hello!",
        ),
        id="empty-room",
    )


def message_list() -> rx.Component:
    items = MessagesState.stream_items(MESSAGES)
    return rx.box(
        history_start(),
        rx.cond(MessagesState.stream_is_empty(MESSAGES), empty_room()),
        rx.el.ol(
            rx.foreach(
                items,
                lambda item: message_row(
                    message=item,
                    mine=item["sender_id"].to(int) == MessagesState.user_id,
                    first_unread=item["id"].to(int) == MessagesState.first_unread_id,
                    key=item["dom_id"].to(str),
                ),
            ),
            id=LIST_ID,
            role="log",
            aria_label="Messages",
            aria_live="polite",
            margin="0",
            padding="0",
        ),
        history_end(),
        id=SCROLLER_ID,
        data_behaviour=_chat_room_behaviour(),
        data_opened_room=_opened_room_behaviour(),
        data_mentions=mention_autocomplete(
            {COMPOSER_ID: COMPOSER_MENTIONS_ID, EDIT_DRAFT_ID: EDIT_MENTIONS_ID}
        ),
        # Read by `chat_room.js`: whether new messages may scroll into view, and the linked
        # message to centre each time a link is opened.
        data_at_end=rx.cond(MessagesState.at_end, "true", "false"),
        data_highlight=rx.cond(
            MessagesState.highlight_id.is_not_none(), MessagesState.highlight_id.to_string(), ""
        ),
        data_link_opened=MessagesState.link_opened.to_string(),
        flex="1",
        min_height="0",
        overflow_y="auto",
        # `chat_room.js` keeps the message being read in place itself; the browser's own
        # scroll anchoring would move it a second time.
        overflow_anchor="none",
        width="100%",
    )


PILL_STYLE = {
    "position": "absolute",
    "bottom": "0.75rem",
    "left": "50%",
    "transform": "translateX(-50%)",
    "padding": "0.3rem 0.9rem",
    "border_radius": "999px",
    "background_color": rx.color("accent", 9),
    "color": "white",
    "font_size": "0.85rem",
    "cursor": "pointer",
    "box_shadow": "0 2px 8px rgba(0,0,0,0.2)",
    "white_space": "nowrap",
}


def new_messages_pill() -> rx.Component:
    """At the live end, when new messages arrived below the reader."""
    return rx.el.button("New messages ↓", id=PILL_ID, hidden=True, type="button", **PILL_STYLE)


def unseen_label() -> Var[str]:
    unseen = MessagesState.stream_unseen(MESSAGES)
    return rx.cond(unseen == 1, "1 new message", unseen.to_string() + " new messages")  # type: ignore[return-value]


def jump_to_present() -> rx.Component:
    """Away from the live end, always: back to the latest messages, with how many arrived
    meanwhile (counted by the stream, which does not show them)."""
    unseen = MessagesState.stream_unseen(MESSAGES)
    return rx.cond(
        ~MessagesState.at_end,
        rx.el.button(
            rx.icon("arrow-down", size=14),
            "Jump to present",
            rx.cond(
                unseen > 0,
                rx.el.span(" · ", unseen_label(), id="unseen-count", font_weight="600"),
            ),
            id=JUMP_ID,
            type="button",
            on_click=MessagesState.jump_to_present,
            display="inline-flex",
            align_items="center",
            gap="0.35rem",
            **PILL_STYLE,
        ),
    )


def composer() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.cond(
                MessagesState.compose_error != "",
                rx.text(
                    MessagesState.compose_error,
                    color=rx.color("red", 11),
                    size="1",
                    role="alert",
                    id="compose-error",
                ),
            ),
            rx.text(
                id=COMPOSER_COUNT_ID,
                size="1",
                aria_live="polite",
                color=rx.color("gray", 10),
                style={
                    "&:empty": {"display": "none"},
                    "&[data-over=true]": {"color": "var(--red-11)"},
                },
            ),
            rx.hstack(
                rx.box(
                    rx.text_area(
                        id=COMPOSER_ID,
                        name="content",
                        placeholder=f"Message #{MessagesState.room_name}",
                        aria_label="Message",
                        rows="2",
                        resize="vertical",
                        width="100%",
                        max_length=MAX_MESSAGE_LENGTH * 2,
                        **combobox_props(COMPOSER_MENTIONS_ID),
                    ),
                    mention_listbox(COMPOSER_MENTIONS_ID),
                    position="relative",
                    width="100%",
                ),
                rx.button(rx.icon("send", size=16), "Send", type="submit", aria_label="Send"),
                align="end",
                width="100%",
            ),
            # Keyboard hints: not on a phone's narrow screen, where they took four lines.
            rx.text(
                "Enter sends · Shift+Enter adds a line · ↑ edits your last message · "
                "@ mentions someone · @assistant asks the assistant · Esc stops its reply",
                size="1",
                color=rx.color("gray", 9),
                display=["none", "block"],
                id="composer-hints",
            ),
            rx.cond(
                ~MessagesState.assistant_available,
                rx.text(
                    HOW_TO_ENABLE,
                    size="1",
                    color=rx.color("amber", 11),
                    id="assistant-unavailable",
                    title=HOW_TO_ENABLE,
                    # One line on a narrow screen; the whole note is its title.
                    white_space=["nowrap", "normal"],
                    overflow="hidden",
                    text_overflow="ellipsis",
                    max_width="100%",
                ),
            ),
            spacing="1",
            width="100%",
        ),
        on_submit=MessagesState.send,
        method="post",
        padding="0.75rem 1rem",
        border_top=f"1px solid {rx.color('gray', 5)}",
        width="100%",
    )


def edit_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Edit message"),
            rx.box(
                rx.text_area(
                    value=MessagesState.edit_draft,
                    on_change=MessagesState.set_edit_draft,
                    id=EDIT_DRAFT_ID,
                    aria_label="Message text",
                    rows="4",
                    width="100%",
                    # One event per keystroke carries the whole draft: a pasted megabyte would
                    # exceed the socket's frame limit and close it without a word.
                    max_length=MAX_MESSAGE_LENGTH * 2,
                    **combobox_props(EDIT_MENTIONS_ID),
                ),
                mention_listbox(EDIT_MENTIONS_ID, inline=True),
                position="relative",
                width="100%",
            ),
            rx.cond(
                MessagesState.edit_draft.length() > COUNT_FROM,
                rx.text(
                    MessagesState.edit_draft.length().to_string(),
                    f" / {MAX_MESSAGE_LENGTH:,}",
                    size="1",
                    id="edit-draft-count",
                    color=rx.cond(
                        MessagesState.edit_draft.length() > MAX_MESSAGE_LENGTH,
                        rx.color("red", 11),
                        rx.color("gray", 10),
                    ),
                ),
            ),
            rx.cond(
                MessagesState.edit_error != "",
                rx.text(
                    MessagesState.edit_error, color=rx.color("red", 11), size="1", role="alert"
                ),
            ),
            rx.hstack(
                rx.button(
                    "Cancel",
                    variant="soft",
                    color_scheme="gray",
                    on_click=MessagesState.cancel_edit,
                ),
                rx.button("Save", on_click=MessagesState.save_edit),
                justify="end",
                spacing="2",
                margin_top="1rem",
            ),
        ),
        open=MessagesState.editing_id.is_not_none(),
        on_open_change=MessagesState.edit_dialog_toggled,
    )


def delete_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete this message?"),
            rx.alert_dialog.description("It disappears for everyone in the room."),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button(
                        "Cancel",
                        variant="soft",
                        color_scheme="gray",
                        on_click=MessagesState.cancel_delete,
                    ),
                ),
                rx.alert_dialog.action(
                    rx.button("Delete", color_scheme="red", on_click=MessagesState.confirm_delete),
                ),
                justify="end",
                spacing="2",
                margin_top="1rem",
            ),
        ),
        open=MessagesState.deleting_id.is_not_none(),
    )


def assistant_announcements() -> rx.Component:
    """A visually hidden live region: the start and the end of each reply, said once.
    `chat_room.js` writes it when a row's `data-status` changes."""
    return rx.box(
        role="status",
        aria_live="polite",
        id=ANNOUNCER_ID,
        style=VISUALLY_HIDDEN,
    )


def chat_room() -> rx.Component:
    return rx.vstack(
        assistant_announcements(),
        link_notice(),
        rx.box(
            message_list(),
            new_messages_pill(),
            jump_to_present(),
            position="relative",
            flex="1",
            min_height="0",
            width="100%",
            display="flex",
        ),
        typing_line(),
        composer(),
        edit_dialog(),
        delete_dialog(),
        height="100%",
        spacing="0",
        width="100%",
    )
