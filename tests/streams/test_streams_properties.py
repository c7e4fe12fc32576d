"""Property tests: random op sequences through the recorder and both clients.

* The Python model and assets/streams.js (one Node process for the session)
  must hold identical lists, and agree on every batch outcome, for any
  sequence of recorder calls split into batches at random points and
  delivered with duplicates and losses, mixed with joins and channel batches
  (delivered once, twice, late or never), appends at an offset and patches.
* The recorder's merging (appends, offset appends, patches, appending inserts,
  ops before a reset) must not change the meaning: its batches give the same list
  as the raw calls applied one op per call, channel batches included.
* The pickled recorder stays the same size however many items pass through.
"""

from __future__ import annotations

import pickle
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_chat.streams import ClientStream, StreamRecorder, StreamSpec, channel_batch

SPECS = {
    "a": StreamSpec("a"),
    # A custom dom_id function, as a stream may declare.
    "b": StreamSpec("b", dom_id=lambda it: f"row_{it['id']}"),
}
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    # No example database: it would be written into the working tree.
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

ids = st.integers(min_value=0, max_value=7)
# An emoji is one code point but two UTF-16 units: offsets must agree anyway.
texts = st.text(alphabet="xyé😀", max_size=3)
items = st.builds(
    lambda i, content, n: {"id": i, "content": content, "n": n},
    ids,
    texts,
    st.integers(0, 3),
)
ats = st.sampled_from([-1, 0, 1, 2, 3, 10])
limits = st.none() | st.sampled_from([-4, -2, -1, 0, 1, 3])
names = st.sampled_from(sorted(SPECS))
# "constructor" and "__proto__" exist on every JS object but not on the item.
fields = st.sampled_from(["content", "n", "missing", "constructor", "__proto__"])
# "next" continues the previous offset append to the same item and field, as a
# server streaming a reply does (offset = length sent so far, in code points):
# those merge. Small fixed offsets rewrite a tail or point past the text held.
offsets = st.none() | st.just("next") | st.integers(0, 5)
channels = st.sampled_from(["r1", "r2"])
# A broadcast mostly goes to the channel its stream last joined (the room the
# tab is in), sometimes to a given one.
broadcast_channels = st.sampled_from(["joined", "joined", "joined", "r1", "r2"])

join_offs = st.sampled_from([0, 0, 0, -1, 1])
# What a reply's status change sets: fields that appends grow too ("content",
# "missing"), one they cannot ("n"), and names every JS object inherits. An
# empty mapping is recorded as nothing, and "dom_id" is refused by the recorder.
patch_fields = st.dictionaries(
    st.sampled_from(["content", "n", "missing", "status", "constructor", "__proto__"]),
    st.none() | texts | st.integers(0, 3) | st.lists(st.integers(0, 3), max_size=2),
    max_size=3,
)

# The calls a channel batch is built from (no reset, no join); the stream name
# is replaced by the channel call's own.
item_calls = st.one_of(
    st.tuples(st.just("insert"), names, items, ats, limits, st.booleans()),
    st.tuples(st.just("delete"), names, ids),
    st.tuples(st.just("delete_by_dom_id"), names, ids),
    st.tuples(st.just("append"), names, ids, fields, texts, st.booleans(), offsets),
    st.tuples(st.just("patch"), names, ids, patch_fields, st.booleans()),
    # A burst of appends to one item and field, as a streamed reply sends;
    # mostly to the item inserted last (the reply being written).
    st.tuples(
        st.just("tokens"),
        names,
        st.sampled_from(["last", "last", "last"]) | ids,
        st.sampled_from(["content", "content", "missing", "n"]),
        st.lists(st.tuples(texts, offsets), min_size=1, max_size=4),
    ),
)
# A burst of channel batches, each delivered once, twice, late or never.
channel_calls = st.tuples(
    st.just("channel"),
    names,
    broadcast_channels,
    st.lists(
        st.tuples(
            st.lists(item_calls, max_size=3),
            st.sampled_from(["once", "once", "once", "twice", "late", "lost"]),
        ),
        min_size=1,
        max_size=3,
    ),
)
# How the batches taken at this point travel: once, twice, or lost.
flushes = st.tuples(st.just("flush"), st.sampled_from(["once", "once", "twice", "lost"]))
calls = st.one_of(
    st.tuples(st.just("stream"), names, st.lists(items, max_size=5), ats, st.booleans(), limits),
    item_calls,
    # Join at the channel's current cseq, or (a server bug) one off; then
    # maybe flush at once (as "once"), so the join is in place for what follows.
    st.tuples(st.just("join"), names, channels, join_offs, st.booleans()),
    # A window leaving the live end (False) or reaching it again (True).
    st.tuples(st.just("tail"), names, st.booleans()),
    # What a server sends on load or resync: stream(reset=True), then join.
    st.tuples(
        st.just("snapshot"),
        names,
        st.lists(items, max_size=4),
        channels,
        join_offs,
        st.booleans(),
    ),
    channel_calls,
    flushes,
)
# Half the scripts start with both streams loaded and in channel r1.
PRELUDE = [("snapshot", name, [], "r1", 0, True) for name in sorted(SPECS)]
scripts = st.tuples(st.booleans(), st.lists(calls, max_size=30)).map(
    lambda t: [*PRELUDE, *t[1]] if t[0] else t[1]
)


# A window scrolled away from the live end: the streams stop tailing at once, then the
# room goes on (bursts of channel batches) while the tab moves its window (its own
# inserts) and sometimes tails again; no reset, so nothing wipes what tail mode did.
AWAY_PRELUDE = [
    *PRELUDE,
    *[
        ("stream", name, [{"id": i, "content": "", "n": 0} for i in (0, 1)], -1, False, None)
        for name in sorted(SPECS)
    ],
    *[("tail", name, False) for name in sorted(SPECS)],
    ("flush", "once"),
]
away_scripts = st.lists(
    st.one_of(
        channel_calls,
        channel_calls,
        channel_calls,
        item_calls,
        flushes,
        st.tuples(st.just("tail"), names, st.sampled_from([False, False, True])),
    ),
    max_size=30,
).map(lambda t: [*AWAY_PRELUDE, *t])


def dom_id(name: str, i: int) -> str:
    return SPECS[name].dom_id_of({"id": i})


def record(recorder: StreamRecorder, call: tuple[Any, ...]) -> None:
    kind, name = call[0], call[1]
    spec = SPECS[name]
    if kind == "stream":
        _, _, its, at, reset, limit = call
        recorder.stream(spec, its, at=at, reset=reset, limit=limit)
    elif kind == "insert":
        _, _, it, at, limit, update_only = call
        recorder.insert(spec, it, at=at, limit=limit, update_only=update_only)
    elif kind == "delete":
        recorder.delete(spec, {"id": call[2]})
    elif kind == "delete_by_dom_id":
        recorder.delete_by_dom_id(spec, dom_id(name, call[2]))
    elif kind == "append":
        _, _, i, field, text, by_item, offset = call
        target: Any = {"id": i} if by_item else dom_id(name, i)
        recorder.append_text(spec, target, field, text, offset=offset)
    elif kind == "patch":
        _, _, i, patch, by_item = call
        target = {"id": i} if by_item else dom_id(name, i)
        recorder.patch(spec, target, patch)
    elif kind == "tail":
        recorder.tail(spec, call[2])


def raw_ops(call: tuple[Any, ...]) -> list[list[Any]]:
    """The ops of one call, recorded naively: no merging, nothing dropped."""
    kind, name = call[0], call[1]
    spec = SPECS[name]
    if kind == "stream":
        _, _, its, at, reset, limit = call
        ops: list[list[Any]] = [["reset"]] if reset else []
        return [*ops, ["insert", at, limit, False, [spec.entry(it) for it in its]]]
    if kind == "insert":
        _, _, it, at, limit, update_only = call
        return [["insert", at, limit, update_only, [spec.entry(it)]]]
    if kind in ("delete", "delete_by_dom_id"):
        return [["delete", dom_id(name, call[2])]]
    if kind == "tail":
        return [["tail", call[2]]]
    if kind == "patch":
        # Even an empty one, which a client must ignore as the recorder does.
        return [["patch", dom_id(name, call[2]), dict(call[3])]]
    _, _, i, field, text, _, offset = call
    op = ["append", dom_id(name, i), field, text]
    return [op if offset is None else [*op, offset]]


def play(
    script: list[tuple[Any, ...]], *, lossless: bool = False
) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    """The deliveries a client gets for ``script``, and the same events as raw ops.

    A channel call builds each batch of its burst on a throwaway recorder,
    numbers it with the next cseq of (channel, stream) and delivers it at once
    (or twice, late: after the next delivery, or never). A join or snapshot
    records that current cseq, or one off; "joined" broadcasts go to the
    channel the stream last joined. ``lossless`` plays a well-behaved server:
    every batch travels once, joins are exact, and the tab's own pending batch
    is sent before a channel batch (so a join always lands before the
    broadcasts after it). The events are ``("ops", name, raw_ops)`` per flush
    and stream, and ``("channel", name, channel, cseq, raw_ops)``.
    """
    recorder = StreamRecorder()
    # Channel batches are numbered per channel and stream, as each stream of
    # a tab counts its own cseq.
    cseqs: dict[tuple[str, str], int] = {}
    joined: dict[str, str] = {}
    # Where the last offset append to (stream, dom_id, field) ended.
    ends: dict[tuple[str, str, str], int] = {}

    # The id of the item inserted last in each stream.
    last_id: dict[str, int] = {}

    def resolve(call: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """The recorder calls of one script call, "last" ids and "next" offsets resolved."""
        if call[0] == "stream" and call[2]:
            last_id[call[1]] = call[2][-1]["id"]
        elif call[0] == "insert":
            last_id[call[1]] = call[2]["id"]
        elif call[0] == "tokens":
            _, name, i, field, tokens = call
            if i == "last":
                i = last_id.get(name, 0)
            return [
                resolved
                for text, offset in tokens
                for resolved in resolve(("append", name, i, field, text, False, offset))
            ]
        if call[0] != "append" or call[-1] is None:
            return [call]
        _, name, i, field, text, _, offset = call
        key = (name, dom_id(name, i), field)
        if offset == "next":
            offset = ends.get(key, 0)
            call = (*call[:-1], offset)
        ends[key] = offset + len(text)
        return [call]

    deliveries: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    raw: dict[str, list[list[Any]]] = {}
    events: list[tuple[Any, ...]] = []

    def deliver(delivery: dict[str, Any], how: str) -> None:
        if lossless:
            how = "once"
        if how == "late":
            late.append(delivery)
            return
        if how != "lost":
            deliveries.extend([delivery] * (2 if how == "twice" else 1))
            deliveries.extend(late)
            late.clear()

    def flush(how: str) -> None:
        events.extend(("ops", name, ops) for name, ops in raw.items())
        raw.clear()
        batches = recorder.take_batches()
        if batches:
            deliver(batches, how)

    for call in script:
        kind = call[0]
        if kind == "flush":
            flush(call[1])
        elif kind in ("join", "snapshot"):
            name, channel, off, flush_now = call[1], *call[-3:]
            if kind == "snapshot":
                (stream_call,) = resolve(("stream", name, call[2], -1, True, None))
                record(recorder, stream_call)
                raw.setdefault(name, []).extend(raw_ops(stream_call))
            cseq = max(cseqs.get((channel, name), 0) + (0 if lossless else off), 0)
            recorder.join(SPECS[name], channel, cseq)
            raw.setdefault(name, []).append(["join", channel, cseq])
            joined[name] = channel
            if flush_now:
                flush("once")
        elif kind == "channel":
            _, name, channel, burst = call
            if channel == "joined":
                channel = joined.get(name, "r1")
            if lossless:
                flush("once")
            for subcalls, how in burst:
                scratch = StreamRecorder()
                raw_ops_: list[list[Any]] = []
                for sub in subcalls:
                    for resolved in resolve((sub[0], name, *sub[2:])):
                        record(scratch, resolved)
                        raw_ops_.extend(raw_ops(resolved))
                cseq = cseqs[channel, name] = cseqs.get((channel, name), 0) + 1
                deliver({name: channel_batch(channel, cseq, scratch.take_ops(name))}, how)
                events.append(("channel", name, channel, cseq, raw_ops_))
        else:
            for resolved in resolve(call):
                record(recorder, resolved)
                raw.setdefault(resolved[1], []).extend(raw_ops(resolved))
    flush("once")
    deliveries.extend(late)
    return deliveries, events


def deliveries_of(script: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return play(script)[0]


def assert_clients_agree(js: Any, py_client: Any, script: list[tuple[Any, ...]]) -> None:
    deliveries = deliveries_of(script)
    expected = py_client(deliveries)
    actual = js.call("run_batches", deliveries=deliveries)
    assert actual["outcomes"] == expected["outcomes"]
    assert actual["streams"] == expected["streams"]


@SETTINGS
@given(script=scripts)
def test_python_and_js_clients_agree(
    js: Any, py_client: Any, script: list[tuple[Any, ...]]
) -> None:
    assert_clients_agree(js, py_client, script)


@SETTINGS
@given(script=away_scripts)
def test_python_and_js_clients_agree_away_from_the_live_end(
    js: Any, py_client: Any, script: list[tuple[Any, ...]]
) -> None:
    assert_clients_agree(js, py_client, script)


@SETTINGS
@given(script=scripts | away_scripts)
def test_recorder_batches_mean_the_raw_calls(py_client: Any, script: list[tuple[Any, ...]]) -> None:
    # Lossless delivery from a well-behaved server: every batch of the tab's
    # own is applied, and a channel batch is applied unless the stream is not
    # in that channel at that moment.
    deliveries, events = play(script, lossless=True)
    via_recorder = py_client(deliveries)
    for delivery, outcome in zip(deliveries, via_recorder["outcomes"], strict=True):
        for name, batch in delivery.items():
            allowed = {"applied"} if "seq" in batch else {"applied", "ignored"}
            assert outcome[name] in allowed
    naive = {name: ClientStream() for name in SPECS}
    for event in events:
        if event[0] == "ops":
            naive[event[1]].apply_ops(event[2])
            continue
        _, name, channel, cseq, ops = event
        stream = naive[name]
        if stream.channel == channel:
            assert cseq == stream.channel_seq + 1
            stream.apply_ops(ops, from_channel=True)
            stream.channel_seq = cseq
    for name, expected in naive.items():
        held = via_recorder["streams"].get(
            name,
            {
                "dom_ids": [],
                "items": [],
                "channel": None,
                "channel_seq": 0,
                "tail": True,
                "unseen": 0,
            },
        )
        assert held["dom_ids"] == expected.dom_ids
        assert held["items"] == expected.items
        assert (held["channel"], held["channel_seq"]) == (expected.channel, expected.channel_seq)
        assert (held["tail"], held["unseen"]) == (expected.tail, expected.unseen)
        for dom, it in zip(expected.dom_ids, expected.items, strict=True):
            assert it["dom_id"] == dom


@settings(max_examples=60, deadline=None, database=None)
@given(
    rounds=st.lists(
        st.tuples(st.lists(items, max_size=20), st.integers(0, 300), texts),
        min_size=1,
        max_size=40,
    )
)
def test_pickled_recorder_size_stays_flat(rounds: list[Any]) -> None:
    recorder = StreamRecorder()
    recorder.insert(SPECS["a"], {"id": 0})
    recorder.insert(SPECS["b"], {"id": 0})
    recorder.take_batches()
    baseline = len(pickle.dumps(recorder))
    next_id = 1
    for its, padding, token in rounds:
        for it in its:
            big = {**it, "id": next_id, "content": "p" * padding}
            next_id += 1
            recorder.insert(SPECS["a"], big, limit=-50)
            recorder.stream(SPECS["b"], [big], at=0)
            recorder.append_text(SPECS["a"], big, "content", token or "t")
            recorder.append_text(SPECS["b"], big, "content", token or "t", offset=padding)
            recorder.patch(SPECS["a"], big, {"status": token, "n": padding})
            recorder.join(SPECS["b"], "room", next_id)
            recorder.tail(SPECS["a"], bool(padding % 2))
        recorder.take_batches()
        # Only the seq counters' digits may grow (40 rounds stay below 256).
        assert len(pickle.dumps(recorder)) <= baseline + 2
    assert not recorder.has_pending()
