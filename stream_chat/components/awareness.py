"""The typing line and the members panel. Render-only: the data is held in the browser by
`assets/awareness.js` (from the feeds' signals), never in a state's lists. The presence dots
are drawn on every avatar slot (`components/avatars.py`, `data-user-id`) by the stylesheet
`awareness.js` writes."""

from typing import Any

import reflex as rx
from reflex.vars import Var

from stream_chat.components.avatars import avatar
from stream_chat.components.hooks import event_name, hook_result
from stream_chat.state.messages import MessagesState
from stream_chat.state.rooms import RoomsState

AWARENESS_MODULE = rx.asset("awareness.js").importable_path
TYPING_LINE_ID = "typing-line"
MEMBERS_PANEL_ID = "members-panel"
MEMBERS_PANEL_WIDTH = "240px"
# The composer the typing notices watch (components/messages.py renders it).
COMPOSER_ID = "composer"


def awareness_behaviour() -> Var:
    """Mounts `useAwarenessBehaviour` once per page (signals, dots, typing and input notices)."""
    options = {
        "signalsState": RoomsState.get_full_name(),
        "roomId": RoomsState.current_room_id,
        "composerId": COMPOSER_ID,
        "typingEvent": event_name(MessagesState.set_typing),
        "activityEvent": event_name(RoomsState.report_activity),
        "refreshEvent": event_name(RoomsState.refresh_awareness),
    }
    return hook_result("awarenessBehaviour", AWARENESS_MODULE, "useAwarenessBehaviour", options)


def _awareness(field: str, var_type: Any) -> Var:
    options = {"selfId": MessagesState.user_id, "roomId": RoomsState.current_room_id}
    awareness = hook_result("awareness", AWARENESS_MODULE, "useAwareness", options, dict)
    return Var(_js_expr=f"awareness.{field}", _var_data=awareness._get_all_var_data()).to(var_type)


def typing_line() -> rx.Component:
    """Above the composer; one line tall whether or not someone types, so nothing jumps."""
    return rx.text(
        _awareness("typingLine", str),
        id=TYPING_LINE_ID,
        aria_live="polite",
        size="1",
        color=rx.color("gray", 10),
        font_style="italic",
        min_height="1.25rem",
        padding_x="1rem",
        white_space="nowrap",
        overflow="hidden",
        text_overflow="ellipsis",
        width="100%",
    )


def _member_row(member: Var) -> rx.Component:
    return rx.el.li(
        avatar(member["id"].to(int), member["name"].to(str), size="1"),
        rx.text(member["label"].to(str), size="2", flex="1", min_width="0", trim="both"),
        rx.text(member["status"].to(str), size="1", color=rx.color("gray", 10)),
        class_name="member",
        data_status=member["status"].to(str),
        display="flex",
        align_items="center",
        gap="0.5rem",
        padding="0.3rem 0",
        list_style="none",
    )


def _member_group(title: str, members: Var, empty: str, group_id: str) -> rx.Component:
    return rx.vstack(
        rx.text(title, size="1", weight="bold", color=rx.color("gray", 10)),
        rx.cond(
            members.length() > 0,  # type: ignore[attr-defined]
            rx.el.ul(
                rx.foreach(members, _member_row),
                id=group_id,
                margin="0",
                padding="0",
                width="100%",
            ),
            rx.text(empty, size="1", color=rx.color("gray", 9)),
        ),
        spacing="1",
        width="100%",
    )


def members_list() -> rx.Component:
    return rx.vstack(
        _member_group(
            "In the room now", _awareness("here", list[dict]), "Nobody else.", "members-here"
        ),
        _member_group(
            "Also posted here",
            _awareness("others", list[dict]),
            "Nobody else has posted lately.",
            "members-others",
        ),
        spacing="4",
        width="100%",
    )


def members_toggle() -> rx.Component:
    """The header's button: how many have the room open; opens and closes the panel."""
    return rx.button(
        rx.icon("users", size=16),
        rx.text(_awareness("hereCount", int), size="2"),
        on_click=MessagesState.toggle_members,
        variant=rx.cond(MessagesState.members_open, "solid", "soft"),
        size="1",
        id="members-toggle",
        aria_label="Members",
        aria_pressed=rx.cond(MessagesState.members_open, "true", "false"),
        aria_controls=MEMBERS_PANEL_ID,
    )


def _panel_heading() -> rx.Component:
    return rx.hstack(
        rx.heading("Members", size="3", as_="h2"),
        rx.icon_button(
            rx.icon("x", size=16),
            variant="ghost",
            size="1",
            aria_label="Close the members panel",
            on_click=MessagesState.set_members_open(False),
        ),
        justify="between",
        align="center",
        width="100%",
    )


def _phone_or_desktop(phone: str, desktop: str) -> list[str]:
    # Reflex's breakpoints: below "md" is a phone (as the sidebar's drawer has it).
    return [phone, phone, desktop]


def members_panel() -> rx.Component:
    """A column beside the messages on a wide screen; a sheet over the bottom of a phone's."""
    return rx.cond(
        MessagesState.members_open,
        rx.el.aside(
            _panel_heading(),
            members_list(),
            id=MEMBERS_PANEL_ID,
            aria_label="Members",
            display="flex",
            flex_direction="column",
            gap="1rem",
            overflow_y="auto",
            padding="1rem",
            background_color=rx.color("gray", 2),
            # Phone: a sheet from the bottom edge, over the composer; desktop: a column.
            position=_phone_or_desktop("fixed", "static"),
            inset=_phone_or_desktop("auto 0 0 0", "auto"),
            max_height=_phone_or_desktop("70dvh", "none"),
            border_radius=_phone_or_desktop("12px 12px 0 0", "0"),
            box_shadow=_phone_or_desktop("0 -4px 24px rgba(0,0,0,0.25)", "none"),
            z_index=_phone_or_desktop("10", "auto"),
            width=_phone_or_desktop("100%", MEMBERS_PANEL_WIDTH),
            min_width=_phone_or_desktop("0", MEMBERS_PANEL_WIDTH),
            height=_phone_or_desktop("auto", "100%"),
            border_left=_phone_or_desktop("none", f"1px solid {rx.color('gray', 5)}"),
            border_top=_phone_or_desktop(f"1px solid {rx.color('gray', 6)}", "none"),
        ),
    )
