"""Suite-wide ordering, and fresh throttles for every test."""

from collections.abc import Iterator

import pytest

from stream_chat import throttle


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Browser tests go last: Playwright's sync API keeps an event loop running in the main
    # thread while its session-wide browser is open, which pytest-asyncio cannot run under.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(autouse=True)
def fresh_throttles() -> Iterator[None]:
    """Every test starts with empty in-process throttles: user ids repeat across the tests'
    fresh databases, and one test's messages must not count against the next's."""
    previous = throttle.use_store(throttle.LocalStore())
    yield
    throttle.use_store(previous)
