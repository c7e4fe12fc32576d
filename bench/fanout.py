"""Fan-out latency of one room's messages to K open tabs, against the real app in prod mode.

Run from anywhere: ``.venv/bin/python bench/fanout.py [--quick] [--json PATH]``.

Two modes, each with the app started once (``tests/support/servers.start_app``, bound to
127.0.0.1, stopped by its own PID in a ``finally``) and reused for every K:

* ``single``: the default deployment, one backend process, a fresh SQLite database, no Redis
  (in-process pub/sub; Reflex's default state manager, in memory with debounced disk writes);
* ``redis``: ``REFLEX_REDIS_URL=redis://127.0.0.1:6379/4`` (flushed before and after) and a
  fresh PostgreSQL database, two backend workers (``GRANIAN_WORKERS=2``): the room's
  broadcasts go through Redis pub/sub and every state lives in Redis.

For K = 10, 50, 200, K browser stand-ins (``tests/support/reflex_client.py``; session cookies
of the 10 seeded users, in turn) open ``/rooms/1`` as a tab does (connect with the hydrate
event, on_load) and wait for their first stream batch, the room's history (a reset). One more
tab, the sender, posts 200 messages at 10 per second on a monotonic schedule. For each tab and
message, latency = receive time of the first update whose ``messages`` stream batch inserts
the message - the time the sender wrote the event (one process, one monotonic clock). Each
config is verified: every tab got every message exactly once (insert entries carrying its DOM
id, counted over every batch after the initial reset, so an update in place counts double), in
the same order as every other tab, without a sequence gap or a second reset.

Then, per mode, the rate is raised at K = 200 (100 messages per step) until the first step
whose p99 is >= 150 ms or that loses a message; the highest rate below that is reported.

Clients and server share the machine: the clients' CPU (this process) competes with the
server's, and both with anything else running. This process does not collect garbage while
a config runs (``tests/support/timing.no_collector_pauses``): all the tabs share it, and one
collection of it would delay every tab's receipt at once. The CPU each used is reported per
config. The exit code is 0 whatever the results (like ``bench/stream_wire.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# First: makes the project root the working directory and puts it on sys.path.
from common import (
    UNTHROTTLED,
    CpuWindow,
    close_all,
    fmt,
    group_stats,
    is_reset,
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

from stream_chat.state.messages import MessagesState
from stream_chat.streams import BatchOutcome, ClientStream
from tests.support.databases import fresh_postgres_database
from tests.support.reflex_client import ReflexClient, handler_name
from tests.support.servers import AppServer, prepared_database, start_app
from tests.support.timing import no_collector_pauses

ROOM_PATH = "/rooms/1"
REDIS_URL = "redis://127.0.0.1:6379/4"
# Reflex would start 2 x cores + 1 = 5 on this machine; the issue measures two, one per core.
REDIS_WORKERS = 2
POSTGRES_DB = "stream_chat_bench"
SEND = handler_name(MessagesState.send)

TARGET_K, TARGET_RATE, TARGET_P99_MS = 200, 10.0, 150.0
CONNECT_CONCURRENCY = 20
JOIN_TIMEOUT = 90.0  # s for a batch of tabs to connect, hydrate and get the room's history
POLL = 0.1  # s between checks while waiting for deliveries
MIN_WAIT = 10.0  # s of waiting for deliveries granted even when the budget is spent
MODES = ("single", "redis")
SETTLE = 0.5  # s to wait after the last delivery, so late duplicates are seen
PAUSE = 1.0  # s of quiet between configs


@dataclass(frozen=True)
class Plan:
    ks: tuple[int, ...]
    count: int  # messages per config
    rate: float  # messages per second
    ramp_k: int
    ramp_rates: tuple[float, ...]
    ramp_count: int
    # Tried, slowest last, only when the first ramp rate already misses the target.
    down_rates: tuple[float, ...]
    down_count: int
    drain_timeout: float  # at most this many s of waiting for deliveries after the last send
    budget: float  # s for the whole run, server starts included


FULL = Plan(
    ks=(10, 50, 200),
    count=200,
    rate=10.0,
    ramp_k=200,
    ramp_rates=(10.0, 20.0, 40.0, 80.0, 160.0),
    ramp_count=100,
    down_rates=(5.0, 2.0),
    down_count=50,
    drain_timeout=45.0,
    budget=345.0,
)
QUICK = Plan(
    ks=(10,),
    count=20,
    rate=10.0,
    ramp_k=10,
    ramp_rates=(40.0,),
    ramp_count=20,
    down_rates=(),
    down_count=0,
    drain_timeout=8.0,
    budget=60.0,
)


# Reading what each tab received


@dataclass
class Tab:
    """One open room tab and the browser's stream store, fed as its updates arrive."""

    client: ReflexClient
    shown: ClientStream = field(default_factory=ClientStream)
    applied: int = 0  # updates already fed to `shown`
    anomalies: dict[str, int] = field(default_factory=dict)  # batch outcomes other than applied

    def feed(self) -> None:
        updates = self.client.updates
        while self.applied < len(updates):
            batch = messages_batch(updates[self.applied])
            self.applied += 1
            if batch:
                outcome = self.shown.apply_batch(batch)
                if outcome is not BatchOutcome.APPLIED:
                    self.anomalies[outcome.value] = self.anomalies.get(outcome.value, 0) + 1


@dataclass
class Reception:
    """What one tab received of one config's messages, from the update index `start` on."""

    prefix: str
    count: int
    start: int
    scanned: int = -1
    first_at: dict[int, float] = field(default_factory=dict)  # message number -> receive time
    created: dict[int, str] = field(default_factory=dict)  # message number -> its inserted_at
    inserts: dict[int, int] = field(default_factory=dict)  # message number -> insert entries
    order: list[int] = field(default_factory=list)  # message numbers, by first receipt
    resets: int = 0  # reset batches after the start: a resync, never expected here
    updates_with_inserts: int = 0

    def scan(self, client: ReflexClient) -> None:
        if self.scanned < 0:
            self.scanned = self.start
        updates = client.updates
        while self.scanned < len(updates):
            update = updates[self.scanned]
            self.scanned += 1
            batch = messages_batch(update)
            if batch is None:
                continue
            if is_reset(batch):
                self.resets += 1
            carried = False
            for op in batch.get("ops") or []:
                if not op or op[0] != "insert":
                    continue
                for _dom_id, item in op[4]:
                    number = self._number(item.get("content"))
                    if number is None:
                        continue
                    carried = True
                    self.inserts[number] = self.inserts.get(number, 0) + 1
                    if number not in self.first_at:
                        self.first_at[number] = update.time
                        self.created[number] = item.get("inserted_at", "")
                        self.order.append(number)
            self.updates_with_inserts += carried

    def _number(self, content: Any) -> int | None:
        if not isinstance(content, str) or not content.startswith(self.prefix):
            return None
        rest = content[len(self.prefix) :]
        if not rest.isdigit():
            return None
        number = int(rest)
        return number if number < self.count else None

    @property
    def complete(self) -> bool:
        return len(self.first_at) == self.count


# Results


@dataclass
class ConfigResult:
    mode: str
    label: str
    k: int
    messages: int
    rate: float
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    deliveries_per_s: float = math.nan
    # The split, by the row's inserted_at (wall clock, set when the server builds the row):
    # send -> row created (the sender's event queued and handled) and created -> received.
    create_p50_ms: float = math.nan
    create_p99_ms: float = math.nan
    fanout_p50_ms: float = math.nan
    fanout_p99_ms: float = math.nan
    delivered: int = 0
    expected: int = 0
    lost: int = 0  # (tab, message) pairs never received
    doubled: int = 0  # (tab, message) pairs received more than once
    order_ok: bool = False
    send_order_ok: bool = False  # informational: the one order is the send order
    resets: int = 0
    seq_anomalies: int = 0
    messages_per_update: float = math.nan  # > 1 when the follower drained a burst
    send_lag_max_ms: float = math.nan  # how far the sender fell behind its schedule
    send_span_s: float = math.nan
    cpu: dict[str, float] = field(default_factory=dict)
    note: str = ""
    skipped: str = ""
    error: str = ""

    @property
    def passed(self) -> bool:
        return (
            not self.skipped
            and not self.error
            and self.expected > 0
            and self.lost == 0
            and self.doubled == 0
            and self.order_ok
            and self.resets == 0
            and self.seq_anomalies == 0
        )

    @property
    def meets_target(self) -> bool:
        return self.passed and self.p99_ms < TARGET_P99_MS

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "SKIP"
        return "PASS" if self.passed else "FAIL"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["verification"] = self.verdict
        return {
            key: (None if isinstance(v, float) and math.isnan(v) else v) for key, v in data.items()
        }


@dataclass
class ModeResult:
    mode: str
    description: str
    workers: str = ""
    configs: list[ConfigResult] = field(default_factory=list)
    ramp: list[ConfigResult] = field(default_factory=list)
    max_rate_ok: float | None = None  # highest ramp rate with p99 < target and nothing lost
    ramp_stop: str = ""
    error: str = ""
    server_log: str = ""


# One config: K tabs, one sender, N messages at R per second


def orders_agree(orders: Sequence[Sequence[int]]) -> bool:
    """Whether the tabs received the messages in one order (a tab that is missing some
    must still have the others in that order)."""
    reference = max(orders, key=len, default=[])
    position = {n: index for index, n in enumerate(reference)}
    for order in orders:
        if any(n not in position for n in order):
            return False
        indexes = [position[n] for n in order]
        if indexes != sorted(indexes):
            return False
    return True


async def run_config(
    mode: str,
    label: str,
    tabs: list[Tab],
    sender: ReflexClient,
    count: int,
    rate: float,
    wait_timeout: float,
    server_pgid: int,
) -> ConfigResult:
    k = len(tabs)
    result = ConfigResult(mode=mode, label=label, k=k, messages=count, rate=rate)
    result.expected = k * count
    prefix = f"bench-{mode}-{label}-"
    receptions = [Reception(prefix, count, len(tab.client.updates)) for tab in tabs]
    sent_at: list[float] = []
    lag = 0.0
    wall_offset = time.time() - time.monotonic()
    with no_collector_pauses(), CpuWindow({"server": server_pgid}) as cpu:
        start = time.monotonic() + 0.05
        async with asyncio.timeout(count / rate + 30):
            for n in range(count):
                due = start + n / rate  # the schedule, not the previous send, sets the pace
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent = await sender.send_event(SEND, {"form": {"content": f"{prefix}{n}"}})
                lag = max(lag, sent - due)
                sent_at.append(sent)
        deadline = time.monotonic() + wait_timeout
        while True:
            for tab, reception in zip(tabs, receptions, strict=True):
                reception.scan(tab.client)
            if all(r.complete for r in receptions) or time.monotonic() >= deadline:
                break
            if any(tab.client.disconnected for tab in tabs):
                result.error = "a tab was disconnected"
                break
            await asyncio.sleep(POLL)
        await asyncio.sleep(SETTLE)
        for tab, reception in zip(tabs, receptions, strict=True):
            reception.scan(tab.client)
    result.cpu = {**cpu.percents(), **cpu.machine_percents()}
    result.send_lag_max_ms = round(lag * 1000, 1)
    result.send_span_s = round(sent_at[-1] - sent_at[0], 2) if sent_at else math.nan

    latencies = sorted(
        at - sent_at[n] for reception in receptions for n, at in reception.first_at.items()
    )
    result.delivered = len(latencies)
    result.lost = result.expected - result.delivered
    result.doubled = sum(
        1 for reception in receptions for times in reception.inserts.values() if times > 1
    )
    result.resets = sum(reception.resets for reception in receptions)
    for tab in tabs:
        before = sum(tab.anomalies.values())
        tab.feed()
        result.seq_anomalies += sum(tab.anomalies.values()) - before
    created: dict[int, float] = {}
    for reception in receptions:
        for n, stamp in reception.created.items():
            if n not in created and stamp:
                with contextlib.suppress(ValueError):
                    created[n] = datetime.fromisoformat(stamp).timestamp() - wall_offset
    if created:
        creates = sorted(created[n] - sent_at[n] for n in created)
        fanouts = sorted(
            at - created[n]
            for reception in receptions
            for n, at in reception.first_at.items()
            if n in created
        )
        result.create_p50_ms = round(percentile(creates, 50) * 1000, 1)
        result.create_p99_ms = round(percentile(creates, 99) * 1000, 1)
        result.fanout_p50_ms = round(percentile(fanouts, 50) * 1000, 1)
        result.fanout_p99_ms = round(percentile(fanouts, 99) * 1000, 1)
    orders = [reception.order for reception in receptions]
    result.order_ok = orders_agree(orders)
    result.send_order_ok = result.order_ok and all(order == sorted(order) for order in orders)
    carrying = sum(reception.updates_with_inserts for reception in receptions)
    if carrying:
        result.messages_per_update = round(result.delivered / carrying, 2)
    if latencies:
        result.p50_ms = round(percentile(latencies, 50) * 1000, 1)
        result.p99_ms = round(percentile(latencies, 99) * 1000, 1)
        result.max_ms = round(latencies[-1] * 1000, 1)
        last = max(at for reception in receptions for at in reception.first_at.values())
        span = last - sent_at[0]
        result.deliveries_per_s = round(result.delivered / span, 1) if span > 0 else math.nan
    return result


# One mode: one server, a growing pool of tabs


async def open_tabs(
    server: AppServer, jars: list[dict[str, str]], first: int, count: int
) -> list[Tab]:
    """`count` more tabs on the room (cookies in turn from user `first`), each with its history."""
    cookies = [jars[(first + n) % len(jars)] for n in range(count)]
    clients = await open_room(
        server, ROOM_PATH, cookies, concurrency=CONNECT_CONCURRENCY, timeout=JOIN_TIMEOUT
    )
    tabs = [Tab(client) for client in clients]
    for tab in tabs:
        tab.feed()  # the history: not counted as an anomaly
    return tabs


async def run_mode(
    result: ModeResult,
    server: AppServer,
    jars: list[dict[str, str]],
    plan: Plan,
    deadline: float,
) -> None:
    pgid = server.process.pid
    tabs: list[Tab] = []
    senders: list[Tab] = []

    def wait_timeout(count: int, rate: float) -> float:
        left = deadline - time.monotonic() - count / rate
        return min(plan.drain_timeout, max(MIN_WAIT, left))

    async def step(label: str, k: int, count: int, rate: float) -> ConfigResult:
        if time.monotonic() + count / rate + MIN_WAIT + PAUSE > deadline:
            skipped = ConfigResult(result.mode, label, k, count, rate, skipped="time budget")
            print_config(skipped)
            return skipped
        await asyncio.sleep(PAUSE)
        config = await run_config(
            result.mode,
            label,
            tabs[:k],
            senders[0].client,
            count,
            rate,
            wait_timeout(count, rate),
            pgid,
        )
        print_config(config)
        return config

    try:
        senders = await open_tabs(server, jars, 0, 1)
        for k in plan.ks:
            if len(tabs) < k:
                tabs += await open_tabs(server, jars, len(tabs), k - len(tabs))
            result.configs.append(await step(str(k), k, plan.count, plan.rate))

        k = min(plan.ramp_k, len(tabs))
        print(f"-- {result.mode}: rate ramp at K={k} --", flush=True)
        for rate in plan.ramp_rates:
            measured = next(
                (c for c in result.configs if c.k == k and c.rate == rate and not c.skipped),
                None,
            )
            if measured is not None:  # this very config was just run: not again
                config = ConfigResult(**{**asdict(measured), "note": "the main run's row"})
                print_config(config)
            else:
                config = await step(f"{k}at{rate:g}", k, plan.ramp_count, rate)
            result.ramp.append(config)
            if config.skipped:
                result.ramp_stop = f"time budget spent before {rate:g} msg/s"
                break
            if not config.meets_target:
                why = "p99" if config.passed else "delivery check failed, p99"
                result.ramp_stop = f"{rate:g} msg/s: {why} {fmt(config.p99_ms, 0)} ms"
                break
            result.max_rate_ok = rate
        else:
            result.ramp_stop = "every rate tried met the target"
        first = result.ramp[0] if result.ramp else None
        if result.max_rate_ok is None and first is not None and not first.skipped:
            if first.lost:
                result.ramp_stop += "; the app is still behind: no slower rate tried"
            else:
                for rate in plan.down_rates:
                    config = await step(f"{k}at{rate:g}", k, plan.down_count, rate)
                    result.ramp.append(config)
                    if config.skipped or config.lost:
                        break
                    if config.meets_target:
                        result.max_rate_ok = rate
                        break
    finally:
        await close_all([tab.client for tab in tabs + senders])


def backend_processes(pgid: int) -> int:
    """Processes in the app's process group (supervisor, workers, frontend server)."""
    return sum(1 for _ in group_stats(pgid))


def run_one_mode(mode: str, plan: Plan, workdir: Path, deadline: float) -> ModeResult:
    if mode == "single":
        result = ModeResult(
            mode, "one process, SQLite, Reflex's default disk-backed state, in-process pub/sub"
        )
        database_url = f"sqlite:///{workdir / 'single.db'}"
        extra_env: dict[str, str] = dict(UNTHROTTLED)
    else:
        result = ModeResult(
            mode, f"{REDIS_WORKERS} backend workers, PostgreSQL, Redis state and pub/sub"
        )
        redis.Redis.from_url(REDIS_URL).flushdb()
        database_url = fresh_postgres_database(POSTGRES_DB)
        extra_env = {
            **UNTHROTTLED,
            "REFLEX_REDIS_URL": REDIS_URL,
            "GRANIAN_WORKERS": str(REDIS_WORKERS),
        }
    log_path = workdir / f"{mode}.log"
    server: AppServer | None = None
    try:
        prepared_database(database_url)
        jars = [jar for _, jar in session_cookies(database_url)]
        started = time.monotonic()
        server = start_app(database_url, log_path, extra_env=extra_env)
        result.workers = f"{backend_processes(server.process.pid)} processes in the app's group"
        print(
            f"\n== {mode}: {result.description}; app up in {time.monotonic() - started:.1f} s "
            f"({result.workers}) ==",
            flush=True,
        )
        asyncio.run(run_mode(result, server, jars, plan, deadline))
    except Exception as error:  # report and go on with the other mode
        result.error = f"{type(error).__name__}: {error}"
        print(f"!! {mode} mode failed: {result.error}", flush=True)
        if server is not None:
            result.server_log = server.log_tail(30)
    finally:
        if server is not None:
            server.stop()
        if mode == "redis":
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(REDIS_URL).flushdb()
    return result


# Printing


HEADER = (
    f"{'mode':<7}{'K':>4}{'msgs':>5}{'rate':>5}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
    f"{'deliv/s':>8}{'create':>12}{'fan-out':>12}{'msg/upd':>8}{'lag':>5}"
    f"{'srv%':>5}{'bench%':>7}{'other%':>7}  check"
)


def row(config: ConfigResult) -> str:
    cpu = config.cpu
    create = f"{fmt(config.create_p50_ms, 0)}/{fmt(config.create_p99_ms, 0)}"
    fanout = f"{fmt(config.fanout_p50_ms, 0)}/{fmt(config.fanout_p99_ms, 0)}"
    text = (
        f"{config.mode:<7}{config.k:>4}{config.messages:>5}{config.rate:>5g}"
        f"{fmt(config.p50_ms):>8}{fmt(config.p99_ms):>8}{fmt(config.max_ms):>8}"
        f"{fmt(config.deliveries_per_s, 0):>8}{create:>12}{fanout:>12}"
        f"{fmt(config.messages_per_update, 2):>8}{fmt(config.send_lag_max_ms, 0):>5}"
        f"{cpu.get('server_cpu_pct', math.nan):>5.0f}{cpu.get('bench_cpu_pct', math.nan):>7.0f}"
        f"{cpu.get('other_cpu_pct', math.nan):>7.0f}  {config.verdict}"
    )
    problems = []
    if config.note:
        problems.append(config.note)
    if config.skipped:
        problems.append(f"skipped: {config.skipped}")
    if config.lost:
        problems.append(f"{config.lost}/{config.expected} not delivered within the wait")
    if config.doubled:
        problems.append(f"doubled {config.doubled}")
    if config.expected and not config.skipped and not config.order_ok:
        problems.append("orders differ between tabs")
    if config.order_ok and not config.send_order_ok and not config.skipped:
        problems.append("(one order, not the send order)")
    if config.resets:
        problems.append(f"{config.resets} resets")
    if config.seq_anomalies:
        problems.append(f"{config.seq_anomalies} seq gaps/duplicates")
    if config.error:
        problems.append(config.error)
    return text + (f"  {'; '.join(problems)}" if problems else "")


def print_config(config: ConfigResult) -> None:
    print(row(config), flush=True)


def target_check(mode: ModeResult) -> tuple[str, str]:
    config = next(
        (c for c in mode.configs if c.k == TARGET_K and c.rate == TARGET_RATE and not c.skipped),
        None,
    )
    if config is None:
        return "N/A", "not measured" + (f" ({mode.error})" if mode.error else "")
    ok = config.passed and config.p99_ms <= TARGET_P99_MS
    detail = f"p99 {fmt(config.p99_ms)} ms, {config.verdict.lower()} delivery check"
    return ("PASS" if ok else "FAIL"), detail


def print_summary(modes: list[ModeResult], plan: Plan, elapsed: float) -> None:
    print("\n" + "=" * len(HEADER))
    print(
        f"Fan-out to K tabs on {ROOM_PATH}: latency = first update inserting the message - "
        "send (ms)"
    )
    print(
        "deliv/s = K*messages / (last delivery - first send); create = p50/p99 ms from send to\n"
        "the row's inserted_at (sender's event queued + handled); fan-out = p50/p99 ms from\n"
        "inserted_at to receipt; msg/upd = messages per stream update (> 1: bursts drained);\n"
        "lag = ms the sender fell behind its schedule; srv% / bench% / other% = CPU of the\n"
        "app / of this process (all clients) / of everything else on the machine (Redis,\n"
        f"PostgreSQL, other jobs), in % of one core; {os.cpu_count()} cores in all."
    )
    print(HEADER)
    for mode in modes:
        for config in mode.configs:
            print(row(config))
    print(
        f"\nRate ramp at K = {plan.ramp_k} (up until the first step with p99 >= 150 ms or a"
        "\nlost message; if the first step misses the target, slower rates down until one"
        " meets it):"
    )
    print(HEADER)
    for mode in modes:
        for config in mode.ramp:
            print(row(config))
    for mode in modes:
        best = f"{mode.max_rate_ok:g} msg/s" if mode.max_rate_ok is not None else "none"
        print(
            f"  {mode.mode}: highest rate with p99 < {TARGET_P99_MS:g} ms at K={plan.ramp_k}: "
            f"{best} (stopped: {mode.ramp_stop or mode.error or '-'})"
        )
    print(f"\nTarget: p99 <= {TARGET_P99_MS:g} ms at K = {TARGET_K} and {TARGET_RATE:g} messages/s")
    for mode in modes:
        verdict, detail = target_check(mode)
        print(f"  {mode.mode:<7} {verdict}  ({detail})")
        if mode.error:
            print(f"  {mode.mode} error: {mode.error}")
            if mode.server_log:
                print("  server log tail:\n" + mode.server_log)
    load = load_average()
    print(
        f"\nTotal {elapsed:.0f} s. Machine: {os.cpu_count()} cores, load average "
        f"{load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}; clients and app share it, so the "
        "clients' CPU competes with the app's."
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__, argv, modes=MODES)
    plan = QUICK if args.quick else FULL
    modes_to_run = [mode for mode in MODES if not args.mode or mode in args.mode]
    began = time.monotonic()
    deadline = began + plan.budget
    load_before = os.getloadavg()
    print(
        f"fanout: K={list(plan.ks)}, {plan.count} messages at {plan.rate:g}/s per K; ramp at "
        f"K={plan.ramp_k}: {[f'{r:g}' for r in plan.ramp_rates]} msg/s, {plan.ramp_count} "
        f"messages each. {os.cpu_count()} cores, load average {load_before[0]:.2f}.",
        flush=True,
    )
    print(HEADER, flush=True)
    modes: list[ModeResult] = []
    with tempfile.TemporaryDirectory(prefix="fanout-") as tmp:
        for index, mode in enumerate(modes_to_run, start=1):
            # Each mode gets its share of the budget, plus whatever the earlier ones left.
            share = began + plan.budget * index / len(modes_to_run)
            modes.append(run_one_mode(mode, plan, Path(tmp), min(share, deadline)))
    elapsed = time.monotonic() - began
    print_summary(modes, plan, elapsed)
    if args.json is not None:
        data = {
            "plan": asdict(plan),
            "machine": machine_json(load_before),
            "elapsed_s": round(elapsed, 1),
            "modes": [
                {
                    "mode": mode.mode,
                    "description": mode.description,
                    "workers": mode.workers,
                    "configs": [c.as_json() for c in mode.configs],
                    "ramp": [c.as_json() for c in mode.ramp],
                    "max_rate_ok": mode.max_rate_ok,
                    "ramp_stop": mode.ramp_stop,
                    "target": dict(zip(("verdict", "detail"), target_check(mode), strict=True)),
                    "error": mode.error,
                }
                for mode in modes
            ],
        }
        write_json(data, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
