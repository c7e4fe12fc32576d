"""Awareness (presence, typing) on the messages' fan-out, against the real app in prod mode.

Run from anywhere: ``.venv/bin/python bench/awareness.py [--quick] [--json PATH]``.

One app with Redis (``REFLEX_REDIS_URL=redis://127.0.0.1:6379/5``, flushed before and after),
PostgreSQL and two backend workers, started once (``tests/support/servers.start_app``, bound
to 127.0.0.1, stopped by its own PID in a ``finally``). K = 200 socket.io stand-ins for
browsers (``tests/support/reflex_client.py``, as in ``bench/fanout.py``) open ``/rooms/1``:
20 of them are 20 typists (users of their own), the others the 10 seeded users in turn. One
more tab posts messages at 10 per second. Rounds alternate, the same tabs throughout:

* **baseline**: the messages alone (``bench/fanout.py``'s ``run_config``: latency = the first
  update inserting the message - its send, every tab verified to get every message once, in
  one order);
* **typing**: the same, while the 20 typists type continuously as ``assets/awareness.js``
  makes a browser do: "typing" every 5 s (phases spread), and every 15 s a sent draft
  ("stopped", then "typing" again a second later).

Targets: message p99 with typing within 1.2 x the baseline's (mean of the rounds' p99s) and
<= 150 ms; typing updates per tab <= 2 per second (on average, and in any one second);
per-tab state (its Reflex state in Redis) the same size before and after the room's history
grew by the rounds' messages; sidebar unread updates reach tabs open in other rooms with
p99 <= 1 s: meanwhile ``Plan.others`` more tabs have ``/rooms/2`` open, and for each of them
and each message, send -> the first update carrying the message's "posted" news for the
sidebar (``unread_news``, which ``assets/unread.js`` counts), each heard exactly once. Presence
and typing bytes per tab per second are reported (the websocket frames of the ``live_signals``
updates, encoded as Reflex sends them), with the join's picture. This process does not
collect garbage while a round runs (``no_collector_pauses``, via ``run_config``). Bounded
(``Plan.budget``), loopback only, stops by itself; the exit code is 0 whatever the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

# First: makes the project root the working directory and puts it on sys.path.
from common import (
    UNTHROTTLED,
    close_all,
    encode_frame,
    fmt,
    load_average,
    messages_batch,
    open_room,
    parse_args,
    percentile,
    session_cookies,
)

# isort: split
import redis
from fanout import Tab, run_config

from stream_chat.state.messages import MessagesState
from stream_chat.state.room_feed import SIGNALS_VAR
from stream_chat.state.rooms import RoomsState
from stream_chat.state.unread_feeds import UNREAD_VAR
from tests.support.databases import fresh_postgres_database
from tests.support.reflex_client import ReflexClient, handler_name, var_key
from tests.support.servers import AppServer, prepared_database, start_app

ROOM_PATH, ROOM_ID = "/rooms/1", 1
OTHER_PATH = "/rooms/2"
NEWS_KEY = var_key(UNREAD_VAR)
REDIS_URL = "redis://127.0.0.1:6379/5"
WORKERS = 2
POSTGRES_DB = "stream_chat_bench_awareness"
SET_TYPING = handler_name(MessagesState.set_typing)
SIGNALS_KEY = SIGNALS_VAR + "_rx_state_"
ROOMS_STATE = RoomsState.get_full_name()
TYPING_REFRESH, SENT_EVERY, RESTART_AFTER = 5.0, 15.0, 1.0

MAX_RATIO, MAX_P99_MS, MAX_TYPING_PER_S = 1.2, 150.0, 2.0
STATE_SLACK_BYTES = 64
MAX_SIDEBAR_P99_MS = 1000.0


@dataclass(frozen=True)
class Plan:
    k: int
    typists: int
    messages: int  # per round
    rate: float
    rounds: int  # of each kind, alternating
    budget: float  # s, the whole run
    others: int  # tabs open in another room: their sidebars hear of the messages


FULL = Plan(k=200, typists=20, messages=200, rate=10.0, rounds=3, budget=420.0, others=20)
QUICK = Plan(k=20, typists=5, messages=30, rate=10.0, rounds=1, budget=120.0, others=3)


# What the tabs received


def signals_of(update: Any) -> dict[str, Any] | None:
    values = update.delta.get(ROOMS_STATE) or {}
    return values.get(SIGNALS_KEY) or None


def is_typing_update(signals: dict[str, Any]) -> bool:
    room = signals.get("room") or {}
    return not room.get("full") and ("typing" in room or "stopped" in room)


@dataclass
class Awareness:
    """Per tab, the awareness updates of one window: counts and websocket bytes."""

    typing_updates: list[int] = field(default_factory=list)
    typing_peak_1s: list[int] = field(default_factory=list)
    typing_bytes: list[int] = field(default_factory=list)
    presence_bytes: list[int] = field(default_factory=list)
    seconds: float = 0.0


def measure_window(clients: Sequence[ReflexClient], starts: list[int], seconds: float) -> Awareness:
    seen = Awareness(seconds=seconds)
    for client, start in zip(clients, starts, strict=True):
        typing_times: list[float] = []
        typing_bytes = presence_bytes = 0
        for update in client.updates[start:]:
            signals = signals_of(update)
            if signals is None:
                continue
            size = len(encode_frame({"delta": update.delta}).encode())
            if is_typing_update(signals):
                typing_times.append(update.time)
                typing_bytes += size
            elif "presence" in signals or "room" in signals:
                presence_bytes += size
        seen.typing_updates.append(len(typing_times))
        seen.typing_peak_1s.append(peak_in_window(typing_times, 1.0))
        seen.typing_bytes.append(typing_bytes)
        seen.presence_bytes.append(presence_bytes)
    return seen


def peak_in_window(times: list[float], width: float) -> int:
    """The most events in any half-open window [t, t + width)."""
    best, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= width:
            first += 1
        best = max(best, last - first + 1)
    return best


# The typists


async def type_continuously(typists: Sequence[ReflexClient], stop: asyncio.Event) -> int:
    """What 20 browsers send while their people type without pause; returns notices sent."""
    sent = 0

    async def one(client: ReflexClient, phase: float) -> None:
        nonlocal sent
        await asyncio.sleep(phase)
        began = time.monotonic()
        next_sent_draft = began + SENT_EVERY
        while not stop.is_set():
            await client.send_event(SET_TYPING, {"room_id": ROOM_ID, "is_typing": True})
            sent += 1
            wait = TYPING_REFRESH
            if time.monotonic() >= next_sent_draft:
                await client.send_event(SET_TYPING, {"room_id": ROOM_ID, "is_typing": False})
                sent += 1
                next_sent_draft += SENT_EVERY
                wait = RESTART_AFTER
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    count = len(typists)
    await asyncio.gather(*(one(c, TYPING_REFRESH * n / count) for n, c in enumerate(typists)))
    return sent


# The sidebars of the tabs in another room


class RecordingSender:
    """The posting tab, as `run_config` drives it, remembering when each text was sent."""

    def __init__(self, client: ReflexClient) -> None:
        self.client = client
        self.sent_at: dict[str, float] = {}

    async def send_event(self, handler: Any, payload: dict[str, Any]) -> float:
        sent = await self.client.send_event(handler, payload)
        self.sent_at[payload["form"]["content"]] = sent
        return sent


def message_ids(client: ReflexClient, since: int) -> dict[int, str]:
    """Message id -> its text, from the inserts a tab of the room received."""
    found: dict[int, str] = {}
    for update in client.updates[since:]:
        for op in (messages_batch(update) or {}).get("ops") or []:
            if op and op[0] == "insert":
                for _dom_id, item in op[4]:
                    found[item["id"]] = item.get("content", "")
    return found


@dataclass
class Sidebars:
    """Send -> the first "posted" news of each message, per tab in the other room."""

    latencies_ms: list[float] = field(default_factory=list)
    expected: int = 0
    doubled: int = 0


def measure_sidebars(
    elsewhere: Sequence[ReflexClient], starts: list[int], sent_at: dict[int, float], count: int
) -> Sidebars:
    seen = Sidebars(expected=len(elsewhere) * count)
    for client, start in zip(elsewhere, starts, strict=True):
        heard: dict[int, int] = {}
        for update in client.updates[start:]:
            news = (update.delta.get(ROOMS_STATE) or {}).get(NEWS_KEY) or {}
            message_id = news.get("message_id")
            if news.get("kind") != "posted" or message_id not in sent_at:
                continue
            heard[message_id] = heard.get(message_id, 0) + 1
            if heard[message_id] == 1:
                seen.latencies_ms.append((update.time - sent_at[message_id]) * 1000)
        seen.doubled += sum(1 for times in heard.values() if times > 1)
    return seen


# Per-tab state


def state_bytes(client: redis.Redis, token: str) -> int:
    """The size of one tab's Reflex state as Redis holds it (every key of its token)."""
    return sum(len(client.dump(key) or b"") for key in client.scan_iter(match=f"{token}*"))


# The run


@dataclass
class Round:
    kind: str
    p50_ms: float
    p99_ms: float
    passed: bool
    awareness: Awareness | None = None
    notices: int = 0
    sidebars: Sidebars | None = None


@dataclass
class Results:
    rounds: list[Round] = field(default_factory=list)
    join_picture_bytes: float = math.nan
    state_before: float = math.nan
    state_after: float = math.nan
    messages_added: int = 0
    error: str = ""


def extra_users(database_url: str, count: int) -> list[dict[str, str]]:
    """Cookie jars of `count` typists with users of their own (created in the bench's DB)."""
    from stream_chat import accounts, repo
    from stream_chat.state.session import SESSION_COOKIE

    repo.configure(database_url)
    try:
        jars = []
        for n in range(count):
            user = accounts.register_user(
                f"typist{n}@bench.streamchat.io", "typist-password", f"Typist {n}"
            )
            jars.append({SESSION_COOKIE: accounts.create_session_token(user)})
        return jars
    finally:
        repo.engine().dispose()


async def run(
    server: AppServer,
    plan: Plan,
    typist_jars: list[dict[str, str]],
    seeded: list[dict[str, str]],
    results: Results,
    deadline: float,
) -> None:
    others = [seeded[n % len(seeded)] for n in range(plan.k - plan.typists)]
    clients: list[ReflexClient] = []
    elsewhere: list[ReflexClient] = []
    try:
        clients = await open_room(
            server, ROOM_PATH, typist_jars + others, concurrency=20, timeout=120
        )
        [sender] = await open_room(server, ROOM_PATH, seeded[:1], concurrency=1, timeout=60)
        clients.append(sender)
        elsewhere_jars = [seeded[n % len(seeded)] for n in range(plan.others)]
        elsewhere = await open_room(server, OTHER_PATH, elsewhere_jars, concurrency=20, timeout=60)
        recorder = RecordingSender(sender)
        tabs = [Tab(client) for client in clients[:-1]]
        for tab in tabs:
            tab.feed()
        pictures = []
        for client in clients[:-1]:
            sizes = [
                len(encode_frame({"delta": u.delta}).encode())
                for u in client.updates
                if signals_of(u)
            ]
            pictures.append(sum(sizes))
        results.join_picture_bytes = mean(pictures)
        store = redis.Redis.from_url(REDIS_URL)
        probe = clients[plan.typists]  # a reader, not a typist
        # Joins' presence changes settle (coalesced), then the baseline of the state's size.
        await asyncio.sleep(2.0)
        results.state_before = state_bytes(store, probe.token)
        kinds = ["baseline", "typing"] * plan.rounds
        for index, kind in enumerate(kinds):
            if time.monotonic() + plan.messages / plan.rate + 30 > deadline:
                results.error = f"time budget spent before round {index + 1}"
                break
            await asyncio.sleep(1.0)
            stop = asyncio.Event()
            typing_task = None
            if kind == "typing":
                typing_task = asyncio.create_task(type_continuously(clients[: plan.typists], stop))
                await asyncio.sleep(TYPING_REFRESH)  # every typist has started
            starts = [len(c.updates) for c in clients[:-1]]
            sender_start = len(sender.updates)
            elsewhere_starts = [len(c.updates) for c in elsewhere]
            began = time.monotonic()
            config = await run_config(
                "redis",
                f"{kind}{index}",
                tabs,
                recorder,  # type: ignore[arg-type]
                plan.messages,
                plan.rate,
                20.0,
                server.process.pid,
            )
            window = time.monotonic() - began
            awareness = measure_window(clients[:-1], starts, window)
            # The sender sees its own messages through the room's feed: their ids.
            sent_at = {
                message_id: recorder.sent_at[text]
                for message_id, text in message_ids(sender, sender_start).items()
                if text in recorder.sent_at
            }
            sidebars = measure_sidebars(elsewhere, elsewhere_starts, sent_at, plan.messages)
            notices = 0
            if typing_task is not None:
                stop.set()
                notices = await typing_task
            results.messages_added += plan.messages
            results.rounds.append(
                Round(
                    kind, config.p50_ms, config.p99_ms, config.passed, awareness, notices, sidebars
                )
            )
            print_round(results.rounds[-1], config.verdict)
        await asyncio.sleep(2.0)
        results.state_after = state_bytes(store, probe.token)
    finally:
        await close_all(clients + elsewhere)


def print_round(r: Round, verdict: str) -> None:
    a = r.awareness
    per_s = (max(a.typing_updates) / a.seconds) if a and a.seconds else math.nan
    sidebar = sorted(r.sidebars.latencies_ms) if r.sidebars else []
    sidebar_p99 = percentile(sidebar, 99) if sidebar else math.nan
    print(
        f"{r.kind:<9} p50 {fmt(r.p50_ms):>6} ms  p99 {fmt(r.p99_ms):>6} ms  messages {verdict}"
        f"  typing updates/tab/s (max tab) {fmt(per_s, 2)}  notices sent {r.notices}"
        f"  sidebar news p99 {fmt(sidebar_p99)} ms",
        flush=True,
    )


# Targets: each is (what, measured, met).


Target = tuple[str, str, bool]


def message_targets(results: Results) -> list[Target]:
    base = [r.p99_ms for r in results.rounds if r.kind == "baseline"]
    typing = [r.p99_ms for r in results.rounds if r.kind == "typing"]
    if not base or not typing:
        return [("message p99 with typing vs without", "not measured", False)]
    ratio = mean(typing) / mean(base)
    delivered = all(r.passed for r in results.rounds)
    return [
        (
            f"message p99 with typing <= {MAX_RATIO} x without",
            f"{fmt(mean(typing))} / {fmt(mean(base))} ms = {ratio:.2f} x",
            ratio <= MAX_RATIO,
        ),
        (
            f"message p99 with typing <= {MAX_P99_MS:g} ms",
            f"{fmt(mean(typing))} ms",
            mean(typing) <= MAX_P99_MS,
        ),
        ("every tab got every message once, in one order", "yes" if delivered else "no", delivered),
    ]


def typing_targets(results: Results) -> list[Target]:
    rates = [
        count / r.awareness.seconds
        for r in results.rounds
        if r.kind == "typing" and r.awareness is not None
        for count in r.awareness.typing_updates
    ]
    if not rates:
        return [("typing updates per tab <= 2/s", "not measured", False)]
    peaks = [
        peak
        for r in results.rounds
        if r.kind == "typing" and r.awareness is not None
        for peak in r.awareness.typing_peak_1s
    ]
    return [
        (
            f"typing updates per tab <= {MAX_TYPING_PER_S:g}/s",
            f"max {max(rates):.2f}/s, mean {mean(rates):.2f}/s",
            max(rates) <= MAX_TYPING_PER_S,
        ),
        (
            f"typing updates per tab in any 1 s <= {MAX_TYPING_PER_S:g}",
            f"max {max(peaks)}",
            max(peaks) <= MAX_TYPING_PER_S,
        ),
    ]


def state_targets(results: Results) -> list[Target]:
    grew = results.state_after - results.state_before
    return [
        (
            f"per-tab state flat as history grows (+{results.messages_added} messages)",
            f"{fmt(results.state_before, 0)} -> {fmt(results.state_after, 0)} bytes",
            not math.isnan(grew) and abs(grew) <= STATE_SLACK_BYTES,
        )
    ]


def sidebar_targets(results: Results) -> list[Target]:
    rounds = [r.sidebars for r in results.rounds if r.sidebars is not None]
    latencies = sorted(ms for sidebars in rounds for ms in sidebars.latencies_ms)
    what = (
        f"sidebar unread updates reach tabs open in other rooms, p99 <= {MAX_SIDEBAR_P99_MS:g} ms"
    )
    if not latencies:
        return [(what, "not measured", False)]
    expected = sum(sidebars.expected for sidebars in rounds)
    doubled = sum(sidebars.doubled for sidebars in rounds)
    p99 = percentile(latencies, 99)
    heard = len(latencies) == expected and doubled == 0
    measured = (
        f"p50 {fmt(percentile(latencies, 50))} ms, p99 {fmt(p99)} ms, max {fmt(latencies[-1])} "
        f"ms; {len(latencies)}/{expected} heard, {doubled} twice"
    )
    return [(what, measured, p99 <= MAX_SIDEBAR_P99_MS and heard)]


TARGETS: list[Callable[[Results], list[Target]]] = [
    message_targets,
    typing_targets,
    state_targets,
    sidebar_targets,
]


def print_summary(results: Results, plan: Plan, elapsed: float) -> int:
    print("\nAwareness bytes on the websocket, per tab:")
    for r in results.rounds:
        if r.awareness is None or not r.awareness.seconds:
            continue
        a = r.awareness
        print(
            f"  {r.kind:<9} typing {mean(a.typing_bytes) / a.seconds:7.1f} B/s (max tab "
            f"{max(a.typing_bytes) / a.seconds:.1f}), presence and rosters "
            f"{mean(a.presence_bytes) / a.seconds:6.1f} B/s; typing updates in any 1 s, max "
            f"{max(a.typing_peak_1s)}"
        )
    print(
        "  joining: the pictures (presence, roster, posters, typists) "
        f"{fmt(results.join_picture_bytes, 0)} B once"
    )
    targets = [t for make in TARGETS for t in make(results)]
    print(
        f"\nK = {plan.k} tabs on {ROOM_PATH} and {plan.others} on {OTHER_PATH}, {WORKERS} "
        f"workers with Redis, {plan.typists} typing, {plan.rate:g} messages/s"
    )
    for what, measured, met in targets:
        print(f"  {'PASS' if met else 'FAIL'}  {what}: {measured}")
    if results.error:
        print(f"  error: {results.error}")
    load = load_average()
    print(
        f"\nTotal {elapsed:.0f} s; {os.cpu_count()} cores, "
        f"load average {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}."
    )
    met = sum(1 for *_, ok in targets if ok)
    print(f"{met}/{len(targets)} targets met")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__, argv)
    plan = QUICK if args.quick else FULL
    began = time.monotonic()
    results = Results()
    server: AppServer | None = None
    store = redis.Redis.from_url(REDIS_URL)
    with tempfile.TemporaryDirectory(prefix="awareness-") as tmp:
        try:
            store.flushdb()
            database_url = fresh_postgres_database(POSTGRES_DB)
            prepared_database(database_url)
            seeded = [jar for _, jar in session_cookies(database_url)]
            typist_jars = extra_users(database_url, plan.typists)
            env = {**UNTHROTTLED, "REFLEX_REDIS_URL": REDIS_URL, "GRANIAN_WORKERS": str(WORKERS)}
            server = start_app(database_url, Path(tmp) / "app.log", extra_env=env)
            print(f"awareness: app up in {time.monotonic() - began:.1f} s", flush=True)
            asyncio.run(run(server, plan, typist_jars, seeded, results, began + plan.budget))
        except Exception as error:  # reported, and the targets not met say so
            results.error = f"{type(error).__name__}: {error}"
            if server is not None:
                print(server.log_tail(30))
        finally:
            if server is not None:
                server.stop()
            with contextlib.suppress(redis.RedisError):
                store.flushdb()
    return print_summary(results, plan, time.monotonic() - began)


if __name__ == "__main__":
    sys.exit(main())
