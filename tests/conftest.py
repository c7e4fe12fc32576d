"""Suite-wide ordering."""

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Browser tests go last: Playwright's sync API keeps an event loop running in the main
    # thread while its session-wide browser is open, which pytest-asyncio cannot run under.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
