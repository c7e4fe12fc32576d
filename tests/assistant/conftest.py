"""Fixtures for the Assistant tests: a migrated SQLite database per test, the in-process broker,
a fake OpenAI-compatible server (one process per module, reset per test), and recorders of a
room's broadcasts.

Nothing here starts the Reflex app: the tests drive `assistant.generate(reply_id)` directly,
which is what the page's background event runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config

from alembic import command
from stream_chat import assistant, chat, pubsub, repo
from stream_chat.assistant import AssistantConfig
from tests.assistant.support import WAIT, RoomRecorder, Seed, seed_rooms
from tests.support.fake_openai import FakeOpenAI
from tests.support.timing import no_collector_pauses

ROOT = Path(__file__).resolve().parents[2]


def alembic_config() -> Config:
    # As in tests/contexts/conftest.py: pytest keeps its log capture, no separator warning.
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["skip_logging"] = True
    config.set_main_option("path_separator", "os")
    return config


# --------------------------------------------------------------------------- the fake model


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


# --------------------------------------------------------------------------- storage and broker


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite file migrated by the real Alembic migrations; `repo` points at it."""
    url = f"sqlite:///{tmp_path / 'assistant_test.db'}"
    repo.configure(url)
    command.upgrade(alembic_config(), "head")
    yield url
    repo.engine().dispose()


@pytest.fixture(autouse=True)
def local_broker() -> Iterator[pubsub.LocalBroker]:
    """A fresh in-process broker per test, whatever REFLEX_REDIS_URL says."""
    broker = pubsub.LocalBroker()
    previous = pubsub.use_broker(broker)
    yield broker
    pubsub.use_broker(previous)


@pytest.fixture
def seed(db: str) -> Seed:
    return seed_rooms()


# --------------------------------------------------------------------------- configuration


@pytest.fixture
def configure(fake: FakeOpenAI) -> Iterator[Callable[..., AssistantConfig]]:
    """`configure(**overrides)` installs an AssistantConfig aimed at the fake server.

    Installed with the defaults below before the test; the previous one is restored after.
    """
    saved = assistant._config

    def install(**overrides: Any) -> AssistantConfig:
        values: dict[str, Any] = {
            "base_url": fake.base_url,
            "api_key": "test",
            "idle_timeout": 5.0,
            "max_retries": 0,
            "flush_interval": 0.05,
            "requests_per_minute": 100,
            **overrides,
        }
        settings = AssistantConfig(**values)
        assistant.configure(settings)
        return settings

    install()
    yield install
    assistant._config = saved


# --------------------------------------------------------------------------- recorders, tasks


@pytest.fixture
async def record() -> AsyncIterator[Callable[[int], Awaitable[RoomRecorder]]]:
    """`rec = await record(room_id)` subscribes at once and records until the test ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(room_id: int) -> RoomRecorder:
            subscription = await stack.enter_async_context(chat.subscribe(room_id))
            recorder = RoomRecorder(room_id, _subscription=subscription)
            task = asyncio.create_task(recorder.pump(subscription))
            stack.push_async_callback(_cancel, task)
            return recorder

        yield start


@pytest.fixture
async def spawn() -> AsyncIterator[Callable[[Any], asyncio.Task[Any]]]:
    """`spawn(coro)` starts a task; any still running when the test ends is cancelled."""
    tasks: list[asyncio.Task[Any]] = []

    def start(coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        tasks.append(task)
        return task

    yield start
    for task in tasks:
        await _cancel(task)


async def _cancel(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(task, WAIT)


@pytest.fixture
def steady_clock() -> Iterator[None]:
    """For the tests that time the coalescer: a collection of this process (100-140 ms
    here) would be measured as a late flush."""
    with no_collector_pauses():
        yield
