"""Replies whose worker died (no heartbeat for `ABANDONED_AFTER_IDLE`) are marked interrupted,
their text kept, by a sweep that every worker runs at start and every `SWEEP_INTERVAL`, and
that the room page runs for its room; replies with a live worker, anywhere, are left alone."""

import asyncio
from datetime import timedelta

import pytest

from stream_chat import assistant, chat
from tests.assistant.support import age_reply, ask, generate, reply_with_status, row, wait_until
from tests.support.fake_openai import Stream

pytestmark = pytest.mark.timeout(30)


def _orphan(room_id: int, user_id: int, status: str, content: str, silent_for: float) -> int:
    reply = reply_with_status(room_id, user_id, status, content)
    if status != chat.QUEUED:
        chat.update_reply(reply.id, generation_id="dead-worker")
    age_reply(reply.id, silent_for)
    return reply.id  # type: ignore[return-value]


async def test_only_unfinished_replies_silent_past_the_bound_are_interrupted(seed, record):
    rec = await record(seed.room.id)
    silent = assistant.ABANDONED_AFTER_IDLE.total_seconds() + 1
    fresh = assistant.ABANDONED_AFTER_IDLE.total_seconds() - 3
    room, bob = seed.room.id, seed.bob.id
    dead_streaming = _orphan(room, bob, chat.STREAMING, "Half a repl", silent)
    dead_thinking = _orphan(room, bob, chat.THINKING, "", silent)
    dead_queued = _orphan(room, bob, chat.QUEUED, "", silent)
    live_streaming = _orphan(room, bob, chat.STREAMING, "Being written", fresh)
    live_queued = _orphan(room, bob, chat.QUEUED, "", fresh)
    old_done = _orphan(room, bob, chat.DONE, "Finished long ago", 3600)
    old_stopped = _orphan(room, bob, chat.STOPPED, "Stopped long ago", 3600)
    elsewhere = _orphan(seed.other_room.id, bob, chat.STREAMING, "Other room", silent)

    assert assistant.interrupt_abandoned_replies(room) == [
        dead_streaming,
        dead_thinking,
        dead_queued,
    ]

    for reply_id, content in [(dead_streaming, "Half a repl"), (dead_thinking, "")]:
        stored = row(reply_id)
        assert (stored.status, stored.content, stored.generation_id, stored.error) == (
            chat.INTERRUPTED,
            content,
            None,
            assistant.WORKER_WENT_AWAY,
        )
    assert row(dead_queued).status == chat.INTERRUPTED
    assert [row(r).status for r in (live_streaming, live_queued, old_done, old_stopped)] == [
        chat.STREAMING,
        chat.QUEUED,
        chat.DONE,
        chat.STOPPED,
    ]
    assert row(elsewhere).status == chat.STREAMING  # another room's page did not ask
    # Every member hears it, as a patch of the status fields (the text stays as it is).
    patch = await rec.wait_status(dead_streaming, chat.INTERRUPTED)
    assert patch.event["kind"] == "patched"
    assert patch.reply == {
        "status": chat.INTERRUPTED,
        "error": assistant.WORKER_WENT_AWAY,
        "generation_id": "",
    }
    # Idempotent: a second sweep (another worker's) finds nothing.
    assert assistant.interrupt_abandoned_replies(room) == []
    # Without a room, the sweep covers every room.
    assert assistant.interrupt_abandoned_replies() == [elsewhere]


async def test_a_live_generation_is_never_swept_even_before_the_model_answers(
    seed, configure, fake, monkeypatch, spawn
):
    monkeypatch.setattr(assistant, "ABANDONED_AFTER_IDLE", timedelta(seconds=0.3))
    configure(idle_timeout=3.0)
    # The model takes 1 s to send its headers, then 1 s of text, each longer than the bound;
    # the second reply waits in the queue all that time.
    fake.set_default(Stream([f"w{i} " for i in range(10)], delay=0.1, headers_delay=1.0))
    ahead = ask(seed.room.id, seed.bob.id)
    reply = assistant.request_reply(seed.question)
    runs = [spawn(generate(ahead.id)), spawn(generate(reply.id))]
    swept: list[int] = []
    while not all(run.done() for run in runs):
        swept += assistant.interrupt_abandoned_replies()
        await asyncio.sleep(0.05)

    assert swept == []
    assert [run.result() for run in runs] == [chat.DONE, chat.DONE]
    assert row(reply.id).content == "".join(f"w{i} " for i in range(10))


async def test_every_worker_sweeps_at_start_and_then_periodically(seed, monkeypatch, spawn):
    monkeypatch.setattr(assistant, "SWEEP_INTERVAL", timedelta(seconds=0.05))
    silent = assistant.ABANDONED_AFTER_IDLE.total_seconds() + 1
    at_start = _orphan(seed.room.id, seed.bob.id, chat.STREAMING, "Hal", silent)
    sweeper = spawn(assistant.sweep_abandoned_replies())
    await wait_until(lambda: row(at_start).status == chat.INTERRUPTED, timeout=1)

    # A reply whose worker dies while this worker runs, in a room nobody has open.
    later = _orphan(seed.other_room.id, seed.bob.id, chat.THINKING, "", silent)
    await wait_until(lambda: row(later).status == chat.INTERRUPTED, timeout=1)
    assert not sweeper.done()


async def test_the_sweeper_survives_a_failing_database(seed, monkeypatch, spawn):
    monkeypatch.setattr(assistant, "SWEEP_INTERVAL", timedelta(seconds=0.02))
    calls: list[int] = []
    real = chat.interrupt_silent_replies

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("database unavailable")
        return real(*args, **kwargs)

    monkeypatch.setattr(chat, "interrupt_silent_replies", flaky)
    orphan = _orphan(
        seed.room.id,
        seed.bob.id,
        chat.STREAMING,
        "Hal",
        assistant.ABANDONED_AFTER_IDLE.total_seconds() + 1,
    )
    spawn(assistant.sweep_abandoned_replies())
    await wait_until(lambda: row(orphan).status == chat.INTERRUPTED, timeout=2)
    assert len(calls) >= 3
