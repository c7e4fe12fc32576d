"""`assistant.generate` against a real OpenAI-compatible SSE server (tests/support/fake_openai.py).

Each test seeds a fresh database, subscribes to the room before anything is generated, and
checks three things: what the room's members were sent, what the database ends with, and what
the model server saw (requests, retries, disconnects).
"""

import asyncio
import itertools
import time

import pytest

from stream_chat import assistant, chat
from tests.assistant.support import (
    ask,
    generate,
    row,
    wait_stop_listener,
)
from tests.support.fake_openai import Drop, HttpError, MidStreamError, Stall, Stream

pytestmark = pytest.mark.timeout(30)

USAGE = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}


def assert_appends_are_contiguous(appended, content):
    """Offsets follow each other (no gap, no repeat) and the texts add up to the content."""
    offset = 0
    for recorded in appended:
        event = recorded.event
        assert event["offset"] == offset, [r.event for r in appended]
        assert event["text"], "an appended event without text"
        offset += len(event["text"])
    assert "".join(r.event["text"] for r in appended) == content


# --------------------------------------------------------------------------- 1, 2: normal streams


async def test_normal_stream_events_row_and_request(seed, configure, fake, record):
    settings = configure(model="gpt-fake")
    tokens = ["The ", "thread ", "is ", "a ", "greeting", "."]
    fake.script(Stream(tokens, delay=0.02, usage=USAGE))
    rec = await record(seed.room.id)

    reply = assistant.request_reply(seed.question)
    status = await generate(reply.id)

    assert status == chat.DONE
    stored = row(reply.id)
    assert stored.status == chat.DONE
    assert stored.content == "".join(tokens)
    assert (stored.prompt_tokens, stored.completion_tokens) == (42, 7)
    assert stored.generation_id is None
    assert stored.error is None
    assert stored.requested_by_id == seed.alice.id
    assert stored.sender_id == seed.bot.id

    assert rec.timeline(reply.id) == [
        ("created", chat.QUEUED),
        ("patched", chat.THINKING),
        # The first text comes with the new status, in one broadcast.
        ("appended", chat.STREAMING),
        ("patched", chat.DONE),
    ], rec.describe_all()
    updates = rec.updates(reply.id)
    thinking, streaming, done = (u.reply for u in updates[1:])
    generation_id = thinking["generation_id"]
    assert generation_id
    assert done["generation_id"] == ""  # None in the row, "" in a MessageRow
    assert (done["prompt_tokens"], done["completion_tokens"]) == (42, 7)
    # The text went out in the appends; the status changes do not carry it again.
    assert set(thinking) == set(done) == set(chat.REPLY_FIELDS)
    assert streaming == {"status": chat.STREAMING}

    appended = rec.appended(reply.id)
    assert appended
    assert {r.event["generation_id"] for r in appended} == {generation_id}
    assert_appends_are_contiguous(appended, stored.content)

    [request] = await fake.requests_async()
    assert request.model == "gpt-fake"
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.headers["authorization"] == "Bearer test"
    assert request.messages == [
        {"role": "system", "content": settings.system_prompt},
        {"role": "user", "content": "Alice: Hi all"},
        {"role": "user", "content": "Bob: Hello Alice"},
        {"role": "assistant", "content": "An earlier answer."},
        {"role": "user", "content": "Alice: @assistant summarize the thread please"},
    ]


async def test_the_request_is_what_the_typed_create_sends(seed, configure, fake):
    """`open_stream` skips `chat.completions.create`'s parameter transform; the model server
    must not be able to tell: same body, same auth, same client headers."""
    settings = configure(model="gpt-fake")
    messages = assistant.build_prompt(seed.room.id, seed.question.id, settings)
    fake.script(Stream(["a"]), Stream(["a"]))

    async with await assistant.open_stream(settings, messages) as stream:
        [chunk async for chunk in stream]
    typed = await settings.client().chat.completions.create(
        model=settings.model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    async with typed:
        [chunk async for chunk in typed]

    ours, theirs = await fake.requests_async()
    assert (ours.method, ours.path) == (theirs.method, theirs.path)
    assert ours.body == theirs.body
    assert len(ours.messages) == 5
    assert ours.headers["authorization"] == theirs.headers["authorization"] == "Bearer test"
    for name in ("content-type", "accept", "user-agent", "x-stainless-retry-count"):
        assert ours.headers.get(name) == theirs.headers.get(name), name


@pytest.mark.parametrize(
    ("response", "tokens"),
    [
        pytest.param(Stream(["No ", "usage"], usage=False), (None, None), id="no-usage"),
        pytest.param(
            Stream(["Null ", "choices"], usage=USAGE, usage_choices="null"),
            (42, 7),
            id="usage-with-null-choices",
        ),
    ],
)
async def test_usage_is_optional(seed, configure, fake, record, response, tokens):
    fake.script(response)
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.DONE

    stored = row(reply.id)
    assert stored.content == "".join(response.tokens)
    assert (stored.prompt_tokens, stored.completion_tokens) == tokens
    assert stored.error is None
    assert rec.updates(reply.id)[-1].reply["status"] == chat.DONE
    assert assistant.usage_note(*tokens) == ("" if tokens == (None, None) else "42 + 7 tokens")


# --------------------------------------------------------------------------- 3-7: faults


async def test_429_is_retried_after_retry_after(seed, configure, fake):
    configure(max_retries=2)
    fake.script(HttpError(429, "slow down", retry_after=0.3), Stream(["Second ", "time"]))
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.DONE

    assert row(reply.id).content == "Second time"
    first, second = await fake.requests_async()
    assert (first.status, second.status) == (429, 200)
    assert (first.retry_count, second.retry_count) == (0, 1)
    assert second.arrived_monotonic - first.end.monotonic >= 0.25


async def test_500_after_retries_fails_with_the_status(seed, configure, fake, record):
    configure(max_retries=2)
    # retry-after-ms keeps the client's backoff short; the retries are the point, not the wait.
    fake.script(*[HttpError(500, "the model is on fire", retry_after_ms=20)] * 3)
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.FAILED

    stored = row(reply.id)
    assert stored.status == "error"
    assert "500" in stored.error
    assert "the model is on fire" in stored.error
    assert stored.content == ""
    assert stored.generation_id is None
    assert rec.updates(reply.id)[-1].reply["status"] == "error"
    assert not rec.appended(reply.id)
    question = seed.messages[-1]
    assert row(question.id).content == question.content  # the asker's message is untouched
    requests = await fake.requests_async()
    assert [r.status for r in requests] == [500, 500, 500]
    assert [r.retry_count for r in requests] == [0, 1, 2]


async def test_mid_stream_error_keeps_the_partial_text(seed, configure, fake, record):
    configure(max_retries=2)
    fake.script(MidStreamError(["Half ", "way"], message="overloaded mid-reply", delay=0.02))
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.FAILED

    stored = row(reply.id)
    assert stored.status == "error"
    assert stored.content == "Half way"
    assert "overloaded mid-reply" in stored.error
    assert_appends_are_contiguous(rec.appended(reply.id), "Half way")
    assert len(await fake.requests_async()) == 1  # a failure mid-stream is never retried


async def test_stall_past_the_idle_timeout_interrupts(seed, configure, fake):
    configure(idle_timeout=0.5, max_retries=2)
    fake.script(Stall(["Still ", "thinking"], stall_for=10))
    reply = assistant.request_reply(seed.question)

    started = time.monotonic()
    assert await generate(reply.id) == chat.INTERRUPTED
    elapsed = time.monotonic() - started

    assert elapsed < 2.0
    stored = row(reply.id)
    assert stored.status == chat.INTERRUPTED
    assert stored.content == "Still thinking"
    assert "idle" in stored.error
    record_ = await fake.wait_for_disconnect_async(timeout=2.0)
    assert record_.end.tokens_sent == 2
    assert len(await fake.requests_async()) == 1


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(Drop(["Cut ", "off"], delay=0.02), id="chunked-drop"),
        pytest.param(Drop(["Cut ", "off"], delay=0.02, framing="close"), id="close-delimited"),
    ],
)
async def test_dropped_connection_interrupts(seed, configure, fake, record, response):
    configure(max_retries=2)
    fake.script(response)
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.INTERRUPTED

    stored = row(reply.id)
    assert stored.status == chat.INTERRUPTED
    assert stored.content == "Cut off"
    assert stored.error
    assert stored.generation_id is None
    assert_appends_are_contiguous(rec.appended(reply.id), "Cut off")
    assert len(await fake.requests_async()) == 1


# --------------------------------------------------------------------------- 8, 9: stop


async def test_stop_mid_stream(seed, configure, fake, record, spawn):
    fake.script(Stream([f"word{i} " for i in range(100)], delay=0.02))
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)
    task = spawn(generate(reply.id))

    await rec.wait_text(reply.id, length=len("word0 word1 "))
    chat.request_stop(reply.id, seed.alice.id, seed.room.id)
    record_ = await fake.wait_for_disconnect_async(timeout=2.0)
    assert await asyncio.wait_for(task, 5) == chat.STOPPED

    assert record_.end.tokens_sent < 100
    stored = row(reply.id)
    assert stored.status == chat.STOPPED
    assert stored.generation_id is None
    assert stored.content.startswith("word0 word1 ")
    assert len(stored.content) < len("".join(f"word{i} " for i in range(100)))
    stopped = await rec.wait_status(reply.id, chat.STOPPED)
    assert "content" not in stopped.reply  # members have the text from the appends
    after = rec.of(reply.id)[rec.of(reply.id).index(stopped) + 1 :]
    assert not [r for r in after if r.event["kind"] == "appended"]
    assert_appends_are_contiguous(rec.appended(reply.id), stored.content)


async def test_stop_before_the_first_token(seed, configure, fake, record, spawn):
    fake.script(Stream(["Too ", "late"], first_delay=3))
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)
    task = spawn(generate(reply.id))

    await rec.wait_status(reply.id, chat.THINKING)
    await asyncio.to_thread(fake.wait_for_requests, 1, 2.0)
    await wait_stop_listener(reply.id)
    stopped_at = time.monotonic()
    chat.request_stop(reply.id, seed.alice.id, seed.room.id)
    record_ = await fake.wait_for_disconnect_async(timeout=2.0)
    assert await asyncio.wait_for(task, 5) == chat.STOPPED

    assert record_.end.tokens_sent == 0
    assert record_.end.monotonic - stopped_at < 1.0  # not at the end of the 3 s pause
    stored = row(reply.id)
    assert (stored.status, stored.content, stored.generation_id) == (chat.STOPPED, "", None)
    assert not rec.appended(reply.id)


# --------------------------------------------------------------------------- 10: stale chunks


async def test_replaced_attempt_stops_writing(seed, configure, fake, record, spawn):
    fake.script(Stream([f"old{i} " for i in range(60)], delay=0.02))
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)
    task = spawn(generate(reply.id))

    thinking = await rec.wait_status(reply.id, chat.THINKING)
    old_generation = thinking.reply["generation_id"]
    await rec.wait_text(reply.id, length=len("old0 old1 "))
    # What a retry elsewhere would leave: a new attempt owns the reply.
    chat.update_reply(reply.id, generation_id="new-attempt", status=chat.STREAMING, content="New")
    replaced = await rec.wait_for(
        lambda e: e["kind"] == "updated" and e["message"]["generation_id"] == "new-attempt"
    )

    result = await asyncio.wait_for(task, 5)
    record_ = await fake.wait_for_disconnect_async(timeout=2.0)

    assert result != chat.DONE
    assert record_.end.tokens_sent < 60  # the old attempt hung up rather than read on
    stale = [
        r.event
        for r in rec.events[rec.index_of(replaced) + 1 :]
        if r.event["kind"] == "appended" and r.event["generation_id"] == old_generation
    ]
    assert stale == []
    assert rec.updates(reply.id)[-1] is replaced  # no update from the old attempt after it
    stored = row(reply.id)
    assert (stored.generation_id, stored.status, stored.content) == (
        "new-attempt",
        chat.STREAMING,
        "New",
    )


@pytest.mark.parametrize("ending", ["stream-ends", "stop"])
async def test_replaced_attempt_never_overwrites_after_its_last_flush(
    seed, configure, fake, record, spawn, ending
):
    # "Hello" and " world", then a pause, then an empty delta and the finish: the attempt has
    # flushed everything when it is replaced, so no append can tell it that it was replaced.
    fake.script(Stream(["Hello", " world", ""], delay=0.4))
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)
    task = spawn(generate(reply.id))

    await rec.wait_text(reply.id, length=len("Hello world"))
    chat.update_reply(reply.id, generation_id="new-attempt", status=chat.STREAMING, content="New")
    if ending == "stop":
        chat.request_stop(reply.id, seed.alice.id, seed.room.id)
    await asyncio.wait_for(task, 5)

    stored = row(reply.id)
    assert (stored.generation_id, stored.status, stored.content) == (
        "new-attempt",
        chat.STREAMING,
        "New",
    )


# --------------------------------------------------------------------------- 11: coalescing


async def test_text_is_coalesced_and_the_first_text_sent_at_once(
    seed, configure, fake, record, steady_clock
):
    configure(flush_interval=0.05)
    tokens = [f"t{i} " for i in range(300)]
    first_delay = 0.2
    fake.script(Stream(tokens, tokens_per_second=1000, first_delay=first_delay))
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.DONE

    stored = row(reply.id)
    assert stored.content == "".join(tokens)
    appended = rec.appended(reply.id)
    streaming = await rec.wait_status(reply.id, chat.STREAMING)
    done = await rec.wait_status(reply.id, chat.DONE)
    duration = done.at - appended[0].at
    # Coalesced: no more updates than flush intervals (a busy machine only makes fewer).
    # How soon each one leaves is the flush rules' business (tested on a moved clock below)
    # and bench/llm_stream.py's, which measures it; a timed assertion here would be flaky.
    assert 2 <= len(appended) <= duration / 0.05 + 3, (len(appended), duration)
    assert appended[0].at >= streaming.at
    assert_appends_are_contiguous(appended, stored.content)


async def test_the_first_text_is_not_held_for_the_flush_interval(
    seed, configure, fake, record, steady_clock
):
    # With a long interval, holding the first text back until the next tick would show.
    configure(flush_interval=0.5)
    # The first token leaves 0.3 s after the headers, the next ones 0.3 s apart: the first
    # tick (0.5 s) falls between tokens, with the stream still open.
    fake.script(Stream(["First", " then", " more"], delay=0.3))
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.DONE

    appended = rec.appended(reply.id)
    # Sent alone, before the next token: had it waited for the 0.5 s tick, " then" (0.3 s
    # later) would have joined it.
    assert appended[0].event["text"] == "First"
    assert_appends_are_contiguous(appended, "First then more")


# --------------------------------------------------------------------------- 12: one per room


def _request_for(requests, text):
    """The request whose prompt contains `text`."""
    [found] = [r for r in requests if any(text in m["content"] for m in r.messages)]
    return found


async def test_one_generation_per_room(seed, configure, fake, record, spawn):
    fake.set_default(Stream([f"w{i} " for i in range(8)], delay=0.06))
    rec = await record(seed.room.id)
    first = assistant.request_reply(seed.question)
    second = ask(seed.room.id, seed.bob.id)
    elsewhere = ask(seed.other_room.id, seed.bob.id)
    tasks = [spawn(generate(reply.id)) for reply in (second, first, elsewhere)]

    await rec.wait_text(first.id, length=len("w0 w1 "))
    assert row(second.id).status == chat.QUEUED
    assert row(elsewhere.id).status in (chat.THINKING, chat.STREAMING)
    assert len(await fake.requests_async()) == 2

    results = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert results == [chat.DONE] * 3

    first_done = await rec.wait_status(first.id, chat.DONE)
    second_updates = rec.updates(second.id)
    statuses = [u.reply["status"] for u in second_updates]
    assert statuses == [chat.QUEUED, chat.THINKING, chat.STREAMING, chat.DONE]
    assert rec.index_of(second_updates[1]) > rec.index_of(first_done)
    assert all(rec.index_of(a) > rec.index_of(first_done) for a in rec.appended(second.id))

    requests = await fake.requests_async()
    assert len(requests) == 3
    # The first reply is not in the second's prompt while it is unfinished, but is once done:
    # that is how the requests are told apart.
    [first_request, second_request] = [
        r for r in requests if r.messages[1]["content"] == "Alice: Hi all"
    ]
    other_request = _request_for(requests, "Over in the other room")
    assert second_request.messages[-2] == {"role": "assistant", "content": row(first.id).content}
    assert second_request.messages[-1] == {
        "role": "user",
        "content": "Bob: @assistant what do you think?",
    }
    assert second_request.arrived_monotonic >= first_request.end.monotonic
    assert other_request.arrived_monotonic < first_request.end.monotonic


async def test_stopping_a_queued_reply_sends_nothing(seed, configure, fake, record, spawn):
    fake.set_default(Stream([f"w{i} " for i in range(10)], delay=0.05))
    rec = await record(seed.room.id)
    first = assistant.request_reply(seed.question)
    queued = ask(seed.room.id, seed.bob.id)
    first_task = spawn(generate(first.id))
    queued_task = spawn(generate(queued.id))

    await rec.wait_text(first.id)
    await wait_stop_listener(queued.id)
    chat.request_stop(queued.id, seed.bob.id, seed.room.id)

    assert await asyncio.wait_for(queued_task, 2) == chat.STOPPED
    assert row(queued.id).status == chat.STOPPED
    assert row(first.id).status == chat.STREAMING
    assert await asyncio.wait_for(first_task, 5) == chat.DONE
    assert [r.status for r in await fake.requests_async()] == [200]
    assert [u.reply["status"] for u in rec.updates(queued.id)] == [
        chat.QUEUED,
        chat.STOPPED,
    ]
    assert not rec.appended(queued.id)
    # A later request in the room is not held up by the stopped one.
    later = assistant.request_reply(seed.question)
    assert await generate(later.id) == chat.DONE


async def test_generate_ignores_a_reply_that_is_not_queued(seed, configure, fake):
    reply = assistant.request_reply(seed.question)
    chat.update_reply(reply.id, status=chat.STOPPED)
    assert await generate(reply.id) == chat.STOPPED
    assert await generate(reply.id + 1000) == "missing"
    assert await fake.requests_async() == []


async def test_two_runs_of_one_reply_make_one_request(seed, configure, fake, record, spawn):
    # A double-clicked Retry, or two workers taking over the same reply: both runs wait
    # behind an earlier reply, both see it finish, and only one claim of theirs wins.
    fake.set_default(Stream([f"w{i} " for i in range(5)], delay=0.02))
    rec = await record(seed.room.id)
    earlier = ask(seed.room.id, seed.bob.id)
    reply = assistant.request_reply(seed.question)
    runs = [spawn(generate(earlier.id)), spawn(generate(reply.id)), spawn(generate(reply.id))]

    results = await asyncio.wait_for(asyncio.gather(*runs), 10)

    assert results[0] == chat.DONE
    assert sorted(results[1:]) == [chat.DONE, "superseded"]
    assert len(await fake.requests_async()) == 2
    assert row(reply.id).content == "w0 w1 w2 w3 w4 "
    assert [u.reply["status"] for u in rec.updates(reply.id)].count(chat.THINKING) == 1


# --------------------------------------------------------------------------- coalescing policy


async def test_fast_text_leaves_in_chunks_no_closer_than_the_interval(
    steady_clock, seed, configure, fake, record
):
    configure(flush_interval=0.05, flush_min_chars=200, flush_max_delay=0.5)
    # 10,000 characters a second: 200 gather in 20 ms, so the interval is what holds them.
    tokens = ["abcd "] * 1000
    fake.script(Stream(tokens, tokens_per_second=2000))
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.DONE

    appended = rec.appended(reply.id)
    assert_appends_are_contiguous(appended, "".join(tokens))
    middle = appended[1:-1]
    assert middle, [len(a.event["text"]) for a in appended]
    assert all(len(a.event["text"]) >= 200 for a in middle), [len(a.event["text"]) for a in middle]
    # The last one goes when the stream ends, without waiting.
    gaps = [b.at - a.at for a, b in itertools.pairwise(appended[:-1])]
    assert min(gaps) > 0.04, gaps


async def test_slow_text_waits_no_longer_than_the_max_delay(
    seed, configure, fake, record, steady_clock
):
    configure(flush_interval=0.05, flush_min_chars=10_000, flush_max_delay=0.15)
    tokens = [f"w{i} " for i in range(24)]
    fake.script(Stream(tokens, delay=0.03))
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.DONE

    appended = rec.appended(reply.id)
    assert_appends_are_contiguous(appended, "".join(tokens))
    # ~0.7 s of text never reaches 10,000 characters: the delay alone sends it, in pieces,
    # each piece sent about 0.15 s after its first token left the server (token k leaves
    # (k + 1) x 0.03 s after the request arrived; the machine's clock is shared).
    [request] = await fake.requests_async()
    assert len(appended) >= 4, [a.event["text"] for a in appended]
    token_starts = list(itertools.accumulate((len(t) for t in tokens), initial=0))
    waits = []
    for append in appended[1:]:
        first_token = token_starts.index(append.event["offset"])
        left_server = request.arrived_monotonic + (first_token + 1) * 0.03
        waits.append(append.at - left_server)
    # Held for the delay (a busy machine only holds them longer); that none is held much
    # longer is the flush rules' promise, tested on a moved clock below.
    assert min(waits[:-1]) > 0.15 - 0.02, waits


# --------------------------------------------------------------------------- the flush rules
# On a clock the test moves: when each flush is due, with no timing of a real run.


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Sent:
    """An attempt whose sends are recorded with the clock's time, not written anywhere."""

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.reply_id = 1
        self.superseded = False
        self.unsent_chars = 0
        self._unsent: list[str] = []
        self.sends: list[tuple[float, str]] = []

    def add_text(self, text: str) -> None:
        self._unsent.append(text)
        self.unsent_chars += len(text)

    def start_text(self) -> None:
        self.flush()

    def flush(self) -> None:
        if self.unsent_chars:
            self.sends.append((self.clock.now, "".join(self._unsent)))
            self._unsent, self.unsent_chars = [], 0


def _coalescer(**settings: float):
    clock = _Clock()
    attempt = _Sent(clock)
    config = assistant.AssistantConfig(**settings)
    return clock, attempt, assistant._Coalescer(attempt, config, clock=clock)


def test_the_first_text_leaves_at_once():
    _, attempt, coalescer = _coalescer(flush_interval=0.5)
    coalescer.note_text("First")
    assert attempt.sends == [(100.0, "First")]
    assert coalescer._flush_due() is None


def test_enough_text_waits_for_the_interval_then_leaves_with_the_token_that_completes_it():
    clock, attempt, coalescer = _coalescer(
        flush_interval=0.05, flush_min_chars=10, flush_max_delay=0.5
    )
    coalescer.note_text("a")
    clock.now += 0.01
    coalescer.note_text("0123456789")
    # Enough text, but within the interval of the first send: due at the interval's end.
    assert attempt.sends == [(100.0, "a")]
    assert coalescer._flush_due() == pytest.approx(100.05)
    clock.now = 100.06
    coalescer.note_text("more")
    assert attempt.sends[-1] == (100.06, "0123456789more")
    assert coalescer._flush_due() is None


def test_little_text_is_due_after_the_max_delay_from_its_first_piece():
    clock, attempt, coalescer = _coalescer(
        flush_interval=0.05, flush_min_chars=10_000, flush_max_delay=0.15
    )
    coalescer.note_text("a")
    clock.now += 1.0
    coalescer.note_text("b")
    clock.now += 0.1
    coalescer.note_text("c")
    assert attempt.sends == [(100.0, "a")]
    # Counted from "b", the oldest unsent piece, not from the newest.
    assert coalescer._flush_due() == pytest.approx(101.15)


def test_a_flush_is_due_no_later_than_the_max_delay_however_much_text_waits():
    clock, _, coalescer = _coalescer(flush_interval=10.0, flush_min_chars=1, flush_max_delay=0.15)
    coalescer.note_text("a")
    clock.now += 0.01
    coalescer.note_text("bcd")
    # The interval (10 s) would allow later; the max delay does not.
    assert coalescer._flush_due() == pytest.approx(100.16)
