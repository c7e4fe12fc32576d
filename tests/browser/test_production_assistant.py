"""The assistant in production mode: PostgreSQL, Redis and several backend workers.

Tabs on different workers (proven by their worker PIDs) watch one reply stream, and a Stop
sent from one worker cancels the model request that another worker (the asker's) runs.
"""

from collections.abc import Iterator

import pytest
import redis

from stream_chat.state.messages import MessagesState
from tests.browser.conftest import model_env
from tests.browser.test_production_redis_workers import (
    clients_on_several_workers,
    session_cookies,
    shown,
)
from tests.support.databases import fresh_postgres_database
from tests.support.fake_openai import FakeOpenAI, Stream
from tests.support.servers import AppServer, prepared_database, start_app
from tests.support.test_reflex_client import run_async

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

REDIS_URL = "redis://127.0.0.1:6379/5"
WORDS = [f"w{n} " for n in range(80)]


@pytest.fixture(scope="module")
def assistant_app(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeOpenAI
) -> Iterator[AppServer]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    database_url = fresh_postgres_database("stream_chat_e2e_assistant")
    prepared_database(database_url)
    server = start_app(
        database_url,
        tmp_path_factory.mktemp("assistant_app") / "app.log",
        extra_env={
            "REFLEX_REDIS_URL": REDIS_URL,
            "STREAM_CHAT_TEST_PAGES": "1",
            **model_env(fake_model),
        },
    )
    yield server
    server.stop()
    redis.Redis.from_url(REDIS_URL).flushdb()


def reply_of(client, status: str | None = None) -> dict | None:
    replies = [i for i in shown(client).items if i["is_assistant"]]
    if status is not None:
        replies = [i for i in replies if i["status"] == status]
    return replies[-1] if replies else None


def test_tabs_on_every_worker_watch_the_reply_and_stop_works_across_workers(
    assistant_app: AppServer, fake_model: FakeOpenAI
) -> None:
    model = fake_model
    model.reset()
    jars = session_cookies(assistant_app.database_url)

    async def scenario() -> None:
        # Every tab is the asker's: only the person who asked may stop a reply, here from
        # another of their tabs, on another worker.
        clients, pids = await clients_on_several_workers(assistant_app, jars[:1])
        try:
            asker = clients[0]
            # 1. A whole reply reaches every tab on every worker.
            model.script(Stream(WORDS, tokens_per_second=200))
            await asker.send_event(MessagesState.send, {"form": {"content": "@assistant go"}})
            for client in clients:
                await client.wait_for(lambda c: reply_of(c, "done") is not None, 30)
            texts = {reply_of(c, "done")["content"] for c in clients}
            assert texts == {"".join(WORDS)}, "every tab shows exactly the whole reply"

            # 2. Stop from the asker's tab on another worker: the request is cut.
            stopper = next(c for c in clients if pids[c] != pids[asker])
            model.script(Stream(WORDS, tokens_per_second=10))
            await asker.send_event(MessagesState.send, {"form": {"content": "@assistant slow"}})
            await stopper.wait_for(lambda c: reply_of(c, "streaming") is not None, 20)
            streaming = reply_of(stopper, "streaming")
            await stopper.send_event(MessagesState.stop_reply, {"reply_id": streaming["id"]})
            await model.wait_for_disconnect_async(timeout=10)
            for client in clients:
                await client.wait_for(lambda c: reply_of(c, "stopped") is not None, 20)
            stopped = reply_of(asker, "stopped")
            assert stopped["content"].startswith("w0 ")
            assert "w79" not in stopped["content"], "the partial reply is kept, not the rest"
        finally:
            for client in clients:
                await client.close()

    run_async(scenario)
