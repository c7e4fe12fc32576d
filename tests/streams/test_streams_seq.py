"""Batch acceptance by seq (and epoch), in the Python model and in streams.js."""

from __future__ import annotations

from typing import Any

import pytest

from stream_chat.streams import BatchOutcome, ClientStream, StreamRecorder, StreamSpec


def ins(*ids: int) -> list[Any]:
    return ["insert", -1, None, False, [[f"m-{i}", {"id": i}] for i in ids]]


def batch(seq: int, *ops: list[Any], epoch: str = "e1") -> dict[str, Any]:
    return {"seq": seq, "epoch": epoch, "ops": list(ops)}


RESET = ["reset"]

# (row id, batches in delivery order, expected outcomes, expected dom ids, awaiting reset)
CASES = [
    (
        "in-order",
        [batch(1, ins(1)), batch(2, ins(2)), batch(3, ins(3))],
        ["applied"] * 3,
        ["m-1", "m-2", "m-3"],
        False,
    ),
    (
        "duplicate-ignored",
        [batch(1, ins(1)), batch(1, ins(1)), batch(2, ins(2)), batch(2, ins(2))],
        ["applied", "duplicate", "applied", "duplicate"],
        ["m-1", "m-2"],
        False,
    ),
    (
        "older-ignored",
        [batch(1, ins(1)), batch(2, ins(2)), batch(1, ins(9))],
        ["applied", "applied", "duplicate"],
        ["m-1", "m-2"],
        False,
    ),
    (
        "gap-then-ignored-until-reset",
        [
            batch(1, ins(1)),
            batch(3, ins(3)),
            batch(4, ins(4)),
            batch(2, ins(2)),
            batch(5, RESET, ins(5, 6)),
            batch(6, ins(7)),
        ],
        ["applied", "gap", "ignored", "ignored", "applied", "applied"],
        ["m-5", "m-6", "m-7"],
        False,
    ),
    (
        "still-waiting",
        [batch(1, ins(1)), batch(3, ins(3)), batch(4, ins(4))],
        ["applied", "gap", "ignored"],
        ["m-1"],
        True,
    ),
    (
        "reset-past-gap",
        [batch(1, ins(1)), batch(7, RESET, ins(2))],
        ["applied", "applied"],
        ["m-2"],
        False,
    ),
    (
        "reset-next-seq",
        [batch(1, ins(1)), batch(2, RESET, ins(2))],
        ["applied", "applied"],
        ["m-2"],
        False,
    ),
    (
        "duplicate-reset-ignored",
        [batch(1, ins(1)), batch(2, RESET, ins(2)), batch(2, RESET, ins(9))],
        ["applied", "applied", "duplicate"],
        ["m-2"],
        False,
    ),
    (
        "reset-not-first-is-not-a-reset",
        [batch(1, ins(1)), batch(3, ins(3), RESET)],
        ["applied", "gap"],
        ["m-1"],
        True,
    ),
    (
        "fresh-client-gap",
        [batch(4, ins(4)), batch(5, RESET, ins(5))],
        ["gap", "applied"],
        ["m-5"],
        False,
    ),
    ("fresh-client-reset", [batch(9, RESET, ins(1))], ["applied"], ["m-1"], False),
    # The server's counters restarted (new epoch): only a reset is trusted,
    # even with a lower seq, or the same seq as before.
    (
        "new-epoch-reset-lower-seq",
        [
            batch(1, ins(1)),
            batch(2, ins(2)),
            batch(3, ins(3)),
            batch(1, RESET, ins(8), epoch="e2"),
            batch(2, ins(9), epoch="e2"),
        ],
        ["applied"] * 5,
        ["m-8", "m-9"],
        False,
    ),
    (
        "new-epoch-reset-same-seq",
        [batch(1, RESET, ins(1)), batch(1, RESET, ins(2), epoch="e2")],
        ["applied", "applied"],
        ["m-2"],
        False,
    ),
    (
        "new-epoch-non-reset-is-gap",
        [
            batch(1, ins(1)),
            batch(2, ins(2), epoch="e2"),
            batch(3, ins(3), epoch="e2"),
            batch(4, RESET, ins(4), epoch="e2"),
        ],
        ["applied", "gap", "ignored", "applied"],
        ["m-4"],
        False,
    ),
]


@pytest.mark.parametrize(
    ("batches", "outcomes", "dom_ids", "awaiting"),
    [pytest.param(b, o, d, a, id=row_id) for row_id, b, o, d, a in CASES],
)
def test_seq_acceptance(
    client_impl: Any,
    batches: list[dict[str, Any]],
    outcomes: list[str],
    dom_ids: list[str],
    awaiting: bool,
) -> None:
    result = client_impl([{"m": b} for b in batches])
    assert [step["m"] for step in result["outcomes"]] == outcomes
    held = result["streams"]["m"]
    assert held["dom_ids"] == dom_ids
    assert held["awaiting_reset"] is awaiting
    applied = [b for b, o in zip(batches, outcomes, strict=True) if o == "applied"]
    assert held["last_seq"] == applied[-1]["seq"]


def test_streams_are_independent(client_impl: Any) -> None:
    result = client_impl(
        [
            {"a": batch(1, ins(1)), "b": batch(1, ins(2))},
            {"a": batch(3, ins(3))},
            {"a": batch(2, ins(4)), "b": batch(2, ins(5))},
        ]
    )
    assert result["outcomes"] == [
        {"a": "applied", "b": "applied"},
        {"a": "gap"},
        {"a": "ignored", "b": "applied"},
    ]
    assert result["streams"]["a"]["dom_ids"] == ["m-1"]
    assert result["streams"]["b"]["dom_ids"] == ["m-2", "m-5"]


def test_recorder_batches_are_accepted_in_order() -> None:
    spec = StreamSpec("m")
    rec = StreamRecorder()
    client = ClientStream()
    for i in range(1, 6):
        rec.insert(spec, {"id": i})
        assert client.apply_batch(rec.take_batches()["m"]) is BatchOutcome.APPLIED
    assert client.last_seq == 5
    assert client.epoch == rec.epoch
    assert client.dom_ids == [f"m-{i}" for i in range(1, 6)]


def test_server_state_lost_then_on_load_reset_is_accepted() -> None:
    """A backend restart loses the recorder; the reconnect's on_load reset must still land."""
    spec = StreamSpec("m")
    client = ClientStream()
    old = StreamRecorder()
    old.stream(spec, [{"id": 1}], reset=True)
    assert client.apply_batch(old.take_batches()["m"]) is BatchOutcome.APPLIED
    new = StreamRecorder()  # same client token, fresh state: seq starts over at 1
    new.stream(spec, [{"id": 1}, {"id": 2}], reset=True)
    assert client.apply_batch(new.take_batches()["m"]) is BatchOutcome.APPLIED
    assert client.dom_ids == ["m-1", "m-2"]


def test_is_loaded_and_is_empty() -> None:
    client = ClientStream()
    assert client.is_empty and not client.is_loaded
    client.apply_batch(batch(1, RESET))
    assert client.is_empty and client.is_loaded
    client.apply_batch(batch(2, ins(1)))
    assert not client.is_empty and "m-1" in client


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        pytest.param(
            [["append", "m-1", "missing", ""]], {"id": 1, "dom_id": "m-1"}, id="empty-text"
        ),
        pytest.param(
            [["append", "m-1", "missing", "x"]],
            {"id": 1, "dom_id": "m-1", "missing": "x"},
            id="missing-field",
        ),
        pytest.param(
            [["append", "m-1", "__proto__", "x"], ["append", "m-1", "__proto__", "y"]],
            {"id": 1, "dom_id": "m-1", "__proto__": "xy"},
            id="proto-field",
        ),
        pytest.param(
            [["append", "m-1", "dom_id", "x"]], {"id": 1, "dom_id": "m-1"}, id="dom-id-field"
        ),
        pytest.param(
            [["bogus-op", "m-1"], ["append", "m-1", "c", "x"]],
            {"id": 1, "dom_id": "m-1", "c": "x"},
            id="unknown-op-skipped",
        ),
        # Offset appends the recorder never emits (or emits differently).
        pytest.param(
            [["append", "m-1", "c", "x", None], ["append", "m-1", "c", "y", None]],
            {"id": 1, "dom_id": "m-1", "c": "xy"},
            id="offset-null-is-plain",
        ),
        pytest.param(
            [["append", "m-1", "c", "ab", 0], ["append", "m-1", "c", "", 1]],
            {"id": 1, "dom_id": "m-1", "c": "ab"},
            id="offset-empty-text-does-not-truncate",
        ),
        pytest.param(
            [
                ["append", "m-1", "c", "ab", 0],
                ["append", "m-1", "c", "x", -1],
                ["append", "m-1", "c", "x", "1"],
                ["append", "m-1", "c", "x", True],
                ["append", "m-1", "c", "x", 1.5],
            ],
            {"id": 1, "dom_id": "m-1", "c": "ab"},
            id="offset-invalid-does-nothing",
        ),
        pytest.param(
            [["append", "m-1", "dom_id", "x", 0]], {"id": 1, "dom_id": "m-1"}, id="offset-dom-id"
        ),
        # A lone surrogate counts as one code point in both implementations.
        pytest.param(
            [["append", "m-1", "c", "\ud83dX", 0], ["append", "m-1", "c", "y", 1]],
            {"id": 1, "dom_id": "m-1", "c": "\ud83dy"},
            id="offset-lone-surrogate",
        ),
        pytest.param(
            [["append", "m-1", "c", "X\ud83d", 0], ["append", "m-1", "c", "y", 2]],
            {"id": 1, "dom_id": "m-1", "c": "X\ud83dy"},
            id="offset-trailing-lone-surrogate",
        ),
        pytest.param(
            [["append", "m-1", "c", "\U0001f600\U0001f600", 0], ["append", "m-1", "c", "y", 1]],
            {"id": 1, "dom_id": "m-1", "c": "\U0001f600y"},
            id="offset-between-emoji",
        ),
    ],
)
def test_raw_append_ops(client_impl: Any, ops: list[Any], expected: dict[str, Any]) -> None:
    # Ops the recorder never emits but a client must still treat alike.
    result = client_impl([{"m": batch(1, ins(1), *ops)}])
    assert result["streams"]["m"]["items"] == [expected]


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        pytest.param(
            [["patch", "m-1", {"dom_id": "x", "s": 1}]],
            {"id": 1, "dom_id": "m-1", "s": 1},
            id="dom-id-key-ignored",
        ),
        pytest.param(
            [
                ["patch", "m-1", ["s", 1]],
                ["patch", "m-1", None],
                ["patch", "m-1", "s"],
                ["patch", "m-1", 5],
                ["patch", "m-1"],
                ["patch", "m-1", {"t": 2}],
            ],
            {"id": 1, "dom_id": "m-1", "t": 2},
            id="non-object-fields-skipped",
        ),
        pytest.param(
            [["patch", "m-1", {"s": 1}], ["patch", "m-1", {}]],
            {"id": 1, "dom_id": "m-1", "s": 1},
            id="empty-object",
        ),
        pytest.param(
            [["patch", "m-9", {"s": 1}], ["patch", None, {"s": 1}], ["patch", "m-1", {"t": 2}]],
            {"id": 1, "dom_id": "m-1", "t": 2},
            id="unknown-id",
        ),
        pytest.param(
            [["patch", "m-1", {"id": 7, "__proto__": None}]],
            {"id": 7, "dom_id": "m-1", "__proto__": None},
            id="id-and-proto-are-plain-fields",
        ),
    ],
)
def test_raw_patch_ops(client_impl: Any, ops: list[Any], expected: dict[str, Any]) -> None:
    # Ops the recorder never emits but a client must still treat alike.
    result = client_impl([{"m": batch(1, ins(1), *ops)}])
    assert result["streams"]["m"]["items"] == [expected]
    assert result["streams"]["m"]["dom_ids"] == ["m-1"]
