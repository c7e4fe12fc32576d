"""Presence context: who is online, who is away, who has the room open now. Plain Python.

A user is **online** while any of their tabs is connected, and **away** once no tab of
theirs has reported input for `away_after` seconds (5 minutes). Each connected tab is an
expiring heartbeat: the worker holding the tab renews it every `heartbeat_every` seconds,
and a tab whose worker stopped renewing (killed, cut off) expires `tab_ttl` seconds after
its last renewal. Every worker sweeps the expired tabs every `sweep_every` seconds, so a
killed worker's tabs are gone within `tab_ttl + sweep_every` (70 s by default, under the
90 s the product promises); a tab that closes normally is removed at once.

The facts live in a store shared by every worker: Redis when `REFLEX_REDIS_URL` is set
(one Lua script per change, so two workers never race and each status change is reported
exactly once), in process otherwise. Nothing is written to the database.

Changes go out as signals (`pubsub` broadcasts without a number) through one send
function, `_send`: a user's status on the `presence` topic (every worker's presence feed
hands it to its tabs, for the dots on avatars), and a room's roster change on the room's
topic (its room feeds hand it to the room's tabs, for the members panel).

The shape follows Zulip's actions: `check_*` validates what a client sent, `do_*` acts and
emits.
"""

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import redis

from stream_chat import chat, pubsub
from stream_chat.backends import ChosenBackend

log = logging.getLogger(__name__)
clock = time.time

ONLINE, AWAY = "online", "away"
PRESENCE_TOPIC = "presence"
# The signals' kinds: a user's status changed; a room's roster (who has it open) changed.
STATUS_KIND, ROSTER_KIND = "presence", "roster"
# The room of a tab that has no room open (/rooms).
NO_ROOM = 0


def _setting(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


@dataclass(frozen=True)
class Timings:
    away_after: float
    tab_ttl: float

    @property
    def heartbeat_every(self) -> float:
        # Three renewals per lifetime: one lost renewal does not make a live tab expire.
        return self.tab_ttl / 3

    @property
    def sweep_every(self) -> float:
        return max(0.5, self.tab_ttl / 6)


def timings() -> Timings:
    return Timings(
        away_after=_setting("PRESENCE_AWAY_SECONDS", 300),
        tab_ttl=_setting("PRESENCE_TAB_TTL_SECONDS", 60),
    )


@dataclass(frozen=True)
class Changes:
    """What one store update changed: users' statuses (None: offline) and rosters."""

    statuses: dict[int, str | None]
    # (room id, user id) -> whether the user now has a tab in the room.
    roster: dict[tuple[int, int], bool]


def _tab_member(tab: str, user_id: int, room_id: int) -> str:
    return f"{user_id}|{room_id}|{tab}"


def _parse_member(member: str) -> tuple[int, int]:
    user, room, _ = member.split("|", 2)
    return int(user), int(room)


class Store(Protocol):
    def update(self, now: float, ops: list[tuple[str, str]]) -> Changes:
        """Applies `ops` ((add | drop | beat, tab member) or (input, user id)), then
        expires tabs and marks idle users away; returns every status and roster change."""
        ...

    def statuses(self) -> dict[int, str]: ...

    def roster(self, room_id: int) -> set[int]: ...


class LocalStore:
    def __init__(self, timing: Timings | None = None) -> None:
        self._timing = timing
        self._lock = threading.Lock()
        self._tabs: dict[str, float] = {}  # member -> expiry
        self._user_tabs: dict[int, int] = {}
        self._room_tabs: dict[int, dict[int, int]] = {}
        self._input: dict[int, float] = {}
        self._status: dict[int, str] = {}

    def update(self, now: float, ops: list[tuple[str, str]]) -> Changes:
        timing = self._timing or timings()
        statuses: dict[int, str | None] = {}
        roster: dict[tuple[int, int], bool] = {}
        touched: set[int] = set()
        with self._lock:
            for op, member in ops:
                if op == "input":
                    user = int(member)
                    if user in self._user_tabs:
                        self._input[user] = now
                        touched.add(user)
                elif op in ("add", "beat"):
                    # A renewal of a tab that expired meanwhile (a long outage) brings it
                    # back: the tab is still connected to this worker, which drops it when
                    # it closes. Only a connection counts as input.
                    is_new = member not in self._tabs
                    self._tabs[member] = now + timing.tab_ttl
                    if is_new:
                        user, room = _parse_member(member)
                        self._count(user, room, +1, roster)
                        if op == "add":
                            self._input[user] = now
                        touched.add(user)
                elif op == "drop" and self._tabs.pop(member, None) is not None:
                    user, room = _parse_member(member)
                    self._count(user, room, -1, roster)
                    touched.add(user)
            for member in [m for m, expiry in self._tabs.items() if expiry <= now]:
                del self._tabs[member]
                user, room = _parse_member(member)
                self._count(user, room, -1, roster)
                touched.add(user)
            idle = {u for u, last in self._input.items() if now - last >= timing.away_after}
            for user in touched | idle:
                self._settle(user, now, timing, statuses)
        return Changes(statuses, roster)

    def _count(self, user: int, room: int, step: int, roster: dict[tuple[int, int], bool]) -> None:
        self._user_tabs[user] = self._user_tabs.get(user, 0) + step
        if self._user_tabs[user] <= 0:
            del self._user_tabs[user]
        if room == NO_ROOM:
            return
        counts = self._room_tabs.setdefault(room, {})
        before = counts.get(user, 0)
        counts[user] = before + step
        if counts[user] <= 0:
            del counts[user]
            if not counts:
                del self._room_tabs[room]
        after = counts.get(user, 0)
        if (before > 0) != (after > 0):
            roster[(room, user)] = after > 0

    def _settle(
        self, user: int, now: float, timing: Timings, statuses: dict[int, str | None]
    ) -> None:
        status: str | None = None
        if user in self._user_tabs:
            status = AWAY if now - self._input.get(user, 0) >= timing.away_after else ONLINE
        else:
            self._input.pop(user, None)
        if status != self._status.get(user):
            if status is None:
                del self._status[user]
            else:
                self._status[user] = status
            statuses[user] = status

    def statuses(self) -> dict[int, str]:
        with self._lock:
            return dict(self._status)

    def roster(self, room_id: int) -> set[int]:
        with self._lock:
            return set(self._room_tabs.get(room_id, {}))


KEY_PREFIX = "streamchat-presence:"

# The same rules as `LocalStore.update`, in one atomic script. Room keys are built inside
# the script (a single Redis, not a cluster).
_UPDATE = """
local p = ARGV[1]
local now, ttl, away = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tabs, user_tabs, input, status = p .. 'tabs', p .. 'user-tabs', p .. 'input', p .. 'status'
local statuses, roster, touched = {}, {}, {}
local function count(member, step)
  local user, room = string.match(member, '^(%d+)|(%d+)|')
  local left = redis.call('HINCRBY', user_tabs, user, step)
  if left <= 0 then redis.call('HDEL', user_tabs, user) end
  touched[user] = true
  if room ~= '0' then
    local key = p .. 'room:' .. room
    local after = redis.call('HINCRBY', key, user, step)
    if after <= 0 then redis.call('HDEL', key, user) end
    if (after > 0) ~= (after - step > 0) then
      table.insert(roster, room); table.insert(roster, user)
      table.insert(roster, after > 0 and '1' or '0')
    end
  end
  return user
end
for i = 5, #ARGV, 2 do
  local op, member = ARGV[i], ARGV[i + 1]
  if op == 'input' then
    if redis.call('HEXISTS', user_tabs, member) == 1 then
      redis.call('ZADD', input, now, member); touched[member] = true
    end
  elseif op == 'add' or op == 'beat' then
    if redis.call('ZADD', tabs, now + ttl, member) == 1 then
      local user = count(member, 1)
      if op == 'add' then redis.call('ZADD', input, now, user) end
    end
  elseif op == 'drop' then
    if redis.call('ZREM', tabs, member) == 1 then count(member, -1) end
  end
end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', tabs, '-inf', now)) do
  redis.call('ZREM', tabs, member); count(member, -1)
end
for _, user in ipairs(redis.call('ZRANGEBYSCORE', input, '-inf', now - away)) do
  touched[user] = true
end
for user, _ in pairs(touched) do
  local new = false
  if redis.call('HEXISTS', user_tabs, user) == 1 then
    local last = tonumber(redis.call('ZSCORE', input, user) or '0')
    new = (now - last >= away) and 'away' or 'online'
  else
    redis.call('ZREM', input, user)
  end
  local old = redis.call('HGET', status, user)
  if new ~= old then
    if new then redis.call('HSET', status, user, new) else redis.call('HDEL', status, user) end
    table.insert(statuses, user); table.insert(statuses, new or '')
  end
end
return {statuses, roster}
"""


class RedisStore:
    def __init__(self, url: str, prefix: str = KEY_PREFIX) -> None:
        self._client = redis.Redis.from_url(url, decode_responses=True)
        self._update = self._client.register_script(_UPDATE)
        self._prefix = prefix

    def update(self, now: float, ops: list[tuple[str, str]]) -> Changes:
        timing = timings()
        args: list[str | float] = [self._prefix, now, timing.tab_ttl, timing.away_after]
        for op, member in ops:
            args += [op, member]
        flat_statuses, flat_roster = self._update(keys=[], args=args)
        statuses: dict[int, str | None] = {
            int(user): status or None
            for user, status in zip(flat_statuses[::2], flat_statuses[1::2], strict=True)
        }
        roster = {
            (int(room), int(user)): here == "1"
            for room, user, here in zip(
                flat_roster[::3], flat_roster[1::3], flat_roster[2::3], strict=True
            )
        }
        return Changes(statuses, roster)

    def statuses(self) -> dict[int, str]:
        return {int(u): s for u, s in self._client.hgetall(self._prefix + "status").items()}

    def roster(self, room_id: int) -> set[int]:
        return {int(u) for u in self._client.hkeys(f"{self._prefix}room:{room_id}")}


_stores: ChosenBackend[Store] = ChosenBackend(LocalStore, RedisStore)


def store() -> Store:
    return _stores.get()


def use_store(replacement: Store) -> Store:
    """Swap the store (tests); returns the previous one."""
    return _stores.use(replacement)


# This process's connected tabs (member strings), renewed by `keep_tabs_alive`.
_local_tabs: set[str] = set()
_local_lock = threading.Lock()


def _send(changes: Changes) -> None:
    """The one way presence reaches anyone: signals, never stored."""
    broker = pubsub.broker()
    if changes.statuses:
        users = {str(user): status for user, status in changes.statuses.items()}
        broker.signal(PRESENCE_TOPIC, {"kind": STATUS_KIND, "users": users})
    by_room: dict[int, dict[str, bool]] = {}
    for (room, user), here in changes.roster.items():
        by_room.setdefault(room, {})[str(user)] = here
    for room, users in by_room.items():
        broker.signal(chat.room_topic(room), {"kind": ROSTER_KIND, "users": users})


def _apply(ops: list[tuple[str, str]]) -> None:
    _send(store().update(clock(), ops))


def do_connect(tab: str, user_id: int, room_id: int | None) -> str:
    """A tab of `user_id` is connected (with `room_id` open, or none): the user is online
    and in the room's roster. Returns the tab's handle for `do_disconnect`."""
    member = _tab_member(tab, user_id, room_id or NO_ROOM)
    with _local_lock:
        _local_tabs.add(member)
    _apply([("add", member)])
    return member


def do_disconnect(member: str) -> None:
    with _local_lock:
        _local_tabs.discard(member)
    _apply([("drop", member)])


def check_activity(user_id: int | None) -> int:
    """The user a report of input is for; only a logged-in tab's reports count."""
    if user_id is None:
        raise chat.NotAuthorized("Log in to be shown online.")
    return user_id


def do_report_activity(user_id: int) -> None:
    """Input in one of the user's tabs: online again if they were away."""
    _apply([("input", str(user_id))])


def statuses() -> dict[int, str]:
    """Every user who is online or away, now."""
    return store().statuses()


def roster(room_id: int) -> set[int]:
    """The users who have a tab with the room open, now."""
    return store().roster(room_id)


def beat_and_sweep() -> None:
    """Renews this process's tabs, then expires everyone's stale tabs and idle users."""
    with _local_lock:
        ops = [("beat", member) for member in sorted(_local_tabs)]
    _apply(ops)


async def keep_tabs_alive() -> None:
    """Lifespan task of every backend worker: renews its tabs every `heartbeat_every` and
    sweeps every `sweep_every` (a sweep also renews: the script is one round trip)."""
    timing = timings()
    last_beat = 0.0
    while True:
        try:
            if clock() - last_beat >= timing.heartbeat_every:
                beat_and_sweep()
                last_beat = clock()
            else:
                _apply([])
        except Exception:
            # Redis may be away for a moment: tabs live `tab_ttl`, the next round renews.
            log.exception("the presence heartbeat failed")
        await asyncio.sleep(timing.sweep_every)


@contextlib.asynccontextmanager
async def subscribe() -> AsyncIterator[pubsub.Subscription]:
    """Every user's status changes from now on, until the block exits."""
    async with pubsub.broker().subscribe(PRESENCE_TOPIC) as subscription:
        yield subscription
