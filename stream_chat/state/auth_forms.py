"""The register and log-in forms. Passwords pass through the handler and are never stored."""

import reflex as rx

from stream_chat import accounts
from stream_chat.state.session import SessionState


class LoginFormState(SessionState):
    error: str = ""

    @rx.event
    def log_in(self, form: dict[str, str]) -> rx.event.EventSpec | None:
        try:
            user = accounts.log_in(
                form.get("email", ""), form.get("password", ""), self.router.session.client_ip
            )
        except accounts.TooManyAttempts as error:
            self.error = str(error)
            return None
        if user is None:
            self.error = "That email and password do not match an account."
            return None
        self.error = ""
        return self._hand_over_session(user, self._return_path())


class RegisterFormState(SessionState):
    email_error: str = ""
    password_error: str = ""

    @rx.event
    def register(self, form: dict[str, str]) -> rx.event.EventSpec | None:
        try:
            user = accounts.register_user(
                form.get("email", ""), form.get("password", ""), form.get("name", "")
            )
        except accounts.RegistrationError as error:
            self.email_error = error.errors.get("email", "")
            self.password_error = error.errors.get("password", "")
            return None
        self.email_error = self.password_error = ""
        return self._hand_over_session(user, "/rooms")
