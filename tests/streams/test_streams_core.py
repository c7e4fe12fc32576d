"""The recorder itself: validation, what it records, seq numbering and pruning."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from typing import Any

import pytest

from stream_chat.streams import StreamRecorder, StreamSpec, channel_batch
from stream_chat.streams.core import validate_at, validate_limit

M = StreamSpec("messages")


def test_core_does_not_import_reflex() -> None:
    code = (
        "import sys, stream_chat.streams, stream_chat.streams.core, "
        "stream_chat.streams.client_model; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'reflex'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("at", [-2, -3, -100])
def test_at_below_minus_one_is_value_error(at: int) -> None:
    rec = StreamRecorder()
    with pytest.raises(ValueError, match="at"):
        rec.insert(M, {"id": 1}, at=at)
    with pytest.raises(ValueError, match="at"):
        rec.stream(M, [{"id": 1}], at=at)
    assert not rec.has_pending()


@pytest.mark.parametrize("at", [True, 1.0, "0", None])
def test_at_must_be_int(at: Any) -> None:
    with pytest.raises(TypeError):
        StreamRecorder().insert(M, {"id": 1}, at=at)


@pytest.mark.parametrize("limit", [True, 2.5, "3"])
def test_limit_must_be_int_or_none(limit: Any) -> None:
    with pytest.raises(TypeError):
        StreamRecorder().stream(M, [{"id": 1}], limit=limit)


def test_validators_accept_valid_values() -> None:
    assert validate_at(-1) == -1
    assert validate_at(0) == 0
    assert validate_at(7) == 7
    assert validate_limit(None) is None
    assert validate_limit(-5) == -5


@pytest.mark.parametrize("bad", [{}, {"id": None}, {"content": "hi"}])
def test_item_without_id_is_clear_error(bad: dict[str, Any]) -> None:
    rec = StreamRecorder()
    for call in (
        lambda: rec.insert(M, bad),
        lambda: rec.stream(M, [{"id": 1}, bad]),
        lambda: rec.delete(M, bad),
        lambda: rec.append_text(M, bad, "content", "x"),
    ):
        with pytest.raises(ValueError, match=r"stream 'messages'.*no 'id'"):
            call()
    # A failing batch records nothing, not even its valid items.
    assert not rec.has_pending()


def test_id_zero_and_empty_string_are_ids() -> None:
    assert M.dom_id_of({"id": 0}) == "messages-0"
    assert M.dom_id_of({"id": ""}) == "messages-"


def test_default_dom_id() -> None:
    assert M.dom_id_of({"id": 42, "content": "x"}) == "messages-42"
    assert StreamSpec("rooms").dom_id_of({"id": "abc"}) == "rooms-abc"


def test_custom_dom_id_must_return_non_empty_string() -> None:
    spec = StreamSpec("s", dom_id=lambda it: it.get("key"))  # type: ignore[arg-type, return-value]
    assert spec.dom_id_of({"key": "k1"}) == "k1"
    with pytest.raises(ValueError, match="stream 's'"):
        spec.dom_id_of({"key": None})
    with pytest.raises(ValueError, match="stream 's'"):
        spec.dom_id_of({"key": ""})


def test_items_must_be_mappings() -> None:
    rec = StreamRecorder()
    with pytest.raises(TypeError, match="messages"):
        rec.insert(M, [("id", 1)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="messages"):
        rec.stream(M, {"id": 1})  # a single dict instead of a list of dicts
    with pytest.raises(TypeError, match="messages"):
        rec.stream(M, [1, 2])  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["", None, 3])
def test_spec_needs_a_name(name: Any) -> None:
    with pytest.raises(ValueError):
        StreamSpec(name)


def test_append_text_validation() -> None:
    rec = StreamRecorder()
    with pytest.raises(TypeError):
        rec.append_text(M, "messages-1", "content", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rec.append_text(M, "messages-1", None, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dom_id"):
        rec.append_text(M, "messages-1", "dom_id", "x")
    with pytest.raises(TypeError):
        rec.delete_by_dom_id(M, 1)  # type: ignore[arg-type]
    rec.append_text(M, "messages-1", "content", "")
    assert not rec.has_pending()


def test_recorded_ops_wire_shape() -> None:
    rec = StreamRecorder()
    rec.stream(M, [{"id": 1}, {"id": 2}], at=0, limit=-10)
    rec.insert(M, {"id": 3}, update_only=True)
    rec.delete(M, {"id": 1})
    rec.delete_by_dom_id(M, "messages-2")
    rec.append_text(M, "messages-3", "content", "tok")
    assert rec.pending_ops("messages") == [
        ["insert", 0, -10, False, [["messages-1", {"id": 1}], ["messages-2", {"id": 2}]]],
        ["insert", -1, None, True, [["messages-3", {"id": 3}]]],
        ["delete", "messages-1"],
        ["delete", "messages-2"],
        ["append", "messages-3", "content", "tok"],
    ]


def test_reset_drops_earlier_pending_ops_and_comes_first() -> None:
    rec = StreamRecorder()
    rec.insert(M, {"id": 9})
    rec.append_text(M, "messages-9", "content", "x")
    rec.stream(M, [{"id": 1}], reset=True)
    rec.insert(M, {"id": 2}, at=0)
    assert rec.pending_ops("messages") == [
        ["reset"],
        ["insert", -1, None, False, [["messages-1", {"id": 1}]]],
        ["insert", 0, None, False, [["messages-2", {"id": 2}]]],
    ]


def test_reset_with_no_items_still_records_reset() -> None:
    rec = StreamRecorder()
    rec.stream(M, [], reset=True)
    assert rec.pending_ops("messages") == [["reset"]]


def test_stream_of_nothing_records_nothing() -> None:
    rec = StreamRecorder()
    rec.stream(M, [])
    assert not rec.has_pending()
    assert rec.take_batches() == {}


def test_appends_merge_within_a_batch() -> None:
    rec = StreamRecorder()
    for token in ["Hel", "lo", ", ", "world"]:
        rec.append_text(M, "messages-1", "content", token)
    assert rec.pending_ops("messages") == [["append", "messages-1", "content", "Hello, world"]]


def test_interleaved_appends_merge_per_item_and_field() -> None:
    rec = StreamRecorder()
    for token in "abc":
        rec.append_text(M, "messages-1", "content", token)
        rec.append_text(M, "messages-2", "content", token.upper())
        rec.append_text(M, "messages-1", "title", token)
    assert rec.pending_ops("messages") == [
        ["append", "messages-1", "content", "abc"],
        ["append", "messages-2", "content", "ABC"],
        ["append", "messages-1", "title", "abc"],
    ]


def test_appends_do_not_merge_across_other_ops_or_batches() -> None:
    rec = StreamRecorder()
    rec.append_text(M, "messages-1", "content", "a")
    rec.delete(M, {"id": 1})
    rec.append_text(M, "messages-1", "content", "b")
    assert rec.pending_ops("messages") == [
        ["append", "messages-1", "content", "a"],
        ["delete", "messages-1"],
        ["append", "messages-1", "content", "b"],
    ]
    first = rec.take_batches()["messages"]["ops"]
    rec.append_text(M, "messages-1", "content", "c")
    assert rec.pending_ops("messages") == [["append", "messages-1", "content", "c"]]
    # The batch already taken is not touched by later appends.
    assert first[-1] == ["append", "messages-1", "content", "b"]


def test_appends_merge_per_stream() -> None:
    rec = StreamRecorder()
    other = StreamSpec("other")
    rec.append_text(M, "x", "content", "a")
    rec.append_text(other, "x", "content", "b")
    rec.append_text(M, "x", "content", "c")
    assert rec.pending_ops("messages") == [["append", "x", "content", "ac"]]
    assert rec.pending_ops("other") == [["append", "x", "content", "b"]]


def test_consecutive_appending_inserts_share_one_op() -> None:
    rec = StreamRecorder()
    rec.insert(M, {"id": 1})
    rec.insert(M, {"id": 2})
    rec.stream(M, [{"id": 3}])
    rec.insert(M, {"id": 4}, limit=5)  # different limit: new op
    rec.insert(M, {"id": 5}, at=0)  # at an index: never merged
    rec.insert(M, {"id": 6}, at=0)
    rec.insert(M, {"id": 7}, update_only=True)  # different flag: new op
    assert rec.pending_ops("messages") == [
        [
            "insert",
            -1,
            None,
            False,
            [["messages-1", {"id": 1}], ["messages-2", {"id": 2}], ["messages-3", {"id": 3}]],
        ],
        ["insert", -1, 5, False, [["messages-4", {"id": 4}]]],
        ["insert", 0, None, False, [["messages-5", {"id": 5}]]],
        ["insert", 0, None, False, [["messages-6", {"id": 6}]]],
        ["insert", -1, None, True, [["messages-7", {"id": 7}]]],
    ]


def test_items_are_copied_when_recorded() -> None:
    rec = StreamRecorder()
    msg = {"id": 1, "content": "a"}
    rec.insert(M, msg)
    msg["content"] = "changed"
    assert rec.pending_ops("messages")[0][4][0][1] == {"id": 1, "content": "a"}


def test_take_batches_numbers_per_stream_and_prunes() -> None:
    rec = StreamRecorder()
    other = StreamSpec("other")
    assert rec.take_batches() == {}
    rec.insert(M, {"id": 1})
    first = rec.take_batches()
    assert list(first) == ["messages"]
    assert first["messages"]["seq"] == 1
    assert first["messages"]["ops"] == [["insert", -1, None, False, [["messages-1", {"id": 1}]]]]
    assert not rec.has_pending()
    assert rec.pending_ops("messages") == []
    # Nothing pending: no batch and no seq consumed.
    assert rec.take_batches() == {}
    rec.delete(M, {"id": 1})
    rec.insert(other, {"id": 1})
    second = rec.take_batches()
    assert {name: b["seq"] for name, b in second.items()} == {"messages": 2, "other": 1}
    rec.insert(other, {"id": 2})
    third = rec.take_batches()
    assert {name: b["seq"] for name, b in third.items()} == {"other": 2}
    assert rec.last_seq("messages") == 2
    assert rec.last_seq("other") == 2
    assert rec.last_seq("never") == 0


def test_epoch_is_stable_per_recorder_and_lazy() -> None:
    template = StreamRecorder()
    assert template.epoch == ""
    # Copies made before the first take (a class default copied into each
    # state) each get an epoch of their own.
    a, b = copy.deepcopy(template), copy.deepcopy(template)
    for rec in (a, b):
        rec.insert(M, {"id": 1})
    epoch_a = a.take_batches()["messages"]["epoch"]
    epoch_b = b.take_batches()["messages"]["epoch"]
    assert epoch_a and epoch_b and epoch_a != epoch_b
    a.insert(M, {"id": 2})
    assert a.take_batches()["messages"]["epoch"] == epoch_a
    assert a.epoch == epoch_a


def test_batches_are_json_ready() -> None:
    rec = StreamRecorder()
    rec.stream(M, [{"id": 1, "content": "é", "meta": {"n": [1, 2]}}], reset=True, at=0, limit=-3)
    rec.append_text(M, "messages-1", "content", "x")
    batches = rec.take_batches()
    assert json.loads(json.dumps(batches)) == batches


def test_pickle_roundtrip_keeps_pending_and_counters() -> None:
    rec = StreamRecorder()
    rec.insert(M, {"id": 1})
    rec.take_batches()
    rec.insert(M, {"id": 2})
    clone = pickle.loads(pickle.dumps(rec))
    assert clone == rec
    assert clone.take_batches() == rec.take_batches()
    assert clone.last_seq("messages") == 2


def test_recorder_holds_no_callables() -> None:
    rec = StreamRecorder()
    rec.insert(StreamSpec("s", dom_id=lambda it: f"k{it['k']}"), {"k": 1})
    # A lambda in the state would make pickling fail.
    assert pickle.loads(pickle.dumps(rec)).pending_ops("s")[0][4] == [["k1", {"k": 1}]]


def test_pickled_size_flat_after_many_items() -> None:
    rec = StreamRecorder()
    rec.insert(M, {"id": 0})
    rec.take_batches()
    baseline = len(pickle.dumps(rec))
    for i in range(1, 5000):
        rec.insert(M, {"id": i, "content": "x" * 200})
        if i % 7 == 0:
            rec.append_text(M, f"messages-{i}", "content", "tok")
        rec.take_batches()
    # Only the seq counter's digits may grow.
    assert len(pickle.dumps(rec)) <= baseline + 4


# -- joins, channel batches, offset appends ------------------------------------


def test_join_wire_shape_and_order() -> None:
    rec = StreamRecorder()
    rec.stream(M, [{"id": 1}], reset=True)
    rec.join(M, "room-7", 12)
    rec.insert(M, {"id": 2})
    assert rec.pending_ops("messages") == [
        ["reset"],
        ["insert", -1, None, False, [["messages-1", {"id": 1}]]],
        ["join", "room-7", 12],
        # A join between two appending inserts keeps them apart (order matters).
        ["insert", -1, None, False, [["messages-2", {"id": 2}]]],
    ]
    assert rec.take_batches()["messages"]["ops"][2] == ["join", "room-7", 12]


def test_reset_after_join_drops_the_join() -> None:
    rec = StreamRecorder()
    rec.join(M, "room-7", 3)
    rec.stream(M, [{"id": 1}], reset=True)
    assert rec.pending_ops("messages") == [
        ["reset"],
        ["insert", -1, None, False, [["messages-1", {"id": 1}]]],
    ]


def test_join_is_not_merged_across() -> None:
    rec = StreamRecorder()
    rec.append_text(M, "messages-1", "content", "a")
    rec.join(M, "r", 0)
    rec.append_text(M, "messages-1", "content", "b")
    assert rec.pending_ops("messages") == [
        ["append", "messages-1", "content", "a"],
        ["join", "r", 0],
        ["append", "messages-1", "content", "b"],
    ]


@pytest.mark.parametrize(
    ("channel", "cseq", "error"),
    [
        (None, 0, TypeError),
        (7, 0, TypeError),
        ("", 0, ValueError),
        ("r", -1, ValueError),
        ("r", True, TypeError),
        ("r", 1.0, TypeError),
        ("r", "1", TypeError),
        ("r", None, TypeError),
    ],
)
def test_join_validation(channel: Any, cseq: Any, error: type[Exception]) -> None:
    rec = StreamRecorder()
    with pytest.raises(error):
        rec.join(M, channel, cseq)
    assert not rec.has_pending()


def test_take_ops_returns_and_clears_one_stream_without_seq() -> None:
    rec = StreamRecorder()
    other = StreamSpec("other")
    rec.insert(M, {"id": 1})
    rec.append_text(M, "messages-1", "content", "a", offset=0)
    rec.insert(other, {"id": 2})
    ops = rec.take_ops("messages")
    assert ops == [
        ["insert", -1, None, False, [["messages-1", {"id": 1}]]],
        ["append", "messages-1", "content", "a", 0],
    ]
    assert rec.pending_ops("messages") == []
    assert rec.take_ops("messages") == []
    assert rec.take_ops("never") == []
    assert rec.last_seq("messages") == 0
    assert rec.epoch == ""
    # The other stream is untouched and still numbered from 1.
    batches = rec.take_batches()
    assert list(batches) == ["other"]
    assert batches["other"]["seq"] == 1
    # Later recording does not write into the list handed out.
    rec.append_text(M, "messages-1", "content", "b", offset=1)
    assert ops[-1] == ["append", "messages-1", "content", "a", 0]


def test_channel_batch_shape() -> None:
    scratch = StreamRecorder()
    scratch.insert(M, {"id": 1, "content": ""})
    scratch.append_text(M, "messages-1", "content", "Hé😀", offset=0)
    scratch.append_text(M, "messages-1", "content", "!", offset=3)
    batch = channel_batch("room-7", 42, scratch.take_ops("messages"))
    assert batch == {
        "channel": "room-7",
        "cseq": 42,
        "ops": [
            ["insert", -1, None, False, [["messages-1", {"id": 1, "content": ""}]]],
            ["append", "messages-1", "content", "Hé😀!", 0],
        ],
    }
    assert "seq" not in batch and "epoch" not in batch
    assert json.loads(json.dumps(batch)) == batch
    # An empty batch is allowed: it still moves every tab's cseq on.
    assert channel_batch("room-7", 43, []) == {"channel": "room-7", "cseq": 43, "ops": []}


@pytest.mark.parametrize(
    ("channel", "cseq", "ops", "error"),
    [
        (None, 1, [], TypeError),
        ("", 1, [], ValueError),
        ("r", 0, [], ValueError),
        ("r", -3, [], ValueError),
        ("r", True, [], TypeError),
        ("r", "2", [], TypeError),
        ("r", 1, [["reset"]], ValueError),
        ("r", 1, [["delete", "x"], ["join", "r2", 4]], ValueError),
        ("r", 1, [("delete", "x")], TypeError),
        ("r", 1, [[]], TypeError),
        ("r", 1, ["delete"], TypeError),
    ],
)
def test_channel_batch_validation(channel: Any, cseq: Any, ops: Any, error: type) -> None:
    with pytest.raises(error):
        channel_batch(channel, cseq, ops)


def test_reset_recorded_for_a_channel_is_refused() -> None:
    scratch = StreamRecorder()
    scratch.stream(M, [{"id": 1}], reset=True)
    with pytest.raises(ValueError, match="reset"):
        channel_batch("r", 1, scratch.take_ops("messages"))


def test_offset_append_wire_shape_and_validation() -> None:
    rec = StreamRecorder()
    rec.append_text(M, "messages-1", "content", "a", offset=0)
    rec.append_text(M, "messages-2", "content", "b")
    assert rec.pending_ops("messages") == [
        ["append", "messages-1", "content", "a", 0],
        # A plain append keeps today's four elements.
        ["append", "messages-2", "content", "b"],
    ]
    for bad, error in [(-1, ValueError), (True, TypeError), (1.0, TypeError), ("1", TypeError)]:
        with pytest.raises(error):
            rec.append_text(M, "messages-1", "content", "x", offset=bad)
    # Empty text records nothing, with or without an offset.
    rec.append_text(M, "messages-1", "content", "", offset=5)
    assert len(rec.pending_ops("messages")) == 2


def test_offset_appends_merge_only_when_they_continue() -> None:
    rec = StreamRecorder()
    rec.append_text(M, "m1", "content", "Hel", offset=10)
    rec.append_text(M, "m1", "content", "lo", offset=13)  # 10 + len("Hel"): merged
    rec.append_text(M, "m1", "content", "!", offset=14)  # not 15: kept apart
    rec.append_text(M, "m1", "content", "?", offset=14)  # not 15 either
    assert rec.pending_ops("messages") == [
        ["append", "m1", "content", "Hello", 10],
        ["append", "m1", "content", "!", 14],
        ["append", "m1", "content", "?", 14],
    ]


def test_offset_merge_counts_code_points() -> None:
    rec = StreamRecorder()
    rec.append_text(M, "m1", "content", "😀é", offset=0)
    rec.append_text(M, "m1", "content", "👍🏽", offset=2)  # two code points before it
    rec.append_text(M, "m1", "content", "x", offset=4)
    rec.append_text(M, "m1", "content", "y", offset=len("😀é👍🏽x".encode("utf-16-le")) // 2)
    assert rec.pending_ops("messages") == [
        ["append", "m1", "content", "😀é👍🏽x", 0],
        # A UTF-16 offset (what JS `.length` would say) does not continue it.
        ["append", "m1", "content", "y", 8],
    ]


def test_offset_and_plain_appends_never_merge() -> None:
    rec = StreamRecorder()
    rec.append_text(M, "m1", "content", "a")
    rec.append_text(M, "m1", "content", "b", offset=1)
    rec.append_text(M, "m1", "content", "c")
    rec.append_text(M, "m1", "content", "d")
    assert rec.pending_ops("messages") == [
        ["append", "m1", "content", "a"],
        ["append", "m1", "content", "b", 1],
        ["append", "m1", "content", "cd"],
    ]


def test_offset_appends_merge_per_item_and_field_with_the_latest_only() -> None:
    rec = StreamRecorder()
    for n, token in enumerate("abc"):
        rec.append_text(M, "m1", "content", token, offset=n)
        rec.append_text(M, "m2", "content", token.upper(), offset=n)
    # Continues the first m1 append but not the latest one: must not merge.
    rec.append_text(M, "m1", "content", "z", offset=1)
    assert rec.pending_ops("messages") == [
        ["append", "m1", "content", "abc", 0],
        ["append", "m2", "content", "ABC", 0],
        ["append", "m1", "content", "z", 1],
    ]


def test_pickle_keeps_joins_and_offset_appends() -> None:
    rec = StreamRecorder()
    rec.join(M, "room", 3)
    rec.append_text(M, "m1", "content", "a", offset=2)
    clone = pickle.loads(pickle.dumps(rec))
    assert clone == rec
    assert clone.pending_ops("messages") == [
        ["join", "room", 3],
        ["append", "m1", "content", "a", 2],
    ]


# -- patches ---------------------------------------------------------------------


def test_patch_wire_shape() -> None:
    rec = StreamRecorder()
    rec.patch(M, "messages-1", {"status": "done", "usage": {"out": 3}})
    # The target may be the item itself, as for appends.
    rec.patch(M, {"id": 2, "text": "ignored"}, {"status": "failed"})
    assert rec.pending_ops("messages") == [
        ["patch", "messages-1", {"status": "done", "usage": {"out": 3}}],
        ["patch", "messages-2", {"status": "failed"}],
    ]
    assert json.loads(json.dumps(rec.take_batches()))["messages"]["ops"][0][0] == "patch"


@pytest.mark.parametrize(
    ("target", "fields", "error"),
    [
        ("messages-1", {"dom_id": "x"}, ValueError),
        ("messages-1", {"status": "done", "dom_id": "x"}, ValueError),
        ("messages-1", {1: "x"}, ValueError),
        ("messages-1", {None: "x"}, ValueError),
        ("messages-1", [("status", "done")], TypeError),
        ("messages-1", None, TypeError),
        ({"content": "no id"}, {"status": "done"}, ValueError),
        ({"content": "no id"}, {}, ValueError),
    ],
)
def test_patch_validation(target: Any, fields: Any, error: type[Exception]) -> None:
    rec = StreamRecorder()
    with pytest.raises(error, match="stream 'messages'"):
        rec.patch(M, target, fields)
    assert not rec.has_pending()


def test_patch_of_nothing_records_nothing() -> None:
    rec = StreamRecorder()
    rec.patch(M, "messages-1", {})
    assert not rec.has_pending()
    assert rec.take_batches() == {}


def test_patch_fields_are_copied_when_recorded() -> None:
    rec = StreamRecorder()
    fields = {"status": "streaming"}
    rec.patch(M, "messages-1", fields)
    fields["status"] = "changed"
    assert rec.pending_ops("messages") == [["patch", "messages-1", {"status": "streaming"}]]


def test_consecutive_patches_of_one_item_merge() -> None:
    rec = StreamRecorder()
    rec.patch(M, "m1", {"status": "streaming", "n": 1})
    seen = rec.pending_ops("messages")
    rec.patch(M, "m1", {"status": "done"})
    rec.patch(M, "m2", {"status": "done"})  # another item: new op
    rec.patch(M, "m1", {"n": 2})  # not right after the m1 patch: new op
    assert rec.pending_ops("messages") == [
        ["patch", "m1", {"status": "done", "n": 1}],
        ["patch", "m2", {"status": "done"}],
        ["patch", "m1", {"n": 2}],
    ]
    # What pending_ops handed out earlier is not rewritten by the merge.
    assert seen == [["patch", "m1", {"status": "streaming", "n": 1}]]


def test_appends_and_patches_do_not_merge_across_each_other() -> None:
    rec = StreamRecorder()
    rec.append_text(M, "m1", "content", "a")
    rec.patch(M, "m1", {"content": "X"})
    rec.append_text(M, "m1", "content", "b")
    rec.patch(M, "m1", {"status": "done"})
    assert rec.pending_ops("messages") == [
        ["append", "m1", "content", "a"],
        ["patch", "m1", {"content": "X"}],
        ["append", "m1", "content", "b"],
        ["patch", "m1", {"status": "done"}],
    ]


def test_reset_drops_earlier_patches() -> None:
    rec = StreamRecorder()
    rec.patch(M, "messages-1", {"status": "done"})
    rec.stream(M, [{"id": 1}], reset=True)
    rec.patch(M, "messages-1", {"status": "failed"})
    assert rec.pending_ops("messages") == [
        ["reset"],
        ["insert", -1, None, False, [["messages-1", {"id": 1}]]],
        ["patch", "messages-1", {"status": "failed"}],
    ]


def test_patch_is_allowed_in_a_channel_batch() -> None:
    scratch = StreamRecorder()
    scratch.patch(M, "messages-1", {"status": "done"})
    batch = channel_batch("room-7", 1, scratch.take_ops("messages"))
    assert batch["ops"] == [["patch", "messages-1", {"status": "done"}]]


def test_pickle_keeps_patches() -> None:
    rec = StreamRecorder()
    rec.patch(M, "m1", {"status": "done"})
    clone = pickle.loads(pickle.dumps(rec))
    assert clone == rec
    assert clone.pending_ops("messages") == [["patch", "m1", {"status": "done"}]]
