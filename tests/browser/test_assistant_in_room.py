"""The assistant as room members see it: a reply streamed live to everyone, Stop, Esc, Retry."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import screenshot
from tests.browser.test_room_chat import open_as, send
from tests.support.fake_openai import FakeOpenAI, Stream
from tests.support.servers import AppServer

pytestmark = pytest.mark.browser

ROOM = "/rooms/3"  # design-review
WORDS = [f"word{n} " for n in range(60)]


@pytest.fixture
def members(
    browser: Browser, app_server: AppServer, fake_model: FakeOpenAI
) -> Iterator[tuple[Page, Page]]:
    fake_model.reset()
    ada = open_as(browser, app_server, "ada@streamchat.io", ROOM)
    grace = open_as(browser, app_server, "grace@streamchat.io", ROOM)
    yield ada, grace
    ada.context.close()
    grace.context.close()


def assistant_rows(page: Page):
    return page.locator("#message-list li", has=page.locator(".reply-status, .reply-usage"))


def test_two_members_watch_the_same_reply_stream(members, fake_model: FakeOpenAI) -> None:
    ada, grace = members
    fake_model.script(Stream(WORDS, tokens_per_second=40))
    send(ada, "@assistant please list some words")
    for page in (ada, grace):
        expect(page.locator("[data-status=streaming], [data-status=thinking]")).to_have_count(
            1, timeout=10_000
        )
    # Grace sees the text grow while it is written, not only at the end.
    partial = grace.locator("[data-status=streaming] .message-body")
    expect(partial).to_contain_text("word3", timeout=10_000)
    assert "word59" not in partial.inner_text()
    expect(grace.locator("[data-status=streaming]")).to_have_attribute("aria-busy", "true")
    expect(grace.locator("#assistant-announcement")).to_have_text("The assistant is replying.")
    screenshot(grace, "assistant-streaming")

    done = grace.locator("[data-status=done]").last
    expect(done.locator(".message-body")).to_contain_text("word59", timeout=15_000)
    expect(done).to_have_attribute("aria-busy", "false")
    expect(done.locator(".reply-usage")).to_contain_text("tokens")
    expect(grace.locator("#assistant-announcement")).to_have_text(
        "The assistant's reply is complete."
    )
    ada_text = ada.locator("[data-status=done]").last.locator(".message-body").inner_text()
    assert ada_text == done.locator(".message-body").inner_text()
    assert ada_text.split() == [word.strip() for word in WORDS]
    screenshot(grace, "assistant-done")


def test_stop_cancels_the_request_and_retry_writes_a_new_reply(
    members, fake_model: FakeOpenAI
) -> None:
    ada, grace = members
    fake_model.script(Stream(WORDS, tokens_per_second=10))
    send(ada, "@assistant a slow answer please")
    # Grace watches it stream; only Ada, who asked, may stop it.
    expect(grace.locator("[data-status=streaming] .message-body")).to_contain_text(
        "word1", timeout=10_000
    )
    expect(grace.locator("[data-status=streaming] .stop-reply")).to_have_count(0)
    streaming = ada.locator("[data-status=streaming]")
    streaming.get_by_role("button", name=re.compile("Stop")).click()
    fake_model.wait_for_disconnect(timeout=5)

    stopped = ada.locator("[data-status=stopped]").last
    expect(stopped.locator(".reply-status")).to_have_text("stopped", timeout=10_000)
    kept = stopped.locator(".message-body").inner_text()
    assert kept.startswith("word0") and "word59" not in kept, "the partial reply is kept"
    screenshot(ada, "assistant-stopped")
    expect(grace.locator("[data-status=stopped]").last.locator(".reply-status")).to_have_text(
        "stopped"
    )
    expect(grace.locator("[data-status=stopped] .retry-reply")).to_have_count(0)

    fake_model.script(Stream(["fresh ", "answer"]))
    stopped.get_by_role("button", name="Retry").click()
    expect(grace.locator("[data-status=done]").last.locator(".message-body")).to_have_text(
        "fresh answer", timeout=10_000
    )


def test_escape_stops_before_the_first_token(members, fake_model: FakeOpenAI) -> None:
    ada, grace = members
    fake_model.script(Stream(WORDS, first_delay=5))
    send(ada, "@assistant think hard")
    expect(grace.locator("[data-status=thinking]")).to_have_count(1, timeout=10_000)
    ada.locator("body").press("Escape")
    fake_model.wait_for_disconnect(timeout=5)
    expect(grace.locator("[data-status=stopped]")).to_have_count(1, timeout=10_000)


def test_an_open_code_fence_renders_as_code_while_streaming(
    members, fake_model: FakeOpenAI
) -> None:
    ada, grace = members
    tokens = ["Here:\n", "```python\n", "def hello():\n", "    return 1\n"] + ["# more\n"] * 30
    fake_model.script(Stream([*tokens, "```\n", "Done."], tokens_per_second=12))
    send(ada, "@assistant show code")
    streaming = grace.locator("[data-status=streaming]")
    expect(streaming.locator(".message-body")).to_contain_text("def hello", timeout=10_000)
    # Still streaming, fence still open: already shown as a code block, not as text.
    expect(streaming.locator(".message-body pre")).to_have_count(1)
    expect(streaming.locator(".message-body")).not_to_contain_text("```")
    done = grace.locator("[data-status=done]").last
    expect(done.locator(".message-body")).to_contain_text("Done.", timeout=15_000)
    expect(done.locator(".message-body pre")).to_have_count(1)
    expect(done.get_by_role("button", name=re.compile("copy", re.IGNORECASE))).to_have_count(1)
