"""One assistant reply streamed to K open tabs: updates, bytes, time to first token, completion.

Run from anywhere: ``.venv/bin/python bench/llm_stream.py [--quick] [--json PATH]``.

Everything runs on 127.0.0.1, in this run:

* the fake model server (``tests/support/fake_openai.py``, its own process): a real
  OpenAI-compatible SSE server that streams a scripted reply of N short word tokens
  (" the", " stream", ",", ...) at R tokens per second; L = the reply's length in characters;
* the app (``tests/support/servers.start_app``: prod mode, one backend process, a fresh
  SQLite database, no Redis), pointed at the fake through ``OPENAI_BASE_URL`` /
  ``OPENAI_API_KEY``, with ``ASSISTANT_REQUESTS_PER_MINUTE`` high; stopped by its PID in a
  ``finally``, like the fake;
* K browser stand-ins (``tests/support/reflex_client.py``) on ``/rooms/1``, session cookies
  of the seeded users in turn; tab 0 is the asker.

Sequence: the tabs open the room; the bare baseline (below) runs; a short warm-up reply is
asked for and streamed (the app's first request pays one-off costs such as lazy imports; its
time to first text is printed as "cold"); then the asker sends "@assistant ..." and the fake
streams the N tokens. Per tab, from what the client recorded:

* updates = websocket messages whose ``messages`` channel batch carries an op on the reply
  (its insert as queued, the thinking / streaming / done rows, every append);
* updates/s = those received from the tab's first reply text to its done row (inclusive),
  divided by that span; "peak" is the most in any 1 s window;
* bytes = UTF-8 length of each such websocket message payload. ReflexClient keeps the decoded
  update, not the raw frame, so each update is re-encoded exactly as the server encodes it
  (``{"delta", "events"?}`` through Reflex's own socket.io JSON hook, python-socketio's and
  python-engineio's packet classes: ``42/_event,["event",{...}]``); for these ASCII payloads
  that is byte for byte the frame's payload (before any permessage-deflate, which is reported
  when negotiated; the 2-10 bytes of websocket frame header are not counted);
* the check: the text rebuilt from the appends alone (just before the done row), and the
  final row's text, both equal the full reply, for every tab; no batch was a gap, a
  duplicate or ignored.

Time to first token: the app's figure is send event -> the first reply text at the first
tab, the median over the short replies (asked one after the other after the warm-up, each
streaming its first 20 tokens) and the long reply; the bare baseline is
``openai.AsyncOpenAI`` against the same fake with the same script: request -> first content
chunk, median of several requests before and after the reply (each closed after its first
chunk). added = app - bare. The long reply's is split with the fake's request log (one
monotonic clock for all processes): send -> the app's request reaches the fake, and the
fake's arrival -> first text at a tab, each minus the bare request's corresponding part.

Completion: send -> the done row at the slowest tab, over the server's own stream time
(the fake's log: the request's arrival -> the end of its body).

Targets (PASS/FAIL): bytes per tab <= 2 x L; <= 25 updates/s per tab; <= 20 ms added to the
time to first token; completion within 5 % of the server's stream time. The app, the fake
and this process (all the tabs) share the machine's cores; the CPU each used during the
reply is reported. This process does not collect garbage while the bare baseline and the
replies are timed (``tests/support/timing.no_collector_pauses``): all the tabs share it,
and one collection of it would delay every tab's receipt at once. The exit code is 0
whatever the results.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# First: makes the project root the working directory and puts it on sys.path.
from common import (
    UNTHROTTLED,
    CpuWindow,
    close_all,
    encode_frame,
    event_namespace,
    fmt,
    load_average,
    machine_json,
    messages_batch,
    open_room,
    parse_args,
    session_cookies,
    write_json,
)

# isort: split
import openai

from stream_chat.assistant import DEFAULT_SYSTEM_PROMPT, AssistantConfig
from stream_chat.state.messages import MESSAGES, MessagesState
from stream_chat.streams import BatchOutcome, ClientStream
from tests.support.fake_openai import FakeOpenAI, RequestRecord, Stream
from tests.support.reflex_client import STREAM_BATCHES, ReflexClient, Update, handler_name
from tests.support.servers import AppServer, prepared_database, start_app
from tests.support.timing import no_collector_pauses

ROOM_PATH = "/rooms/1"
MESSAGES_STATE = MessagesState.get_full_name()
SEND = handler_name(MessagesState.send)
FINAL_STATUSES = ("done", "error", "stopped", "interrupted")
MODEL = "gpt-4o-mini"

TARGET_BYTES_PER_L = 2.0
TARGET_UPDATES_PER_S = 25.0
TARGET_ADDED_TTFT_MS = 20.0
TARGET_COMPLETION_RATIO = 1.05

CONNECT_CONCURRENCY = 20
JOIN_TIMEOUT = 60.0  # s for the tabs to connect, hydrate and get the room's history
POLL = 0.05  # s between checks while the reply streams
SETTLE = 0.5  # s of quiet after the done row, so late updates are seen
WARMUP_TOKENS = 20
SEED = 20241121


@dataclass(frozen=True)
class Plan:
    clients: int
    tokens: int
    tokens_per_second: float
    bare_trials: int  # bare baseline requests before the reply, and as many after it
    # Short replies asked before the long one, for the time to first token: like the bare
    # baseline, the app's figure is a median, not one sample.
    short_replies: int


FULL = Plan(clients=20, tokens=2000, tokens_per_second=500.0, bare_trials=4, short_replies=6)
QUICK = Plan(clients=5, tokens=500, tokens_per_second=500.0, bare_trials=2, short_replies=2)


# The reply's text

WORDS = (  # noqa: SIM905
    "the stream model reply token chat room message server client update text each with "
    "that from into while every first batch small real time user browser state event "
    "worker queue latency socket frame bytes order answer question example because should "
    "would could about which there their other between through before after during "
    "without within"
).split()


def reply_tokens(count: int, seed: int) -> list[str]:
    """`count` short tokens as a chat model sends them: words with a leading space, some
    punctuation, a paragraph break now and then (ASCII only)."""
    rng = random.Random(seed)
    tokens: list[str] = []
    sentence_start = True
    for _ in range(count):
        roll = rng.random()
        if not sentence_start and roll < 0.06:
            tokens.append(".")
            sentence_start = True
        elif not sentence_start and roll < 0.10:
            tokens.append(",")
        elif not sentence_start and roll < 0.11:
            tokens.append(".\n\n")
            sentence_start = True
        else:
            word = rng.choice(WORDS)
            if sentence_start:
                word = word.capitalize()
            space = "" if not tokens or tokens[-1].endswith("\n") else " "
            tokens.append(space + word)
            sentence_start = False
    return tokens


# What a websocket message weighs


EVENT_NAMESPACE = event_namespace()


def frame_payload(update: Update) -> str:
    """The websocket message the server sent for `update`, re-encoded as the server does:
    StateUpdate -> its non-empty fields -> socket.io EVENT -> engine.io MESSAGE."""
    payload: dict[str, Any] = {"delta": update.delta}
    if update.events:
        payload["events"] = update.events
    return encode_frame(payload)


def deflate_negotiated(client: ReflexClient) -> bool:
    """Whether the server accepted permessage-deflate (wsproto internals, read only)."""
    with contextlib.suppress(AttributeError):
        connection = client._ws.connection  # type: ignore[union-attr]
        return any(ext.name == "permessage-deflate" for ext in connection._proto.extensions)
    return False


# Following one reply at each tab while it streams (cheap: only looks for the done row)


@dataclass
class ReplyWatch:
    client: ReflexClient
    start: int  # the tab's update index at the send
    scanned: int = -1
    reply_dom: str | None = None
    done_at: float | None = None

    def scan(self) -> None:
        if self.scanned < 0:
            self.scanned = self.start
        updates = self.client.updates
        while self.scanned < len(updates):
            update = updates[self.scanned]
            self.scanned += 1
            batch = messages_batch(update)
            for op in (batch or {}).get("ops") or []:
                if op and op[0] == "patch" and op[1] == self.reply_dom:
                    if op[2].get("status") in FINAL_STATUSES:
                        self.done_at = self.done_at or update.time
                    continue
                if not op or op[0] != "insert":
                    continue
                for dom_id, item in op[4]:
                    if (
                        self.reply_dom is None
                        and not op[3]
                        and item.get("is_assistant")
                        and item.get("status") == "queued"
                    ):
                        self.reply_dom = dom_id
                    if dom_id == self.reply_dom and item.get("status") in FINAL_STATUSES:
                        self.done_at = self.done_at or update.time

    @property
    def done(self) -> bool:
        return self.done_at is not None


async def short_reply_first_text(
    sender: ReflexClient, clients: Sequence[ReflexClient], fake: FakeOpenAI, script: Stream
) -> float:
    """Asks for a reply the fake streams with `script`, waits for it at every tab; ms from
    the send to its first text at the first tab (NaN if none arrived)."""
    await asyncio.to_thread(fake.script, script)
    sent, watches = await ask_and_wait(
        sender, clients, f"@assistant short {random.randrange(10**9)}", 60.0
    )
    first_texts = []
    for watch in watches:
        for update in watch.client.updates[watch.start :]:
            batch = messages_batch(update)
            ops = (batch or {}).get("ops") or []
            if any(op and op[0] == "append" and op[1] == watch.reply_dom for op in ops):
                first_texts.append(update.time)
                break
    return (min(first_texts) - sent) * 1000 if first_texts else math.nan


async def ask_and_wait(
    sender: ReflexClient, clients: Sequence[ReflexClient], content: str, timeout: float
) -> tuple[float, list[ReplyWatch]]:
    """Sends `content` from the sender's tab; waits until every tab has the reply's final row."""
    watches = [ReplyWatch(c, len(c.updates)) for c in clients]
    sent = await sender.send_event(SEND, {"form": {"content": content}})
    deadline = time.monotonic() + timeout
    while True:
        for watch in watches:
            watch.scan()
        if all(watch.done for watch in watches):
            break
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"the reply did not finish at every tab within {timeout:.0f} s "
                f"({sum(w.done for w in watches)}/{len(watches)} done)"
            )
        if any(c.disconnected for c in clients):
            raise ConnectionError("a tab was disconnected while the reply streamed")
        await asyncio.sleep(POLL)
    return sent, watches


# Reading one tab's record of the reply


@dataclass
class TabResult:
    tab: int
    user: str
    asker: bool
    updates: int = 0  # websocket messages carrying an op on the reply
    bytes: int = 0  # their payloads, UTF-8
    deflate_estimate: int = 0  # the same messages through one permessage-deflate context
    append_text_chars: int = 0  # reply text carried by append ops
    row_text_chars: int = 0  # reply text carried by rows (insert and patch ops)
    row_updates: int = 0
    append_updates: int = 0
    all_bytes: int = 0  # every message the tab got from the send to its done row
    all_updates: int = 0
    first_row_ms: float = math.nan  # send -> the queued reply row
    first_text_ms: float = math.nan  # send -> the first reply text
    done_ms: float = math.nan  # send -> the final row
    stream_span_s: float = math.nan  # first text -> final row
    updates_in_span: int = 0
    updates_per_s: float = math.nan
    peak_updates_1s: int = 0
    chars_per_append: float = math.nan
    final_status: str = ""
    text_from_appends_ok: bool = False
    final_text_ok: bool = False
    batch_anomalies: dict[str, int] = field(default_factory=dict)
    # Estimated delay behind the model: receive time - when the fake wrote that text.
    lag_p50_ms: float = math.nan
    lag_max_ms: float = math.nan
    lag_last_ms: float = math.nan
    # ms from the send to the first sight of: "asked" (the asking message's row), each of the
    # reply's statuses, "text" (its first text); "*_created": a row's inserted_at (DB time).
    milestones: dict[str, float] = field(default_factory=dict)
    append_envelope_p50: float = math.nan  # bytes of an append message besides its text
    sample_append: str = ""  # the smallest append message, its text elided

    @property
    def verified(self) -> bool:
        return (
            self.text_from_appends_ok
            and self.final_text_ok
            and self.final_status == "done"
            and not self.batch_anomalies
        )


def peak_in_window(times: Sequence[float], window: float = 1.0) -> int:
    best, low = 0, 0
    for high, at in enumerate(times):
        while at - times[low] >= window:
            low += 1
        best = max(best, high - low + 1)
    return best


def analyse_tab(
    index: int,
    user: str,
    client: ReflexClient,
    start: int,
    sent: float,
    reply_dom: str,
    full_text: str,
    token_ends: Sequence[int],
    token_time: Callable[[int], float] | None,
    marker: str,
    wall_offset: float,
) -> TabResult:
    """Replays everything the tab received through the browser's stream model, accounting
    from the send on."""
    result = TabResult(tab=index, user=user, asker=index == 0)
    shown = ClientStream()
    deflate = zlib.compressobj(wbits=-15)
    times: list[float] = []
    lags: list[float] = []
    envelopes: list[tuple[int, str, int]] = []  # (bytes besides the text, message, text length)
    first_text_at: float | None = None
    milestones = result.milestones

    def seen(name: str, at: float) -> None:
        milestones.setdefault(name, (at - sent) * 1000)

    def created(name: str, stamp: Any) -> None:
        with contextlib.suppress(TypeError, ValueError):
            moment = datetime.fromisoformat(stamp)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            milestones.setdefault(name, (moment.timestamp() - wall_offset - sent) * 1000)

    finished = False  # the final row was seen: later messages are not the reply's
    for position, update in enumerate(client.updates):
        batch = messages_batch(update)
        counted = position >= start and not finished
        touches = False
        done_here = False
        if batch is not None:
            for op in batch.get("ops") or []:
                if not op:
                    continue
                if op[0] == "append" and op[1] == reply_dom:
                    touches = True
                    text = op[3] or ""
                    if counted:
                        result.append_text_chars += len(text)
                        if text and first_text_at is None:
                            first_text_at = update.time
                        offset = op[4] if len(op) > 4 and op[4] is not None else None
                        if text and offset is not None and token_time is not None:
                            reached = offset + len(text)
                            token = min(
                                bisect.bisect_left(token_ends, reached), len(token_ends) - 1
                            )
                            lags.append(update.time - token_time(token))
                elif op[0] in ("insert", "patch"):
                    # A patch carries some fields of one row: the reply's status changes.
                    entries = op[4] if op[0] == "insert" else [(op[1], op[2])]
                    for dom_id, item in entries:
                        if counted and marker in str(item.get("content")):
                            seen("asked", update.time)
                            created("asked_created", item.get("inserted_at"))
                        if dom_id != reply_dom:
                            continue
                        touches = True
                        if not counted:
                            continue
                        seen(str(item.get("status")), update.time)
                        if "inserted_at" in item:
                            created("reply_created", item["inserted_at"])
                        content = item.get("content") or ""
                        result.row_text_chars += len(content)
                        if result.first_row_ms != result.first_row_ms:
                            result.first_row_ms = (update.time - sent) * 1000
                        if content and first_text_at is None:
                            first_text_at = update.time
                        if item.get("status") in FINAL_STATUSES:
                            done_here = True
                            result.final_status = item.get("status", "")
                            current = next(
                                (i for i in shown.items if i.get("dom_id") == reply_dom), None
                            )
                            result.text_from_appends_ok = (
                                current is not None and current.get("content") == full_text
                            )
        if counted:
            data = frame_payload(update).encode()
            result.all_updates += 1
            result.all_bytes += len(data)
            if touches:
                result.updates += 1
                result.bytes += len(data)
                result.deflate_estimate += max(
                    len(deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH)) - 4, 1
                )
                times.append(update.time)
                appends = [op for op in batch.get("ops") or [] if op and op[0] == "append"]  # type: ignore[union-attr]
                if appends:
                    result.append_updates += 1
                    text_length = sum(len((op[3] or "").encode()) for op in appends)
                    envelopes.append((len(data) - text_length, data.decode(), text_length))
                else:
                    result.row_updates += 1
        if batch is not None:
            outcome = shown.apply_batch(batch)
            if position >= start and outcome is not BatchOutcome.APPLIED:
                result.batch_anomalies[outcome.value] = (
                    result.batch_anomalies.get(outcome.value, 0) + 1
                )
        if counted and done_here:
            finished = True
            result.done_ms = (update.time - sent) * 1000
            done_at = update.time
            if first_text_at is not None:
                result.first_text_ms = (first_text_at - sent) * 1000
                span = done_at - first_text_at
                result.stream_span_s = span
                result.updates_in_span = sum(1 for t in times if first_text_at <= t <= done_at)
                if span > 0:
                    result.updates_per_s = result.updates_in_span / span
                result.peak_updates_1s = peak_in_window([t for t in times if t >= first_text_at])
    final = next((i for i in shown.items if i.get("dom_id") == reply_dom), None)
    result.final_text_ok = final is not None and final.get("content") == full_text
    if final is not None and not result.final_status:
        result.final_status = str(final.get("status", ""))
    if first_text_at is not None:
        seen("text", first_text_at)
    if result.append_updates:
        result.chars_per_append = result.append_text_chars / result.append_updates
    if envelopes:
        result.append_envelope_p50 = statistics.median(size for size, _, _ in envelopes)
        message = min(envelopes, key=lambda e: e[2])[1]
        sample = json.loads(message[len("42" + EVENT_NAMESPACE + ",") :])
        for op in sample[1]["delta"][MESSAGES_STATE][STREAM_BATCHES][MESSAGES]["ops"]:
            if op and op[0] == "append":
                op[3] = f"<{len(op[3])} chars>"
        result.sample_append = message[: len("42" + EVENT_NAMESPACE + ",")] + json.dumps(
            sample, separators=(",", ":")
        )
    if lags:
        ordered = sorted(lags)
        result.lag_p50_ms = ordered[len(ordered) // 2] * 1000
        result.lag_max_ms = ordered[-1] * 1000
        result.lag_last_ms = lags[-1] * 1000
    return result


# The bare baseline: the openai client straight at the fake


@dataclass
class BareTrial:
    label: str
    marker: str
    construct_ms: float = math.nan  # AsyncOpenAI(...) itself
    first_chunk_ms: float = math.nan  # request -> first content chunk
    request_at: float = math.nan
    first_chunk_at: float = math.nan
    arrival_ms: float = math.nan  # request -> the fake's arrival (from its log)
    after_arrival_ms: float = math.nan  # the fake's arrival -> first content chunk


async def bare_trial(fake: FakeOpenAI, tokens: list[str], tps: float, label: str) -> BareTrial:
    marker = f"bare-{label}-{random.randrange(10**9)}"
    await asyncio.to_thread(fake.script, Stream(tokens, tokens_per_second=tps))
    trial = BareTrial(label, marker)
    made = time.monotonic()
    client = openai.AsyncOpenAI(
        api_key="bench-key",
        base_url=fake.base_url,
        max_retries=0,
        timeout=openai.Timeout(None, connect=10.0, read=30.0, write=10.0),
    )
    trial.construct_ms = (time.monotonic() - made) * 1000
    try:
        trial.request_at = time.monotonic()
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
                {"role": "user", "content": f"Ada Lovelace: @assistant {marker}"},
            ],
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            async for chunk in stream:
                if any(c.delta and c.delta.content for c in chunk.choices or ()):
                    trial.first_chunk_at = time.monotonic()
                    break
    finally:
        await client.close()
    trial.first_chunk_ms = (trial.first_chunk_at - trial.request_at) * 1000
    return trial


async def construct_app_client(fake: FakeOpenAI) -> float:
    """ms to build the client the app builds for every reply (`AssistantConfig.client()`)."""
    settings = AssistantConfig(api_key="bench-key", base_url=fake.base_url)
    began = time.monotonic()
    client = settings.client()
    spent = (time.monotonic() - began) * 1000
    await client.close()
    return spent


def find_request(records: Sequence[RequestRecord], marker: str) -> RequestRecord | None:
    for record in records:
        if marker in json.dumps(record.body):
            return record
    return None


# The run


@dataclass
class Result:
    plan: dict[str, Any]
    reply_chars: int = 0  # L
    reply_tokens: int = 0
    tabs: list[TabResult] = field(default_factory=list)
    bare: list[BareTrial] = field(default_factory=list)
    bare_ttft_ms: float = math.nan  # median request -> first chunk
    bare_arrival_ms: float = math.nan
    bare_after_arrival_ms: float = math.nan
    bare_construct_ms: float = math.nan
    cold_first_text_ms: float = math.nan  # the warm-up reply, first tab
    short_first_texts_ms: list[float] = field(default_factory=list)  # the short replies
    app_first_text_ms: float = math.nan  # send -> first reply text at the first tab
    app_ttft_median_ms: float = math.nan  # of the short replies and the long one
    app_first_row_ms: float = math.nan  # send -> the queued reply row at the first tab
    app_arrival_ms: float = math.nan  # send -> the app's request at the fake
    app_after_arrival_ms: float = math.nan  # the fake's arrival -> first text at the first tab
    added_ttft_ms: float = math.nan
    added_before_request_ms: float = math.nan
    added_after_arrival_ms: float = math.nan
    server_stream_s: float = math.nan  # the fake: arrival -> body end
    server_tokens_per_s: float = math.nan
    server_outcome: str = ""
    completion_s: float = math.nan  # send -> done row at the slowest tab
    completion_first_s: float = math.nan  # ... at the fastest tab
    completion_ratio: float = math.nan
    done_after_server_end_ms: float = math.nan  # slowest tab's done row - the body's end
    # The first tab's first sight of each step, ms from the send (see TabResult.milestones).
    milestones: dict[str, float] = field(default_factory=dict)
    app_client_construct_ms: float = math.nan  # the app's AssistantConfig.client(), timed here
    deflate: bool = False
    cpu: dict[str, float] = field(default_factory=dict)
    startup_s: float = math.nan
    error: str = ""
    server_log: str = ""

    def worst(self, name: str) -> float:
        values = [getattr(t, name) for t in self.tabs if not math.isnan(getattr(t, name))]
        return max(values) if values else math.nan

    def targets(self) -> list[tuple[str, str, str]]:
        rows = []
        bytes_max = self.worst("bytes")
        limit = TARGET_BYTES_PER_L * self.reply_chars
        rows.append(
            (
                f"bytes per tab <= {TARGET_BYTES_PER_L:g} x L",
                verdict(bytes_max <= limit, bytes_max),
                f"max {fmt(bytes_max, 0)} B = {fmt(bytes_max / (self.reply_chars or 1), 2)} x L "
                f"(L = {self.reply_chars} chars; limit {limit:.0f} B)",
            )
        )
        rate = self.worst("updates_per_s")
        peak = max((t.peak_updates_1s for t in self.tabs), default=0)
        rows.append(
            (
                f"<= {TARGET_UPDATES_PER_S:g} updates/s per tab",
                verdict(rate <= TARGET_UPDATES_PER_S, rate),
                f"max {fmt(rate, 1)}/s over the streaming time; peak {peak} in any 1 s",
            )
        )
        rows.append(
            (
                f"<= {TARGET_ADDED_TTFT_MS:g} ms added to time to first token",
                verdict(self.added_ttft_ms <= TARGET_ADDED_TTFT_MS, self.added_ttft_ms),
                f"app send->first text {fmt(self.app_ttft_median_ms)} ms (median of "
                f"{len(self.short_first_texts_ms) + 1} replies) - bare request->first chunk "
                f"{fmt(self.bare_ttft_ms)} ms (median) = {fmt(self.added_ttft_ms)} ms",
            )
        )
        rows.append(
            (
                f"completion within {round((TARGET_COMPLETION_RATIO - 1) * 100):g} % of the "
                "server's stream time",
                verdict(self.completion_ratio <= TARGET_COMPLETION_RATIO, self.completion_ratio),
                f"send->done at the slowest tab {fmt(self.completion_s, 3)} s / server stream "
                f"{fmt(self.server_stream_s, 3)} s = {fmt(self.completion_ratio, 3)}",
            )
        )
        ok = bool(self.tabs) and all(t.verified for t in self.tabs)
        rows.append(
            (
                "every tab ends with exactly the full reply",
                "PASS" if ok else "FAIL",
                f"{sum(t.verified for t in self.tabs)}/{len(self.tabs)} tabs: text from the "
                "appends and the final row equal the reply, status done, no gap",
            )
        )
        return rows


def verdict(ok: bool, value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "N/A"
    return "PASS" if ok else "FAIL"


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


async def measure(
    result: Result,
    plan: Plan,
    server: AppServer,
    fake: FakeOpenAI,
    jars: list[tuple[str, dict[str, str]]],
) -> None:
    tokens = reply_tokens(plan.tokens, SEED)
    full_text = "".join(tokens)
    result.reply_chars, result.reply_tokens = len(full_text), len(tokens)
    # The text's length once each token is in.
    token_ends = list(itertools.accumulate(len(token) for token in tokens))
    stream_seconds = plan.tokens / plan.tokens_per_second
    users = [jars[n % len(jars)] for n in range(plan.clients)]
    clients = await open_room(
        server,
        ROOM_PATH,
        [jar for _, jar in users],
        concurrency=CONNECT_CONCURRENCY,
        timeout=JOIN_TIMEOUT,
    )
    try:
        await asyncio.sleep(1.0)  # each tab is added to the room's feed after its history
        result.deflate = deflate_negotiated(clients[0])
        print(
            f"{len(clients)} tabs on {ROOM_PATH} (permessage-deflate "
            f"{'negotiated' if result.deflate else 'not negotiated'})",
            flush=True,
        )
        sender = clients[0]

        # The bare baseline, first half (after one discarded warm-up request).
        await bare_trial(fake, tokens, plan.tokens_per_second, "warmup")
        with no_collector_pauses():
            for n in range(plan.bare_trials):
                result.bare.append(await bare_trial(fake, tokens, plan.tokens_per_second, f"b{n}"))

        # The app's warm-up reply: its first request pays one-off costs.
        short = Stream(tokens[:WARMUP_TOKENS], tokens_per_second=plan.tokens_per_second)
        result.cold_first_text_ms = await short_reply_first_text(sender, clients, fake, short)
        print(f"warm-up reply done (cold send->first text {fmt(result.cold_first_text_ms)} ms)")
        await asyncio.sleep(SETTLE)
        with no_collector_pauses():
            for _ in range(plan.short_replies):
                first_text = await short_reply_first_text(sender, clients, fake, short)
                result.short_first_texts_ms.append(first_text)
                await asyncio.sleep(SETTLE)

        # The measured reply.
        marker = f"bench-{random.randrange(10**9)}"
        await asyncio.to_thread(
            fake.script, Stream(tokens, tokens_per_second=plan.tokens_per_second)
        )
        starts = [len(c.updates) for c in clients]
        wall_offset = time.time() - time.monotonic()
        print(
            f"asking for the reply: {plan.tokens} tokens at {plan.tokens_per_second:g}/s, "
            f"L = {len(full_text)} chars ...",
            flush=True,
        )
        with (
            no_collector_pauses(),
            CpuWindow({"app": server.process.pid, "fake": fake.pid or 0}) as cpu,
        ):
            sent, watches = await ask_and_wait(
                sender,
                clients,
                f"@assistant {marker}: please write a long answer",
                stream_seconds * 3 + 30,
            )
            await asyncio.sleep(SETTLE)
        result.cpu = {**cpu.percents(), "window_s": round(cpu.wall, 2)}
        reply_doms = {w.reply_dom for w in watches}
        if len(reply_doms) != 1 or None in reply_doms:
            raise RuntimeError(f"the tabs saw different replies: {reply_doms}")
        reply_dom = watches[0].reply_dom
        assert reply_dom is not None

        # The bare baseline, second half.
        with no_collector_pauses():
            for n in range(plan.bare_trials):
                result.bare.append(await bare_trial(fake, tokens, plan.tokens_per_second, f"a{n}"))

        result.app_client_construct_ms = median(
            [await construct_app_client(fake) for _ in range(3)]
        )
        records = await fake.requests_async()
        app_request = find_request(records, marker)
        if app_request is None or app_request.end is None:
            raise RuntimeError("the app's request is missing from the fake's log")
        for trial in result.bare:
            record = find_request(records, trial.marker)
            if record is not None:
                trial.arrival_ms = (record.arrived_monotonic - trial.request_at) * 1000
                trial.after_arrival_ms = (trial.first_chunk_at - record.arrived_monotonic) * 1000
        result.bare_ttft_ms = median([t.first_chunk_ms for t in result.bare])
        result.bare_arrival_ms = median([t.arrival_ms for t in result.bare])
        result.bare_after_arrival_ms = median([t.after_arrival_ms for t in result.bare])
        result.bare_construct_ms = median([t.construct_ms for t in result.bare])

        arrived, ended = app_request.arrived_monotonic, app_request.end.monotonic
        result.server_stream_s = ended - arrived
        result.server_outcome = app_request.end.outcome
        result.server_tokens_per_s = app_request.end.tokens_sent / result.server_stream_s
        # When the fake wrote token k, estimated: the first one the bare baseline's
        # arrival -> first chunk after the arrival, the last one at the body's end.
        first_token = arrived + result.bare_after_arrival_ms / 1000
        step = (ended - first_token) / max(len(tokens) - 1, 1)

        def token_time(k: int) -> float:
            return first_token + k * step

        for index, (client, start, (email, _)) in enumerate(
            zip(clients, starts, users, strict=True)
        ):
            result.tabs.append(
                analyse_tab(
                    index,
                    email.split("@")[0],
                    client,
                    start,
                    sent,
                    reply_dom,
                    full_text,
                    token_ends,
                    token_time,
                    marker,
                    wall_offset,
                )
            )
        for tab in result.tabs:
            for name, ms in tab.milestones.items():
                result.milestones[name] = min(result.milestones.get(name, math.inf), ms)
        firsts = [t.first_text_ms for t in result.tabs if not math.isnan(t.first_text_ms)]
        rows = [t.first_row_ms for t in result.tabs if not math.isnan(t.first_row_ms)]
        dones = [t.done_ms for t in result.tabs if not math.isnan(t.done_ms)]
        if firsts:
            result.app_first_text_ms = min(firsts)
            samples = [*result.short_first_texts_ms, result.app_first_text_ms]
            result.app_ttft_median_ms = median([v for v in samples if not math.isnan(v)])
            result.added_ttft_ms = result.app_ttft_median_ms - result.bare_ttft_ms
            result.app_arrival_ms = (arrived - sent) * 1000
            result.app_after_arrival_ms = result.app_first_text_ms - result.app_arrival_ms
            result.added_before_request_ms = result.app_arrival_ms - result.bare_arrival_ms
            result.added_after_arrival_ms = (
                result.app_after_arrival_ms - result.bare_after_arrival_ms
            )
        if rows:
            result.app_first_row_ms = min(rows)
        if dones:
            result.completion_s = max(dones) / 1000
            result.completion_first_s = min(dones) / 1000
            result.completion_ratio = result.completion_s / result.server_stream_s
            result.done_after_server_end_ms = (sent + result.completion_s - ended) * 1000
    finally:
        await close_all(clients, timeout=20.0)


def run(plan: Plan, workdir: Path) -> Result:
    result = Result(plan=asdict(plan))
    fake = FakeOpenAI()
    server: AppServer | None = None
    try:
        fake.start()
        database_url = f"sqlite:///{workdir / 'llm_stream.db'}"
        prepared_database(database_url)
        jars = session_cookies(database_url)
        began = time.monotonic()
        server = start_app(
            database_url,
            workdir / "app.log",
            extra_env={
                "OPENAI_BASE_URL": fake.base_url,
                "OPENAI_API_KEY": "bench-key",
                "ASSISTANT_REQUESTS_PER_MINUTE": "10000",
                **UNTHROTTLED,
                "ASSISTANT_MAX_RETRIES": "0",
            },
        )
        result.startup_s = round(time.monotonic() - began, 1)
        print(f"app up in {result.startup_s} s; fake model server pid {fake.pid}", flush=True)
        asyncio.run(measure(result, plan, server, fake, jars))
    except Exception as error:
        result.error = f"{type(error).__name__}: {error}"
        print(f"!! failed: {result.error}", flush=True)
        if server is not None:
            with contextlib.suppress(OSError):
                result.server_log = server.log_tail(30)
    finally:
        if server is not None:
            server.stop()
        fake.stop()
    return result


# Printing

HEADER = (
    f"{'tab':>3} {'user':<10}{'upd':>5}{'rows':>5}{'upd/s':>7}{'peak':>5}{'bytes':>8}{'xL':>6}"
    f"{'txt B':>7}{'row B':>7}{'ch/upd':>7}{'1st txt':>8}{'done':>8}{'lag p50/max':>13}  check"
)


def tab_row(tab: TabResult, reply_chars: int) -> str:
    lag = f"{fmt(tab.lag_p50_ms, 0)}/{fmt(tab.lag_max_ms, 0)}"
    problems = []
    if not tab.text_from_appends_ok:
        problems.append("appends do not rebuild the reply")
    if not tab.final_text_ok:
        problems.append("final text differs")
    if tab.final_status != "done":
        problems.append(f"status {tab.final_status or '?'}")
    if tab.batch_anomalies:
        problems.append(f"batches {tab.batch_anomalies}")
    check = "PASS" if tab.verified else "FAIL " + "; ".join(problems)
    user = tab.user + ("*" if tab.asker else "")
    return (
        f"{tab.tab:>3} {user:<10}{tab.updates:>5}{tab.row_updates:>5}"
        f"{fmt(tab.updates_per_s):>7}{tab.peak_updates_1s:>5}{tab.bytes:>8}"
        f"{fmt(tab.bytes / (reply_chars or 1), 2):>6}{tab.append_text_chars:>7}"
        f"{tab.row_text_chars:>7}{fmt(tab.chars_per_append):>7}{fmt(tab.first_text_ms, 0):>8}"
        f"{fmt(tab.done_ms, 0):>8}{lag:>13}  {check}"
    )


def print_report(result: Result, plan: Plan, elapsed: float) -> None:
    print("\n" + "=" * len(HEADER))
    print(
        f"One reply of {result.reply_tokens} tokens ({result.reply_chars} chars = L) at "
        f"{plan.tokens_per_second:g} tokens/s, streamed to {plan.clients} tabs on {ROOM_PATH}"
    )
    if result.error:
        print(f"ERROR: {result.error}")
        if result.server_log:
            print("server log tail:\n" + result.server_log)
    if result.tabs:
        print(
            "upd = websocket messages carrying ops on the reply (rows = of them row changes: "
            "queued,\nthinking rows, streaming, done patches); upd/s over first text -> done; "
            "peak = most in any 1 s;\nbytes = their payloads (UTF-8); xL = bytes / L; "
            "txt B / row B = reply "
            "text carried by\nappends / by rows; ch/upd = text chars per append; 1st txt, "
            "done = ms from the send;\nlag = ms behind the fake's writing of that text "
            "(estimated); * = the asker."
        )
        print(HEADER)
        for tab in result.tabs:
            print(tab_row(tab, result.reply_chars))
        tab = max(result.tabs, key=lambda t: t.bytes)
        envelope = tab.bytes - tab.append_text_chars - tab.row_text_chars
        print(
            f"\nBytes of the heaviest tab: {tab.bytes} = {tab.append_text_chars} reply text in "
            f"{tab.append_updates} appends + {tab.row_text_chars} text in {tab.row_updates} full "
            f"rows + {envelope} envelope\n(JSON keys, ids, row fields, socket.io framing: "
            f"{envelope / max(tab.updates, 1):.0f} B per message). permessage-deflate "
            f"{'negotiated' if result.deflate else 'not negotiated'} by the server; through "
            f"one deflate context the same messages would be ~{tab.deflate_estimate} B "
            "(an estimate, not what was sent;\nthe reply's words come from a small "
            "vocabulary, so it compresses better than real prose)."
        )
        print(
            f"An append message is {fmt(tab.append_envelope_p50, 0)} B besides its text "
            f"(median); the smallest one, text elided:\n  {tab.sample_append}"
        )
        all_bytes = max(t.all_bytes for t in result.tabs)
        print(
            f"Everything a tab received from the send to its done row: up to {all_bytes} B in "
            f"{max(t.all_updates for t in result.tabs)} messages (the asking message, the "
            "asker's own state updates)."
        )
    print("\nTime to first token (ms):")
    print(
        f"  bare openai client -> fake, request -> first content chunk: median "
        f"{fmt(result.bare_ttft_ms)} of {len(result.bare)} "
        f"({', '.join(fmt(t.first_chunk_ms) for t in result.bare)}); of which request -> "
        f"arrival at the fake {fmt(result.bare_arrival_ms)}, arrival -> chunk "
        f"{fmt(result.bare_after_arrival_ms)}; AsyncOpenAI() itself {fmt(result.bare_construct_ms)}"
        " more"
    )
    samples = [*result.short_first_texts_ms, result.app_first_text_ms]
    print(
        f"  app, send -> first reply text at the first tab: median {fmt(result.app_ttft_median_ms)}"
        f" of {len(samples)} replies ({', '.join(fmt(v) for v in samples)}; the last is the long"
        f" reply; cold, the warm-up reply: {fmt(result.cold_first_text_ms)})"
    )
    print(
        f"  the long reply: send -> first text {fmt(result.app_first_text_ms)} (queued reply row"
        f" at {fmt(result.app_first_row_ms)})"
    )
    print(
        f"    send -> the app's request at the fake {fmt(result.app_arrival_ms)} "
        f"(bare {fmt(result.bare_arrival_ms)}: +{fmt(result.added_before_request_ms)}); "
        f"arrival -> first text at a tab {fmt(result.app_after_arrival_ms)} "
        f"(bare {fmt(result.bare_after_arrival_ms)}: +{fmt(result.added_after_arrival_ms)})"
    )
    steps = result.milestones
    order = ["asked_created", "reply_created", "asked", "queued", "thinking", "streaming", "text"]
    names = {
        "asked_created": "asking row created (DB time)",
        "reply_created": "reply row created (DB time)",
        "asked": "asking row at a tab",
        "queued": "queued row",
        "thinking": "thinking row",
        "streaming": "streaming row",
        "text": "first text",
    }
    print(
        "    first sight after the send: "
        + ", ".join(f"{names[k]} {fmt(steps[k])}" for k in order if k in steps)
    )
    print(
        f"    the app's AssistantConfig.client() (one per event loop, reused) takes "
        f"{fmt(result.app_client_construct_ms)} ms when timed in this process"
    )
    print(f"  added by the app: {fmt(result.added_ttft_ms)}")
    print("\nCompletion:")
    print(
        f"  server stream (the fake: arrival -> body end) {fmt(result.server_stream_s, 3)} s "
        f"({fmt(result.server_tokens_per_s, 0)} tokens/s achieved, {result.server_outcome}); "
        f"send -> done row: fastest tab {fmt(result.completion_first_s, 3)} s, slowest "
        f"{fmt(result.completion_s, 3)} s; ratio {fmt(result.completion_ratio, 3)}; the slowest "
        f"done row {fmt(result.done_after_server_end_ms)} ms after the body's end"
    )
    cpu = result.cpu
    if cpu:
        print(
            f"  CPU during the reply ({cpu['window_s']} s, % of one core; {os.cpu_count()} cores):"
            f" app {cpu['app_cpu_pct']}, fake model server {cpu['fake_cpu_pct']}, this process "
            f"(all tabs) {cpu['bench_cpu_pct']}"
        )
    print("\nTargets:")
    for name, outcome, detail in result.targets():
        print(f"  {outcome:<4}  {name}: {detail}")
    load = load_average()
    print(
        f"\nTotal {elapsed:.0f} s (app start {fmt(result.startup_s)} s). Machine: "
        f"{os.cpu_count()} cores, load average {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}; "
        + "the app, the fake and the tabs share it."
    )


def as_json(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__, argv)
    plan = QUICK if args.quick else FULL
    began = time.monotonic()
    load_before = os.getloadavg()
    print(
        f"llm_stream: {plan.clients} tabs, {plan.tokens} tokens at {plan.tokens_per_second:g}/s, "
        f"{2 * plan.bare_trials} bare baseline requests. {os.cpu_count()} cores, load average "
        f"{load_before[0]:.2f}.",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="llm-stream-") as tmp:
        result = run(plan, Path(tmp))
    elapsed = time.monotonic() - began
    print_report(result, plan, elapsed)
    if args.json is not None:
        data = {
            "machine": machine_json(load_before),
            "elapsed_s": round(elapsed, 1),
            **as_json(asdict(result)),
            "targets": [
                {"target": name, "verdict": outcome, "detail": detail}
                for name, outcome, detail in result.targets()
            ],
        }
        write_json(data, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
