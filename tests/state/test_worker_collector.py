"""Each backend worker sets its garbage collector for latency when it starts (see
stream_chat/collector.py; the effect is measured by bench/fanout.py, not asserted here)."""

import gc
from collections.abc import Iterator

import pytest

from stream_chat import collector
from stream_chat.stream_chat import app


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_app_settles_the_heap_when_a_worker_starts() -> None:
    assert collector.settle_heap in app.get_lifespan_tasks()


def test_settling_freezes_what_exists_and_collects_the_young_less_often(
    restored_collector: None,
) -> None:
    gc.unfreeze()
    survivor = [object() for _ in range(100)]

    collector.settle_heap()

    assert gc.get_freeze_count() >= len(survivor)
    assert gc.get_threshold() == collector.THRESHOLDS
    assert collector.THRESHOLDS[0] > 700  # CPython's default
