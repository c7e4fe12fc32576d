"""A backend killed (SIGKILL) in the middle of a reply: when it runs again, the reply turns
"interrupted" with its partial text, without anyone asking the assistant again or opening
the room. The production app, on SQLite, with the fake model streaming slowly."""

import asyncio
import time
from collections.abc import Iterator

import pytest

from stream_chat import assistant, chat, repo
from stream_chat.models import Message
from stream_chat.state.messages import MessagesState
from tests.browser.conftest import model_env
from tests.browser.test_production_redis_workers import (
    MESSAGES_STATE,
    ROOM_PATH,
    session_cookies,
)
from tests.support.fake_openai import FakeOpenAI, Stream
from tests.support.reflex_client import ReflexClient
from tests.support.servers import prepared_database, start_app
from tests.support.test_reflex_client import run_async

pytestmark = pytest.mark.browser

WORDS = [f"w{n} " for n in range(200)]
# After the restart: the first sweep runs at the worker's start, then every SWEEP_INTERVAL;
# a reply silent for ABANDONED_AFTER_IDLE is swept.
BOUND = (assistant.ABANDONED_AFTER_IDLE + 2 * assistant.SWEEP_INTERVAL).total_seconds()


@pytest.fixture
def database(tmp_path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    prepared_database(url)
    yield url
    repo.engine().dispose()


def _replies(database_url: str) -> list[Message]:
    repo.configure(database_url)
    try:
        rows = chat.last_messages(1, 50)
    finally:
        repo.engine().dispose()
    return [m for m in rows if m.status is not None]


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen in {timeout} s")


def test_a_reply_of_a_killed_worker_turns_interrupted_when_the_backend_is_back(
    tmp_path, database: str, fake_model: FakeOpenAI
) -> None:
    fake_model.reset()
    fake_model.set_default(Stream(WORDS, tokens_per_second=5))
    env = {**model_env(fake_model), "ASSISTANT_IDLE_TIMEOUT": "30"}
    [jar, *_] = session_cookies(database)
    server = start_app(database, tmp_path / "app.log", extra_env=env)
    try:

        async def ask() -> None:
            client = ReflexClient(frontend=server.frontend())
            await client.connect(server.base_url, ROOM_PATH, jar)
            try:
                await client.wait_for(
                    lambda c: len(c.stream_batches(MESSAGES_STATE, "messages")) > 0, 30
                )
                form = {"form": {"content": "@assistant tell me a long story"}}
                await client.send_event(MessagesState.send, form)
                deadline = time.monotonic() + 30
                while not _streaming(database) and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
            finally:
                await client.close()

        run_async(ask)
        [reply] = _replies(database)
        assert reply.status == chat.STREAMING
        server.kill()
    finally:
        server.stop()
    partial = _replies(database)[0].content
    assert partial.startswith("w0 ") and "w199" not in partial
    fake_model.wait_for_disconnect(timeout=10)
    requests_before = len(fake_model.requests())

    server = start_app(database, tmp_path / "app-again.log", extra_env=env)
    try:
        serving_at = time.monotonic()
        [interrupted] = _wait(
            lambda: [r for r in _replies(database) if r.status == chat.INTERRUPTED],
            BOUND,
            "the reply interrupted",
        )
        took = time.monotonic() - serving_at
    finally:
        server.stop()
    assert (interrupted.content, interrupted.error, interrupted.generation_id) == (
        partial,
        assistant.WORKER_WENT_AWAY,
        None,
    )
    assert took <= BOUND
    assert len(fake_model.requests()) == requests_before, "nobody asked the model again"


def _streaming(database_url: str) -> bool:
    return any(r.status == chat.STREAMING and len(r.content) >= 6 for r in _replies(database_url))
