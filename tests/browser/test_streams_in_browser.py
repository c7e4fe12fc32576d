"""Streams in a real browser: every op, a concurrent burst and an offline spell.

The page under test is /_stream_lab (mounted only for the test suite). Each scripted call
goes to the browser through the real websocket delta; the DOM's order of ids is compared
with the reference client model run here, in the test process, on the same calls.
"""

import json
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from stream_chat.streams import ClientStream, StreamRecorder, StreamSpec
from tests.browser.conftest import screenshot
from tests.support.servers import AppServer

pytestmark = pytest.mark.browser

SPEC = StreamSpec("items")


def item(n: int | str, text: str | None = None) -> dict[str, Any]:
    return {"id": n, "text": text if text is not None else f"item {n}"}


def expected_after(calls: list[list[Any]]) -> ClientStream:
    """Runs the calls through the pure core and the reference client."""
    recorder, client = StreamRecorder(), ClientStream()
    methods = {
        "stream": recorder.stream,
        "insert": recorder.insert,
        "delete": recorder.delete,
        "delete_by_dom_id": recorder.delete_by_dom_id,
        "append": recorder.append_text,
    }
    for op, args, *options in calls:
        methods[op](SPEC, *args, **(options[0] if options else {}))
        for batch in recorder.take_batches().values():
            client.apply_batch(batch)
    return client


def dom_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all("#items li", "items => items.map(li => li.id)")


def dom_texts(page: Page) -> list[str]:
    return page.eval_on_selector_all("#items li", "items => items.map(li => li.textContent)")


def run(page: Page, calls: list[list[Any]]) -> None:
    page.fill("#script", json.dumps(calls))
    page.get_by_role("button", name="Run").click()


def open_lab(page: Page, server: AppServer) -> None:
    page.goto(f"{server.base_url}/_stream_lab")
    expect(page.locator("#empty-flag")).to_be_visible()


def wait_for_items(page: Page, values: list[str], attribute: str = "id") -> None:
    """Until the list's items have these values of `attribute` (`id`, `textContent`)."""
    page.wait_for_function(
        "([values, attribute]) => JSON.stringify([...document.querySelectorAll('#items li')]"
        ".map(li => li[attribute])) === JSON.stringify(values)",
        arg=[values, attribute],
        timeout=15_000,
    )


def wait_for_dom(page: Page, ids: list[str]) -> None:
    wait_for_items(page, ids)


STEPS: list[tuple[str, list[list[Any]]]] = [
    ("stream a new list", [["stream", [[item(1), item(2), item(3)]]]]),
    ("insert at -1 appends", [["insert", [item(4)]]]),
    ("insert at 0 prepends", [["insert", [item(0)], {"at": 0}]]),
    ("insert at 2", [["insert", [item("m")], {"at": 2}]]),
    ("insert beyond the end appends", [["insert", [item(99)], {"at": 50}]]),
    ("batch at 0 keeps its order", [["stream", [[item("a"), item("b"), item("c")]], {"at": 0}]]),
    ("present id updates in place", [["insert", [item(3, "three, edited")], {"at": 0}]]),
    ("update_only on a missing item", [["insert", [item("ghost")], {"update_only": True}]]),
    ("update_only on a present item", [["insert", [item(1, "one!")], {"update_only": True}]]),
    ("delete", [["delete", [item(2)]]]),
    ("delete by dom id", [["delete_by_dom_id", ["items-m"]]]),
    ("delete of an unknown id", [["delete", [item("nobody")]]]),
    ("insert then delete", [["insert", [item("tmp")]], ["delete", [item("tmp")]]]),
    ("delete then insert moves", [["delete", [item(0)]], ["insert", [item(0, "moved")]]]),
    ("same id twice in one batch", [["stream", [[item("t", "first"), item("t", "last")]]]]),
    (
        "append text",
        [["append", ["items-t", "text", " +more"]], ["append", ["items-t", "text", "!"]]],
    ),
    ("limit -3 keeps the newest", [["insert", [item("w1")], {"limit": -3}]]),
    ("limit 2 at -1 drops the new item", [["insert", [item("late")], {"limit": 2}]]),
    ("limit 2 at 0 keeps the first", [["insert", [item("front")], {"at": 0, "limit": 2}]]),
    (
        "reset with items present",
        [["stream", [[item("r1"), item("front"), item("r2")]], {"reset": True}]],
    ),
    ("reset to empty", [["stream", [[]], {"reset": True}]]),
]


def test_every_op_reaches_the_dom_in_order(page: Page, app_server: AppServer) -> None:
    open_lab(page, app_server)
    history: list[list[Any]] = []
    for label, calls in STEPS:
        run(page, calls)
        history.extend(calls)
        expected = expected_after(history)
        texts = [entry["text"] for entry in expected.items]
        try:
            # The texts too: an update in place leaves the ids as they were before the click.
            wait_for_items(page, texts, "textContent")
            wait_for_dom(page, expected.dom_ids)
        except Exception as error:  # say which step broke
            raise AssertionError(
                f"{label}: DOM {dom_ids(page)} {dom_texts(page)} != {expected.dom_ids} {texts}"
            ) from error
        assert json.loads(page.inner_text("#reference")) == expected.dom_ids, label
        if label == "append text":
            screenshot(page, "stream-lab")
    expect(page.locator("#empty-flag")).to_be_visible()


def test_an_item_keeps_its_dom_node_across_a_reset(page: Page, app_server: AppServer) -> None:
    open_lab(page, app_server)
    run(page, [["stream", [[item(1), item(2)]]]])
    wait_for_dom(page, ["items-1", "items-2"])
    page.eval_on_selector("#items-2", "li => { li.dataset.marker = 'kept' }")
    run(page, [["stream", [[item(2), item(3)]], {"reset": True}]])
    wait_for_dom(page, ["items-2", "items-3"])
    assert page.get_attribute("#items-2", "data-marker") == "kept"


def test_a_burst_of_concurrent_events_loses_and_doubles_nothing(
    page: Page, app_server: AppServer
) -> None:
    open_lab(page, app_server)
    run(page, [["stream", [[item("seed")]]]])
    wait_for_dom(page, ["items-seed"])
    page.fill("#burst-count", "500")
    page.get_by_role("button", name="Burst").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#items li').length >= 501", timeout=60_000
    )
    page.wait_for_timeout(500)  # nothing more may arrive: a double would show up here
    ids = dom_ids(page)
    assert len(ids) == len(set(ids)) == 501
    assert {f"items-burst-{n}" for n in range(500)} <= set(ids)
    # The concurrent events were applied in the order the server ran them: the reference.
    assert ids == json.loads(page.inner_text("#reference"))


def test_going_offline_mid_stream_ends_with_exactly_the_expected_list(
    page: Page, app_server: AppServer
) -> None:
    open_lab(page, app_server)
    page.fill("#trickle-count", "60")
    page.fill("#trickle-interval", "0.05")
    page.get_by_role("button", name="Trickle").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#items li').length >= 5", timeout=15_000
    )
    page.context.set_offline(True)
    page.wait_for_timeout(300)
    offline_at_start = len(dom_ids(page))
    page.wait_for_timeout(1_200)
    offline_at_end = len(dom_ids(page))
    page.context.set_offline(False)
    expect(page.locator("#trickled")).to_have_text("60", timeout=30_000)
    expected = [f"items-trickle-{n}" for n in range(60)]
    wait_for_dom(page, expected)
    # Ops kept flowing on the server (60 in ~3 s) while nothing reached the page.
    assert offline_at_start == offline_at_end < 60, "the page was never really offline"
    assert json.loads(page.inner_text("#reference")) == expected


def test_a_lost_batch_makes_the_browser_resync(page: Page, app_server: AppServer) -> None:
    open_lab(page, app_server)
    run(page, [["stream", [[item(1)]]]])
    wait_for_dom(page, ["items-1"])
    run(page, [["insert_lost", [item(2)]], ["insert", [item(3)]]])
    # Batch 2 never arrived; batch 3 showed the gap, and the resync re-streamed everything.
    wait_for_dom(page, ["items-1", "items-2", "items-3"])
    run(page, [["insert", [item(4)]]])
    wait_for_dom(page, ["items-1", "items-2", "items-3", "items-4"])
