"""Production mode with PostgreSQL, Redis and several backend workers.

Clients are socket.io stand-ins for browsers (`tests/support/reflex_client.py`). Each first
opens /_stream_lab, which reports the PID of the worker serving its socket, then navigates
on that same socket to the room, so the test knows the clients span several workers.
"""

import asyncio
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from seeds.data import USERS
from stream_chat import accounts, repo
from stream_chat.assistant import HOW_TO_ENABLE
from stream_chat.state.messages import MessagesState
from stream_chat.state.room_feed import SIGNALS_VAR
from stream_chat.state.rooms import RoomsState
from stream_chat.state.session import SESSION_COOKIE
from stream_chat.state.unread_feeds import UNREAD_VAR
from stream_chat.streams import ClientStream
from stream_chat.testing.stream_lab import StreamLabState
from tests.support.awareness import presence_from
from tests.support.databases import fresh_postgres_database
from tests.support.reflex_client import ReflexClient, var_key
from tests.support.servers import AppServer, prepared_database, start_app
from tests.support.test_reflex_client import run_async

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

REDIS_URL = "redis://127.0.0.1:6379/3"
MESSAGES_STATE = MessagesState.get_full_name()
LAB_STATE = StreamLabState.get_full_name()
ROOM_PATH = "/rooms/1"
MAX_CLIENTS = 24
ROOMS_STATE = RoomsState.get_full_name()
SIGNALS_KEY = SIGNALS_VAR + "_rx_state_"
# Short tab lifetimes, so a killed worker's tabs expire within seconds here (60 s by default).
TAB_TTL_SECONDS = 6


@pytest.fixture(scope="module")
def redis_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    database_url = fresh_postgres_database("stream_chat_e2e")
    prepared_database(database_url)
    server = start_app(
        database_url,
        tmp_path_factory.mktemp("redis_app") / "app.log",
        extra_env={
            "REFLEX_REDIS_URL": REDIS_URL,
            "STREAM_CHAT_TEST_PAGES": "1",
            "PRESENCE_TAB_TTL_SECONDS": str(TAB_TTL_SECONDS),
        },
    )
    yield server
    server.stop()
    redis.Redis.from_url(REDIS_URL).flushdb()


def session_cookies(database_url: str) -> list[dict[str, str]]:
    repo.configure(database_url)
    try:
        return [
            {SESSION_COOKIE: accounts.create_session_token(accounts.get_user_by_email(email))}
            for _, email in USERS
        ]
    finally:
        repo.engine().dispose()


async def clients_on_several_workers(server: AppServer, jars: list[dict[str, str]]):
    """Connects clients until they sit on at least two workers (bounded), then opens the room."""
    clients: list[ReflexClient] = []
    pids: dict[ReflexClient, int] = {}
    for n in range(MAX_CLIENTS):
        client = ReflexClient(frontend=server.frontend())
        await client.connect(server.base_url, "/_stream_lab", jars[n % len(jars)])
        await client.wait_for(lambda c: c.state_value(LAB_STATE, "worker_pid", 0) > 0, 15)
        clients.append(client)
        pids[client] = client.state_value(LAB_STATE, "worker_pid")
        if n >= 7 and len(set(pids.values())) >= 2:
            break
    for client in clients:
        await client.navigate(ROOM_PATH)
    for client in clients:
        await client.wait_for(lambda c: len(c.stream_batches(MESSAGES_STATE, "messages")) > 0, 20)
    return clients, pids


def shown(client: ReflexClient) -> ClientStream:
    stream = ClientStream()
    for batch in client.stream_batches(MESSAGES_STATE, "messages"):
        stream.apply_batch(batch)
    return stream


def test_every_client_on_every_worker_gets_every_change_once_in_one_order(
    redis_app: AppServer,
) -> None:
    jars = session_cookies(redis_app.database_url)

    async def scenario() -> None:
        clients, pids = await clients_on_several_workers(redis_app, jars)
        try:
            workers = set(pids.values())
            assert len(workers) >= 2, f"all {len(clients)} clients landed on one worker"
            # Two senders on different workers, interleaving their messages.
            first = clients[0]
            second = next(c for c in clients if pids[c] != pids[first])
            texts = [f"cross-worker {n}" for n in range(12)]
            for n, text in enumerate(texts):
                sender = first if n % 2 == 0 else second
                await sender.send_event(MessagesState.send, {"form": {"content": text}})
                await asyncio.sleep(0.02)

            def has_all(client: ReflexClient) -> bool:
                contents = [item["content"] for item in shown(client).items]
                return all(text in contents for text in texts)

            for client in clients:
                await client.wait_for(has_all, 20)

            orders = []
            for client in clients:
                items = shown(client).items
                live = [item["content"] for item in items if item["content"] in texts]
                assert sorted(live) == sorted(texts), "a message was lost or doubled"
                orders.append(live)
            assert all(order == orders[0] for order in orders), "members saw different orders"

            # An edit and a delete reach every member on every worker too.
            target = next(i for i in shown(first).items if i["content"] == texts[0])
            await first.send_event(MessagesState.start_edit, {"message_id": target["id"]})
            await first.wait_for(
                lambda c: c.state_value(MESSAGES_STATE, "editing_id", None) == target["id"], 10
            )
            await first.send_event(MessagesState.set_edit_draft, {"text": "edited across"})
            await first.send_event(MessagesState.save_edit, {})
            for client in clients:
                await client.wait_for(
                    lambda c: any(
                        i["content"] == "edited across" and i["edited"] for i in shown(c).items
                    ),
                    20,
                )
            await first.send_event(MessagesState.ask_delete, {"message_id": target["id"]})
            await first.send_event(MessagesState.confirm_delete, {})
            for client in clients:
                await client.wait_for(
                    lambda c: f"messages-{target['id']}" not in shown(c).dom_ids, 20
                )
        finally:
            for client in clients:
                await client.close()

    run_async(scenario)


def test_without_a_model_configured_the_assistant_is_unavailable_and_nothing_fails(
    redis_app: AppServer,
) -> None:
    jars = session_cookies(redis_app.database_url)

    async def scenario() -> None:
        async with ReflexClient(frontend=redis_app.frontend()) as client:
            await client.connect(redis_app.base_url, ROOM_PATH, jars[0])
            await client.wait_for(
                lambda c: len(c.stream_batches(MESSAGES_STATE, "messages")) > 0, 20
            )
            assert client.state_value(MESSAGES_STATE, "assistant_available") is False
            text = "@assistant are you there?"
            await client.send_event(MessagesState.send, {"form": {"content": text}})
            await client.wait_for(lambda c: any(i["content"] == text for i in shown(c).items), 10)
            await client.wait_for(
                lambda c: any(HOW_TO_ENABLE in str(event) for _, event in c.events), 10
            )
            assert not any(i["is_assistant"] for i in shown(client).items)

    run_async(scenario)


def unread_news(client: ReflexClient, kind: str) -> list[dict]:
    """The sidebar's unread news of this kind the client received, in order."""
    news = [values.get(var_key(UNREAD_VAR)) for _, values in client.deltas_for(ROOMS_STATE)]
    return [item for item in news if item and item.get("kind") == kind]


def test_unread_counts_and_reads_reach_the_users_tabs_on_every_worker(
    redis_app: AppServer,
) -> None:
    """Ada's tabs sit on two workers: a message in a room neither has open reaches both
    sidebars, and reading it in one clears it in the other, through Redis."""
    jars = session_cookies(redis_app.database_url)
    ada_jar, grace_jar = jars[0], jars[1]

    async def scenario() -> None:
        tabs: list[ReflexClient] = []
        pids: dict[ReflexClient, int] = {}
        grace = ReflexClient(frontend=redis_app.frontend())
        try:
            for _ in range(MAX_CLIENTS):
                tab = ReflexClient(frontend=redis_app.frontend())
                await tab.connect(redis_app.base_url, "/_stream_lab", ada_jar)
                await tab.wait_for(lambda c: c.state_value(LAB_STATE, "worker_pid", 0) > 0, 15)
                tabs.append(tab)
                pids[tab] = tab.state_value(LAB_STATE, "worker_pid")
                if len(set(pids.values())) >= 2:
                    break
            reader = tabs[0]
            other = next(t for t in tabs if pids[t] != pids[reader])
            assert pids[reader] != pids[other], "Ada's tabs all landed on one worker"
            await reader.navigate(ROOM_PATH)
            await other.navigate("/rooms")
            for tab in (reader, other):
                await tab.wait_for(lambda c: len(unread_news(c, "summary")) > 0, 20)
            await grace.connect(redis_app.base_url, "/rooms/2", grace_jar)
            await grace.wait_for(
                lambda c: len(c.stream_batches(MESSAGES_STATE, "messages")) > 0, 20
            )

            await grace.send_event(MessagesState.send, {"form": {"content": "across workers"}})

            def heard(client: ReflexClient) -> list[dict]:
                return [n for n in unread_news(client, "posted") if n["room_id"] == 2]

            for tab in (reader, other):
                await tab.wait_for(lambda c: len(heard(c)) == 1, 20)
            [posted] = heard(reader)
            assert heard(other) == [posted]

            await reader.navigate("/rooms/2")
            await reader.wait_for(
                lambda c: (
                    c.state_value(MESSAGES_STATE, "first_unread_id", None) == posted["message_id"]
                ),
                20,
            )
            await reader.send_event(MessagesState.mark_read, {"message_id": posted["message_id"]})

            def cleared(client: ReflexClient) -> bool:
                return any(
                    n["room"]["room_id"] == 2
                    and n["room"]["last_read"] == posted["message_id"]
                    and n["room"]["unread"] == 0
                    for n in unread_news(client, "read")
                )

            await other.wait_for(cleared, 20)
            await reader.wait_for(cleared, 20)
            assert not any(n["room"]["room_id"] == 2 for n in unread_news(grace, "read"))
        finally:
            for tab in [*tabs, grace]:
                await tab.close()


def live_signals(client: ReflexClient) -> list[dict[str, Any]]:
    return [
        update.delta[ROOMS_STATE][SIGNALS_KEY]
        for update in client.updates
        if SIGNALS_KEY in update.delta.get(ROOMS_STATE, {})
    ]


def presence_seen(client: ReflexClient) -> dict[str, str]:
    """The presence map as the browser's store ends up with it (see assets/awareness.js)."""
    return presence_from(live_signals(client))


def typists_seen(client: ReflexClient) -> set[str]:
    typing: set[str] = set()
    for signals in live_signals(client):
        room = signals.get("room")
        if room is None:
            continue
        if room["full"]:
            typing = set()
        typing |= set(room.get("typing", {}))
        typing -= set(room.get("stopped", []))
    return typing


def user_ids(database_url: str) -> list[str]:
    repo.configure(database_url)
    try:
        return [str(accounts.get_user_by_email(email).id) for _, email in USERS]  # type: ignore[union-attr]
    finally:
        repo.engine().dispose()


def test_presence_and_typing_cross_workers_and_a_silent_workers_tabs_expire(
    redis_app: AppServer,
) -> None:
    jars = session_cookies(redis_app.database_url)
    ids = user_ids(redis_app.database_url)

    async def scenario() -> None:
        clients, pids = await clients_on_several_workers(redis_app, jars)
        user_of = {client: ids[n % len(ids)] for n, client in enumerate(clients)}
        try:
            watcher = clients[0]
            doomed_pid = next(pid for pid in pids.values() if pid != pids[watcher])
            on_doomed = [c for c in clients if pids[c] == doomed_pid]
            everyone = set(user_of.values())
            # Presence across workers: every user with a tab anywhere is online for all.
            for client in clients:
                try:
                    await client.wait_for(lambda c: set(presence_seen(c)) == everyone, 20)
                except TimeoutError:
                    store = redis.Redis.from_url(REDIS_URL, decode_responses=True)
                    raise AssertionError(
                        f"{user_of[client]} on {pids[client]} sees {presence_seen(client)}, "
                        f"not {everyone}; store: {store.hgetall('streamchat-presence:status')};"
                        f" signals: {live_signals(client)}"
                    ) from None

            # Typing on the doomed worker reaches the watcher on another worker, and stops.
            typist = on_doomed[0]
            typing = {"room_id": 1, "is_typing": True}
            await typist.send_event(MessagesState.set_typing, typing)
            await watcher.wait_for(lambda c: user_of[typist] in typists_seen(c), 20)
            await typist.send_event(MessagesState.set_typing, {**typing, "is_typing": False})
            await watcher.wait_for(lambda c: user_of[typist] not in typists_seen(c), 20)

            # The worker stops without a word. Frozen (SIGSTOP), not killed: Reflex starts
            # granian without respawning failed workers, so one worker's SIGKILL stops the
            # whole app. A frozen worker renews nothing, as a dead one, while the others run:
            # its tabs expire (TAB_TTL_SECONDS) and a live worker sweeps them.
            os.kill(doomed_pid, signal.SIGSTOP)
            store = redis.Redis.from_url(REDIS_URL, decode_responses=True)
            try:
                loop = asyncio.get_running_loop()
                staying = {user_of[c] for c in clients if pids[c] != doomed_pid}
                assert {user_of[c] for c in on_doomed} - staying, "a user only on that worker"
                deadline = loop.time() + TAB_TTL_SECONDS * 3
                while set(store.hkeys("streamchat-presence:status")) != staying:
                    assert loop.time() < deadline, (
                        f"still online: {store.hgetall('streamchat-presence:status')}, "
                        f"the live workers' tabs' users: {staying}"
                    )
                    await asyncio.sleep(0.5)
                # Every tab on the live workers is told, and nobody is left as a ghost.
                for client in clients:
                    if pids[client] != doomed_pid:
                        await client.wait_for(lambda c: set(presence_seen(c)) == staying, 20)
            finally:
                os.kill(doomed_pid, signal.SIGCONT)
        finally:
            for client in clients:
                await client.close()

    run_async(scenario)
