"""Throttles shared by every worker: a token bucket per sender, a lockout per login key.

* **Messages**: each user has a token bucket (`MESSAGES_BURST` tokens, refilled at
  `MESSAGES_PER_SECOND`); a message takes one, and without one it is refused with the time
  until the next.
* **Searches**: the same kind of bucket per user (`SEARCHES_BURST`, refilled at
  `SEARCHES_PER_SECOND`): the search box searches as the reader types, and a crafted
  client must not be able to keep the database busy with full-text queries.
* **Logins**: failed logins are counted per key (an account's email, a client address).
  Past the key's free attempts, every further failure locks the key for a time that doubles
  each time (`LOGIN_LOCKOUT_SECONDS`, at most `LOGIN_MAX_LOCKOUT_SECONDS`); while locked,
  no password is checked at all. A success clears its account's count, not its address's
  (one's own account must not reset a guesser's address). A key with no failure for the
  longest lockout is forgotten.

In-process by default; in Redis when `REFLEX_REDIS_URL` is set (each update is one Lua
script, so workers never race), chosen the way `stream_chat.pubsub` chooses its broker.
The time is `clock()` (wall time, which every worker shares; the tests replace it).
Plain Python, no Reflex.
"""

import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import redis

from stream_chat.backends import ChosenBackend

clock = time.time


def _setting(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


@dataclass(frozen=True)
class Bucket:
    capacity: float
    refill_per_second: float


@dataclass(frozen=True)
class Lockout:
    free_attempts: int
    first_lockout: float
    max_lockout: float

    def seconds_after(self, failures: int) -> float:
        """How long the key is locked after its `failures`-th failure in a row."""
        if failures <= self.free_attempts:
            return 0.0
        return min(self.max_lockout, self.first_lockout * 2 ** (failures - self.free_attempts - 1))


def message_bucket() -> Bucket:
    return Bucket(_setting("MESSAGES_BURST", 10), _setting("MESSAGES_PER_SECOND", 1))


def search_bucket() -> Bucket:
    return Bucket(_setting("SEARCHES_BURST", 20), _setting("SEARCHES_PER_SECOND", 4))


def account_lockout() -> Lockout:
    return Lockout(
        int(_setting("LOGIN_FREE_ATTEMPTS", 5)),
        _setting("LOGIN_LOCKOUT_SECONDS", 10),
        _setting("LOGIN_MAX_LOCKOUT_SECONDS", 900),
    )


def address_lockout() -> Lockout:
    return Lockout(
        int(_setting("LOGIN_FREE_ATTEMPTS_PER_ADDRESS", 20)),
        _setting("LOGIN_LOCKOUT_SECONDS", 10),
        _setting("LOGIN_MAX_LOCKOUT_SECONDS", 900),
    )


def wait_note(seconds: float) -> str:
    """ "Try again in 3 s." (whole seconds, rounded up, never 0)."""
    return f"Try again in {max(1, math.ceil(seconds))} s."


class Store(Protocol):
    def take(self, key: str, bucket: Bucket, now: float) -> float:
        """0 when a token was taken, else the seconds until there is one (nothing taken)."""
        ...

    def locked_for(self, key: str, now: float) -> float:
        """The seconds the key stays locked (0 when it is not)."""
        ...

    def fail(self, key: str, lockout: Lockout, now: float) -> float:
        """Counts a failure; returns the seconds the key is now locked for."""
        ...

    def clear(self, key: str) -> None: ...


# Keys kept in process before the stale ones are dropped (guessers make up emails freely).
LOCAL_KEYS_BEFORE_PURGE = 10_000


class LocalStore:
    """One process's throttles (a single worker, and the tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # key -> (tokens, at) for buckets; key -> (failures, locked_until, at) for lockouts.
        self._buckets: dict[str, tuple[float, float]] = {}
        self._failures: dict[str, tuple[int, float, float]] = {}

    def take(self, key: str, bucket: Bucket, now: float) -> float:
        with self._lock:
            tokens, at = self._buckets.get(key, (bucket.capacity, now))
            tokens = min(bucket.capacity, tokens + (now - at) * bucket.refill_per_second)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > LOCAL_KEYS_BEFORE_PURGE:
                full_after = bucket.capacity / bucket.refill_per_second
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
            return (1 - tokens) / bucket.refill_per_second

    def locked_for(self, key: str, now: float) -> float:
        with self._lock:
            _, locked_until, _ = self._failures.get(key, (0, 0.0, now))
            return max(0.0, locked_until - now)

    def fail(self, key: str, lockout: Lockout, now: float) -> float:
        with self._lock:
            failures, _, at = self._failures.get(key, (0, 0.0, now))
            if now - at > lockout.max_lockout:
                failures = 0
            failures += 1
            seconds = lockout.seconds_after(failures)
            self._failures[key] = (failures, now + seconds, now)
            if len(self._failures) > LOCAL_KEYS_BEFORE_PURGE:
                self._failures = {
                    k: v for k, v in self._failures.items() if now - v[2] <= lockout.max_lockout
                }
            return seconds

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


# KEYS[1] the bucket; ARGV: capacity, refill per second, now. Returns the wait as a string
# (Lua numbers become integers on the way out).
_TAKE = """
local capacity, rate, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""

# KEYS[1] the lockout; ARGV: free attempts, first lockout, max lockout, now.
_FAIL = """
local free, first, max_lockout = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local seconds = 0
if failures > free then seconds = math.min(max_lockout, first * 2 ^ (failures - free - 1)) end
redis.call('HSET', KEYS[1], 'locked_until', tostring(now + seconds))
redis.call('EXPIRE', KEYS[1], math.ceil(max_lockout) + 1)
return tostring(seconds)
"""


class RedisStore:
    """Throttles in Redis, shared by every worker of the app."""

    def __init__(self, url: str, prefix: str = "stream_chat:throttle:") -> None:
        self._redis = redis.Redis.from_url(url)
        self._prefix = prefix
        self._take = self._redis.register_script(_TAKE)
        self._fail = self._redis.register_script(_FAIL)

    def take(self, key: str, bucket: Bucket, now: float) -> float:
        args = [bucket.capacity, bucket.refill_per_second, now]
        return float(self._take(keys=[self._prefix + key], args=args))

    def locked_for(self, key: str, now: float) -> float:
        locked_until = self._redis.hget(self._prefix + key, "locked_until")
        return max(0.0, float(locked_until) - now) if locked_until else 0.0

    def fail(self, key: str, lockout: Lockout, now: float) -> float:
        args = [lockout.free_attempts, lockout.first_lockout, lockout.max_lockout, now]
        return float(self._fail(keys=[self._prefix + key], args=args))

    def clear(self, key: str) -> None:
        self._redis.delete(self._prefix + key)


_stores: ChosenBackend[Store] = ChosenBackend(LocalStore, RedisStore)


def store() -> Store:
    return _stores.get()


def use_store(replacement: Store) -> Store:
    """Swaps the store (tests); returns the previous one."""
    return _stores.use(replacement)


def message_wait(user_id: int) -> float:
    """Takes a token of the user's message bucket: 0, or the seconds to wait for one."""
    return store().take(f"messages:{user_id}", message_bucket(), clock())


def search_wait(user_id: int) -> float:
    """Takes a token of the user's search bucket: 0, or the seconds to wait for one."""
    return store().take(f"searches:{user_id}", search_bucket(), clock())


def _login_keys(email: str, address: str | None) -> list[tuple[str, Lockout]]:
    keys = [(f"login:account:{email}", account_lockout())]
    if address:
        keys.append((f"login:address:{address}", address_lockout()))
    return keys


def login_wait(email: str, address: str | None) -> float:
    """The seconds until this email may try again from this address (0: now)."""
    now = clock()
    return max(store().locked_for(key, now) for key, _ in _login_keys(email, address))


def login_failed(email: str, address: str | None) -> float:
    """Counts a failed login; returns the seconds until the next attempt is allowed."""
    now = clock()
    return max(store().fail(key, lockout, now) for key, lockout in _login_keys(email, address))


def login_succeeded(email: str) -> None:
    store().clear(f"login:account:{email}")
