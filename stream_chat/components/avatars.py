"""Avatars: a person's initials on a colour of their own, and the assistant's.

Nothing is fetched: the initials come from the name (`initials` in `assets/looks.js`), the
colour from the user id, one of a fixed palette of Radix scales. Each scale's step 5 under
its step 12 is one of Radix's own readable pairs, in light mode and in dark mode alike.

Every avatar sits in a slot (`.avatar-slot`) that carries `data-user-id`: the hook for
presence. `assets/awareness.js` writes one stylesheet with a rule per user online or away
(`[data-user-id="5"]{--presence-color: ...}`) and one that draws the dot as the slot's
`::after`, so no avatar re-renders when someone comes or goes.
"""

import reflex as rx
from reflex.vars import Var, VarData
from reflex_base.utils.imports import ImportVar

LOOKS_MODULE = rx.asset("looks.js").importable_path

# Consecutive ids get different colours, so a small team rarely shares one.
PALETTE = (
    "tomato",
    "grass",
    "indigo",
    "orange",
    "plum",
    "teal",
    "crimson",
    "blue",
    "brown",
    "violet",
    "cyan",
    "gold",
)

SIZES = {"1": "1.5rem", "2": "2rem", "3": "2.5rem"}


def avatar_tone(user_id: Var[int] | int) -> Var[str] | str:
    if isinstance(user_id, int):
        return PALETTE[user_id % len(PALETTE)]
    return Var.create(list(PALETTE))[user_id % len(PALETTE)].to(str)


def initials(name: Var[str] | str) -> Var[str]:
    return Var(
        _js_expr=f"initials({Var.create(name)!s})",
        _var_type=str,
        _var_data=VarData.merge(
            Var.create(name)._get_all_var_data(),
            VarData(imports={LOOKS_MODULE: [ImportVar(tag="initials")]}),
        ),
    )


def _slot(
    face: rx.Component,
    user_id: Var[int] | int,
    size: str,
    class_name: str,
    **props: object,
) -> rx.Component:
    return rx.el.span(
        face,
        class_name=f"avatar-slot {class_name}".strip(),
        data_user_id=user_id,
        position="relative",
        display="inline-flex",
        flex_shrink="0",
        width=SIZES[size],
        height=SIZES[size],
        **props,
    )


def _face_style(size: str) -> dict[str, str]:
    return {
        "width": "100%",
        "height": "100%",
        "border_radius": "999px",
        "display": "inline-flex",
        "align_items": "center",
        "justify_content": "center",
        "font_weight": "600",
        "font_size": {"1": "0.625rem", "2": "0.75rem", "3": "0.9rem"}[size],
        "line_height": "1",
        "letter_spacing": "0.02em",
        "user_select": "none",
    }


def avatar(
    user_id: Var[int] | int,
    name: Var[str] | str,
    *,
    size: str = "2",
    class_name: str = "",
    **props: object,
) -> rx.Component:
    """A person's avatar. Decorative (`aria-hidden`): their name is always written beside it."""
    face = rx.el.span(
        initials(name),
        class_name="avatar",
        data_accent_color=avatar_tone(user_id),
        aria_hidden="true",
        background_color="var(--accent-5)",
        color="var(--accent-12)",
        **_face_style(size),
    )
    return _slot(face, user_id, size, class_name, **props)


def assistant_avatar(
    user_id: Var[int] | int = 0, *, size: str = "2", class_name: str = "", **props: object
) -> rx.Component:
    """The assistant's: a robot on the app's accent colour, never a person's initials."""
    face = rx.el.span(
        rx.icon("bot", size={"1": 13, "2": 17, "3": 21}[size]),
        class_name="avatar avatar-assistant",
        aria_hidden="true",
        background_color=rx.color("accent", 9),
        color="var(--accent-contrast)",
        **_face_style(size),
    )
    return _slot(face, user_id, size, class_name, data_assistant="true", **props)


def sender_avatar(
    sender_id: Var[int], name: Var[str], is_assistant: Var[bool], *, size: str = "2"
) -> rx.Component:
    return rx.cond(
        is_assistant, assistant_avatar(sender_id, size=size), avatar(sender_id, name, size=size)
    )
