"""Model output is untrusted input: NUL characters, lone surrogates, wrong types and a database
that refuses a write must never leave a reply "streaming" without a heartbeat. On SQLite and
on PostgreSQL (a throwaway database per test), as the stored text must be the same on both."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from alembic import command
from stream_chat import assistant, chat, repo
from tests.assistant.conftest import alembic_config
from tests.assistant.support import generate, row
from tests.support.databases import POSTGRES_ADMIN, fresh_postgres_database
from tests.support.fake_openai import HttpError, Stream

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'assistant_test.db'}"
    else:
        name = f"stream_chat_assistant_{uuid.uuid4().hex[:12]}"
        url = fresh_postgres_database(name)
    repo.configure(url)
    command.upgrade(alembic_config(), "head")
    yield url
    repo.engine().dispose()
    if request.param == "postgres":
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize(
    "tokens",
    [
        pytest.param(["Hel", "lo\x00 wor", "\x00ld", "!"], id="nul"),
        # Sent as the JSON escape "\ud800": the client decodes it to a lone surrogate.
        pytest.param(["Hel", "lo\ud800 wor", "\udfffld", "!"], id="lone-surrogate"),
        pytest.param(["\x00Hel", "lo", "\ud800", " world!"], id="first-and-alone"),
    ],
)
async def test_nul_and_lone_surrogates_are_stripped_from_the_model_text(
    seed, configure, fake, record, tokens
):
    # A slow stream: the later text goes out through the coalescer's timer as well.
    configure(flush_max_delay=0.02)
    fake.script(Stream(tokens, delay=0.05))
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.DONE

    stored = row(reply.id)
    assert (stored.status, stored.content, stored.error) == (chat.DONE, "Hello world!", None)
    appended = [r.event for r in rec.appended(reply.id)]
    assert "".join(event["text"] for event in appended) == "Hello world!"
    assert len(appended) > 1


async def test_an_error_message_from_the_server_is_cleaned_too(seed, configure, fake):

    fake.script(HttpError(400, "bad\x00 req\ud800uest"))
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.FAILED

    assert row(reply.id).error == "The model server refused: 400 bad request"


async def test_usage_of_the_wrong_type_is_left_out(seed, configure, fake):
    fake.script(Stream(["Fine"], usage={"prompt_tokens": "many", "completion_tokens": 2**40}))
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.DONE

    stored = row(reply.id)
    assert (stored.content, stored.prompt_tokens, stored.completion_tokens) == ("Fine", None, None)


async def test_a_write_the_database_refuses_ends_the_reply_as_failed(
    seed, configure, fake, monkeypatch
):
    configure(flush_max_delay=0.02)
    fake.script(Stream([f"w{i} " for i in range(40)], delay=0.05))

    def refused(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(chat, "append_to_reply", refused)
    reply = assistant.request_reply(seed.question)

    # The stream takes 2 s; the refused write (from the coalescer's timer) ends it at once.
    assert await generate(reply.id, timeout=1.5) == chat.FAILED

    stored = row(reply.id)
    assert (stored.status, stored.error, stored.generation_id) == (
        chat.FAILED,
        assistant.SOMETHING_WENT_WRONG,
        None,
    )
    assert stored.content == "w0 "  # the first text, written before the database went away
    assert (await fake.wait_for_disconnect_async()).disconnected
