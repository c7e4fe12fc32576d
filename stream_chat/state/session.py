"""Who is logged in on this tab, and the guards of the pages that need someone."""

from urllib.parse import quote

import reflex as rx

from stream_chat import accounts
from stream_chat.state.checked import CheckedInput
from stream_chat.state.naming import ShortNamed

SESSION_COOKIE = "stream_chat_session"


def login_path_returning_to(path: str) -> str:
    return f"/login?next={quote(path.rstrip('/') or '/', safe='/')}"


def safe_return_path(candidate: str | None) -> str:
    """Only same-site paths: `next=//evil.example` must not turn login into an open redirect."""
    if candidate and candidate.startswith("/") and not candidate.startswith(("//", "/\\")):
        return candidate
    return "/rooms"


class SessionState(CheckedInput, ShortNamed, rx.State):
    __state_name__ = "session"

    session_token: str = rx.Cookie(
        "",
        name=SESSION_COOKIE,
        path="/",
        max_age=int(accounts.SESSION_VALIDITY.total_seconds()),
        same_site="lax",
    )
    user_name: str = ""
    user_email: str = ""
    _user_id: int | None = None

    @rx.var
    def logged_in(self) -> bool:
        return self._user_id is not None

    def _remember(self, user: accounts.User) -> None:
        self._user_id = user.id
        self.user_name = user.name
        self.user_email = user.email

    def _forget(self) -> None:
        """Forgets the user, and with them anything a page showed them."""
        self._user_id = None
        self.user_name = ""
        self.user_email = ""
        self.reset()

    def _session_token(self) -> str:
        return self.session_token

    def _session_user_id(self) -> int | None:
        """The logged-in user, checked against the session store on every call: a session
        revoked since the page loaded (a log out in another tab) acts as nobody."""
        if self._user_id is None or not self._session_holds():
            return None
        return self._user_id

    def _session_holds(self) -> bool:
        return accounts.session_user_id(self._session_token()) == self._user_id

    def _session_lost(self) -> rx.event.EventSpec | None:
        """What a refused handler answers: a tab whose session ended forgets the user and
        goes to log in again; otherwise (never logged in, no room open) nothing."""
        if self._user_id is None or self._session_holds():
            return None
        self._forget()
        return rx.redirect(login_path_returning_to(self.router.url.path), replace=True)

    def _start_session(self, user: accounts.User) -> None:
        self.session_token = accounts.create_session_token(user)
        self._remember(user)

    @rx.event
    def require_user(self) -> rx.event.EventSpec | None:
        """on_load guard: checks the token on every visit, so a revoked session ends at once."""
        user = accounts.get_user_by_session_token(self.session_token)
        if user is None:
            self._forget()
            return rx.redirect(login_path_returning_to(self.router.url.path), replace=True)
        self._remember(user)
        return None

    @rx.event
    def redirect_if_logged_in(self) -> rx.event.EventSpec | None:
        """on_load of /login and /register: someone already logged in goes where they meant to."""
        if accounts.get_user_by_session_token(self.session_token) is not None:
            return rx.redirect(self._return_path(), replace=True)
        return None

    def _return_path(self) -> str:
        return safe_return_path(self.router.url.query_parameters.get("next"))

    @rx.event
    def log_out(self) -> rx.event.EventSpec:
        accounts.delete_session_token(self.session_token)
        self.session_token = ""
        self._forget()
        return rx.redirect("/login")
