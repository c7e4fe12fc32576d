"""The spec table, row by row, through the recorder and both clients (Python and JS).

Each row records calls on a ``StreamRecorder`` (with flushes where the row
says), sends every batch, and checks the order and content the client holds.
``client_impl`` runs each row once against client_model.py and once against
assets/streams.js under Node.
"""

from __future__ import annotations

from typing import Any

import pytest

from stream_chat.streams import StreamRecorder, StreamSpec

M = StreamSpec("m")
FLUSH = ("flush",)


def item(i: int, **fields: Any) -> dict[str, Any]:
    return {"id": i, **fields}


def items(*ids: int) -> list[dict[str, Any]]:
    return [item(i) for i in ids]


def stream(its: list[dict[str, Any]], **kw: Any) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    return ("stream", (its,), kw)


def insert(it: dict[str, Any], **kw: Any) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    return ("insert", (it,), kw)


def delete(it: dict[str, Any]) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    return ("delete", (it,), {})


def delete_dom(dom_id: str) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    return ("delete_by_dom_id", (dom_id,), {})


def append(target: Any, field: str, text: str) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    return ("append_text", (target, field, text), {})


def append_at(
    target: Any, field: str, text: str, offset: int
) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    return ("append_text", (target, field, text), {"offset": offset})


def patch(target: Any, fields: dict[str, Any]) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    return ("patch", (target, fields), {})


def run(script: list[Any], client_impl: Any, spec: StreamSpec = M) -> dict[str, Any]:
    recorder = StreamRecorder()
    deliveries = []
    for step in script:
        if step == FLUSH:
            deliveries.append(recorder.take_batches())
            continue
        method, args, kwargs = step
        getattr(recorder, method)(spec, *args, **kwargs)
    deliveries.append(recorder.take_batches())
    result = client_impl([d for d in deliveries if d])
    # Every batch of a lossless delivery must be applied.
    for outcome in result["outcomes"]:
        assert set(outcome.values()) <= {"applied"}, result["outcomes"]
    return result["streams"].get(spec.name, {"dom_ids": [], "items": [], "is_empty": True})


def ids(*numbers: int) -> list[str]:
    return [f"m-{n}" for n in numbers]


# (row id, script, expected dom ids, expected fields per dom id)
ROWS: list[tuple[str, list[Any], list[str], dict[str, dict[str, Any]]]] = [
    # stream(name, items) on a new stream: the items in the order given.
    ("stream-new", [stream(items(3, 1, 2))], ids(3, 1, 2), {}),
    # stream(..., at=0) on an existing stream: at the top, in the order given.
    (
        "stream-at0-keeps-order",
        [stream(items(1, 2)), FLUSH, stream(items(3, 4, 5), at=0)],
        ids(3, 4, 5, 1, 2),
        {},
    ),
    (
        "stream-at0-same-batch",
        [stream(items(1, 2)), stream(items(3, 4), at=0)],
        ids(3, 4, 1, 2),
        {},
    ),
    (
        "stream-at1-keeps-order",
        [stream(items(1, 2, 3)), FLUSH, stream(items(7, 8), at=1)],
        ids(1, 7, 8, 2, 3),
        {},
    ),
    # A batch at 0 where one id is already present: that one is updated in place,
    # the others still go to the top in the given order.
    (
        "stream-at0-with-present-id",
        [stream(items(1, 2, 3)), FLUSH, stream([item(7), item(2, v="new"), item(8)], at=0)],
        ids(7, 8, 1, 2, 3),
        {"m-2": {"v": "new"}},
    ),
    # reset: everything removed, then the new items in the new order.
    (
        "reset",
        [stream(items(1, 2, 3)), FLUSH, stream([item(3, v="x"), item(4)], reset=True)],
        ids(3, 4),
        {"m-3": {"v": "x"}},
    ),
    ("reset-same-batch", [stream(items(1, 2, 3)), stream(items(5, 1), reset=True)], ids(5, 1), {}),
    ("reset-to-empty", [stream(items(1, 2)), FLUSH, stream([], reset=True)], [], {}),
    (
        "reset-then-more-ops",
        [stream(items(1, 2)), FLUSH, stream(items(4), reset=True), insert(item(5), at=0)],
        ids(5, 4),
        {},
    ),
    # stream_insert / at=-1: append.
    ("insert-append", [stream(items(1, 2)), FLUSH, insert(item(3))], ids(1, 2, 3), {}),
    ("insert-append-explicit", [stream(items(1, 2)), insert(item(3), at=-1)], ids(1, 2, 3), {}),
    # at=0: prepend.
    ("insert-prepend", [stream(items(1, 2)), FLUSH, insert(item(3), at=0)], ids(3, 1, 2), {}),
    # at=N: before the item now at index N; N >= length appends.
    ("insert-at-1", [stream(items(1, 2, 3)), FLUSH, insert(item(9), at=1)], ids(1, 9, 2, 3), {}),
    ("insert-at-len", [stream(items(1, 2, 3)), FLUSH, insert(item(9), at=3)], ids(1, 2, 3, 9), {}),
    ("insert-beyond-end", [stream(items(1, 2)), FLUSH, insert(item(9), at=50)], ids(1, 2, 9), {}),
    ("insert-at-on-empty", [insert(item(9), at=4)], ids(9), {}),
    # An id already present is updated in place and never moved, whatever at says.
    (
        "insert-present-at0-not-moved",
        [stream(items(1, 2, 3)), FLUSH, insert(item(3, v="new"), at=0)],
        ids(1, 2, 3),
        {"m-3": {"v": "new"}},
    ),
    (
        "insert-present-append-not-moved",
        [stream(items(1, 2, 3)), FLUSH, insert(item(1, v="new"))],
        ids(1, 2, 3),
        {"m-1": {"v": "new"}},
    ),
    # An update replaces the item: fields it no longer has are gone.
    (
        "insert-present-replaces-fields",
        [stream([item(1, a=1, b=2)]), FLUSH, insert(item(1, a=5))],
        ids(1),
        {"m-1": {"a": 5}},
    ),
    # update_only: update if present, else nothing.
    (
        "update-only-present",
        [stream(items(1, 2)), FLUSH, insert(item(2, v="u"), update_only=True)],
        ids(1, 2),
        {"m-2": {"v": "u"}},
    ),
    (
        "update-only-missing",
        [stream(items(1, 2)), FLUSH, insert(item(7), update_only=True)],
        ids(1, 2),
        {},
    ),
    (
        "update-only-missing-at0",
        [stream(items(1)), insert(item(7), at=0, update_only=True)],
        ids(1),
        {},
    ),
    # limit=-N: keep the last N (sliding window of the newest).
    ("limit-neg-stream", [stream(items(1, 2, 3, 4, 5), limit=-3)], ids(3, 4, 5), {}),
    (
        "limit-neg-append",
        [stream(items(1, 2, 3)), FLUSH, insert(item(4), limit=-3)],
        ids(2, 3, 4),
        {},
    ),
    (
        "limit-neg-at0",
        [stream(items(1, 2, 3)), FLUSH, insert(item(9), at=0, limit=-2)],
        ids(2, 3),
        {},
    ),
    (
        "limit-neg-batch-at0-vanishes",
        [stream(items(1, 2, 3)), FLUSH, stream(items(8, 9), at=0, limit=-3)],
        ids(1, 2, 3),
        {},
    ),
    (
        "limit-neg-batch-at1",
        [stream(items(1, 2, 3)), FLUSH, stream(items(8, 9), at=1, limit=-3)],
        ids(9, 2, 3),
        {},
    ),
    # limit=N: keep the first N; an append to a full list vanishes at once.
    (
        "limit-pos-append-vanishes",
        [stream(items(1, 2, 3)), FLUSH, insert(item(4), limit=3)],
        ids(1, 2, 3),
        {},
    ),
    (
        "limit-pos-append-trims-old",
        [stream(items(1, 2, 3)), FLUSH, insert(item(4), limit=2)],
        ids(1, 2),
        {},
    ),
    (
        "limit-pos-at0",
        [stream(items(1, 2, 3)), FLUSH, insert(item(0), at=0, limit=3)],
        ids(0, 1, 2),
        {},
    ),
    ("limit-pos-stream", [stream(items(1, 2, 3, 4), limit=2)], ids(1, 2), {}),
    ("limit-zero", [stream(items(1, 2)), FLUSH, insert(item(3), at=0, limit=0)], [], {}),
    ("limit-neg-append-window", [stream(items(1, 2)), insert(item(3), limit=-2)], ids(2, 3), {}),
    # Limits only act when an item is newly added, not on an update.
    (
        "limit-not-on-update",
        [stream(items(1, 2, 3)), FLUSH, insert(item(2, v="u"), limit=1)],
        ids(1, 2, 3),
        {"m-2": {"v": "u"}},
    ),
    # delete / delete_by_dom_id; unknown ids do nothing.
    ("delete", [stream(items(1, 2, 3)), FLUSH, delete(item(2))], ids(1, 3), {}),
    ("delete-by-dom-id", [stream(items(1, 2, 3)), FLUSH, delete_dom("m-1")], ids(2, 3), {}),
    (
        "delete-unknown",
        [stream(items(1, 2)), FLUSH, delete(item(9)), delete_dom("nope")],
        ids(1, 2),
        {},
    ),
    ("delete-all", [stream(items(1, 2)), FLUSH, delete(item(1)), delete(item(2))], [], {}),
    # Several ops in one handler apply in call order.
    ("insert-then-delete", [stream(items(1)), FLUSH, insert(item(2)), delete(item(2))], ids(1), {}),
    (
        "delete-then-insert-moves",
        [stream(items(1, 2, 3)), FLUSH, delete(item(1)), insert(item(1))],
        ids(2, 3, 1),
        {},
    ),
    (
        "delete-then-insert-at0-moves",
        [stream(items(1, 2, 3)), FLUSH, delete(item(3)), insert(item(3, v="top"), at=0)],
        ids(3, 1, 2),
        {"m-3": {"v": "top"}},
    ),
    # The same id twice in one batch: one item, last content wins, first place.
    (
        "same-id-twice-in-stream",
        [stream([item(1, v="a"), item(2), item(1, v="b")])],
        ids(1, 2),
        {"m-1": {"v": "b"}},
    ),
    (
        "same-id-twice-in-batch-calls",
        [insert(item(1, v="a")), insert(item(2)), insert(item(1, v="b"), at=0)],
        ids(1, 2),
        {"m-1": {"v": "b"}},
    ),
    (
        "same-id-twice-at0",
        [stream(items(5)), FLUSH, stream([item(1, v="a"), item(2), item(1, v="b")], at=0)],
        ids(1, 2, 5),
        {"m-1": {"v": "b"}},
    ),
    # append_text: item[field] += text, for token streaming.
    (
        "append",
        [stream([item(1, content="He")]), FLUSH, append("m-1", "content", "llo")],
        ids(1),
        {"m-1": {"content": "Hello"}},
    ),
    (
        "append-merged-tokens",
        [stream([item(1, content="")]), FLUSH, *[append("m-1", "content", t) for t in "abc"]],
        ids(1),
        {"m-1": {"content": "abc"}},
    ),
    (
        "append-by-item",
        [stream([item(1, content="x")]), FLUSH, append(item(1), "content", "y")],
        ids(1),
        {"m-1": {"content": "xy"}},
    ),
    (
        "append-unknown-id",
        [stream([item(1, content="x")]), FLUSH, append("m-9", "content", "y")],
        ids(1),
        {"m-1": {"content": "x"}},
    ),
    (
        "append-missing-field",
        [stream(items(1)), FLUSH, append("m-1", "content", "y")],
        ids(1),
        {"m-1": {"content": "y"}},
    ),
    (
        "append-null-field",
        [stream([item(1, content=None)]), FLUSH, append("m-1", "content", "y")],
        ids(1),
        {"m-1": {"content": "y"}},
    ),
    (
        "append-non-string-field",
        [stream([item(1, n=5)]), FLUSH, append("m-1", "n", "y")],
        ids(1),
        {"m-1": {"n": 5}},
    ),
    (
        "append-inherited-name-is-missing",
        [stream(items(1)), FLUSH, append("m-1", "constructor", "y")],
        ids(1),
        {"m-1": {"constructor": "y"}},
    ),
    (
        "append-same-batch-as-insert",
        [insert(item(1, content="a")), append("m-1", "content", "b")],
        ids(1),
        {"m-1": {"content": "ab"}},
    ),
    (
        "append-then-update-wins",
        [
            stream([item(1, content="a")]),
            FLUSH,
            append("m-1", "content", "b"),
            insert(item(1, content="z")),
        ],
        ids(1),
        {"m-1": {"content": "z"}},
    ),
    (
        "append-interleaved",
        [
            stream([item(1, content=""), item(2, content="")]),
            FLUSH,
            append("m-1", "content", "a"),
            append("m-2", "content", "x"),
            append("m-1", "content", "b"),
            append("m-2", "content", "y"),
        ],
        ids(1, 2),
        {"m-1": {"content": "ab"}, "m-2": {"content": "xy"}},
    ),
    # append_text(..., offset=n): item[field] = current[:n] + text, in code
    # points; nothing when the client holds fewer than n.
    (
        "append-offset-at-end",
        [stream([item(1, content="He")]), FLUSH, append_at("m-1", "content", "llo", 2)],
        ids(1),
        {"m-1": {"content": "Hello"}},
    ),
    (
        "append-offset-redelivered-is-idempotent",
        [
            stream([item(1, content="He")]),
            FLUSH,
            append_at("m-1", "content", "llo", 2),
            FLUSH,
            append_at("m-1", "content", "llo", 2),
            append_at("m-1", "content", "llo", 2),
        ],
        ids(1),
        {"m-1": {"content": "Hello"}},
    ),
    (
        "append-offset-out-of-order-ignored",
        [
            stream([item(1, content="He")]),
            FLUSH,
            append_at("m-1", "content", "world", 6),
            FLUSH,
            append_at("m-1", "content", "llo ", 2),
        ],
        ids(1),
        {"m-1": {"content": "Hello "}},
    ),
    (
        "append-offset-rewrites-the-tail",
        [stream([item(1, content="Hello world")]), FLUSH, append_at("m-1", "content", "!", 5)],
        ids(1),
        {"m-1": {"content": "Hello!"}},
    ),
    (
        "append-offset-merged-tokens",
        [
            stream([item(1, content="")]),
            FLUSH,
            *[append_at("m-1", "content", t, n) for n, t in enumerate("abc")],
        ],
        ids(1),
        {"m-1": {"content": "abc"}},
    ),
    (
        "append-offset-then-plain",
        [
            stream([item(1, content="x")]),
            FLUSH,
            append_at("m-1", "content", "ab", 0),
            append("m-1", "content", "c"),
            append_at("m-1", "content", "d", 3),
        ],
        ids(1),
        {"m-1": {"content": "abcd"}},
    ),
    (
        "append-offset-missing-field-at-0",
        [stream(items(1)), FLUSH, append_at("m-1", "content", "y", 0)],
        ids(1),
        {"m-1": {"content": "y"}},
    ),
    (
        "append-offset-missing-field-past-end",
        [stream(items(1)), FLUSH, append_at("m-1", "content", "y", 1)],
        ids(1),
        {"m-1": {}},
    ),
    (
        "append-offset-null-field",
        [stream([item(1, content=None)]), FLUSH, append_at("m-1", "content", "y", 0)],
        ids(1),
        {"m-1": {"content": "y"}},
    ),
    (
        "append-offset-non-string-field",
        [stream([item(1, n=5)]), FLUSH, append_at("m-1", "n", "y", 0)],
        ids(1),
        {"m-1": {"n": 5}},
    ),
    (
        "append-offset-unknown-id",
        [stream([item(1, content="x")]), FLUSH, append_at("m-9", "content", "y", 0)],
        ids(1),
        {"m-1": {"content": "x"}},
    ),
    # Offsets count code points: an emoji is one (two UTF-16 units in JS).
    (
        "append-offset-after-emoji",
        [stream([item(1, content="a😀")]), FLUSH, append_at("m-1", "content", "b", 2)],
        ids(1),
        {"m-1": {"content": "a😀b"}},
    ),
    (
        "append-offset-cuts-before-emoji",
        [stream([item(1, content="a😀b")]), FLUSH, append_at("m-1", "content", "c", 1)],
        ids(1),
        {"m-1": {"content": "ac"}},
    ),
    (
        "append-offset-past-emoji-text-ignored",
        # 2 code points, 3 UTF-16 units: offset 3 is past the end.
        [stream([item(1, content="a😀")]), FLUSH, append_at("m-1", "content", "b", 3)],
        ids(1),
        {"m-1": {"content": "a😀"}},
    ),
    (
        "append-offset-emoji-tokens",
        [
            stream([item(1, content="")]),
            FLUSH,
            append_at("m-1", "content", "🎉", 0),
            FLUSH,
            append_at("m-1", "content", "é😀", 1),
            append_at("m-1", "content", "👍🏽", 3),
            FLUSH,
            append_at("m-1", "content", "👍🏽", 3),
            append_at("m-1", "content", "!", 5),
        ],
        ids(1),
        {"m-1": {"content": "🎉é😀👍🏽!"}},
    ),
    (
        "append-after-delete-is-noop",
        [
            stream([item(1, content="a")]),
            FLUSH,
            delete(item(1)),
            append("m-1", "content", "b"),
            insert(item(1, content="c")),
        ],
        ids(1),
        {"m-1": {"content": "c"}},
    ),
    # patch: set only the given fields of a held item, in place.
    (
        "patch-unknown-id",
        [stream([item(1, status="a")]), FLUSH, patch("m-9", {"status": "b"})],
        ids(1),
        {"m-1": {"status": "a"}},
    ),
    (
        "patch-keeps-other-fields-and-position",
        [
            stream([item(1), item(2, content="Hi", status="thinking", usage=None), item(3)]),
            FLUSH,
            patch("m-2", {"status": "done", "usage": {"in": 3, "out": 5}}),
        ],
        ids(1, 2, 3),
        {"m-2": {"content": "Hi", "status": "done", "usage": {"in": 3, "out": 5}}},
    ),
    (
        "patch-adds-a-missing-field",
        [stream(items(1)), FLUSH, patch("m-1", {"status": "done"})],
        ids(1),
        {"m-1": {"status": "done"}},
    ),
    (
        "patch-by-item",
        [stream([item(1, status="a")]), FLUSH, patch(item(1), {"status": "b"})],
        ids(1),
        {"m-1": {"status": "b"}},
    ),
    (
        "patch-same-batch-as-insert",
        [insert(item(1, status="a")), patch("m-1", {"status": "b"}), insert(item(2))],
        ids(1, 2),
        {"m-1": {"status": "b"}, "m-2": {}},
    ),
    (
        "patch-never-moves-or-trims",
        [
            stream(items(1, 2, 3), limit=-3),
            FLUSH,
            patch("m-1", {"v": 1}),
            insert(item(4), at=1, limit=-3),
        ],
        ids(4, 2, 3),
        {},
    ),
    (
        "patch-merged-in-batch",
        [
            stream([item(1, status="thinking", n=0)]),
            FLUSH,
            patch("m-1", {"status": "streaming", "n": 1}),
            patch("m-1", {"status": "done"}),
        ],
        ids(1),
        {"m-1": {"status": "done", "n": 1}},
    ),
    (
        "patch-interleaved-items",
        [
            stream([item(1, s="a"), item(2, s="a")]),
            FLUSH,
            patch("m-1", {"s": "b"}),
            patch("m-2", {"s": "c"}),
            patch("m-1", {"t": "d"}),
        ],
        ids(1, 2),
        {"m-1": {"s": "b", "t": "d"}, "m-2": {"s": "c"}},
    ),
    (
        "patch-proto-and-constructor-are-plain-fields",
        [stream(items(1)), FLUSH, patch("m-1", {"__proto__": {"x": 1}, "constructor": "c"})],
        ids(1),
        {"m-1": {"__proto__": {"x": 1}, "constructor": "c"}},
    ),
    (
        "patch-then-append",
        [
            stream([item(1, content="old")]),
            FLUSH,
            append("m-1", "content", "!"),
            patch("m-1", {"content": "Hi"}),
            append("m-1", "content", "!"),
        ],
        ids(1),
        {"m-1": {"content": "Hi!"}},
    ),
    (
        "patch-then-offset-append-counts-the-patched-text",
        [
            stream([item(1, content="Hello world")]),
            FLUSH,
            append_at("m-1", "content", "!", 11),
            patch("m-1", {"content": "Hey"}),
            append_at("m-1", "content", "?", 12),
            append_at("m-1", "content", "!", 3),
        ],
        ids(1),
        {"m-1": {"content": "Hey!"}},
    ),
    (
        "patch-to-null-or-number-then-append",
        [
            stream([item(1, content="a")]),
            FLUSH,
            patch("m-1", {"content": None}),
            append("m-1", "content", "b"),
            patch("m-1", {"n": 5}),
            append("m-1", "n", "x"),
        ],
        ids(1),
        {"m-1": {"content": "b", "n": 5}},
    ),
    (
        "patch-then-update-replaces",
        [
            stream([item(1, a=1)]),
            FLUSH,
            patch("m-1", {"b": 2}),
            insert(item(1, c=3), update_only=True),
        ],
        ids(1),
        {"m-1": {"c": 3}},
    ),
    (
        "patch-after-delete-is-noop",
        [
            stream([item(1, status="a")]),
            FLUSH,
            delete(item(1)),
            patch("m-1", {"status": "b"}),
            insert(item(1)),
        ],
        ids(1),
        {"m-1": {}},
    ),
    (
        "patch-empty-does-nothing",
        [stream([item(1, status="a")]), FLUSH, patch("m-1", {})],
        ids(1),
        {"m-1": {"status": "a"}},
    ),
    (
        "patch-after-reset-same-batch",
        [
            stream([item(1, status="a"), item(2)]),
            FLUSH,
            patch("m-1", {"status": "lost"}),
            stream([item(1, status="b")], reset=True),
            patch("m-1", {"n": 1}),
        ],
        ids(1),
        {"m-1": {"status": "b", "n": 1}},
    ),
]


@pytest.mark.parametrize(
    ("script", "expected_ids", "expected_fields"),
    [pytest.param(s, e, f, id=row_id) for row_id, s, e, f in ROWS],
)
def test_spec_row(
    client_impl: Any,
    script: list[Any],
    expected_ids: list[str],
    expected_fields: dict[str, dict[str, Any]],
) -> None:
    held = run(script, client_impl)
    assert held["dom_ids"] == expected_ids
    assert held["is_empty"] == (not expected_ids)
    for dom_id, it in zip(held["dom_ids"], held["items"], strict=True):
        # Every item carries its DOM id.
        assert it["dom_id"] == dom_id
    by_id = {it["dom_id"]: it for it in held["items"]}
    for dom_id, fields in expected_fields.items():
        assert by_id[dom_id] == {"id": int(dom_id.split("-")[1]), "dom_id": dom_id, **fields}


def test_custom_dom_id(client_impl: Any) -> None:
    spec = StreamSpec("rows", dom_id=lambda it: f"row_{it['uuid']}")
    held = run(
        [
            stream([{"uuid": "a"}, {"uuid": "b"}]),
            FLUSH,
            delete_dom("row_a"),
            append({"uuid": "b"}, "t", "!"),
            patch({"uuid": "b"}, {"s": 1}),
        ],
        client_impl,
        spec=spec,
    )
    assert held["dom_ids"] == ["row_b"]
    assert held["items"] == [{"uuid": "b", "dom_id": "row_b", "t": "!", "s": 1}]


def test_item_dom_id_field_is_overwritten(client_impl: Any) -> None:
    # The client owns the dom_id field; a stale one in the item must not win.
    held = run([stream([item(1, dom_id="bogus")])], client_impl)
    assert held["items"] == [{"id": 1, "dom_id": "m-1"}]


def test_empty_flag(client_impl: Any) -> None:
    assert run([stream([])], client_impl)["is_empty"] is True
    assert run([stream(items(1))], client_impl)["is_empty"] is False
    assert run([stream(items(1)), FLUSH, delete(item(1))], client_impl)["is_empty"] is True
