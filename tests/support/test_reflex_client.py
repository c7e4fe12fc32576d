"""The browser stand-in (`reflex_client`) against the real app, in production mode."""

import asyncio
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from seeds.data import USERS
from stream_chat import accounts, repo
from stream_chat.state.rooms import RoomsState
from stream_chat.state.session import SESSION_COOKIE, SessionState
from tests.support.reflex_client import (
    ReflexClient,
    connect_many,
    match_route,
    route_from_page_file,
)
from tests.support.servers import AppServer, prepared_database, start_app

ROOM_PATH = "/rooms/2"  # the seeds' second room
ROOM_NAME = "sre-team"
ROOMS = RoomsState.get_full_name()
SESSION = SessionState.get_full_name()
CLIENTS = 50

T = TypeVar("T")


def run_async(coroutine: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """Runs a coroutine in a fresh event loop on its own thread.

    The browser tests' session-wide Playwright (sync API) keeps an event loop running in the
    main thread; neither pytest-asyncio nor asyncio.run can run a loop under it.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine(*args)).result()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppServer, str]]:
    workdir = tmp_path_factory.mktemp("reflex_client")
    database_url = f"sqlite:///{workdir / 'app.db'}"
    prepared_database(database_url)
    server = start_app(database_url, workdir / "app.log")
    yield server, database_url
    server.stop()


@pytest.fixture(scope="module")
def session_cookies(app: tuple[AppServer, str]) -> dict[str, dict[str, str]]:
    """A logged-in browser's cookies for each seeded user, by email, in the app's database."""
    repo.configure(app[1])
    try:
        jars = {}
        for _, email in USERS:
            user = accounts.get_user_by_email(email)
            assert user is not None, email
            jars[email] = {SESSION_COOKIE: accounts.create_session_token(user)}
        return jars
    finally:
        repo.engine().dispose()


@pytest.mark.browser
@pytest.mark.timeout(900)
def test_logged_in_client_gets_the_room_page_state(
    app: tuple[AppServer, str], session_cookies: dict[str, dict[str, str]]
) -> None:
    async def scenario() -> ReflexClient:
        async with ReflexClient(frontend=app[0].frontend()) as client:
            await client.connect(app[0].base_url, ROOM_PATH, session_cookies["ada@streamchat.io"])
            await client.wait_hydrated(timeout=15)
            return client

    client = run_async(scenario)

    assert client.state_mismatch is None, "the compiled frontend does not match the server"
    rooms_deltas = [values for _, values in client.deltas_for(ROOMS)]
    assert any(values.get("room_name_rx_state_") == ROOM_NAME for values in rooms_deltas), (
        rooms_deltas
    )
    assert client.state_value(ROOMS, "room_name") == ROOM_NAME
    assert client.state_value(SESSION, "user_email") == "ada@streamchat.io"
    assert client.state_value(SESSION, "logged_in") is True
    assert client.redirects() == []
    assert client.connected_at is not None and client.hydrated_at is not None
    assert all(received.time >= client.updates[0].time for received in client.updates)


@pytest.mark.browser
@pytest.mark.timeout(900)
def test_client_without_the_cookie_is_sent_to_login(app: tuple[AppServer, str]) -> None:
    async def scenario() -> ReflexClient:
        async with ReflexClient(frontend=app[0].frontend()) as client:
            await client.connect(app[0].base_url, ROOM_PATH)
            await client.wait_for(lambda c: bool(c.redirects()) and c.hydrated, timeout=15)
            return client

    async def following() -> ReflexClient:
        async with ReflexClient(follow_redirects=True, frontend=app[0].frontend()) as client:
            await client.connect(app[0].base_url, ROOM_PATH)
            await client.wait_for(lambda c: c.path.startswith("/login") and c.hydrated, 15)
            return client

    client = run_async(scenario)
    follower = run_async(following)

    assert follower.path == f"/login?next={ROOM_PATH}"
    assert follower.navigation_errors == []
    assert client.redirects() == [f"/login?next={ROOM_PATH}"]
    redirect = next(event for _, event in client.events if event["name"] == "_redirect")
    assert redirect["payload"]["replace"] is True
    assert client.state_value(ROOMS, "room_name") == ""
    assert all(
        values.get("room_name_rx_state_", "") == "" for _, values in client.deltas_for(ROOMS)
    )


@pytest.mark.browser
@pytest.mark.timeout(900)
def test_fifty_clients_connect_at_once_and_each_gets_its_own_state(
    app: tuple[AppServer, str],
    session_cookies: dict[str, dict[str, str]],
    record_property: Callable[[str, object], None],
) -> None:
    users = [USERS[n % len(USERS)] for n in range(CLIENTS)]

    async def scenario() -> tuple[float, list[ReflexClient]]:
        started = time.monotonic()
        clients = await connect_many(
            app[0].base_url,
            ROOM_PATH,
            [session_cookies[email] for _, email in users],
            frontend=app[0].frontend(),
            hydrate_timeout=60,
        )
        elapsed = time.monotonic() - started
        await asyncio.gather(*(client.close() for client in clients))
        return elapsed, clients

    elapsed, clients = run_async(scenario)

    latencies = [client.hydrated_at - client.connected_at for client in clients]  # type: ignore[operator]
    record_property("connect_and_hydrate_50_s", round(elapsed, 3))
    print(
        f"\n{CLIENTS} clients connected and hydrated in {elapsed:.2f} s "
        f"(ack to hydrated: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms)"
    )
    assert all(client.hydrated for client in clients)
    assert len({client.token for client in clients}) == CLIENTS
    for client, (name, email) in zip(clients, users, strict=True):
        assert client.state_value(ROOMS, "room_name") == ROOM_NAME
        # Each tab got its own user's state, nobody else's.
        assert client.state_value(SESSION, "user_email") == email
        assert client.state_value(SESSION, "user_name") == name
        assert client.redirects() == []


def test_page_files_give_react_router_patterns() -> None:
    assert route_from_page_file("_index") == "/"
    assert route_from_page_file("[rooms]._index") == "/rooms"
    assert route_from_page_file("[rooms].$[room_id]._index") == "/rooms/:room_id"
    assert route_from_page_file("[docs].$") == "/docs/*"
    assert route_from_page_file("[a].($[b])._index") == "/a/:b?"
    assert route_from_page_file("[404]._index") is None


def test_route_params_are_matched_like_use_params() -> None:
    routes = ["/", "/rooms", "/rooms/:room_id", "/rooms/new", "/docs/*"]
    assert match_route(routes, "/rooms/2") == {"room_id": "2"}
    assert match_route(routes, "/rooms/new") == {}
    assert match_route(routes, "/rooms") == {}
    assert match_route(routes, "/docs/a/b") == {"splat": ["a", "b"]}
    assert match_route(routes, "/nowhere/at/all") is None
