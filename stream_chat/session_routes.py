"""The backend's HTTP routes that set and clear the session cookie.

Page scripts never see the session token: it lives in an `HttpOnly` cookie, which only an
HTTP response can set. The log-in and register handlers verify the password over the
websocket as before (`accounts.authenticate` stays the one entry point), then make the page
POST a one-use login ticket here, as a top-level form submission:

* `POST /api/session` (`ticket`, `next`) swaps the ticket for a session token, answers
  `Set-Cookie` and `303` to `next` on the page's origin. The page then loads anew, and its
  new websocket carries the cookie (a socket's `Cookie` header is fixed when it opens).
* `POST /api/session/end` revokes the cookie's session (every tab of it is sent to /login)
  and clears the cookie, then `303` to /login.

Cross-site requests are refused: POST only, and the `Origin` must be on this backend's own
host (any port: cookies are per host, so a frontend on another port of the same host shares
them, as the dev server and the static deploy do). The cookie is `HttpOnly`, `SameSite=Lax`,
`Path=/`, and `Secure` when the request came over https (its scheme, or `X-Forwarded-Proto:
https` from a proxy in front).
"""

from urllib.parse import quote, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from stream_chat import accounts

SESSION_COOKIE = "stream_chat_session"
SESSION_PATH = "/api/session"
END_SESSION_PATH = "/api/session/end"


def safe_return_path(candidate: str | None) -> str:
    """Only same-site paths: `next=//evil.example` must not turn login into an open redirect."""
    if candidate and candidate.startswith("/") and not candidate.startswith(("//", "/\\")):
        return candidate
    return "/rooms"


def login_path_returning_to(path: str) -> str:
    return f"/login?next={quote(path.rstrip('/') or '/', safe='/')}"


def page_origin(request: Request) -> str | None:
    """The requesting page's origin, if it is on this backend's host; None otherwise."""
    origin = request.headers.get("origin", "")
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.hostname != request.url.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _over_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


async def start_session(request: Request) -> Response:
    origin = page_origin(request)
    if origin is None:
        return PlainTextResponse("Cross-site request refused.", status_code=403)
    form = await request.form()
    next_path = safe_return_path(str(form.get("next") or ""))
    token = accounts.redeem_login_ticket(str(form.get("ticket") or ""))
    if token is None:
        return RedirectResponse(origin + login_path_returning_to(next_path), status_code=303)
    response = RedirectResponse(origin + next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(accounts.SESSION_VALIDITY.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_over_https(request),
    )
    return response


async def end_session(request: Request) -> Response:
    origin = page_origin(request)
    if origin is None:
        return PlainTextResponse("Cross-site request refused.", status_code=403)
    accounts.delete_session_token(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(origin + "/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_over_https(request)
    )
    return response


session_api = Starlette(
    routes=[
        Route(SESSION_PATH, start_session, methods=["POST"]),
        Route(END_SESSION_PATH, end_session, methods=["POST"]),
    ]
)
