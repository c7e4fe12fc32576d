"""`make run` (the README's run command, dev mode with hot reload) as a newcomer uses it:
writing to the database and talking to the assistant must never reload the backend."""

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import model_env
from tests.browser.test_room_chat import PASSWORD, row_with, send
from tests.support.fake_openai import FakeOpenAI, Stream
from tests.support.servers import AppServer, process_group_pids, start_dev_app

pytestmark = pytest.mark.browser

MESSAGES = [f"dev-mode message {n}" for n in range(5)]


@pytest.fixture(scope="module")
def dev_server(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeOpenAI
) -> Iterator[AppServer]:
    workdir = tmp_path_factory.mktemp("dev")
    server = start_dev_app(workdir / "make-run.log", extra_env=model_env(fake_model))
    yield server
    server.stop()


def open_room_in_dev(browser: Browser, server: AppServer, email: str, path: str) -> Page:
    """Logs in like `open_as`, with time for the dev server to build each page on first use."""
    page = browser.new_context().new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{server.base_url}/login?next={path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server.base_url}{path}", timeout=60_000)
    expect(page.locator("#message-list li").first).to_be_visible(timeout=60_000)
    return page


def listening_addresses(port: int) -> set[str]:
    """The local IPv4/IPv6 addresses (hex, as the kernel prints them) listening on a port."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                addresses.add(address)
    return addresses


def test_make_run_serves_on_loopback_and_never_reloads_on_writes(
    dev_server: AppServer, browser: Browser, fake_model: FakeOpenAI
) -> None:
    loopback = {"0100007F", "00000000000000000000000001000000"}
    for url in (dev_server.base_url, dev_server.backend_url):
        port = int(url.rsplit(":", 1)[1])
        assert listening_addresses(port) and listening_addresses(port) <= loopback, url

    # A reload forks a new backend worker: the set of Python processes would change.
    workers = process_group_pids(dev_server.process.pid, "python")
    fake_model.reset()
    fake_model.script(Stream(["Hello ", "from ", "the ", "fake ", "model."]))
    ada = open_room_in_dev(browser, dev_server, "ada@streamchat.io", "/rooms/1")
    for text in MESSAGES:
        send(ada, text)
        expect(row_with(ada, text)).to_be_visible()
    send(ada, "@assistant hello")
    done = ada.locator("[data-status=done]").last
    expect(done.locator(".message-body")).to_have_text("Hello from the fake model.", timeout=30_000)
    ada.reload()
    for text in MESSAGES:
        expect(row_with(ada, text)).to_be_visible()
    ada.context.close()

    assert process_group_pids(dev_server.process.pid, "python") == workers, (
        f"the dev backend reloaded:\n{dev_server.log_tail()}"
    )
    database = dev_server.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        stored = {row[0] for row in db.execute("SELECT content FROM messages")}
    assert set(MESSAGES) | {"@assistant hello", "Hello from the fake model."} <= stored
