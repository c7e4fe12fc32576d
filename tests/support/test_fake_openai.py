"""The fake OpenAI server, exercised through the real ``openai.AsyncOpenAI`` client (httpx2)."""

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest

from tests.support.fake_openai import (
    Drop,
    FakeOpenAI,
    HttpError,
    MidStreamError,
    Stall,
    Stream,
)

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to the room"},
]


@pytest.fixture(scope="module")
def server():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset()
    yield server
    server.reset()


def client_for(fake, max_retries=0, read=5.0):
    return openai.AsyncOpenAI(
        base_url=fake.base_url,
        api_key="test",
        max_retries=max_retries,
        timeout=openai.Timeout(10.0, connect=2.0, read=read),
    )


@dataclass
class Result:
    text: str = ""
    finish_reason: str | None = None
    usage: object = None
    chunks: list = field(default_factory=list)


async def consume(stream, result=None):
    """The loop app code should use: tolerate chunks without choices (the usage chunk)."""
    result = result if result is not None else Result()
    async for chunk in stream:
        result.chunks.append(chunk)
        if chunk.usage is not None:
            result.usage = chunk.usage
        if not chunk.choices:  # [] from OpenAI, None from some local servers
            continue
        choice = chunk.choices[0]
        if choice.delta.content:
            result.text += choice.delta.content
        if choice.finish_reason is not None:
            result.finish_reason = choice.finish_reason
    return result


async def start_stream(client, **extra):
    return await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        **extra,
    )


# --------------------------------------------------------------------------- normal streams


async def test_stream_text_usage_and_log(fake):
    tokens = ["Hel", "lo", ", ", "room", "!"]
    fake.script(Stream(tokens))
    async with client_for(fake) as client:
        result = await consume(await start_stream(client))

    assert result.text == "Hello, room!"
    assert result.finish_reason == "stop"
    usage_chunk = result.chunks[-1]
    assert usage_chunk.choices == []
    with pytest.raises(IndexError):
        _ = usage_chunk.choices[0]  # what naive `chunk.choices[0]` code would hit
    assert result.usage.completion_tokens == len(tokens)
    assert result.usage.prompt_tokens == 8  # words in the messages
    assert result.usage.total_tokens == 8 + len(tokens)
    first = result.chunks[0]
    assert first.id.startswith("chatcmpl-")
    assert first.object == "chat.completion.chunk"
    assert first.model == "gpt-4o-mini"
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""

    [record] = fake.wait_for_requests(1)
    record = fake.wait_for_end(0)
    assert record.path == "/v1/chat/completions"
    assert record.retry_count == 0
    assert record.headers["authorization"] == "Bearer test"
    assert record.body["stream"] is True
    assert record.body["stream_options"] == {"include_usage": True}
    assert record.messages == MESSAGES
    assert record.response_kind == "Stream"
    assert record.status == 200
    assert record.end.outcome == "completed"
    assert record.end.tokens_sent == len(tokens)
    # role chunk + tokens + finish chunk + usage chunk + [DONE]
    assert record.end.events_sent == len(tokens) + 4


async def test_usage_choices_null_and_explicit_usage(fake):
    usage = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
    fake.script(Stream(["a", "b"], usage=usage, usage_choices="null", finish_reason="length"))
    async with client_for(fake) as client:
        result = await consume(await start_stream(client))
    assert result.text == "ab"
    assert result.finish_reason == "length"
    assert result.chunks[-1].choices is None
    got = result.usage
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens) == (11, 2, 13)


async def test_no_usage_stream(fake):
    fake.script(Stream(["x", "y"], usage=False), Stream(["z"]))
    async with client_for(fake) as client:
        disabled = await consume(await start_stream(client))
        not_requested = await consume(
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
        )
    assert (disabled.text, disabled.finish_reason, disabled.usage) == ("xy", "stop", None)
    assert all(chunk.choices for chunk in disabled.chunks)
    assert (not_requested.text, not_requested.usage) == ("z", None)
    assert all(chunk.choices for chunk in not_requested.chunks)


async def test_default_response_queue_and_non_streaming(fake):
    fake.script(Stream(["one"]))
    assert fake.pending() == 1
    async with client_for(fake) as client:
        assert (await consume(await start_stream(client))).text == "one"
        assert (await consume(await start_stream(client))).text == "Hello from the fake server."
        fake.set_default(Stream(["plain", " reply"]))
        completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        models = await client.models.list()
    assert completion.choices[0].message.content == "plain reply"
    assert completion.model == "gpt-4o"
    assert completion.usage.completion_tokens == 2
    assert "gpt-4o-mini" in [m.id for m in models.data]
    assert [r.path for r in fake.requests()] == [
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/v1/models",
    ]


async def test_close_delimited_stream_completes(fake):
    # HTTP/1.0-style framing (no length, no chunking, connection: close), as some proxies send.
    fake.script(Stream(["a", "b"], framing="close"))
    async with client_for(fake) as client:
        result = await consume(await start_stream(client))
    assert (result.text, result.finish_reason) == ("ab", "stop")
    assert fake.wait_for_end(0).end.outcome == "completed"


async def test_token_pacing_and_keepalive_comments_reset_read_timeout(fake):
    # 1 s of silence before the first token, but a comment every 0.2 s: a 0.5 s read timeout
    # (the idle watchdog) never fires, and the comments never show up as chunks.
    fake.script(
        Stream(["a", "b", "c", "d"], first_delay=1.0, keepalive_every=0.2, tokens_per_second=20)
    )
    async with client_for(fake, read=0.5) as client:
        started = time.monotonic()
        result = await consume(await start_stream(client))
        elapsed = time.monotonic() - started
    assert result.text == "abcd"
    assert 1.1 <= elapsed < 3.0


# --------------------------------------------------------------------------- errors and retries


async def test_429_with_retry_after_then_success(fake):
    fake.script(HttpError(429, "Rate limit reached", retry_after=0.4), Stream(["ok"]))
    async with client_for(fake, max_retries=2) as client:
        result = await consume(await start_stream(client))
    assert result.text == "ok"
    first, second = fake.requests()
    assert (first.status, first.retry_count) == (429, 0)
    assert (second.status, second.retry_count) == (200, 1)
    waited = second.arrived_monotonic - first.end.monotonic
    assert 0.35 <= waited < 1.5


async def test_retry_after_ms_is_preferred(fake):
    fake.script(HttpError(503, "busy", retry_after=60, retry_after_ms=100), Stream(["ok"]))
    async with client_for(fake, max_retries=1) as client:
        started = time.monotonic()
        assert (await consume(await start_stream(client))).text == "ok"
        assert time.monotonic() - started < 2.0
    assert [r.retry_count for r in fake.requests()] == [0, 1]


async def test_500_three_times_exhausts_retries(fake):
    fake.script(*[HttpError(500, "boom", retry_after_ms=50) for _ in range(3)], Stream(["never"]))
    async with client_for(fake, max_retries=2) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await start_stream(client)
    assert caught.value.status_code == 500
    assert caught.value.body["message"] == "boom"
    assert caught.value.body["type"] == "server_error"
    requests = fake.requests()
    assert [r.retry_count for r in requests] == [0, 1, 2]
    assert fake.pending() == 1


async def test_should_retry_false_and_status_classes(fake):
    fake.script(
        HttpError(500, "no retry", should_retry=False),
        HttpError(401, "bad key"),
        HttpError(400, "bad request", code="context_length_exceeded"),
    )
    async with client_for(fake, max_retries=2) as client:
        with pytest.raises(openai.InternalServerError):
            await start_stream(client)
        with pytest.raises(openai.AuthenticationError) as auth:
            await start_stream(client)
        with pytest.raises(openai.BadRequestError) as bad:
            await start_stream(client)
    assert auth.value.code == "invalid_api_key"
    assert bad.value.code == "context_length_exceeded"
    assert len(fake.requests()) == 3


async def test_mid_stream_error_raises_api_error(fake):
    fake.script(MidStreamError(["par", "tial"], "The model crashed"))
    result = Result()
    async with client_for(fake, max_retries=2) as client:
        stream = await start_stream(client)
        with pytest.raises(openai.APIError) as caught:
            await consume(stream, result)
    assert not isinstance(caught.value, openai.APIStatusError)
    assert caught.value.message == "The model crashed"
    assert result.text == "partial"
    assert len(fake.requests()) == 1  # mid-stream failures are never retried


async def test_stall_hits_read_timeout(fake):
    fake.script(Stall(["a"], stall_for=10))
    result = Result()
    async with client_for(fake, max_retries=2, read=0.5) as client:
        stream = await start_stream(client)
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await consume(stream, result)
        elapsed = time.monotonic() - started
    assert result.text == "a"
    assert elapsed < 1.2
    record = await fake.wait_for_disconnect_async(timeout=1.0)
    assert record.end.tokens_sent == 1
    assert len(fake.requests()) == 1


async def test_drop_with_close_delimited_body_ends_silently(fake):
    fake.script(Drop(["cut", " off"], framing="close"))
    async with client_for(fake, max_retries=2) as client:
        result = await consume(await start_stream(client))
    assert result.text == "cut off"
    assert result.finish_reason is None  # the only sign of the interruption
    record = fake.wait_for_end(0)
    assert record.end.outcome == "server_closed"
    assert len(fake.requests()) == 1


async def test_drop_after_clean_chunked_end_ends_silently(fake):
    fake.script(Drop(["cut"], end_cleanly=True))
    async with client_for(fake) as client:
        result = await consume(await start_stream(client))
    assert (result.text, result.finish_reason) == ("cut", None)


async def test_drop_mid_chunked_body_raises_connection_error(fake):
    # Real servers (OpenAI, vLLM, Ollama) stream with chunked encoding; a connection that dies
    # mid-body is an incomplete chunked read, which the client reports, and does not retry.
    fake.script(Drop(["cut"]))
    result = Result()
    async with client_for(fake, max_retries=2) as client:
        stream = await start_stream(client)
        with pytest.raises(openai.APIConnectionError):
            await consume(stream, result)
    assert (result.text, result.finish_reason) == ("cut", None)
    assert len(fake.requests()) == 1


# --------------------------------------------------------------------------- cancellation


async def test_cancelling_the_task_mid_stream_is_seen_by_the_server(fake):
    fake.script(Stream([f"t{i} " for i in range(200)], delay=0.05))
    result = Result()
    async with client_for(fake) as client:
        task = asyncio.create_task(consume(await start_stream(client), result))
        while result.text.count(" ") < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        cancelled_at = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        record = await fake.wait_for_disconnect_async(timeout=1.0)
    assert record.end.outcome == "client_disconnected"
    assert 3 <= record.end.tokens_sent < 10
    assert record.end.monotonic - cancelled_at < 1.0


async def test_stream_close_is_seen_by_the_server(fake):
    fake.script(Stream(["a", "b", "c", "d", "e"], delay=0.2))
    async with client_for(fake) as client:
        stream = await start_stream(client)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content == "a":
                break
        await stream.close()
        closed_at = time.monotonic()
        record = await fake.wait_for_disconnect_async(timeout=1.0)
    assert record.end.tokens_sent in (1, 2)
    assert record.end.monotonic - closed_at < 1.0


async def test_cancel_before_first_token(fake):
    fake.script(Stream(["late"], first_delay=5.0))
    async with client_for(fake) as client:
        stream = await start_stream(client)  # the 200 headers have arrived
        task = asyncio.create_task(consume(stream))
        await asyncio.sleep(0.2)
        task.cancel()
        cancelled_at = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        record = await fake.wait_for_disconnect_async(timeout=1.0)
    assert (record.end.events_sent, record.end.tokens_sent) == (0, 0)
    assert record.end.monotonic - cancelled_at < 1.0


async def test_cancel_before_the_response_headers(fake):
    fake.script(Stream(["late"], headers_delay=5.0))
    async with client_for(fake) as client:
        task = asyncio.create_task(start_stream(client))
        await asyncio.sleep(0.2)
        task.cancel()
        cancelled_at = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        record = await fake.wait_for_disconnect_async(timeout=1.0)
    assert record.status is None
    assert record.end.monotonic - cancelled_at < 1.0


async def test_wait_for_disconnect_times_out_with_the_log(fake):
    fake.script(Stream(["quick"]))
    async with client_for(fake) as client:
        await consume(await start_stream(client))
    with pytest.raises(TimeoutError, match="completed"):
        await fake.wait_for_disconnect_async(timeout=0.2)


# --------------------------------------------------------------------------- process lifecycle


def alive(pid):
    """Running (a zombie waiting for an init that reaps late counts as dead)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_stop_ends_the_process():
    fake = FakeOpenAI().start()
    pid = fake.pid
    fake.stop()
    assert not alive(pid)
    fake.stop()  # idempotent


def test_server_exits_when_its_parent_dies(tmp_path):
    root = Path(__file__).resolve().parents[2]
    script = textwrap.dedent(
        """
        import sys, time
        from tests.support.fake_openai import FakeOpenAI
        fake = FakeOpenAI().start()
        print(fake.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=root, stdout=subprocess.PIPE, text=True
    )
    try:
        server_pid = int(parent.stdout.readline())
        parent.kill()
        parent.wait(timeout=5)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and alive(server_pid):
            time.sleep(0.05)
        if alive(server_pid):
            os.kill(server_pid, 9)
            pytest.fail("the fake server outlived its parent")
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.stdout.close()
