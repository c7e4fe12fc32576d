"""What the benchmarks in bench/ share.

Import it before anything from the project: importing it makes the project root the working
directory and puts it on sys.path (the scripts are run as ``.venv/bin/python bench/NAME.py``
from anywhere, so ``bench/`` is on sys.path and this module is ``common``).

* the socket.io / engine.io encoding of a state update, as Reflex's server encodes it;
* reading the room's ``messages`` stream out of what a ``ReflexClient`` tab received;
* opening and closing tabs, logged-in cookie jars of the seeded users;
* CPU accounting of process groups from /proc (Linux), number formatting, the JSON report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INVOKED_FROM = Path.cwd()
# The app's environment for a benchmark: its senders go far past a person's message rate.
UNTHROTTLED = {"MESSAGES_BURST": "1000000", "MESSAGES_PER_SECOND": "1000000"}
# binding.py resolves rx.asset("streams.js") against the working directory at import time,
# and the client reads the compiled frontend from ./.web.
os.chdir(PROJECT_ROOT)
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from engineio import packet as eio_packet  # noqa: E402
from reflex.app import _sio_dumps, _sio_loads  # noqa: E402
from reflex_base.config import get_config  # noqa: E402
from reflex_base.constants.event import SocketEvent  # noqa: E402
from socketio import packet as sio_packet  # noqa: E402

from tests.support.reflex_client import STREAM_BATCHES, ReflexClient, connect_many  # noqa: E402

if TYPE_CHECKING:
    from tests.support.reflex_client import Update
    from tests.support.servers import AppServer


# --------------------------------------------------------------------------------------------
# The wire, exactly as Reflex 0.10.1 emits a delta (the emit path is traced in
# bench/stream_wire.py): StateUpdate -> its non-empty fields, through Reflex's socket.io JSON
# hook -> socket.io EVENT on the event namespace -> engine.io MESSAGE, one websocket text frame.
# --------------------------------------------------------------------------------------------


class ReflexSioPacket(sio_packet.Packet):
    """python-socketio's Packet with the JSON module Reflex's AsyncServer installs.

    A subclass instead of socketio's global assignment, so nothing global is patched.
    """

    json = SimpleNamespace(dumps=_sio_dumps, loads=_sio_loads)


def event_namespace() -> str:
    return get_config().get_event_namespace()


def encode_frame(payload: Any) -> str:
    """The text of the websocket frame that carries the update `payload` (a ``StateUpdate``
    or the dict of its non-empty fields) to the browser."""
    encoded = ReflexSioPacket(
        sio_packet.EVENT,
        namespace=event_namespace(),
        data=[str(SocketEvent.EVENT), payload],
    ).encode()
    if not isinstance(encoded, str):  # binary attachments would make it several frames
        raise AssertionError("a delta unexpectedly encoded as a binary socket.io event")
    frame = eio_packet.Packet(eio_packet.MESSAGE, encoded).encode()
    if not isinstance(frame, str):
        raise AssertionError("engine.io unexpectedly encoded a binary frame")
    return frame


# --------------------------------------------------------------------------------------------
# The room's messages stream, as a tab received it.
# --------------------------------------------------------------------------------------------


@functools.cache
def messages_channel() -> tuple[str, str]:
    """(the full name of the app's MessagesState, the name of its messages stream).

    Imported on first use, not with this module: importing the app's states registers them as
    substates of Reflex's State, and bench/stream_wire.py measures a State without them.
    """
    from stream_chat.state.messages import MESSAGES, MessagesState

    return MessagesState.get_full_name(), MESSAGES


def messages_batch(update: Update) -> dict[str, Any] | None:
    """The messages stream's batch carried by `update`, if any."""
    state, stream = messages_channel()
    values = update.delta.get(state)
    batch = (values or {}).get(STREAM_BATCHES, {}).get(stream)
    return batch or None


def is_reset(batch: dict[str, Any]) -> bool:
    ops = batch.get("ops") or []
    return bool(ops) and bool(ops[0]) and ops[0][0] == "reset"


def has_history(client: ReflexClient) -> bool:
    return any(is_reset(batch) for batch in client.stream_batches(*messages_channel()))


# --------------------------------------------------------------------------------------------
# Tabs.
# --------------------------------------------------------------------------------------------


def session_cookies(database_url: str) -> list[tuple[str, dict[str, str]]]:
    """(email, a logged-in browser's cookie jar) per seeded user, in the app's database."""
    # On first use, like messages_channel(): SESSION_COOKIE's module defines a state.
    from seeds.data import USERS
    from stream_chat import accounts, repo
    from stream_chat.state.session import SESSION_COOKIE

    repo.configure(database_url)
    try:
        jars = []
        for _, email in USERS:
            user = accounts.get_user_by_email(email)
            if user is None:
                raise RuntimeError(f"seeded user {email} missing")
            jars.append((email, {SESSION_COOKIE: accounts.create_session_token(user)}))
        return jars
    finally:
        repo.engine().dispose()


async def open_room(
    server: AppServer,
    path: str,
    cookies: Sequence[Mapping[str, str]],
    *,
    concurrency: int,
    timeout: float,
) -> list[ReflexClient]:
    """One tab per cookie jar on the room at `path`, each with the room's history (closed
    again if any of them fails)."""
    clients = await connect_many(
        server.base_url,
        path,
        cookies,
        frontend=server.frontend(),
        concurrency=concurrency,
        hydrate_timeout=timeout,
    )
    try:
        await asyncio.gather(*(c.wait_for(has_history, timeout) for c in clients))
    except BaseException:
        await close_all(clients)
        raise
    return clients


async def close_all(clients: Sequence[ReflexClient], timeout: float = 30.0) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


# --------------------------------------------------------------------------------------------
# CPU accounting from /proc (Linux), to say who used the cores during a measurement.
# --------------------------------------------------------------------------------------------

CLOCK_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()  # [state, ppid, pgrp, ..., utime @11, stime @12]


def group_stats(pgid: int) -> Iterator[list[str]]:
    """The /proc stat fields of each live process in a process group."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields and len(fields) > 12 and fields[2] == str(pgid):
            yield fields


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of the live processes in a process group (the app and its workers)."""
    return sum(int(fields[11]) + int(fields[12]) for fields in group_stats(pgid)) / CLOCK_TICK


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICK, total / CLOCK_TICK


@dataclass
class CpuWindow:
    """CPU used during a ``with`` block by named process groups, by this process (all the
    tabs) and by the whole machine."""

    groups: dict[str, int]  # name -> process group id
    wall: float = 0.0
    used: dict[str, float] = field(default_factory=dict)  # name -> CPU seconds
    bench: float = 0.0
    machine_busy: float = 0.0
    machine_total: float = 0.0

    def __enter__(self) -> CpuWindow:
        self._start = (
            time.monotonic(),
            {name: group_cpu_seconds(pgid) for name, pgid in self.groups.items()},
            time.process_time(),
            machine_busy_seconds(),
        )
        return self

    def __exit__(self, *_exc: object) -> None:
        wall, used, bench, (busy, total) = self._start
        self.wall = time.monotonic() - wall
        self.used = {
            name: group_cpu_seconds(pgid) - used[name] for name, pgid in self.groups.items()
        }
        self.bench = time.process_time() - bench
        busy_now, total_now = machine_busy_seconds()
        self.machine_busy = busy_now - busy
        self.machine_total = total_now - total

    def percents(self) -> dict[str, float]:
        """In % of one core: ``<group>_cpu_pct`` per group, then ``bench_cpu_pct``."""
        wall = self.wall or 1.0
        return {
            **{f"{name}_cpu_pct": round(100 * cpu / wall, 1) for name, cpu in self.used.items()},
            "bench_cpu_pct": round(100 * self.bench / wall, 1),
        }

    def machine_percents(self) -> dict[str, float]:
        """Everything else (Redis, PostgreSQL and whatever else runs on the machine) in % of
        one core; the machine's busy share in % of all cores."""
        wall = self.wall or 1.0
        other = max(self.machine_busy - sum(self.used.values()) - self.bench, 0.0)
        return {
            "other_cpu_pct": round(100 * other / wall, 1),
            "machine_busy_pct": round(100 * self.machine_busy / (self.machine_total or 1.0), 1),
        }


# --------------------------------------------------------------------------------------------
# Reporting.
# --------------------------------------------------------------------------------------------


def parse_args(
    doc: str,
    argv: Sequence[str] | None,
    *,
    quick: bool = True,
    modes: Sequence[str] = (),
) -> argparse.Namespace:
    """The benchmarks' command line: ``--json PATH``, ``--quick`` where there is a short run,
    ``--mode`` (repeatable; all by default) where there are several modes."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if quick:
        parser.add_argument("--quick", action="store_true", help="a short smoke run (< 1 minute)")
    if modes:
        parser.add_argument(
            "--mode", action="append", choices=modes, help="run only this mode (repeatable)"
        )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    return parser.parse_args(argv)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def fmt(value: float, digits: int = 1) -> str:
    return "-" if isinstance(value, float) and math.isnan(value) else f"{value:.{digits}f}"


def load_average() -> tuple[float, float, float]:
    return os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3


def machine_json(load_before: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "python": platform.python_version(),
    }


def write_json(data: dict[str, Any], target: Path) -> None:
    """Writes `data` to `target`, relative to the directory the script was started from."""
    path = INVOKED_FROM / target
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"JSON written to {path}")
