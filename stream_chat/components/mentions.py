"""Mentions on the page: the `@` autocomplete's list and the highlighting in messages.
Render-only: `assets/mentions.js` filters the list, moves through it and inserts the choice;
its remark plugin marks the mentions as `react-markdown` renders a message."""

from typing import Any

import reflex as rx
from reflex.vars import Var, VarData
from reflex_base.utils.imports import ImportVar

from stream_chat.components.avatars import assistant_avatar, avatar
from stream_chat.components.hooks import event_name, hook_result
from stream_chat.mentions import ASSISTANT_KEYWORD
from stream_chat.state.mentions import PEOPLE, MentionsState
from stream_chat.state.session import SessionState

MENTIONS_MODULE = rx.asset("mentions.js").importable_path


def remark_mentions() -> list[Any]:
    """The plugin for `rx.markdown(remark_plugins=...)`, told who reads (their mentions
    stand out). The message's text is not sent again: the browser finds its mentions."""
    plugin = Var(
        _js_expr="remarkMentions",
        _var_data=VarData(imports={MENTIONS_MODULE: [ImportVar(tag="remarkMentions")]}),
    )
    return [(plugin, {"viewerId": SessionState.user_id})]


# How a mention looks in a message; a mention of the reader is amber, and so is the edge of
# its message. Radix's alpha steps read on the row's hover and focus colours too.
MENTION_STYLE = {
    "& .mention": {
        "background_color": "var(--accent-a3)",
        "color": "var(--accent-11)",
        "border_radius": "4px",
        "padding": "0 0.2em",
        "font_weight": "500",
        "overflow_wrap": "anywhere",
    },
    "& .mention[data-me=true]": {
        "background_color": "var(--amber-a5)",
        "color": "var(--amber-12)",
        "font_weight": "600",
        "box_shadow": "inset 0 0 0 1px var(--amber-a8)",
    },
}
MENTIONED_ROW_STYLE = {
    "&:has(.mention[data-me=true])": {
        "background_color": "var(--amber-a2)",
        "box_shadow": "inset 3px 0 0 var(--amber-9)",
    },
}


def listbox_option(
    option_id: Var[str] | str,
    face: rx.Component,
    name: Var[str] | str,
    mention: Var[str] | str,
    note: rx.Component | None = None,
    **props: Any,
) -> rx.Component:
    return rx.el.li(
        face,
        rx.el.span(name, class_name="mention-option-name"),
        note if note is not None else rx.fragment(),
        id=option_id,
        role="option",
        data_name=name,
        data_mention=mention,
        class_name="mention-option",
        **props,
    )


def mention_listbox(listbox_id: str, *, inline: bool = False) -> rx.Component:
    """The people (and `@assistant`) one may mention; shown by the script while an `@` is
    being typed in its field: above the composer, or `inline` under the edit box (a dialog
    scrolls its content, and would cut off a list floating above)."""
    people = MentionsState.stream_items(PEOPLE)
    return rx.el.ul(
        listbox_option(
            f"{listbox_id}-assistant",
            assistant_avatar(size="1"),
            "assistant",
            ASSISTANT_KEYWORD,
            rx.el.span("asks the assistant", class_name="mention-option-note"),
        ),
        rx.foreach(
            people,
            lambda person: listbox_option(
                f"{listbox_id}-" + person["id"].to(str),
                avatar(person["id"].to(int), person["name"].to(str), size="1"),
                person["name"].to(str),
                person["mention"].to(str),
                key=person["dom_id"].to(str),
            ),
        ),
        id=listbox_id,
        role="listbox",
        aria_label="People to mention",
        data_open="false",
        class_name="mention-listbox",
        style={**LISTBOX_STYLE, **(INLINE_LISTBOX if inline else FLOATING_LISTBOX)},
    )


FLOATING_LISTBOX = {
    "position": "absolute",
    "bottom": "calc(100% + 4px)",
    "left": "0",
    "width": "min(22rem, 100%)",
    "max_height": "16rem",
    "z_index": "20",
    "box_shadow": "0 6px 20px var(--black-a4)",
}
INLINE_LISTBOX = {"margin_top": "0.25rem", "max_height": "12rem"}
LISTBOX_STYLE = {
    "overflow_y": "auto",
    "margin": "0",
    "padding": "0.25rem",
    "list_style": "none",
    "background_color": "var(--color-panel-solid)",
    "border": "1px solid var(--gray-a6)",
    "border_radius": "8px",
    "&[data-open=false]": {"display": "none"},
    "& .mention-option": {
        "display": "flex",
        "align_items": "center",
        "gap": "0.5rem",
        "padding": "0.35rem 0.5rem",
        "border_radius": "6px",
        "cursor": "pointer",
        "font_size": "0.875rem",
        "color": "var(--gray-12)",
    },
    "& .mention-option[data-match=false]": {"display": "none"},
    "& .mention-option:hover": {"background_color": "var(--gray-a3)"},
    "& .mention-option[aria-selected=true]": {
        "background_color": "var(--accent-a4)",
        "color": "var(--accent-12)",
    },
    "& .mention-option-note": {"color": "var(--gray-11)", "font_size": "0.75rem"},
}


def mention_autocomplete(fields: dict[str, str]) -> Var:
    """Mounts `useMentionAutocomplete` for these fields (field id → its listbox's id)."""
    options = {
        "fields": [{"fieldId": field, "listboxId": box} for field, box in fields.items()],
        "loadPeople": event_name(MentionsState.load_people),
        "roomId": MentionsState.current_room_id,
    }
    return hook_result("mentionAutocomplete", MENTIONS_MODULE, "useMentionAutocomplete", options)


def combobox_props(listbox_id: str) -> dict[str, str]:
    """What makes a textarea the combobox of its listbox (the script keeps `aria-expanded`
    and `aria-activedescendant` up to date)."""
    return {
        "role": "combobox",
        "aria_autocomplete": "list",
        "aria_haspopup": "listbox",
        "aria_expanded": "false",
        "aria_controls": listbox_id,
    }
