"""Websocket bytes and per-client state bytes of one appended chat message: list var vs stream.

Run from anywhere: ``.venv/bin/python bench/stream_wire.py [--json PATH]``.

For N = 10, 100, 1,000 and 10,000 messages already held by the client, two tiny states are
brought to "the client holds N messages" and then one message is appended:

* ``ListChatState``: a plain ``messages: list[dict]`` var (what Reflex does out of the box:
  a changed var is sent whole in the delta);
* ``StreamChatState``: a ``messages`` stream of ``StreamsState`` (only the insert op of the
  new message rides in the delta, under ``stream_batches``).

Measured for that one append, everything in-process and in the same run:

(a) the bytes of the websocket frame payload Reflex would send: the resolved delta of the
    root state, wrapped in ``StateUpdate(delta=...)``, serialized with Reflex's own socket.io
    JSON hook and encoded with python-socketio / python-engineio's own packet classes;
(b) the bytes the Redis state manager would write for the substate holding the chat
    (``BaseState._serialize()``), after the append's delta was taken;
(c) the message's own compact JSON (UTF-8 bytes, ``ensure_ascii=False`` like the wire).

Then the targets are checked and printed as PASS/FAIL. The exit code is 0 either way.
"""

import asyncio
import json
import random
import sys
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

# First: makes the project root the working directory and puts it on sys.path.
from common import INVOKED_FROM, encode_frame, event_namespace, parse_args

# isort: split
import reflex as rx
from engineio import packet as eio_packet
from reflex.state import BaseState, State, StateUpdate
from reflex_base.constants.event import SocketEvent
from reflex_base.constants.state import FIELD_MARKER
from socketio import packet as sio_packet

from stream_chat.streams.binding import BATCHES_VAR, StreamsState
from stream_chat.streams.core import StreamSpec

SIZES: tuple[int, ...] = (10, 100, 1_000, 10_000)
SEED = 20240611

# Targets.
FLATNESS = 0.10  # stream bytes/append: max/min within 10% across N
LIST_OVER_STREAM_AT_1000 = 200  # at N=1,000 stream <= list / 200
MSG_FACTOR, MSG_OVERHEAD = 1.5, 150  # stream <= 1.5 * message JSON + 150
STATE_LIMIT_AT_10000 = 4 * 1024  # per-client stream state <= 4 KB at N=10,000


# --------------------------------------------------------------------------------------------
# The two states under test (module level, so Reflex registers them as substates of State).
# --------------------------------------------------------------------------------------------


class ListChatState(rx.State):
    """Baseline: the chat held in an ordinary list var, re-sent whole on every change."""

    messages: list[dict] = []

    @rx.event
    def load_history(self, messages: list[dict]) -> None:
        self.messages = messages

    @rx.event
    def add_message(self, message: dict) -> None:
        self.messages.append(message)


class StreamChatState(StreamsState, rx.State):
    """The chat as a stream: the browser holds the items, the server only sends ops."""

    stream_specs: ClassVar[tuple[StreamSpec, ...]] = (StreamSpec("messages"),)

    @rx.event
    def load_history(self, messages: list[dict]) -> None:
        self.stream("messages", messages, reset=True)

    @rx.event
    def add_message(self, message: dict) -> None:
        self.stream_insert("messages", message)


# --------------------------------------------------------------------------------------------
# The wire, exactly as Reflex 0.10.1 emits a delta.
#
# Emit path (reflex 0.10.1, .venv/lib/python3.11/site-packages):
# * reflex_base/event/processor/base_state_processor.py, chain_updates():
#     delta = await root_state._get_resolved_delta(); await ctx.emit_delta(delta);
#     root_state._clean()
# * reflex_base/event/processor/event_processor.py, configure() -> emit_delta():
#     await event_namespace.emit_update(update=StateUpdate(delta=delta), token=token)
#   (app.py's modify_state path does the same: StateUpdate(delta=delta), no events, no final)
# * reflex/app.py, EventNamespace.emit_update():
#     await self.emit(str(constants.SocketEvent.EVENT), update, to=socket_record.sid)
#   on the namespace EventNamespace(config.get_event_namespace(), app), i.e. "/_event".
# * reflex/app.py, App._setup_sio / AsyncServer(json=SimpleNamespace(dumps=_sio_dumps,
#   loads=_sio_loads)): socketio's BaseServer sets `packet_class.json = json`, and
#   _sio_dumps is reflex_base.utils.format.json_dumps (ensure_ascii=False, Reflex's
#   serializers, which turn StateUpdate into a dict of its non-empty fields).
# * socketio/async_manager.py, AsyncManager.emit(): data=[update] (not a tuple) ->
#     packet_class(EVENT, namespace=namespace, data=[event] + data).encode()
#     -> engineio.packet.Packet(MESSAGE, encoded) sent as one websocket text frame.
# bench/common.py's ReflexSioPacket and encode_frame() follow this path.
# --------------------------------------------------------------------------------------------


def websocket_frame_payload(delta: dict[str, Any]) -> str:
    """The text of the websocket frame that carries `delta` to the browser."""
    return encode_frame(StateUpdate(delta=delta))


def decode_frame(frame: str) -> tuple[str, dict[str, Any]]:
    """Decodes a frame back with the packet classes (sanity check of what was measured)."""
    if not frame.startswith(str(eio_packet.MESSAGE)):
        raise AssertionError(f"not an engine.io message: {frame[:20]!r}")
    pkt = sio_packet.Packet(encoded_packet=frame[1:])
    if pkt.packet_type != sio_packet.EVENT or pkt.namespace != event_namespace():
        raise AssertionError(f"unexpected packet {pkt.packet_type} on {pkt.namespace!r}")
    event, payload = pkt.data
    return event, payload


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def deflated_len(text: str) -> int:
    """Informational: one permessage-deflate message without context takeover."""
    compressor = zlib.compressobj(wbits=-15)
    data = compressor.compress(text.encode("utf-8")) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return len(data) - 4  # RFC 7692 strips the trailing 00 00 ff ff


def message_json(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# Deterministic, realistic chat rows.
# --------------------------------------------------------------------------------------------

SENDERS: tuple[tuple[int, str], ...] = (
    (1, "Alice Martin"),
    (2, "Bob Nguyen"),
    (3, "Chloé Dubois"),
    (4, "Dmitri Ivanov"),
    (5, "Esther Okafor"),
    (6, "Farid Haddad"),
    (7, "Grace Kim"),
    (8, "Hiro Tanaka"),
)

SENTENCES: tuple[str, ...] = (
    "Morning all, the staging deploy finished without errors.",
    "Can someone review my pull request before lunch?",
    "I pushed a fix for the flaky login test.",
    "The dashboard is loading slowly again for me.",
    "Let's move the standup to 10:30 tomorrow.",
    "Did anyone else get paged last night?",
    "Looks like the cache hit rate dropped after the release.",
    "I'll write up the incident notes this afternoon.",
    "Thanks, that worked!",
    "We should pin the database driver version.",
    "Is the design review still on for Thursday?",
    "Heads up: I'm rotating the API keys at 5pm.",
    "The new onboarding flow looks great on mobile.",
    "Can you share the link to the metrics board?",
    "I think the bug is in the pagination cursor.",
    "Lunch at the usual place?",
    "Merged. Deploying to production now.",
    "Rolling back, error rate is climbing.",
    "Customer reported duplicate notifications again.",
    "I'm out on Friday, Grace is covering support.",
    "Nice catch on the timezone issue.",
    "Benchmarks are in the shared folder.",
)


def make_message(rng: random.Random, message_id: int, when: datetime) -> dict[str, Any]:
    target = rng.randint(60, 120)
    content = rng.choice(SENTENCES)
    while len(content) < target:
        candidates = [s for s in SENTENCES if len(content) + 1 + len(s) <= 120]
        if not candidates:
            break
        content += " " + rng.choice(candidates)
    sender_id, sender_name = rng.choice(SENDERS)
    return {
        "id": message_id,
        "content": content,
        "sender_name": sender_name,
        "sender_id": sender_id,
        "inserted_at": when.isoformat(),
        "edited": False,
    }


def make_history(count: int) -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    start = datetime(2025, 3, 14, 9, 0, 0, tzinfo=UTC)
    when = start
    rows = []
    for message_id in range(1, count + 1):
        when += timedelta(seconds=rng.randint(3, 240), microseconds=rng.randint(0, 999_999))
        rows.append(make_message(rng, message_id, when))
    return rows


# --------------------------------------------------------------------------------------------
# Measurement.
# --------------------------------------------------------------------------------------------


async def take_delta(root: BaseState) -> dict[str, Any]:
    """What chain_updates does after a handler: resolve the delta, then clean."""
    try:
        return await root._get_resolved_delta()
    finally:
        root._clean()


async def measure(
    state_cls: type[ListChatState] | type[StreamChatState],
    history: Sequence[dict[str, Any]],
    new_message: dict[str, Any],
) -> dict[str, Any]:
    root = State(_reflex_internal_init=True)
    full_name = state_cls.get_full_name()
    chat = root.get_substate(full_name.split("."))

    # The client holds N items: the delta that put them there was sent and cleaned.
    chat.load_history(list(history))
    seed_delta = await take_delta(root)
    seed_frame = websocket_frame_payload(seed_delta)

    # One append, the delta Reflex would emit for it.
    chat.add_message(dict(new_message))
    delta = await take_delta(root)
    frame = websocket_frame_payload(delta)

    # Sanity: the frame decodes to exactly this state's change, carrying the new message.
    event, payload = decode_frame(frame)
    if event != str(SocketEvent.EVENT) or set(payload) != {"delta"}:
        raise AssertionError(f"unexpected update: {event!r} {sorted(payload)}")
    if set(payload["delta"]) != {full_name}:
        raise AssertionError(f"delta touches other states: {sorted(payload['delta'])}")
    subdelta = payload["delta"][full_name]
    if state_cls is ListChatState:
        sent = subdelta["messages" + FIELD_MARKER]
        if len(sent) != len(history) + 1 or sent[-1] != new_message:
            raise AssertionError("list delta does not hold the N+1 messages")
    else:
        batch = subdelta[BATCHES_VAR + FIELD_MARKER]["messages"]
        ops = batch["ops"]
        if (
            batch["seq"] != 2
            or len(ops) != 1
            or ops[0][4] != [[f"messages-{new_message['id']}", new_message]]
        ):
            raise AssertionError(f"stream delta is not one insert of the message: {batch!r}")

    # (b) what the Redis state manager writes for this substate after the event
    # (reflex/istate/manager/redis.py, _collect_state_writes: state._serialize() per
    # touched substate, under token._state_key(type(state))).
    if not chat._was_touched:
        raise AssertionError(f"{state_cls.__name__} not touched: Redis would not save it")
    state_bytes = len(chat._serialize())

    return {
        "wire_bytes": utf8_len(frame),
        "wire_deflate_bytes": deflated_len(frame),
        "state_bytes": state_bytes,
        "seed_wire_bytes": utf8_len(seed_frame),
        "frame_head": frame[:160],
    }


async def run() -> dict[str, Any]:
    history = make_history(max(SIZES) + 1)
    rows = []
    for n in SIZES:
        held = history[:n]
        # The appended message is the same for every N (only its id follows the history),
        # so differences across N come from the states alone.
        new_message = {**history[max(SIZES)], "id": n + 1}
        started = time.perf_counter()
        list_result = await measure(ListChatState, held, new_message)
        stream_result = await measure(StreamChatState, held, new_message)
        rows.append(
            {
                "n": n,
                "message_json_bytes": utf8_len(message_json(new_message)),
                "list": list_result,
                "stream": stream_result,
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    # Informational, not a target: the fixed per-append overhead matters most for the
    # shortest messages, so probe a two-character one at N=1,000.
    short = {**history[max(SIZES)], "id": 1_001, "content": "ok"}
    short_stream = await measure(StreamChatState, history[:1_000], short)
    probe = {
        "n": 1_000,
        "message": short,
        "message_json_bytes": utf8_len(message_json(short)),
        "stream_wire_bytes": short_stream["wire_bytes"],
    }
    return {"namespace": event_namespace(), "rows": rows, "short_message_probe": probe}


# --------------------------------------------------------------------------------------------
# Report.
# --------------------------------------------------------------------------------------------


def check_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_n = {row["n"]: row for row in rows}
    stream_wire = [row["stream"]["wire_bytes"] for row in rows]
    spread = max(stream_wire) / min(stream_wire) - 1
    checks = [
        {
            "target": f"stream bytes/append flat in N (max/min within {FLATNESS:.0%})",
            "detail": f"min {min(stream_wire)} B, max {max(stream_wire)} B, spread {spread:.1%}",
            "ok": spread <= FLATNESS,
        }
    ]
    if 1_000 in by_n:
        row = by_n[1_000]
        s, lst = row["stream"]["wire_bytes"], row["list"]["wire_bytes"]
        checks.append(
            {
                "target": f"at N=1,000 stream <= list/{LIST_OVER_STREAM_AT_1000}",
                "detail": f"stream {s} B, list {lst} B, list/{LIST_OVER_STREAM_AT_1000} = "
                f"{lst / LIST_OVER_STREAM_AT_1000:.0f} B, ratio {lst / s:.0f}x",
                "ok": s <= lst / LIST_OVER_STREAM_AT_1000,
            }
        )
    for row in rows:
        s, m = row["stream"]["wire_bytes"], row["message_json_bytes"]
        bound = MSG_FACTOR * m + MSG_OVERHEAD
        checks.append(
            {
                "target": f"N={row['n']:,}: stream <= {MSG_FACTOR} * msg JSON + {MSG_OVERHEAD}",
                "detail": f"stream {s} B, msg JSON {m} B, bound {bound:.0f} B "
                f"(overhead over msg JSON {s - m} B)",
                "ok": s <= bound,
            }
        )
    if 10_000 in by_n:
        b = by_n[10_000]["stream"]["state_bytes"]
        checks.append(
            {
                "target": f"per-client stream state <= {STATE_LIMIT_AT_10000 // 1024} KB at "
                "N=10,000",
                "detail": f"{b} B serialized (Redis payload of the stream substate)",
                "ok": b <= STATE_LIMIT_AT_10000,
            }
        )
    return checks


def print_report(result: dict[str, Any], checks: list[dict[str, Any]]) -> None:
    header = (
        "N",
        "list bytes/append",
        "stream bytes/append",
        "ratio list/stream",
        "list state bytes",
        "stream state bytes",
        "msg JSON",
    )
    lines = [header]
    for row in result["rows"]:
        lw, sw = row["list"]["wire_bytes"], row["stream"]["wire_bytes"]
        lines.append(
            (
                f"{row['n']:,}",
                f"{lw:,}",
                f"{sw:,}",
                f"{lw / sw:,.1f}",
                f"{row['list']['state_bytes']:,}",
                f"{row['stream']['state_bytes']:,}",
                f"{row['message_json_bytes']:,}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for index, line in enumerate(lines):
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print()
    print(
        "bytes/append = UTF-8 bytes of the websocket text-frame payload (engine.io '4' + "
        f"socket.io EVENT on {result['namespace']!r}) for one appended message; "
        "state bytes = BaseState._serialize() of the chat substate after the append "
        "(what RedisStateManager writes for it)."
    )
    print(
        f"Target 3 is read as: stream bytes <= {MSG_FACTOR} * message JSON + {MSG_OVERHEAD} "
        "(message JSON = compact json.dumps, ensure_ascii=False, UTF-8 bytes)."
    )
    last = result["rows"][-1]
    print(f"Stream frame at N={last['n']:,}: {last['stream']['frame_head']}")
    print()
    for check in checks:
        print(f"{'PASS' if check['ok'] else 'FAIL'}  {check['target']}: {check['detail']}")
    probe = result["short_message_probe"]
    s, m = probe["stream_wire_bytes"], probe["message_json_bytes"]
    bound = MSG_FACTOR * m + MSG_OVERHEAD
    print(
        f"INFO  (not a target) a {len(probe['message']['content'])}-character message at "
        f"N={probe['n']:,}: stream {s} B, msg JSON {m} B, bound {bound:.1f} B -> would "
        f"{'PASS' if s <= bound else 'FAIL'} (fixed overhead {s - m} B per append)"
    )
    failed = sum(not check["ok"] for check in checks)
    print()
    print(f"{len(checks) - failed}/{len(checks)} targets met.")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__, argv, quick=False)

    started = time.perf_counter()
    result = asyncio.run(run())
    checks = check_targets(result["rows"])
    result["checks"] = checks
    result["seconds"] = round(time.perf_counter() - started, 3)
    print_report(result, checks)
    print(f"(ran in {result['seconds']:.1f} s)")
    if args.json is not None:
        text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
        (INVOKED_FROM / args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
