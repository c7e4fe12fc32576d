"""Each reply answers its own question, with the context before it, however long it waited and
however often it was retried; and how a completion that ends without a usable answer reads.

The fake model echoes the last user message of the prompt it received: the reply's text says
which question it was given."""

import asyncio
import time

import pytest

from stream_chat import assistant, chat
from tests.assistant.support import ask, generate, row
from tests.support.fake_openai import HttpError, MidStreamError, Stall, Stream

pytestmark = pytest.mark.timeout(30)

ECHO = Stream(["You asked: "], echo=True, delay=0.05)


def prompt_of(request) -> list[str]:
    return [turn["content"] for turn in request.messages[1:]]


async def test_three_requests_in_a_second_each_answer_their_own_question(
    seed, configure, fake, spawn
):
    fake.set_default(ECHO)
    started = time.monotonic()
    first = ask(seed.room.id, seed.alice.id, "@assistant first question")
    second = ask(seed.room.id, seed.bob.id, "@assistant second question")
    third = ask(seed.room.id, seed.alice.id, "@assistant third question")
    assert time.monotonic() - started < 1
    # The latest asker's tab may start its run first: the queue keeps the order anyway.
    runs = [spawn(generate(reply.id)) for reply in (third, second, first)]

    assert await asyncio.wait_for(asyncio.gather(*runs), 15) == [chat.DONE] * 3

    assert [row(reply.id).content for reply in (first, second, third)] == [
        "You asked: Alice: @assistant first question",
        "You asked: Bob: @assistant second question",
        "You asked: Alice: @assistant third question",
    ]
    requests = await fake.requests_async()
    assert [prompt_of(r)[-1] for r in requests] == [
        "Alice: @assistant first question",
        "Bob: @assistant second question",
        "Alice: @assistant third question",
    ]
    # Each reads what came before its question, earlier answers included, and nothing after.
    assert prompt_of(requests[1])[-3:] == [
        "Alice: @assistant first question",
        "You asked: Alice: @assistant first question",
        "Bob: @assistant second question",
    ]
    assert prompt_of(requests[0])[:4] == [
        "Alice: Hi all",
        "Bob: Hello Alice",
        "An earlier answer.",
        "Alice: @assistant summarize the thread please",
    ]


async def test_a_retry_answers_the_original_question_whatever_was_posted_since(
    seed, configure, fake
):
    fake.script(MidStreamError(["Half"], message="down for a moment"), ECHO)
    reply = assistant.request_reply(seed.question)
    assert await generate(reply.id) == chat.FAILED
    chat.create_message(seed.room.id, seed.bob.id, "Meanwhile: who wants lunch?")
    later = ask(seed.room.id, seed.bob.id, "@assistant a later question")
    chat.update_reply(later.id, status=chat.DONE, content="The later answer.")

    assistant.retry_reply(reply.id, seed.alice.id, seed.room.id)
    assert await generate(reply.id) == chat.DONE

    assert row(reply.id).content == "You asked: Alice: @assistant summarize the thread please"
    retried = (await fake.requests_async())[-1]
    assert prompt_of(retried) == prompt_of((await fake.requests_async())[0])
    assert not [turn for turn in prompt_of(retried) if "lunch" in turn or "later" in turn]


async def test_a_reply_whose_question_was_deleted_reads_up_to_where_it_was(seed, configure, fake):
    fake.set_default(ECHO)
    reply = assistant.request_reply(seed.question)
    chat.create_message(seed.room.id, seed.bob.id, "posted after the question")
    chat.delete_message(seed.question.id, seed.alice.id, room_id=seed.room.id)

    assert await generate(reply.id) == chat.DONE

    [request] = await fake.requests_async()
    assert prompt_of(request) == ["Alice: Hi all", "Bob: Hello Alice", "An earlier answer."]


# --------------------------------------------------------------------------- how it ended


async def test_a_reply_cut_by_the_content_filter_says_so(seed, configure, fake):
    fake.script(Stream(["The first ", "half"], finish_reason="content_filter"))
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.DONE

    stored = row(reply.id)
    assert (stored.status, stored.content) == (chat.DONE, "The first half")
    assert stored.error == "The model's content filter cut this reply short."


@pytest.mark.parametrize(
    ("response", "note"),
    [
        pytest.param(
            Stream([]), "The model ended its reply without any text.", id="stop-no-content"
        ),
        pytest.param(
            Stream(["", ""]), "The model ended its reply without any text.", id="empty-content"
        ),
        pytest.param(
            Stream(["\x00"]), "The model ended its reply without any text.", id="only-a-nul"
        ),
        pytest.param(
            Stream(
                [],
                finish_reason="tool_calls",
                tool_calls=[
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "search", "arguments": "{}"},
                    }
                ],
            ),
            "The model asked to call a tool, which this chat does not offer.",
            id="only-tool-calls",
        ),
        pytest.param(
            Stream([], finish_reason="content_filter"),
            "The model's content filter withheld this reply.",
            id="filtered-before-any-text",
        ),
    ],
)
async def test_a_completion_without_text_is_an_error_with_a_retry(
    seed, configure, fake, response, note
):
    fake.script(response, Stream(["Second ", "try"]))
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.FAILED

    stored = row(reply.id)
    assert (stored.status, stored.content, stored.error) == (chat.FAILED, "", note)
    # Retry is offered for "error", and it works.
    assistant.retry_reply(reply.id, seed.alice.id, seed.room.id)
    assert await generate(reply.id) == chat.DONE
    assert row(reply.id).content == "Second try"


# --------------------------------------------------------------------------- a silent server


async def test_a_server_that_never_answers_is_not_retried(seed, configure, fake):
    configure(idle_timeout=0.5, max_retries=2)
    fake.script(Stream(["late"], headers_delay=20))
    reply = assistant.request_reply(seed.question)
    started = time.monotonic()

    assert await generate(reply.id) == chat.FAILED

    took = time.monotonic() - started
    stored = row(reply.id)
    assert stored.error == "The model server did not answer within 0.5 s."
    assert len(await fake.requests_async()) == 1
    assert took < 1.0 + 0.5


async def test_refusals_before_the_stream_are_still_retried(seed, configure, fake):

    configure(idle_timeout=0.5, max_retries=2)
    fake.script(HttpError(503, "busy", retry_after=0), Stream(["Fine"]))
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.DONE

    assert row(reply.id).content == "Fine"
    assert [r.retry_count for r in await fake.requests_async()] == [0, 1]


async def test_a_stall_mid_stream_says_how_long_the_model_was_silent(seed, configure, fake):

    configure(idle_timeout=0.3, max_retries=2)
    fake.script(Stall(["Half"], stall_for=5))
    reply = assistant.request_reply(seed.question)

    assert await generate(reply.id) == chat.INTERRUPTED

    stored = row(reply.id)
    assert (stored.content, stored.error) == (
        "Half",
        "The model stopped sending for 0.3 s (idle timeout).",
    )
    assert len(await fake.requests_async()) == 1
