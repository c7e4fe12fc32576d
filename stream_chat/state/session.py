"""Who is logged in on this tab, and the guards of the pages that need someone.

The session token is an `HttpOnly` cookie set and cleared by the backend's HTTP routes
(`stream_chat/session_routes.py`); the server reads it from the `Cookie` header of the
tab's websocket request, fixed when the socket opened. That is why logging in and out end
with a top-level form POST to those routes: the page then loads anew, with a new socket.
"""

import json
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

import reflex as rx

from stream_chat import accounts
from stream_chat.session_routes import (
    END_SESSION_PATH,
    SESSION_COOKIE,
    SESSION_PATH,
    login_path_returning_to,
    safe_return_path,
)
from stream_chat.state.checked import CheckedInput
from stream_chat.state.naming import ShortNamed

__all__ = ["SESSION_COOKIE", "SessionState", "login_path_returning_to", "safe_return_path"]

# A top-level form submission to the backend: the response's Set-Cookie lands in the browser
# and its redirect loads the next page. Only JSON-encoded data is put into it.
_POST_FORM_SCRIPT = """(() => {{
  const form = document.createElement("form");
  form.method = "post";
  form.action = {action};
  for (const [name, value] of Object.entries({fields})) {{
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.append(input);
  }}
  document.body.append(form);
  form.submit();
}})()"""


class SessionState(CheckedInput, ShortNamed, rx.State):
    __state_name__ = "session"

    user_name: str = ""
    user_email: str = ""
    _user_id: int | None = None

    @rx.var
    def logged_in(self) -> bool:
        return self._user_id is not None

    @rx.var
    def user_id(self) -> int:
        """Who is reading, for the page: whose messages get Edit and Delete, whose avatar the
        menu shows, which mentions are "you" (the server checks again on every request)."""
        return self._user_id or 0

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
        """The session cookie of this tab's websocket request (server side only)."""
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.router.headers.cookie)
        except CookieError:
            return ""
        morsel = jar.get(SESSION_COOKIE)
        return morsel.value if morsel is not None else ""

    def _post_to_backend(self, path: str, fields: dict[str, str]) -> rx.event.EventSpec:
        """The page submits `fields` to this backend's `path`, where its socket reached it
        (the websocket's Host), with the page's scheme: an https page posts to https."""
        scheme = urlsplit(self.router.headers.origin).scheme or "http"
        action = f"{scheme}://{self.router.headers.host}{path}"
        return rx.call_script(
            _POST_FORM_SCRIPT.format(action=json.dumps(action), fields=json.dumps(fields))
        )

    def _hand_over_session(self, user: accounts.User, next_path: str) -> rx.event.EventSpec:
        """After a verified login: the page swaps a one-use ticket for the HttpOnly cookie
        at the backend, which then loads `next_path`."""
        ticket = accounts.create_login_ticket(user)
        return self._post_to_backend(SESSION_PATH, {"ticket": ticket, "next": next_path})

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

    @rx.event
    def require_user(self) -> rx.event.EventSpec | None:
        """on_load guard: checks the token on every visit, so a revoked session ends at once."""
        user = accounts.get_user_by_session_token(self._session_token())
        if user is None:
            self._forget()
            return rx.redirect(login_path_returning_to(self.router.url.path), replace=True)
        self._remember(user)
        return None

    @rx.event
    def redirect_if_logged_in(self) -> rx.event.EventSpec | None:
        """on_load of /login and /register: someone already logged in goes where they meant to."""
        if accounts.get_user_by_session_token(self._session_token()) is not None:
            return rx.redirect(self._return_path(), replace=True)
        return None

    def _return_path(self) -> str:
        return safe_return_path(self.router.url.query_parameters.get("next"))

    @rx.event
    def log_out(self) -> rx.event.EventSpec:
        """The backend route revokes the session (every tab of it goes to /login) and
        clears the cookie: only an HTTP response can clear an HttpOnly cookie."""
        self._forget()
        return self._post_to_backend(END_SESSION_PATH, {})
