"""The shared shell of the rooms pages: sidebar, header and content."""

import reflex as rx
from reflex.vars import Var, VarData
from reflex_base.utils.imports import ImportVar

from stream_chat.components.avatars import avatar
from stream_chat.components.awareness import awareness_behaviour
from stream_chat.components.hooks import event_name, hook_result
from stream_chat.components.search import search_dialog
from stream_chat.components.styles import VISUALLY_HIDDEN
from stream_chat.state.rooms import RoomLink, RoomsState
from stream_chat.state.session import SessionState

SIDEBAR_WIDTH = "260px"
# Below the "md" breakpoint the sidebar folds into a drawer behind a menu button.
DESKTOP_ONLY = ["none", "none", "flex"]
MOBILE_ONLY = ["flex", "flex", "none"]


UNREAD_MODULE = rx.asset("unread.js").importable_path


def _unread_snapshot() -> Var:
    """The sidebar's unread counts, from `useUnread` (assets/unread.js), which also puts the
    total in front of the tab's title and shows mention notifications."""
    options = {
        "substateName": RoomsState.get_full_name(),
        "refreshEvent": event_name(RoomsState.refresh_unread),
        "title": RoomsState.page_title,
        "openRoomId": RoomsState.current_room_id,
        "rooms": RoomsState.rooms,
    }
    return hook_result("unreadSnapshot", UNREAD_MODULE, "useUnread", options, dict)


def _from_unread(function: str, room_id: Var) -> Var[str]:
    """`function(snapshot, room id)` of unread.js: a room's badge text, "" for none."""
    snapshot = _unread_snapshot()
    return Var(
        _js_expr=f"{function}({snapshot!s}, {room_id!s})",
        _var_type=str,
        _var_data=VarData.merge(
            snapshot._get_all_var_data(),
            room_id._get_all_var_data(),
            VarData(imports={UNREAD_MODULE: [ImportVar(tag=function)]}),
        ),
    ).to(str)


def count_badge(label: Var[str], what: str, **props: object) -> rx.Component:
    return rx.badge(
        label,
        rx.el.span(f" {what}", style=VISUALLY_HIDDEN),
        radius="full",
        size="1",
        **props,
    )


def room_link(room: RoomLink) -> rx.Component:
    is_current = room.id == RoomsState.current_room_id
    unread = _from_unread("unreadLabel", room.id)
    mentions = _from_unread("mentionLabel", room.id)
    has_unread = unread != ""
    return rx.link(
        rx.hstack(
            rx.text(
                "# ",
                room.name,
                size="2",
                weight=rx.cond(is_current | has_unread, "bold", "regular"),
                truncate=True,
                flex="1",
            ),
            rx.cond(
                mentions != "",
                count_badge(
                    "@" + mentions,
                    "mentions",
                    variant="solid",
                    color_scheme="red",
                    class_name="mention-badge",
                ),
            ),
            rx.cond(
                has_unread,
                count_badge(unread, "unread", variant="soft", class_name="unread-badge"),
            ),
            align="center",
            spacing="2",
            width="100%",
        ),
        href=f"/rooms/{room.id}",
        aria_current=rx.cond(is_current, "page", "false"),
        class_name="room-link",
        data_unread=rx.cond(has_unread, "true", "false"),
        background_color=rx.cond(is_current, rx.color("accent", 4), "transparent"),
        color=rx.cond(
            is_current,
            rx.color("accent", 12),
            rx.cond(has_unread, rx.color("gray", 12), rx.color("gray", 11)),
        ),
        padding_x="0.75rem",
        padding_y="0.4rem",
        border_radius="6px",
        width="100%",
        underline="none",
        _hover={"background_color": rx.color("accent", 3)},
    )


def notifications_control() -> rx.Component:
    """Mention notifications: the browser asks for permission only after a click here."""
    permission = Var(
        _js_expr=f"{_unread_snapshot()!s}.notifications",
        _var_type=str,
        _var_data=_unread_snapshot()._get_all_var_data(),
    ).to(str)
    note = {"size": "1", "color": rx.color("gray", 10), "padding_x": "0.75rem"}
    return rx.box(
        rx.match(
            permission,
            (
                "default",
                rx.button(
                    rx.icon("bell", size=14),
                    "Notify me of mentions",
                    type="button",
                    variant="ghost",
                    size="1",
                    data_enable_notifications="true",
                    id="enable-notifications",
                    margin_x="0.75rem",
                ),
            ),
            ("granted", rx.text("Mentions notify you while this tab is hidden.", **note)),
            ("denied", rx.text("Notifications are blocked for this site.", **note)),
            rx.fragment(),
        ),
        class_name="notifications-control",
        padding_top="0.5rem",
    )


def room_list() -> rx.Component:
    return rx.el.nav(
        rx.text("Rooms", size="1", weight="bold", color=rx.color("gray", 10), padding_x="0.75rem"),
        rx.vstack(rx.foreach(RoomsState.rooms, room_link), spacing="1", width="100%"),
        notifications_control(),
        aria_label="Rooms",
        width="100%",
    )


def brand() -> rx.Component:
    return rx.link(
        rx.hstack(
            rx.icon("messages-square", size=22),
            rx.text("StreamChat", size="4", weight="bold"),
            align="center",
            spacing="2",
        ),
        href="/rooms",
        underline="none",
        color=rx.color("gray", 12),
    )


def sidebar() -> rx.Component:
    return rx.vstack(
        brand(),
        room_list(),
        display=DESKTOP_ONLY,
        width=SIDEBAR_WIDTH,
        min_width=SIDEBAR_WIDTH,
        height="100dvh",
        # However many rooms there are, the last ones and the controls below stay reachable.
        overflow_y="auto",
        padding="1rem 0.75rem",
        spacing="5",
        border_right=f"1px solid {rx.color('gray', 5)}",
        background_color=rx.color("gray", 2),
    )


def mobile_menu() -> rx.Component:
    return rx.drawer.root(
        rx.drawer.trigger(
            rx.icon_button(rx.icon("menu"), variant="ghost", aria_label="Open the room list"),
            display=MOBILE_ONLY,
        ),
        rx.drawer.overlay(z_index="5"),
        rx.drawer.portal(
            rx.drawer.content(
                rx.vstack(
                    rx.hstack(
                        brand(),
                        rx.drawer.close(
                            rx.icon_button(rx.icon("x"), variant="ghost", aria_label="Close"),
                        ),
                        justify="between",
                        width="100%",
                    ),
                    room_list(),
                    spacing="5",
                    padding="1rem",
                ),
                top="auto",
                left="0",
                height="100%",
                overflow_y="auto",
                width="80%",
                max_width="320px",
                background_color=rx.color("gray", 2),
                z_index="10",
            )
        ),
        direction="left",
        open=RoomsState.room_menu_open,
        on_open_change=RoomsState.set_room_menu_open,
    )


def user_menu() -> rx.Component:
    return rx.hstack(
        rx.color_mode.button(variant="ghost", aria_label="Toggle dark mode"),
        avatar(SessionState.user_id, SessionState.user_name, class_name="user-avatar"),
        rx.text(
            SessionState.user_name,
            size="2",
            weight="medium",
            class_name="user-name",
            display=DESKTOP_ONLY,
        ),
        rx.button(
            rx.icon("log-out", size=16),
            # Its icon alone on a phone, where the header also holds search and the members
            # button and the room's name needs the room (the label stays for readers).
            rx.el.span("Log out", display=DESKTOP_ONLY),
            on_click=SessionState.log_out,
            variant="soft",
            size="1",
            aria_label="Log out",
        ),
        align="center",
        spacing="3",
        # The room's name gives way on a narrow screen, not the buttons.
        flex_shrink="0",
    )


def header(title: rx.Component, actions: rx.Component | None = None) -> rx.Component:
    return rx.el.header(
        rx.hstack(
            mobile_menu(),
            title,
            rx.spacer(),
            search_dialog(),
            *([actions] if actions is not None else []),
            user_menu(),
            align="center",
            spacing="3",
            width="100%",
        ),
        padding="0.75rem 1rem",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        width="100%",
    )


def room_title() -> rx.Component:
    return rx.vstack(
        rx.heading(
            rx.cond(RoomsState.room_name != "", "# " + RoomsState.room_name, "StreamChat"),
            size="4",
            as_="h1",
            # A long room name is cut with an ellipsis rather than pushing the header's
            # buttons off a phone's screen (wrapping it left a letter or two per line there
            # once the header held search and the members button too).
            white_space="nowrap",
            overflow="hidden",
            text_overflow="ellipsis",
            # The stack sizes its children to their content: this keeps the name within it.
            max_width="100%",
        ),
        rx.cond(
            RoomsState.room_description != "",
            rx.text(
                RoomsState.room_description,
                size="1",
                color=rx.color("gray", 10),
                display=DESKTOP_ONLY,
            ),
        ),
        spacing="0",
        min_width="0",
    )


def rooms_shell(content: rx.Component, header_actions: rx.Component | None = None) -> rx.Component:
    """Renders only once the user is known: the on_load guard redirects everyone else."""
    return rx.cond(
        SessionState.logged_in,
        rx.hstack(
            sidebar(),
            rx.vstack(
                header(room_title(), header_actions),
                rx.el.main(
                    content,
                    flex="1",
                    width="100%",
                    min_height="0",
                    overflow="hidden",
                    display="flex",
                    flex_direction="column",
                ),
                height="100dvh",
                width="100%",
                min_width="0",
                spacing="0",
            ),
            spacing="0",
            width="100%",
            # Presence dots, typing notices, input reports: once per page.
            data_awareness=awareness_behaviour(),
        ),
        rx.center(rx.spinner(size="3"), height="100dvh", aria_label="Loading"),
    )
