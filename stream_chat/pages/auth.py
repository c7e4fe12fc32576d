"""/login and /register."""

import reflex as rx

from stream_chat.components.auth_forms import (
    auth_card,
    auth_form,
    error_callout,
    field,
    password_hint,
)
from stream_chat.state.auth_forms import LoginFormState, RegisterFormState


def login_page() -> rx.Component:
    form = auth_form(
        LoginFormState.log_in,
        "Log in",
        error_callout(LoginFormState.error),
        field("Email", "email", "email", "username"),
        field("Password", "password", "password", "current-password"),
    )
    footer = rx.text("New here? ", rx.link("Create an account", href="/register"), size="2")
    return auth_card("Log in", form, footer)


def register_page() -> rx.Component:
    form = auth_form(
        RegisterFormState.register,
        "Create account",
        field("Name", "name", "text", "name", hint="Shown next to your messages (optional)."),
        field("Email", "email", "email", "email", RegisterFormState.email_error),
        field(
            "Password",
            "password",
            "password",
            "new-password",
            RegisterFormState.password_error,
            password_hint(),
        ),
    )
    footer = rx.text("Already have an account? ", rx.link("Log in", href="/login"), size="2")
    return auth_card("Create your account", form, footer)
