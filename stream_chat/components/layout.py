"""The shared shell of the rooms pages: sidebar, header and content."""

import reflex as rx

from stream_chat.components.avatars import avatar
from stream_chat.components.search import search_dialog
from stream_chat.state.rooms import RoomLink, RoomsState
from stream_chat.state.session import SessionState

SIDEBAR_WIDTH = "260px"
# Below the "md" breakpoint the sidebar folds into a drawer behind a menu button.
DESKTOP_ONLY = ["none", "none", "flex"]
MOBILE_ONLY = ["flex", "flex", "none"]


def room_link(room: RoomLink) -> rx.Component:
    is_current = room.id == RoomsState.current_room_id
    return rx.link(
        rx.text("# ", room.name, size="2", weight=rx.cond(is_current, "bold", "regular")),
        href=f"/rooms/{room.id}",
        aria_current=rx.cond(is_current, "page", "false"),
        class_name="room-link",
        background_color=rx.cond(is_current, rx.color("accent", 4), "transparent"),
        color=rx.cond(is_current, rx.color("accent", 12), rx.color("gray", 11)),
        padding_x="0.75rem",
        padding_y="0.4rem",
        border_radius="6px",
        width="100%",
        underline="none",
        _hover={"background_color": rx.color("accent", 3)},
    )


def room_list() -> rx.Component:
    return rx.el.nav(
        rx.text("Rooms", size="1", weight="bold", color=rx.color("gray", 10), padding_x="0.75rem"),
        rx.vstack(rx.foreach(RoomsState.rooms, room_link), spacing="1", width="100%"),
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
            "Log out",
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


def header(title: rx.Component) -> rx.Component:
    return rx.el.header(
        rx.hstack(
            mobile_menu(),
            title,
            rx.spacer(),
            search_dialog(),
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
            # A long room name wraps anywhere rather than pushing the header's buttons off a
            # phone's screen.
            overflow_wrap="anywhere",
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


def rooms_shell(content: rx.Component) -> rx.Component:
    """Renders only once the user is known: the on_load guard redirects everyone else."""
    return rx.cond(
        SessionState.logged_in,
        rx.hstack(
            sidebar(),
            rx.vstack(
                header(room_title()),
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
        ),
        rx.center(rx.spinner(size="3"), height="100dvh", aria_label="Loading"),
    )
