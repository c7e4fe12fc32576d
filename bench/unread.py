"""Sidebar unread updates reaching tabs open in other rooms, against the real app in prod mode.

Run from anywhere: ``.venv/bin/python bench/unread.py [--quick] [--json PATH]``.

One app with Redis (``REFLEX_REDIS_URL=redis://127.0.0.1:6379/6``, flushed before and after),
PostgreSQL and two backend workers (``GRANIAN_WORKERS=2``), started once
(``tests/support/servers.start_app``, bound to 127.0.0.1, stopped by its own PID in a
``finally``). K tabs (``tests/support/reflex_client.py``, the 10 seeded users in turn) open
``/rooms/1``, and K_OTHER more open ``/rooms/2``; one more tab on ``/rooms/1`` posts messages
at 10 per second (``bench/fanout.py``'s ``run_config``, which also measures the baseline: the
messages' own fan-out to the room's tabs, send -> the first update inserting the message).

Measured in the same run, for every tab in the other room and every message: send -> the
first update carrying the message's "posted" news for the sidebar (``unread_news``, which
``assets/unread.js`` counts). Every such tab must hear of every message exactly once.

Target: p99 <= 1 s (reported with its ratio to the baseline's p99). This process does not
collect garbage while a round runs (``no_collector_pauses``, via ``run_config``). Bounded
(``Plan.budget``), loopback only, stops by itself; the exit code is 0 whatever the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# First: makes the project root the working directory and puts it on sys.path.
from common import (
    UNTHROTTLED,
    close_all,
    fmt,
    load_average,
    machine_json,
    messages_batch,
    open_room,
    parse_args,
    percentile,
    session_cookies,
    write_json,
)

# isort: split
import redis
from fanout import ConfigResult, Tab, run_config

from stream_chat.state.rooms import RoomsState
from stream_chat.state.unread_feeds import UNREAD_VAR
from tests.support.databases import fresh_postgres_database
from tests.support.reflex_client import ReflexClient, var_key
from tests.support.servers import AppServer, prepared_database, start_app

ROOM_PATH, OTHER_PATH = "/rooms/1", "/rooms/2"
REDIS_URL = "redis://127.0.0.1:6379/6"
WORKERS = 2
POSTGRES_DB = "stream_chat_bench_unread"
ROOMS_STATE = RoomsState.get_full_name()
NEWS_KEY = var_key(UNREAD_VAR)
TARGET_P99_MS = 1000.0
CONNECT_CONCURRENCY = 20
JOIN_TIMEOUT = 120.0


@dataclass(frozen=True)
class Plan:
    k: int  # tabs in the room where messages are posted
    k_other: int  # tabs in another room: their sidebars are measured
    messages: int
    rate: float
    budget: float  # s, the whole run


FULL = Plan(k=150, k_other=50, messages=200, rate=10.0, budget=360.0)
QUICK = Plan(k=10, k_other=5, messages=20, rate=10.0, budget=120.0)


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
        batch = messages_batch(update)
        for op in (batch or {}).get("ops") or []:
            if op and op[0] == "insert":
                for _dom_id, item in op[4]:
                    found[item["id"]] = item.get("content", "")
    return found


@dataclass
class SidebarResult:
    k: int
    k_other: int
    messages: int
    rate: float
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    expected: int = 0
    delivered: int = 0
    doubled: int = 0
    baseline_p99_ms: float = math.nan
    baseline_passed: bool = False
    error: str = ""

    @property
    def passed(self) -> bool:
        return (
            not self.error
            and self.expected > 0
            and self.delivered == self.expected
            and (self.doubled == 0)
        )

    @property
    def meets_target(self) -> bool:
        return self.passed and self.p99_ms <= TARGET_P99_MS


def sidebar_latencies(
    others: Sequence[ReflexClient], starts: Sequence[int], sent_at: dict[int, float]
) -> tuple[list[float], int]:
    """Per tab and message id of `sent_at`, send -> the first "posted" news of it; and how
    many (tab, message) pairs were heard of more than once."""
    latencies: list[float] = []
    doubled = 0
    for client, start in zip(others, starts, strict=True):
        heard: dict[int, int] = {}
        for update in client.updates[start:]:
            news = (update.delta.get(ROOMS_STATE) or {}).get(NEWS_KEY) or {}
            message_id = news.get("message_id")
            if news.get("kind") != "posted" or message_id not in sent_at:
                continue
            heard[message_id] = heard.get(message_id, 0) + 1
            if heard[message_id] == 1:
                latencies.append(update.time - sent_at[message_id])
        doubled += sum(1 for times in heard.values() if times > 1)
    return sorted(latencies), doubled


async def measure(server: AppServer, jars: list[dict[str, str]], plan: Plan) -> SidebarResult:
    result = SidebarResult(plan.k, plan.k_other, plan.messages, plan.rate)
    clients: list[ReflexClient] = []
    try:
        room = await open_room(
            server,
            ROOM_PATH,
            [jars[n % len(jars)] for n in range(plan.k + 1)],
            concurrency=CONNECT_CONCURRENCY,
            timeout=JOIN_TIMEOUT,
        )
        clients += room
        others = await open_room(
            server,
            OTHER_PATH,
            [jars[n % len(jars)] for n in range(plan.k_other)],
            concurrency=CONNECT_CONCURRENCY,
            timeout=JOIN_TIMEOUT,
        )
        clients += others
        sender_client, tabs = room[0], [Tab(client) for client in room[1:]]
        for tab in tabs:
            tab.feed()
        sender = RecordingSender(sender_client)
        sender_start = len(sender_client.updates)
        starts = [len(client.updates) for client in others]
        baseline: ConfigResult = await run_config(
            "redis",
            "unread",
            tabs,
            sender,  # type: ignore[arg-type]
            plan.messages,
            plan.rate,
            wait_timeout=30.0,
            server_pgid=server.process.pid,
        )
        result.baseline_p99_ms = baseline.p99_ms
        result.baseline_passed = baseline.passed
        # The sender sees its own messages through the room's feed: their ids.
        texts = message_ids(sender_client, sender_start)
        sent_at = {
            message_id: sender.sent_at[text]
            for message_id, text in texts.items()
            if text in sender.sent_at
        }
        result.expected = plan.k_other * plan.messages
        if len(sent_at) != plan.messages:
            result.error = f"the sender saw {len(sent_at)} of its {plan.messages} messages"
        latencies, result.doubled = sidebar_latencies(others, starts, sent_at)
        result.delivered = len(latencies)
        if latencies:
            result.p50_ms = round(percentile(latencies, 50) * 1000, 1)
            result.p99_ms = round(percentile(latencies, 99) * 1000, 1)
            result.max_ms = round(latencies[-1] * 1000, 1)
    finally:
        await close_all(clients)
    return result


def run(plan: Plan, workdir: Path) -> SidebarResult:
    redis.Redis.from_url(REDIS_URL).flushdb()
    database_url = fresh_postgres_database(POSTGRES_DB)
    env = {**UNTHROTTLED, "REFLEX_REDIS_URL": REDIS_URL, "GRANIAN_WORKERS": str(WORKERS)}
    server: AppServer | None = None
    try:
        prepared_database(database_url)
        jars = [jar for _, jar in session_cookies(database_url)]
        started = time.monotonic()
        server = start_app(database_url, workdir / "app.log", extra_env=env)
        print(f"app up in {time.monotonic() - started:.1f} s", flush=True)
        return asyncio.run(asyncio.wait_for(measure(server, jars, plan), plan.budget))
    except Exception as error:
        failed = SidebarResult(plan.k, plan.k_other, plan.messages, plan.rate)
        failed.error = f"{type(error).__name__}: {error}"
        return failed
    finally:
        if server is not None:
            server.stop()
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(REDIS_URL).flushdb()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__, argv)
    plan = QUICK if args.quick else FULL
    load_before = os.getloadavg()
    began = time.monotonic()
    print(
        f"unread: {plan.k} tabs in {ROOM_PATH} and {plan.k_other} in {OTHER_PATH} on {WORKERS} "
        f"workers with Redis; {plan.messages} messages at {plan.rate:g}/s in {ROOM_PATH}. "
        f"{os.cpu_count()} cores, load average {load_before[0]:.2f}.",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="unread-") as tmp:
        result = run(plan, Path(tmp))
    elapsed = time.monotonic() - began
    print(
        f"\nsidebar news to the {result.k_other} tabs in the other room: p50 "
        f"{fmt(result.p50_ms)} ms, p99 {fmt(result.p99_ms)} ms, max {fmt(result.max_ms)} ms; "
        f"{result.delivered}/{result.expected} heard, {result.doubled} twice"
    )
    ratio = result.p99_ms / result.baseline_p99_ms if result.baseline_p99_ms else math.nan
    print(
        f"baseline, the messages to the {result.k} tabs of their room: p99 "
        f"{fmt(result.baseline_p99_ms)} ms ({'pass' if result.baseline_passed else 'FAIL'} "
        f"delivery check); sidebar p99 / baseline p99 = {fmt(ratio, 2)}"
    )
    if result.error:
        print(f"error: {result.error}")
    load = load_average()
    print(f"Total {elapsed:.0f} s, load average {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}.")
    verdict = "PASS" if result.meets_target else "FAIL"
    print(
        f"Target: sidebar unread updates reach tabs open in other rooms with p99 <= "
        f"{TARGET_P99_MS:g} ms: {verdict}"
    )
    if args.json is not None:
        data = {
            "plan": asdict(plan),
            "machine": machine_json(load_before),
            "elapsed_s": round(elapsed, 1),
            "result": {**asdict(result), "passed": result.passed},
        }
        write_json(data, args.json)
    print(f"{int(result.meets_target)}/1 targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
