"""Channel batches and joins, in the Python model and in streams.js.

A channel batch ``{"channel", "cseq", "ops"}`` is built once per room and sent
to every tab; a stream applies those of the channel it joined (a ``join`` op
in its own batch), in cseq order, and never touches its own seq or epoch with
them. ``client_impl`` runs every case once against client_model.py and once
against assets/streams.js under Node.
"""

from __future__ import annotations

from typing import Any

import pytest

from stream_chat.streams import StreamRecorder, StreamSpec, channel_batch

M = StreamSpec("m")
RESET = ["reset"]


def ins(*ids: int, **fields: Any) -> list[Any]:
    return ["insert", -1, None, False, [[f"m-{i}", {"id": i, **fields}] for i in ids]]


def join(channel: str, cseq: int) -> list[Any]:
    return ["join", channel, cseq]


def own(seq: int, *ops: list[Any], epoch: str = "e1") -> dict[str, Any]:
    """A batch of the tab's own (seq, epoch)."""
    return {"seq": seq, "epoch": epoch, "ops": list(ops)}


def chan(channel: str, cseq: int, *ops: list[Any]) -> dict[str, Any]:
    """A channel batch, as the server builds it."""
    return dict(channel_batch(channel, cseq, list(ops)))


def raw_chan(channel: Any, cseq: Any, *ops: list[Any]) -> dict[str, Any]:
    """A channel batch the server helper would refuse to build."""
    return {"channel": channel, "cseq": cseq, "ops": list(ops)}


def ids(*numbers: int) -> list[str]:
    return [f"m-{n}" for n in numbers]


# A tab that loaded the room: own batch 1 resets, snapshots and joins r1 at cseq 0.
LOADED = own(1, RESET, ins(1), join("r1", 0))

# (row id, batches in delivery order, outcomes, dom ids, awaiting reset,
#  (channel, channel_seq), last_seq)
CASES: list[tuple[str, list[dict[str, Any]], list[str], list[str], bool, Any, int]] = [
    (
        "join-then-channel-applied",
        [own(1, RESET, ins(1), join("r1", 4)), chan("r1", 5, ins(2)), chan("r1", 6, ins(3))],
        ["applied"] * 3,
        ids(1, 2, 3),
        False,
        ("r1", 6),
        1,
    ),
    (
        "other-channel-ignored",
        [LOADED, chan("r2", 1, ins(9)), chan("r1", 1, ins(2)), chan("r2", 2, ins(8))],
        ["applied", "ignored", "applied", "ignored"],
        ids(1, 2),
        False,
        ("r1", 1),
        1,
    ),
    (
        "not-joined-ignored",
        [own(1, ins(1)), chan("r1", 1, ins(2)), chan("r1", 2, ins(3))],
        ["applied", "ignored", "ignored"],
        ids(1),
        False,
        (None, 0),
        1,
    ),
    # Before any batch of its own (not even loaded), a broadcast changes nothing.
    ("fresh-stream-ignores-channel", [chan("r1", 1, ins(2))], ["ignored"], [], False, (None, 0), 0),
    (
        "duplicate-cseq",
        [
            LOADED,
            chan("r1", 1, ins(2)),
            chan("r1", 1, ins(2)),
            chan("r1", 2, ins(3)),
            chan("r1", 1, ins(9)),
        ],
        ["applied", "applied", "duplicate", "applied", "duplicate"],
        ids(1, 2, 3),
        False,
        ("r1", 2),
        1,
    ),
    # The snapshot already holds what channel batches up to the join's cseq did.
    (
        "cseq-covered-by-join-is-duplicate",
        [
            own(1, RESET, ins(1, 2), join("r1", 5)),
            chan("r1", 5, ins(2)),
            chan("r1", 3, ins(9)),
            chan("r1", 6, ins(3)),
        ],
        ["applied", "duplicate", "duplicate", "applied"],
        ids(1, 2, 3),
        False,
        ("r1", 6),
        1,
    ),
    (
        "first-channel-batch-after-join-missing-is-gap",
        [own(1, RESET, ins(1), join("r1", 4)), chan("r1", 6, ins(3))],
        ["applied", "gap"],
        ids(1),
        True,
        ("r1", 4),
        1,
    ),
    # A gap in cseq: one "gap" (one resync), then broadcasts and non-reset
    # batches of the tab's own are ignored until its own reset batch arrives.
    (
        "channel-gap-ignored-until-reset",
        [
            LOADED,
            chan("r1", 1, ins(2)),
            chan("r1", 3, ins(4)),
            chan("r1", 4, ins(5)),
            chan("r1", 2, ins(3)),
            own(2, ins(8)),
            own(3, RESET, ins(1, 2, 3, 4, 5), join("r1", 4)),
            chan("r1", 5, ins(6)),
            own(4, ins(7)),
        ],
        [
            "applied",
            "applied",
            "gap",
            "ignored",
            "ignored",
            "ignored",
            "applied",
            "applied",
            "applied",
        ],
        ids(1, 2, 3, 4, 5, 6, 7),
        False,
        ("r1", 5),
        4,
    ),
    (
        "channel-gap-still-waiting",
        [LOADED, chan("r1", 2, ins(3)), chan("r1", 3, ins(4)), chan("r1", 1, ins(2))],
        ["applied", "gap", "ignored", "ignored"],
        ids(1),
        True,
        ("r1", 0),
        1,
    ),
    # A gap in the tab's own seq blocks broadcasts as well.
    (
        "own-gap-blocks-channel",
        [
            LOADED,
            own(3, ins(3)),
            chan("r1", 1, ins(2)),
            own(4, RESET, ins(1, 2), join("r1", 1)),
            chan("r1", 2, ins(4)),
        ],
        ["applied", "gap", "ignored", "applied", "applied"],
        ids(1, 2, 4),
        False,
        ("r1", 2),
        4,
    ),
    # A reset unbinds: broadcasts are ignored until a new join.
    (
        "reset-clears-channel",
        [
            LOADED,
            chan("r1", 1, ins(2)),
            own(2, RESET, ins(7)),
            chan("r1", 2, ins(3)),
            own(3, join("r1", 2)),
            chan("r1", 3, ins(4)),
        ],
        ["applied", "applied", "applied", "ignored", "applied", "applied"],
        ids(7, 4),
        False,
        ("r1", 3),
        3,
    ),
    (
        "reset-to-empty-unbinds",
        [LOADED, own(2, RESET), chan("r1", 1, ins(2))],
        ["applied", "applied", "ignored"],
        [],
        False,
        (None, 0),
        2,
    ),
    # Moving to another room: reset, snapshot, join the other channel.
    (
        "rejoin-other-channel",
        [
            LOADED,
            chan("r1", 1, ins(2)),
            own(2, RESET, ins(5), join("r2", 10)),
            chan("r1", 2, ins(3)),
            chan("r2", 11, ins(6)),
        ],
        ["applied", "applied", "applied", "ignored", "applied"],
        ids(5, 6),
        False,
        ("r2", 11),
        2,
    ),
    # A join without a reset rebinds (and may move cseq either way).
    (
        "join-without-reset",
        [
            own(1, ins(1)),
            own(2, join("r1", 3)),
            chan("r1", 4, ins(2)),
            own(3, join("r1", 2)),
            chan("r1", 3, ins(3)),
        ],
        ["applied"] * 5,
        ids(1, 2, 3),
        False,
        ("r1", 3),
        3,
    ),
    # Channel batches interleave with the tab's own; neither disturbs the other.
    (
        "interleaved-with-own-batches",
        [
            LOADED,
            chan("r1", 1, ins(2, content="")),
            own(2, ins(3)),
            chan("r1", 2, ["append", "m-2", "content", "Hi", 0]),
            own(3, ["delete", "m-1"]),
            chan("r1", 3, ["append", "m-2", "content", "!", 2]),
            own(4, ins(4)),
        ],
        ["applied"] * 7,
        ids(2, 3, 4),
        False,
        ("r1", 3),
        4,
    ),
    # A channel batch never counts as a reset batch: it cannot end the wait
    # after a gap, and its reset/join ops are skipped (the rest applies).
    (
        "reset-and-join-in-channel-batch-skipped",
        [LOADED, raw_chan("r1", 1, RESET, join("r2", 7), ins(2)), chan("r1", 2, ins(3))],
        ["applied", "applied", "applied"],
        ids(1, 2, 3),
        False,
        ("r1", 2),
        1,
    ),
    (
        "channel-reset-batch-does-not-end-wait",
        [LOADED, own(3, ins(3)), raw_chan("r1", 1, RESET, ins(9))],
        ["applied", "gap", "ignored"],
        ids(1),
        True,
        ("r1", 0),
        1,
    ),
    # Malformed channel or cseq: not for this stream.
    (
        "malformed-channel-batches-ignored",
        [
            LOADED,
            raw_chan(None, 1, ins(9)),
            raw_chan("r1", "1", ins(9)),
            raw_chan("r1", -1, ins(9)),
            raw_chan("r1", None, ins(9)),
        ],
        ["applied", "ignored", "ignored", "ignored", "ignored"],
        ids(1),
        False,
        ("r1", 0),
        1,
    ),
    # A malformed join is skipped like an unknown op.
    (
        "malformed-join-skipped",
        [
            own(1, RESET, ins(1), ["join", 5, 0], ["join", "r1", -1], ["join", "r1", "0"]),
            chan("r1", 1, ins(2)),
        ],
        ["applied", "ignored"],
        ids(1),
        False,
        (None, 0),
        1,
    ),
]


@pytest.mark.parametrize(
    ("batches", "outcomes", "dom_ids", "awaiting", "channel", "last_seq"),
    [pytest.param(b, o, d, a, c, s, id=row_id) for row_id, b, o, d, a, c, s in CASES],
)
def test_channel_acceptance(
    client_impl: Any,
    batches: list[dict[str, Any]],
    outcomes: list[str],
    dom_ids: list[str],
    awaiting: bool,
    channel: tuple[str | None, int],
    last_seq: int,
) -> None:
    result = client_impl([{"m": b} for b in batches])
    assert [step["m"] for step in result["outcomes"]] == outcomes
    held = result["streams"]["m"]
    assert held["dom_ids"] == dom_ids
    assert held["awaiting_reset"] is awaiting
    assert (held["channel"], held["channel_seq"]) == channel
    # Channel batches never touch the seq or the epoch of the tab's own batches.
    assert held["last_seq"] == last_seq
    assert held["epoch"] == ("e1" if last_seq else None)


def test_channel_batches_are_per_stream(client_impl: Any) -> None:
    result = client_impl(
        [
            {"m": LOADED, "n": own(1, RESET, join("r1", 7))},
            {"m": chan("r1", 1, ins(2)), "n": chan("r1", 8, ins(3))},
            {"m": chan("r1", 3, ins(4)), "n": chan("r1", 9, ins(5))},
        ]
    )
    assert result["outcomes"] == [
        {"m": "applied", "n": "applied"},
        {"m": "applied", "n": "applied"},
        {"m": "gap", "n": "applied"},
    ]
    assert result["streams"]["m"]["dom_ids"] == ids(1, 2)
    assert result["streams"]["n"]["dom_ids"] == ids(3, 5)
    assert result["streams"]["n"]["awaiting_reset"] is False


def _deliver_recorded(client_impl: Any, steps: list[Any]) -> dict[str, Any]:
    """Steps: a callable recording on the tab's recorder (then flushed), or a channel batch."""
    recorder = StreamRecorder()
    deliveries = []
    for step in steps:
        if callable(step):
            step(recorder)
            deliveries.append(recorder.take_batches())
        else:
            deliveries.append({"m": step})
    return client_impl(deliveries)


def _broadcast(cseq: int, record: Any) -> dict[str, Any]:
    """A channel batch of r1 recorded with the ordinary API on a throwaway recorder."""
    scratch = StreamRecorder()
    record(scratch)
    return dict(channel_batch("r1", cseq, scratch.take_ops("m")))


def test_reset_then_join_through_the_recorder(client_impl: Any) -> None:
    result = _deliver_recorded(
        client_impl,
        [
            lambda r: (r.stream(M, [{"id": 1}], reset=True), r.join(M, "r1", 3)),
            _broadcast(4, lambda s: s.insert(M, {"id": 2, "text": ""})),
            _broadcast(
                5,
                lambda s: (
                    s.append_text(M, "m-2", "text", "He", offset=0),
                    s.append_text(M, "m-2", "text", "y", offset=2),
                ),
            ),
        ],
    )
    assert [o["m"] for o in result["outcomes"]] == ["applied"] * 3
    held = result["streams"]["m"]
    assert held["items"] == [{"id": 1, "dom_id": "m-1"}, {"id": 2, "dom_id": "m-2", "text": "Hey"}]
    assert (held["channel"], held["channel_seq"], held["last_seq"]) == ("r1", 5, 1)


def test_reset_after_join_in_one_batch_drops_the_join(client_impl: Any) -> None:
    result = _deliver_recorded(
        client_impl,
        [
            lambda r: (r.join(M, "r1", 0), r.stream(M, [{"id": 1}], reset=True)),
            _broadcast(1, lambda s: s.insert(M, {"id": 2})),
        ],
    )
    assert [o["m"] for o in result["outcomes"]] == ["applied", "ignored"]
    held = result["streams"]["m"]
    assert held["dom_ids"] == ids(1)
    assert (held["channel"], held["channel_seq"]) == (None, 0)


def test_reply_status_patched_in_a_channel_batch(client_impl: Any) -> None:
    reply = {"id": 2, "text": "", "status": "thinking", "usage": None}
    result = _deliver_recorded(
        client_impl,
        [
            lambda r: (r.stream(M, [{"id": 1}], reset=True), r.join(M, "r1", 0)),
            _broadcast(1, lambda s: s.insert(M, reply)),
            _broadcast(
                2,
                lambda s: (
                    s.patch(M, "m-2", {"status": "streaming"}),
                    s.append_text(M, "m-2", "text", "Hi", offset=0),
                ),
            ),
            # Done: the status and usage change, the text already sent is not repeated.
            _broadcast(
                3,
                lambda s: (
                    s.append_text(M, "m-2", "text", "!", offset=2),
                    s.patch(M, reply, {"status": "done", "usage": {"out": 2}}),
                ),
            ),
            # A stale broadcast reaching the tab again changes nothing.
            chan("r1", 2, ["patch", "m-2", {"status": "streaming"}]),
        ],
    )
    assert [o["m"] for o in result["outcomes"]] == ["applied"] * 4 + ["duplicate"]
    held = result["streams"]["m"]
    assert held["items"] == [
        {"id": 1, "dom_id": "m-1"},
        {"id": 2, "dom_id": "m-2", "text": "Hi!", "status": "done", "usage": {"out": 2}},
    ]
    assert (held["channel"], held["channel_seq"], held["last_seq"]) == ("r1", 3, 1)


# Tail mode: a tab whose window left the live end holds its items, and the room goes on.
AWAY = own(1, RESET, ins(1, 2), join("r1", 0), ["tail", False])

# (row id, batches in delivery order, outcomes, dom ids, contents by dom id, tail, unseen)
TAIL_CASES: list[
    tuple[str, list[dict[str, Any]], list[str], list[str], dict[str, Any], bool, int]
] = [
    (
        "tailing-by-default-adds",
        [LOADED, chan("r1", 1, ins(2))],
        ["applied", "applied"],
        ids(1, 2),
        {},
        True,
        0,
    ),
    (
        "not-tailing-counts-new-items-and-shows-none",
        [AWAY, chan("r1", 1, ins(3)), chan("r1", 2, ins(4, 5))],
        ["applied"] * 3,
        ids(1, 2),
        {},
        False,
        3,
    ),
    # An item held is still updated in place, deleted, patched and appended to.
    (
        "not-tailing-still-changes-held-items",
        [
            AWAY,
            chan("r1", 1, ins(1, text="edited")),
            chan("r1", 2, ["patch", "m-2", {"status": "done"}], ["append", "m-2", "text", "Hi"]),
            chan("r1", 3, ["delete", "m-1"]),
        ],
        ["applied"] * 4,
        ids(2),
        {"m-2": {"id": 2, "dom_id": "m-2", "status": "done", "text": "Hi"}},
        False,
        0,
    ),
    # An update-only insert of an item not held is an edit out of view: not counted.
    (
        "not-tailing-update-only-is-not-counted",
        [AWAY, chan("r1", 1, ["insert", -1, None, True, [["m-9", {"id": 9}]]])],
        ["applied", "applied"],
        ids(1, 2),
        {},
        False,
        0,
    ),
    # A new item among held ones in one insert: the held one updates, the new one counts.
    (
        "not-tailing-mixed-insert",
        [
            AWAY,
            chan(
                "r1",
                1,
                ["insert", 0, None, False, [["m-2", {"id": 2, "x": 1}], ["m-7", {"id": 7}]]],
            ),
        ],
        ["applied", "applied"],
        ids(1, 2),
        {"m-2": {"id": 2, "dom_id": "m-2", "x": 1}},
        False,
        1,
    ),
    # The tab's own inserts are the window moving: they apply whatever the tail mode.
    (
        "not-tailing-own-inserts-apply",
        [AWAY, own(2, ins(3)), chan("r1", 1, ins(4))],
        ["applied"] * 3,
        ids(1, 2, 3),
        {},
        False,
        1,
    ),
    # A reset restores the default: tailing, nothing counted.
    (
        "reset-restores-tailing-and-clears-the-count",
        [
            AWAY,
            chan("r1", 1, ins(3)),
            own(2, RESET, ins(2, 3), join("r1", 1)),
            chan("r1", 2, ins(4)),
        ],
        ["applied"] * 4,
        ids(2, 3, 4),
        {},
        True,
        0,
    ),
    (
        "tail-on-clears-the-count",
        [AWAY, chan("r1", 1, ins(3)), own(2, ["tail", True]), chan("r1", 2, ins(4))],
        ["applied"] * 4,
        ids(1, 2, 4),
        {},
        True,
        0,
    ),
    # Turning tail off again keeps the count so far.
    (
        "tail-off-twice-keeps-the-count",
        [AWAY, chan("r1", 1, ins(3)), own(2, ["tail", False]), chan("r1", 2, ins(4))],
        ["applied"] * 4,
        ids(1, 2),
        {},
        False,
        2,
    ),
    # A channel batch cannot detach a tab (or re-attach one): the op is skipped there.
    (
        "tail-in-a-channel-batch-is-skipped",
        [LOADED, raw_chan("r1", 1, ["tail", False], ins(2)), raw_chan("r1", 2, ["tail", True])],
        ["applied"] * 3,
        ids(1, 2),
        {},
        True,
        0,
    ),
    (
        "tail-in-a-channel-batch-does-not-reattach",
        [AWAY, raw_chan("r1", 1, ["tail", True], ins(3))],
        ["applied", "applied"],
        ids(1, 2),
        {},
        False,
        1,
    ),
    # A tail whose flag is not a JSON boolean is skipped like an unknown op.
    (
        "malformed-tail-skipped",
        [
            own(1, RESET, ins(1), join("r1", 0), ["tail", 0], ["tail", "false"], ["tail"]),
            chan("r1", 1, ins(2)),
        ],
        ["applied", "applied"],
        ids(1, 2),
        {},
        True,
        0,
    ),
]


@pytest.mark.parametrize(
    ("batches", "outcomes", "dom_ids", "items", "tail", "unseen"),
    [pytest.param(b, o, d, i, t, u, id=row_id) for row_id, b, o, d, i, t, u in TAIL_CASES],
)
def test_tail_mode(
    client_impl: Any,
    batches: list[dict[str, Any]],
    outcomes: list[str],
    dom_ids: list[str],
    items: dict[str, Any],
    tail: bool,
    unseen: int,
) -> None:
    result = client_impl([{"m": b} for b in batches])
    assert [step["m"] for step in result["outcomes"]] == outcomes
    held = result["streams"]["m"]
    assert held["dom_ids"] == dom_ids
    by_id = {item["dom_id"]: item for item in held["items"]}
    for dom_id, item in items.items():
        assert by_id[dom_id] == item
    assert (held["tail"], held["unseen"]) == (tail, unseen)


def test_tail_through_the_recorder(client_impl: Any) -> None:
    result = _deliver_recorded(
        client_impl,
        [
            lambda r: (
                r.stream(M, [{"id": 1}], reset=True),
                r.join(M, "r1", 0),
                r.tail(M, False),
            ),
            _broadcast(1, lambda s: s.insert(M, {"id": 2})),
            # A reset recorded after the tail drops it with the other earlier ops.
            lambda r: (r.tail(M, False), r.stream(M, [{"id": 1}, {"id": 2}], reset=True)),
        ],
    )
    held = result["streams"]["m"]
    assert held["dom_ids"] == ids(1, 2)
    assert (held["tail"], held["unseen"]) == (True, 0)


def test_the_recorder_refuses_a_tail_in_a_channel_batch_and_a_non_bool() -> None:
    with pytest.raises(ValueError, match="'tail'"):
        channel_batch("r1", 1, [["tail", False]])
    with pytest.raises(TypeError, match="bool"):
        StreamRecorder().tail(M, 0)  # type: ignore[arg-type]
    recorder = StreamRecorder()
    recorder.tail(M, False)
    assert recorder.take_batches()["m"]["ops"] == [["tail", False]]
