"""The session: its HttpOnly cookie, set and cleared by backend HTTP routes, and a log out
that cuts off every tab of the session at once."""

from __future__ import annotations

import json
import re

import pytest
from starlette.testclient import TestClient

from stream_chat import accounts
from stream_chat.session_routes import SESSION_COOKIE, session_api
from stream_chat.state.auth_forms import LoginFormState
from stream_chat.state.messages import MessagesState

from . import room_fixtures
from .room_fixtures import RoomApp, make_room, make_user, stored_messages

migrated_template = room_fixtures.migrated_template
room_db = room_fixtures.room_db
room_broker = room_fixtures.room_broker
room_app = room_fixtures.room_app

BACKEND = "http://127.0.0.1:8000"
FRONTEND = "http://127.0.0.1:3000"


def redirects(events: list[dict]) -> list[str]:
    return [e["payload"]["path"] for e in events if e["name"] == "_redirect"]


async def test_log_out_sends_every_tab_of_the_session_to_login_at_once(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    in_room = room_app.tab(ann)
    on_index = room_app.tab(ann)
    on_index.session_token = in_room.session_token  # the same browser: one cookie
    elsewhere = room_app.tab(ann)  # another browser of Ann's: another session
    await in_room.connect(f"/rooms/{room.id}")
    await on_index.connect("/rooms")
    await elsewhere.connect(f"/rooms/{room.id}")
    assert in_room.sid in room_app.feed_members(room.id)
    before = {tab.sid: len(tab.frontend_events) for tab in (in_room, on_index, elsewhere)}

    # What POST /api/session/end does for the tab that logs out.
    accounts.delete_session_token(in_room.session_token)
    await room_app.quiet()

    assert redirects(in_room.frontend_events[before[in_room.sid] :]) == ["/login"]
    assert redirects(on_index.frontend_events[before[on_index.sid] :]) == ["/login"]
    assert redirects(elsewhere.frontend_events[before[elsewhere.sid] :]) == []
    # The server took the tab out of the room itself: a client that ignores the redirect
    # hears nothing more, and nothing it sends is accepted.
    assert room_app.feed_members(room.id) == {elsewhere.sid}
    assert room_app.follower_tasks(on_index.token, handler="follow_session") == []
    stored = stored_messages()
    for tab in (in_room, on_index):
        await tab.send(MessagesState.send, form={"content": "after log out"})
    assert stored_messages() == stored
    await elsewhere.send(MessagesState.send, form={"content": "still logged in here"})
    assert [m[3] for m in stored_messages()] == ["still logged in here"]


async def test_logging_in_hands_a_one_use_ticket_to_the_backend(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    with accounts.repo.session() as db:
        stored = db.get(accounts.User, ann.id)
        stored.hashed_password = accounts.hash_password("correct horse battery")
        db.add(stored)
        db.commit()
    tab = room_app.tab()
    await tab.connect("/login?next=/rooms/7")

    events = await tab.send(
        LoginFormState.log_in, form={"email": ann.email, "password": "correct horse battery"}
    )

    [script] = [e["payload"]["javascript_code"] for e in events if e["name"] == "_call_script"]
    assert 'form.method = "post"' in script
    assert "/api/session" in script
    fields = json.loads(re.search(r"Object\.entries\((\{.*?\})\)", script).group(1))
    assert fields["next"] == "/rooms/7"
    # No session token reaches the page: only a ticket, which the route swaps once.
    token = accounts.redeem_login_ticket(fields["ticket"])
    assert accounts.get_user_by_session_token(token).id == ann.id
    assert accounts.redeem_login_ticket(fields["ticket"]) is None


@pytest.fixture
def client(room_db: str, room_broker: object) -> TestClient:
    return TestClient(session_api, base_url=BACKEND)


def ticket_for(user: accounts.User) -> str:
    return accounts.create_login_ticket(user)


def test_the_route_sets_an_httponly_cookie_and_goes_to_next_on_the_page_origin(client) -> None:
    ann = make_user("Ann")
    response = client.post(
        "/api/session",
        data={"ticket": ticket_for(ann), "next": "/rooms/3"},
        headers={"Origin": FRONTEND},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{FRONTEND}/rooms/3"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    for attribute in ("HttpOnly", "Path=/", "SameSite=lax", "Max-Age="):
        assert attribute in cookie
    assert "Secure" not in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    assert accounts.get_user_by_session_token(token).id == ann.id


def test_the_cookie_is_secure_behind_an_https_proxy(client) -> None:
    ann = make_user("Ann")
    response = client.post(
        "/api/session",
        data={"ticket": ticket_for(ann), "next": "/rooms"},
        headers={"Origin": "https://127.0.0.1", "X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    assert "Secure" in response.headers["set-cookie"]


def test_a_ticket_works_once_and_never_cross_site(client) -> None:
    ann = make_user("Ann")
    ticket = ticket_for(ann)
    for origin in ("https://evil.example", "null", ""):
        refused = client.post("/api/session", data={"ticket": ticket}, headers={"Origin": origin})
        assert refused.status_code == 403
        assert "set-cookie" not in refused.headers
    assert client.get("/api/session").status_code == 405
    first = client.post(
        "/api/session",
        data={"ticket": ticket, "next": "//evil.example/"},
        headers={"Origin": FRONTEND},
        follow_redirects=False,
    )
    assert first.headers["location"] == f"{FRONTEND}/rooms"  # only same-site paths
    again = client.post(
        "/api/session",
        data={"ticket": ticket, "next": "/rooms"},
        headers={"Origin": FRONTEND},
        follow_redirects=False,
    )
    assert again.headers["location"] == f"{FRONTEND}/login?next=/rooms"
    assert "set-cookie" not in again.headers


def test_ending_the_session_revokes_it_and_clears_the_cookie(client) -> None:
    ann = make_user("Ann")
    token = accounts.create_session_token(ann)
    response = client.post(
        "/api/session/end",
        headers={"Origin": FRONTEND, "Cookie": f"{SESSION_COOKIE}={token}"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{FRONTEND}/login"
    assert 'stream_chat_session=""' in response.headers["set-cookie"]
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert accounts.get_user_by_session_token(token) is None
