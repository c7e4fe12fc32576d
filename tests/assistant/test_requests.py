"""Asking for, retrying and preparing replies: rate limits, prompts, retries, configuration,
and a room whose queue is headed by a reply whose worker went away."""

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from stream_chat import assistant, chat, repo
from stream_chat.assistant import AssistantConfig, RateLimited
from stream_chat.models import AssistantRequest, utcnow
from tests.assistant.support import age_reply, ask, generate, make_user, reply_with_status, row
from tests.support.fake_openai import MidStreamError, Stream

pytestmark = pytest.mark.timeout(30)


# A prompt bound past every message: the tests of what a prompt keeps.
LAST = 2**31 - 1


def contents(prompt):
    return [turn["content"] for turn in prompt]


# --------------------------------------------------------------------------- 13: rate limit


def test_rate_limit_per_user(seed, configure):
    configure(requests_per_minute=2)
    # The seed's earlier reply was asked by Bob: Alice has asked for none yet.
    first = assistant.request_reply(seed.question)
    second = ask(seed.other_room.id, seed.alice.id)
    with pytest.raises(RateLimited) as refused:
        assistant.request_reply(seed.question)

    assert isinstance(refused.value, chat.ChatError)  # the page shows it as a toast
    assert str(refused.value) == (
        "You can ask the assistant 2 times a minute. Try again in a moment."
    )
    assert [r.id for r in chat.active_replies(seed.room.id)] == [first.id]
    assert [r.id for r in chat.active_replies(seed.other_room.id)] == [second.id]

    carol = make_user("Carol")
    assert ask(seed.room.id, carol.id).status == chat.QUEUED
    # Bob has one request in the window (the seed's earlier reply): one more is allowed.
    assert ask(seed.room.id, seed.bob.id).status == chat.QUEUED
    with pytest.raises(RateLimited):
        ask(seed.room.id, seed.bob.id)


def test_rate_limit_window_is_one_minute(seed, configure):
    configure(requests_per_minute=1)
    earlier = assistant.request_reply(seed.question)
    with pytest.raises(RateLimited):
        assistant.request_reply(seed.question)
    with repo.session() as db:
        [request] = db.exec(select(AssistantRequest).where(AssistantRequest.reply_id == earlier.id))
        request.requested_at = utcnow() - timedelta(seconds=61)
        db.add(request)
        db.commit()
    assert assistant.request_reply(seed.question).status == chat.QUEUED


def test_retries_count_towards_the_rate_limit(seed, configure):
    configure(requests_per_minute=2)
    reply = assistant.request_reply(seed.question)
    chat.update_reply(reply.id, status=chat.FAILED, error="The model server refused: 500")
    assert assistant.retry_reply(reply.id, seed.alice.id, seed.room.id).status == chat.QUEUED
    chat.update_reply(reply.id, status=chat.FAILED, error="The model server refused: 500")

    with pytest.raises(RateLimited, match="2 times a minute"):
        assistant.retry_reply(reply.id, seed.alice.id, seed.room.id)

    stored = row(reply.id)
    assert (stored.status, stored.error) == (chat.FAILED, "The model server refused: 500")
    # The limit is per user: Bob's own requests are still welcome.
    assert ask(seed.room.id, seed.bob.id).status == chat.QUEUED


# --------------------------------------------------------------------------- 14: build_prompt


def test_prompt_roles_and_configurable_system_prompt(seed):
    settings = AssistantConfig(system_prompt="You are a pirate.")
    prompt = assistant.build_prompt(seed.room.id, seed.question.id, settings)
    assert prompt == [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Alice: Hi all"},
        {"role": "user", "content": "Bob: Hello Alice"},
        {"role": "assistant", "content": "An earlier answer."},
        {"role": "user", "content": "Alice: @assistant summarize the thread please"},
    ]
    other = assistant.build_prompt(seed.other_room.id, LAST, AssistantConfig())
    assert other == [
        {"role": "system", "content": assistant.DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": "Bob: Over in the other room"},
    ]


def test_prompt_budget_keeps_the_newest_messages(db):
    room = chat.create_room("long")
    alice = make_user("Alice")
    texts = [f"message number {n:02d} " + "x" * 80 for n in range(12)]
    for text in texts:
        chat.create_message(room.id, alice.id, text)
    everything = [f"Alice: {text}" for text in texts]

    roomy = assistant.build_prompt(room.id, LAST, AssistantConfig(prompt_token_budget=100_000))
    assert contents(roomy)[1:] == everything

    kept_counts = []
    for budget in range(40, 400, 20):
        prompt = assistant.build_prompt(
            room.id, LAST, AssistantConfig(system_prompt="Be brief.", prompt_token_budget=budget)
        )
        assert prompt[0] == {"role": "system", "content": "Be brief."}
        turns = contents(prompt)[1:]
        # Always the newest messages, in order: the oldest are the ones dropped.
        assert turns == everything[len(everything) - len(turns) :], budget
        kept_counts.append(len(turns))
    assert kept_counts == sorted(kept_counts)
    assert 0 < kept_counts[0] < len(texts)  # a small budget drops the oldest, keeps the newest
    assert kept_counts[-1] == len(texts)

    # ~4 characters a token, plus a little per message: 200 tokens hold about 6 of these.
    small = assistant.build_prompt(room.id, LAST, AssistantConfig(prompt_token_budget=200))
    assert 3 <= len(small) - 1 <= 8
    assert contents(small)[-1] == everything[-1]


def test_prompt_history_messages_limit(db):
    room = chat.create_room("chatty")
    alice = make_user("Alice")
    for n in range(10):
        chat.create_message(room.id, alice.id, f"line {n}")
    prompt = assistant.build_prompt(room.id, LAST, AssistantConfig(history_messages=3))
    assert contents(prompt)[1:] == ["Alice: line 7", "Alice: line 8", "Alice: line 9"]


def test_prompt_leaves_out_unfinished_and_failed_replies(seed):
    room_id, bob_id = seed.room.id, seed.bob.id
    for status in (chat.FAILED, chat.INTERRUPTED):
        reply_with_status(room_id, bob_id, status, f"partial text of a {status} reply")
    for status in (chat.QUEUED, chat.THINKING, chat.STREAMING):
        reply_with_status(room_id, bob_id, status, f"text of a {status} reply")
    chat.create_message(room_id, seed.alice.id, "@assistant and now?")

    prompt = assistant.build_prompt(room_id, LAST, AssistantConfig())
    assert not [text for text in contents(prompt) if " reply" in text]
    assert contents(prompt)[1:] == [
        "Alice: Hi all",
        "Bob: Hello Alice",
        "An earlier answer.",
        "Alice: @assistant summarize the thread please",
        "Alice: @assistant and now?",
    ]


# --------------------------------------------------------------------------- 15: retry


async def test_retry_after_an_error(seed, configure, fake, record):
    fake.script(
        MidStreamError(["Half an"], message="down for a moment"), Stream(["Better ", "now"])
    )
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)
    assert await generate(reply.id) == chat.FAILED
    failed = row(reply.id)
    assert (failed.status, failed.content) == ("error", "Half an")
    assert failed.error
    first_generation = (await rec.wait_status(reply.id, chat.THINKING)).reply["generation_id"]

    retried = assistant.retry_reply(reply.id, seed.alice.id, seed.room.id)

    assert (retried.status, retried.content, retried.error) == (chat.QUEUED, "", None)
    assert retried.generation_id is None
    assert retried.requested_by_id == seed.alice.id
    assert retried.id == reply.id
    queued_again = (
        await rec.wait_for(
            lambda e: (
                e["kind"] == "updated"
                and e["message"]["id"] == reply.id
                and e["message"]["status"] == chat.QUEUED
            )
        )
    ).event["message"]
    assert (queued_again["status"], queued_again["content"]) == (chat.QUEUED, "")

    assert await generate(reply.id) == chat.DONE
    stored = row(reply.id)
    assert (stored.status, stored.content, stored.error) == (chat.DONE, "Better now", None)
    thinking = [
        u.reply["generation_id"]
        for u in rec.updates(reply.id)
        if u.reply["status"] == chat.THINKING
    ]
    assert len(thinking) == 2
    assert thinking[0] == first_generation
    assert thinking[1] and thinking[1] != first_generation
    appended = [a.event for a in rec.appended(reply.id)]
    assert [(e["generation_id"], e["offset"], e["text"]) for e in appended[:1]] == [
        (first_generation, 0, "Half an")
    ]
    assert {e["generation_id"] for e in appended[1:]} == {thinking[1]}
    assert appended[1]["offset"] == 0  # the retried text starts over
    assert "".join(e["text"] for e in appended[1:]) == "Better now"
    assert len(await fake.requests_async()) == 2


@pytest.mark.parametrize("status", [chat.QUEUED, chat.THINKING, chat.STREAMING])
def test_retry_refuses_an_active_reply(seed, status):
    reply = reply_with_status(seed.room.id, seed.alice.id, status, "so far")
    with pytest.raises(chat.ChatError, match="still being written"):
        assistant.retry_reply(reply.id, seed.alice.id, seed.room.id)
    stored = row(reply.id)
    assert (stored.status, stored.content) == (status, "so far")


def test_retry_refuses_a_person_message_and_a_missing_one(seed):
    with pytest.raises(chat.MessageNotFound):
        assistant.retry_reply(seed.messages[0].id, seed.alice.id, seed.room.id)
    with pytest.raises(chat.MessageNotFound):
        assistant.retry_reply(10_000, seed.alice.id, seed.room.id)
    assert row(seed.messages[0].id).status is None


@pytest.mark.parametrize("status", [chat.FAILED, chat.STOPPED, chat.INTERRUPTED, chat.DONE])
def test_only_the_asker_retries_and_a_finished_reply_is_never_rewritten(seed, status):
    reply = reply_with_status(seed.room.id, seed.alice.id, status, "Alice's answer")
    with pytest.raises(chat.NotAuthorized, match="Only the person who asked"):
        assistant.retry_reply(reply.id, seed.bob.id, seed.room.id)
    with pytest.raises(chat.MessageNotFound):
        assistant.retry_reply(reply.id, seed.alice.id, seed.other_room.id)
    if status == chat.DONE:
        with pytest.raises(chat.ChatError, match="ask @assistant again"):
            assistant.retry_reply(reply.id, seed.alice.id, seed.room.id)
    stored = row(reply.id)
    assert (stored.status, stored.content, stored.requested_by_id) == (
        status,
        "Alice's answer",
        seed.alice.id,
    )
    if status != chat.DONE:
        assert assistant.retry_reply(reply.id, seed.alice.id, seed.room.id).status == chat.QUEUED


@pytest.mark.parametrize("status", [chat.QUEUED, chat.STREAMING])
def test_only_the_asker_stops_a_reply_and_only_from_its_room(seed, status, monkeypatch):
    reply = reply_with_status(seed.room.id, seed.alice.id, status, "so far")
    broker = chat.pubsub.broker()
    published: list[str] = []
    real_publish = broker.publish

    def recorded_publish(topic: str, event: dict) -> int:
        published.append(topic)
        return real_publish(topic, event)

    monkeypatch.setattr(broker, "publish", recorded_publish)
    with pytest.raises(chat.NotAuthorized, match="Only the person who asked"):
        chat.request_stop(reply.id, seed.bob.id, seed.room.id)
    with pytest.raises(chat.MessageNotFound):
        chat.request_stop(reply.id, seed.alice.id, seed.other_room.id)
    with pytest.raises(chat.MessageNotFound):
        chat.request_stop(seed.messages[0].id, seed.alice.id, seed.room.id)
    assert chat.stop_own_current_reply(seed.room.id, seed.bob.id) is None
    assert published == []

    chat.request_stop(reply.id, seed.alice.id, seed.room.id)
    assert chat.stop_own_current_reply(seed.room.id, seed.alice.id) == reply.id
    assert published == [chat.reply_topic(reply.id)] * 2


# --------------------------------------------------------------------------- 16: configuration


def test_unconfigured_assistant_is_unavailable(monkeypatch):
    assert AssistantConfig().available is False
    assert AssistantConfig(api_key="sk-test").available is True
    assert AssistantConfig(base_url="http://localhost:11434/v1").available is True
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert AssistantConfig.from_env().available is False
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    assert AssistantConfig.from_env().available is True


def test_configure_returns_the_previous_configuration():
    saved = assistant._config
    try:
        first = AssistantConfig(api_key="one")
        assistant.configure(first)
        assert assistant.configure(AssistantConfig(api_key="two")) is first
        assert assistant.config().api_key == "two"
    finally:
        assistant._config = saved


def test_usage_note_and_cost():
    saved = assistant._config
    try:
        assistant.configure(AssistantConfig())
        assert assistant.usage_note(None, None) == ""
        assert assistant.usage_note(1200, 48) == "1,200 + 48 tokens"
        assistant.configure(
            AssistantConfig(price_per_million_prompt=0.15, price_per_million_completion=0.6)
        )
        assert (
            assistant.usage_note(1_000_000, 1_000_000) == "1,000,000 + 1,000,000 tokens · ≈ $0.7500"
        )
    finally:
        assistant._config = saved


# --------------------------------------------------------------------------- a worker went away


async def test_a_dead_workers_reply_is_taken_over(seed, configure, fake, monkeypatch):
    configure(idle_timeout=0.2)
    monkeypatch.setattr(assistant, "ABANDONED_AFTER_IDLE", timedelta(seconds=0.3))
    orphan = assistant.request_reply(seed.question)
    chat.update_reply(orphan.id, status=chat.STREAMING, generation_id="dead", content="Hal")
    age_reply(orphan.id, 3600)
    fake.script(Stream(["Fresh"]))
    later = ask(seed.room.id, seed.bob.id)

    assert await generate(later.id, timeout=5) == chat.DONE

    stored = row(orphan.id)
    assert (stored.status, stored.generation_id, stored.content) == (
        chat.INTERRUPTED,
        None,
        "Hal",
    )
    assert stored.error
    assert row(later.id).content == "Fresh"


async def test_a_dead_workers_queued_reply_does_not_block_the_room(
    seed, configure, fake, monkeypatch
):
    configure(idle_timeout=0.2)
    monkeypatch.setattr(assistant, "ABANDONED_AFTER_IDLE", timedelta(seconds=0.3))
    # A worker died while writing one reply with another queued behind it (a restart).
    streaming = assistant.request_reply(seed.question)
    chat.update_reply(streaming.id, status=chat.STREAMING, generation_id="dead", content="Hal")
    queued = assistant.request_reply(seed.question)
    age_reply(streaming.id, 3600)
    age_reply(queued.id, 3600)
    fake.set_default(Stream(["Fresh"]))
    later = ask(seed.room.id, seed.bob.id)

    try:
        status = await generate(later.id, timeout=5)
    except TimeoutError:
        status = f"still {row(later.id).status} after 5 s behind reply {queued.id}"
    assert status == chat.DONE
    assert row(queued.id).status not in chat.ACTIVE_STATUSES


async def test_a_live_but_wordless_attempt_is_not_taken_over(
    seed, configure, fake, record, spawn, monkeypatch
):
    configure(idle_timeout=0.3)
    monkeypatch.setattr(assistant, "ABANDONED_AFTER_IDLE", timedelta(seconds=0.3))
    # Chunks keep coming (so the read timeout never fires) but their content is empty for
    # 1.5 s, as with a model that streams only its reasoning first.
    fake.script(Stream(["", "", "", "", "", "", "Answer"], delay=0.2), Stream(["Second"]))
    rec = await record(seed.room.id)
    thinker = assistant.request_reply(seed.question)
    thinker_task = spawn(generate(thinker.id))
    await rec.wait_status(thinker.id, chat.THINKING)
    later = ask(seed.room.id, seed.bob.id)
    later_task = spawn(generate(later.id))

    results = await asyncio.wait_for(asyncio.gather(thinker_task, later_task), 10)

    assert chat.active_replies(seed.room.id) == []  # nothing is left "being written"
    assert results == [chat.DONE, chat.DONE]
    assert row(thinker.id).content == "Answer"
    first, second = await fake.requests_async()
    assert second.arrived_monotonic >= first.end.monotonic  # one generation per room


# --------------------------------------------------------------------------- the first text


async def test_the_first_text_is_written_only_by_the_owning_attempt(seed, record):
    rec = await record(seed.room.id)
    reply = assistant.request_reply(seed.question)
    assert chat.claim_reply(reply.id, "gen-1")

    assert chat.start_reply_text(reply.id, "gen-0", "Stale") is False
    assert (row(reply.id).status, row(reply.id).content) == (chat.THINKING, "")
    assert chat.start_reply_text(reply.id, "gen-1", "Hello") is True

    stored = row(reply.id)
    assert (stored.status, stored.content, stored.generation_id) == (
        chat.STREAMING,
        "Hello",
        "gen-1",
    )
    await rec.wait_text(reply.id, length=len("Hello"))
    # The broker numbers each event ("seq"); the rest is what the context published.
    events = [{k: v for k, v in r.event.items() if k != "seq"} for r in rec.of(reply.id)]
    assert events[-1:] == [
        {
            "kind": "appended",
            "message_id": reply.id,
            "generation_id": "gen-1",
            "offset": 0,
            "text": "Hello",
            "fields": {"status": chat.STREAMING},
        },
    ]
    assert all(e.get("text") != "Stale" for e in events)
