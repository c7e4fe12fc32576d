"""Register and log-in forms: labelled fields, inline errors, keyboard friendly."""

import reflex as rx

from stream_chat.accounts import MIN_PASSWORD_LENGTH


def field(
    label: str,
    name: str,
    input_type: str,
    autocomplete: str,
    error: rx.Var[str] | str = "",
    hint: str = "",
) -> rx.Component:
    return rx.vstack(
        rx.el.label(rx.text(label, size="2", weight="medium"), html_for=name),
        rx.input(
            id=name,
            name=name,
            type=input_type,
            auto_complete=autocomplete,
            required=input_type != "text",
            size="3",
            width="100%",
            aria_invalid=rx.cond(error != "", "true", "false"),
            aria_describedby=f"{name}-help",
        ),
        rx.text(
            rx.cond(error != "", error, hint),
            id=f"{name}-help",
            size="1",
            color=rx.cond(error != "", rx.color("red", 11), rx.color("gray", 10)),
            role=rx.cond(error != "", "alert", "note"),
        ),
        spacing="1",
        width="100%",
    )


def auth_card(title: str, form: rx.Component, footer: rx.Component) -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.hstack(rx.icon("messages-square", size=28), rx.heading("StreamChat", size="6")),
                rx.heading(title, size="4", as_="h1", color=rx.color("gray", 11)),
                form,
                footer,
                spacing="4",
                width="100%",
            ),
            size="4",
            width="100%",
            max_width="420px",
        ),
        rx.box(
            rx.color_mode.button(variant="ghost", aria_label="Toggle dark mode"),
            position="fixed",
            top="1rem",
            right="1rem",
        ),
        min_height="100dvh",
        padding="1rem",
    )


def auth_form(on_submit: rx.EventHandler, submit_label: str, *fields: rx.Component) -> rx.Component:
    return rx.form(
        rx.vstack(
            *fields,
            rx.button(submit_label, type="submit", size="3", width="100%"),
            spacing="3",
            width="100%",
        ),
        on_submit=on_submit,
        # Submitted before the page hydrates, a form without a method would GET the page
        # with the password in its URL (history, server logs). POST keeps it out of there.
        method="post",
        width="100%",
    )


def error_callout(message: rx.Var[str]) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle-alert", color_scheme="red", role="alert", width="100%"),
    )


def password_hint() -> str:
    return f"At least {MIN_PASSWORD_LENGTH} characters."
