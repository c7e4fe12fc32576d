"""The one per-process backend of a concern (pub/sub, throttles): shared through Redis when
REFLEX_REDIS_URL is set, in-process otherwise, made on first use. Plain Python."""

from collections.abc import Callable
from typing import Generic, TypeVar

from stream_chat import settings

T = TypeVar("T")


class ChosenBackend(Generic[T]):
    def __init__(self, in_process: Callable[[], T], in_redis: Callable[[str], T]) -> None:
        self._in_process = in_process
        self._in_redis = in_redis
        self._current: T | None = None

    def get(self) -> T:
        if self._current is None:
            url = settings.redis_url()
            self._current = self._in_redis(url) if url else self._in_process()
        return self._current

    def use(self, replacement: T) -> T:
        """Swaps the backend (tests); returns the previous one."""
        previous, self._current = self._current, replacement
        return previous  # type: ignore[return-value]
