"""Property tests: random op sequences through the recorder and both clients.

* The Python model and assets/streams.js (one Node process for the session)
  must hold identical lists, and agree on every batch outcome, for any
  sequence of recorder calls split into batches at random points and
  delivered with duplicates and losses.
* The recorder's merging (appends, appending inserts, ops before a reset) must
  not change the meaning: its batches give the same list as the raw calls
  applied one op per call.
* The pickled recorder stays the same size however many items pass through.
"""

from __future__ import annotations

import pickle
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_chat.streams import ClientStream, StreamRecorder, StreamSpec

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
texts = st.text(alphabet="xyé", max_size=3)
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

calls = st.one_of(
    st.tuples(st.just("stream"), names, st.lists(items, max_size=5), ats, st.booleans(), limits),
    st.tuples(st.just("insert"), names, items, ats, limits, st.booleans()),
    st.tuples(st.just("delete"), names, ids),
    st.tuples(st.just("delete_by_dom_id"), names, ids),
    st.tuples(st.just("append"), names, ids, fields, texts, st.booleans()),
    # How the batches taken at this point travel: once, twice, or lost.
    st.tuples(st.just("flush"), st.sampled_from(["once", "once", "twice", "lost"])),
)
scripts = st.lists(calls, max_size=30)


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
        _, _, i, field, text, by_item = call
        target: Any = {"id": i} if by_item else dom_id(name, i)
        recorder.append_text(spec, target, field, text)


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
    _, _, i, field, text, _ = call
    return [["append", dom_id(name, i), field, text]]


def deliveries_of(script: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    recorder = StreamRecorder()
    deliveries: list[dict[str, Any]] = []
    for call in [*script, ("flush", "once")]:
        if call[0] != "flush":
            record(recorder, call)
            continue
        batches = recorder.take_batches()
        if batches and call[1] != "lost":
            deliveries.extend([batches] * (2 if call[1] == "twice" else 1))
    return deliveries


@SETTINGS
@given(script=scripts)
def test_python_and_js_clients_agree(
    js: Any, py_client: Any, script: list[tuple[Any, ...]]
) -> None:
    deliveries = deliveries_of(script)
    expected = py_client(deliveries)
    actual = js.call("run_batches", deliveries=deliveries)
    assert actual["outcomes"] == expected["outcomes"]
    assert actual["streams"] == expected["streams"]


@SETTINGS
@given(script=scripts)
def test_recorder_batches_mean_the_raw_calls(py_client: Any, script: list[tuple[Any, ...]]) -> None:
    # Lossless delivery only: every batch must be applied.
    lossless = [c if c[0] != "flush" else ("flush", "once") for c in script]
    via_recorder = py_client(deliveries_of(lossless))
    for outcome in via_recorder["outcomes"]:
        assert set(outcome.values()) == {"applied"}
    for name in SPECS:
        naive = ClientStream()
        for call in script:
            if call[0] != "flush" and call[1] == name:
                naive.apply_ops(raw_ops(call))
        held = via_recorder["streams"].get(name, {"dom_ids": [], "items": []})
        assert held["dom_ids"] == naive.dom_ids
        assert held["items"] == naive.items
        for dom, it in zip(naive.dom_ids, naive.items, strict=True):
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
        recorder.take_batches()
        # Only the seq counters' digits may grow (40 rounds stay below 256).
        assert len(pickle.dumps(recorder)) <= baseline + 2
    assert not recorder.has_pending()
