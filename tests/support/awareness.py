"""What a tab's presence map ends as, from the signals it was sent (the rules of
assets/awareness.js): a `full` update replaces the map, a `null` status removes a user."""

from collections.abc import Iterable
from typing import Any


def presence_from(signals: Iterable[dict[str, Any]]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for signal in signals:
        update = signal.get("presence")
        if update is None:
            continue
        if update["full"]:
            seen = {}
        for user, status in update["users"].items():
            if status is None:
                seen.pop(user, None)
            else:
                seen[user] = status
    return seen
