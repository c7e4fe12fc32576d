"""The day separators' names, from the real assets/chat_room.js run in Node."""

from tests.support.node import run_node

SCRIPT = """
import { dayLabel } from "../../assets/chat_room.js";
const now = new Date(2026, 11, 1, 23, 30);
const days = [
  new Date(2026, 11, 1, 0, 5),
  new Date(2026, 10, 30, 23, 59),
  new Date(2026, 10, 28, 9, 0),
  new Date(2025, 11, 31, 12, 0),
];
console.log(JSON.stringify(days.map((day) => dayLabel(day, now))));
"""


def test_today_yesterday_a_weekday_and_the_year_only_when_not_this_one() -> None:
    assert run_node(SCRIPT) == [
        "Today",
        "Yesterday",
        "Saturday, 28 November",
        "Wednesday, 31 December 2025",
    ]
