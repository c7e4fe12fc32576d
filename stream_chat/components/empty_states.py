"""Friendly placeholders: no room picked, room not found."""

import reflex as rx


def notice(
    icon: str, title: str | rx.Var[str], body: str, action: rx.Component | None = None
) -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon(icon, size=40, color=rx.color("gray", 9)),
            rx.heading(title, size="5", as_="h2"),
            rx.text(body, color=rx.color("gray", 11), text_align="center"),
            *([action] if action is not None else []),
            align="center",
            spacing="3",
            max_width="420px",
        ),
        height="100%",
        padding="2rem",
    )


def pick_a_room() -> rx.Component:
    return notice("hash", "Pick a room", "Choose a room from the list to join the conversation.")


def room_not_found() -> rx.Component:
    return notice(
        "search-x",
        "Room not found",
        "This room does not exist, or it was removed. Pick another one from the list.",
        rx.link(rx.button("Back to all rooms", variant="soft"), href="/rooms"),
    )
