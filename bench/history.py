"""History at scale: paging and full-text search in a room of a million messages.

Run from anywhere: ``.venv/bin/python bench/history.py [--quick] [--mode sqlite|postgres|chromium]
[--json PATH]``. The databases' full run (9 minutes here, most of it the four bulk loads) gives the
README's figures; ``--quick`` uses a room of 20,000 messages, a check in under a minute.

Per database (SQLite in a temporary file; PostgreSQL in a database of its own, dropped after):

1. The bulk load, the seeds' own command (``python -m seeds --bulk N --room sre-team``), twice:
   into a database at migration 0003 (no search index: the baseline) and into one at head
   (the index kept by triggers or a generated column); then migration 0004 is applied to the
   baseline database, which indexes the million existing messages. Five messages at random
   places get the rare word.
2. Paging through the Chat context, 200 trials each at random cursors: the page of 20 before
   a cursor, after it, and around a message (a permalink). Target p95 <= 10 ms each, and the
   query plan (``EXPLAIN QUERY PLAN`` / ``EXPLAIN`` of the statements the context sent) is a
   range scan of an index on the cursor. Baseline in the same run: the same page by OFFSET.
3. Search through the Search context, 200 trials each: a rare word (5 messages) and a common
   word (in a large share of the room), newest 20, in the room and in all rooms. Target
   p95 <= 50 ms each. Baseline in the same run: ``content LIKE '%word%'``, newest 20.

The timed calls are the contexts' own, sessions and row loading included, in this process
with its collector paused (tests/support/timing.py).

Then, mode ``chromium`` (bench/history_chromium.py): DOM nodes and JS heap in headless
Chromium while scrolling back through 5,000 messages (1,000 with ``--quick``) of a room of
varied messages, the working tree's app against the app before the bounded window (commit
5feff4c, unbounded scroll back) on a copy of the same database. Target: the peak of each
within 1.2 x of its value after the first page. Two production builds (a few minutes), then
each app's scroll back, stopped after 12 minutes (4 with ``--quick``): the baseline's pages
get slower as its DOM grows, and it reaches only part of the depth in that time.
"""

from __future__ import annotations

import itertools
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# First: makes the project root the working directory and puts it on sys.path.
from common import fmt, load_average, machine_json, parse_args, percentile, write_json

# isort: split
import history_chromium

# isort: split
import psycopg
import sqlalchemy as sa

from seeds.data import LINES
from stream_chat import chat, repo, search
from tests.support.databases import POSTGRES_ADMIN, fresh_postgres_database
from tests.support.servers import BIN, PROJECT_ROOT, REFLEX_ENV, prepared_database
from tests.support.timing import no_collector_pauses

ROOM = "sre-team"
FULL_SIZE, QUICK_SIZE = 1_000_000, 20_000
TRIALS = 200
BASELINE_TRIALS = 20
PAGE = chat.PAGE_SIZE
RARE_WORD, RARE_COUNT = "zanzibar", 5
PAGE_TARGET_MS, SEARCH_TARGET_MS = 10.0, 50.0
DATABASES = ("sqlite", "postgres")
MODES = (*DATABASES, "chromium")
SEED = 20261201


@dataclass
class Figure:
    name: str
    p50_ms: float
    p95_ms: float
    max_ms: float
    target_ms: float | None = None
    baseline_p95_ms: float | None = None
    rows: int = 0  # what the last trial returned

    @property
    def ok(self) -> bool:
        return self.target_ms is None or self.p95_ms <= self.target_ms


@dataclass
class ModeResult:
    mode: str
    size: int
    bulk_without_index_s: float = 0.0
    bulk_with_index_s: float = 0.0
    migration_s: float = 0.0
    common_word: str = ""
    common_share: float = 0.0
    figures: list[Figure] = field(default_factory=list)
    plans: dict[str, str] = field(default_factory=dict)
    range_scans: dict[str, bool] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------------


def bulk_load(url: str, size: int) -> float:
    """The seeds' bulk command into `url`; the seconds it reports."""
    env = {**REFLEX_ENV, "DATABASE_URL": url, "PATH": str(BIN)}
    done = subprocess.run(
        [BIN / "python", "-m", "seeds", "--bulk", str(size), "--room", ROOM],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    found = re.search(r"in ([\d.]+) s", done.stdout)
    if found is None:
        raise RuntimeError(f"unexpected seeds output: {done.stdout!r}")
    return float(found.group(1))


def migrate(url: str, revision: str) -> float:
    env = {**REFLEX_ENV, "DATABASE_URL": url, "PATH": str(BIN)}
    began = time.perf_counter()
    subprocess.run([BIN / "alembic", "upgrade", revision], cwd=PROJECT_ROOT, env=env, check=True)
    return time.perf_counter() - began


def drop_postgres_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_urls(mode: str, workdir: Path, run_id: str) -> tuple[str, str, list[str]]:
    """(the measured database, the baseline one, PostgreSQL databases to drop after)."""
    if mode == "sqlite":
        return f"sqlite:///{workdir / 'history.db'}", f"sqlite:///{workdir / 'base.db'}", []
    names = [f"stream_chat_bench_history_{run_id}", f"stream_chat_bench_history_{run_id}_base"]
    return fresh_postgres_database(names[0]), fresh_postgres_database(names[1]), names


def plant_rare_word(rng: random.Random, room_id: int, low: int, high: int) -> list[int]:
    """Appends the rare word to RARE_COUNT messages of the room (the index follows)."""
    chosen = sorted(rng.sample(range(low, high + 1), RARE_COUNT))
    with repo.engine().begin() as conn:
        for message_id in chosen:
            conn.execute(
                sa.text(
                    "UPDATE messages SET content = content || :word "
                    "WHERE id = :id AND room_id = :room"
                ),
                {"word": f" {RARE_WORD}", "id": message_id, "room": room_id},
            )
    return chosen


def common_word() -> str:
    """The word in most of the room's seed lines (so in about that share of its messages)."""
    counts = Counter(
        word
        for line in LINES[ROOM]
        for word in {w.casefold() for w in re.findall(r"[^\W_]+", line)}
        if len(word) >= 4
    )
    return counts.most_common(1)[0][0]


# --------------------------------------------------------------------------------------------
# Timing and plans
# --------------------------------------------------------------------------------------------


def timed(name: str, trials: int, call: Callable[[], Sequence[Any]], **extra: Any) -> Figure:
    for _ in range(3):  # warm the statement caches and the pages
        call()
    times = []
    rows: Sequence[Any] = ()
    with no_collector_pauses():
        for _ in range(trials):
            began = time.perf_counter()
            rows = call()
            times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return Figure(
        name,
        round(percentile(times, 50), 2),
        round(percentile(times, 95), 2),
        round(times[-1], 2),
        rows=len(rows),
        **extra,
    )


def statements_of(call: Callable[[], object]) -> list[tuple[str, Any]]:
    """The SQL statements (with their parameters) that `call` sent."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    sa.event.listen(repo.engine(), "before_cursor_execute", record)
    try:
        call()
    finally:
        sa.event.remove(repo.engine(), "before_cursor_execute", record)
    return sent


def plan_of(statement: str, parameters: Any, conn: sa.Connection | None = None) -> str:
    if conn is None:
        with repo.engine().connect() as own:
            return plan_of(statement, parameters, own)
    sqlite = conn.dialect.name == "sqlite"
    explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
    rows = conn.exec_driver_sql(explain + statement, parameters).all()
    return "\n".join(str(row[-1] if sqlite else row[0]) for row in rows)


# A range scan of an index on the page's cursor: SQLite's SEARCH ... USING INDEX with
# `id<?` / `id>?`, PostgreSQL's Index (Only) Scan whose Index Cond bounds the id.
RANGE_SCAN = {
    "sqlite": re.compile(
        r"SEARCH \w+ USING (COVERING )?INDEX ix_messages_room_id_id \(room_id=\? AND id[<>]=?\?\)"
    ),
    "postgres": re.compile(
        r"Index (Only )?Scan (Backward )?using \w+ on messages[\s\S]*Index Cond: .*\bid [<>]=? "
    ),
}


def page_plans(mode: str, room_id: int, cursor: int, message_id: int, result: ModeResult) -> None:
    calls: dict[str, Callable[[], object]] = {
        "page before": lambda: chat.messages_before(room_id, cursor, PAGE),
        "page after": lambda: chat.messages_after(room_id, cursor, PAGE),
        "page around": lambda: chat.messages_around(room_id, message_id),
    }
    for name, call in calls.items():
        (statement, parameters), *_ = statements_of(call)
        plan = plan_of(statement, parameters)
        result.plans[name] = plan
        result.range_scans[name] = RANGE_SCAN[mode].search(plan) is not None


def search_plan(room_id: int, user_id: int, word: str) -> str:
    """The plans of the search's statements on the index, replayed in one transaction: the
    planner switches the context sets (PostgreSQL) apply to the statements after them."""
    sent = statements_of(lambda: search.search_messages(user_id, word, room_id=room_id))
    plans = []
    with repo.engine().connect() as conn:
        for statement, parameters in sent:
            if "set_config" in statement:
                conn.exec_driver_sql(statement, parameters)
                values = [str(v) for v in dict(parameters).values()]
                switches = [
                    f"{name}={value}"
                    for name, value in itertools.pairwise(values)
                    if name.startswith("enable_")
                ]
                plans.append(f"-- the context sets {', '.join(switches)}")
            elif "search_vector" in statement or "messages_search" in statement:
                plans.append(plan_of(statement, parameters, conn))
        conn.rollback()
    return "\n".join(plans)


# --------------------------------------------------------------------------------------------
# One database
# --------------------------------------------------------------------------------------------


def run_mode(mode: str, size: int, run_id: str) -> ModeResult:
    result = ModeResult(mode, size)
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory(prefix="bench_history_") as workdir:
        url, base_url, to_drop = database_urls(mode, Path(workdir), run_id)
        try:
            print(f"[{mode}] bulk load without the search index (migration 0003)...", flush=True)
            prepared_database(base_url, "0003")
            result.bulk_without_index_s = bulk_load(base_url, size)
            print(f"[{mode}] migration 0004 on it...", flush=True)
            result.migration_s = round(migrate(base_url, "head"), 1)
            print(f"[{mode}] bulk load with it (head)...", flush=True)
            prepared_database(url)
            result.bulk_with_index_s = bulk_load(url, size)
            if to_drop:
                drop_postgres_database(to_drop[1])
            measure(mode, url, rng, result)
        finally:
            repo.engine().dispose()
            for name in to_drop:
                drop_postgres_database(name)
    return result


def measure(mode: str, url: str, rng: random.Random, result: ModeResult) -> None:
    repo.configure(url)
    engine = repo.engine()
    with engine.connect() as conn:
        room_id, low, high = conn.execute(
            sa.text(
                "SELECT rooms.id, MIN(messages.id), MAX(messages.id) FROM rooms "
                "JOIN messages ON messages.room_id = rooms.id WHERE rooms.name = :name "
                "GROUP BY rooms.id"
            ),
            {"name": ROOM},
        ).one()
        user_id = conn.execute(sa.text("SELECT MIN(id) FROM users")).scalar_one()
        in_room = conn.execute(
            sa.text("SELECT COUNT(*) FROM messages WHERE room_id = :room"), {"room": room_id}
        ).scalar_one()
    # The bulk messages are contiguous ids at the end: any id in their range is the room's.
    bulk_low = high - result.size + 1
    plant_rare_word(rng, room_id, bulk_low, high)
    if mode == "postgres":
        # What autovacuum would have done by now: the planner's statistics of the new rows.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE messages")
    word = result.common_word = common_word()
    with engine.connect() as conn:
        result.common_share = round(
            conn.execute(
                sa.text("SELECT COUNT(*) FROM messages WHERE room_id = :room AND content LIKE :w"),
                {"room": room_id, "w": f"%{word}%"},
            ).scalar_one()
            / in_room,
            3,
        )

    def cursor() -> int:
        return rng.randint(low, high)

    def offset_page() -> Sequence[Any]:
        # The baseline: the same page addressed by its depth from the newest message.
        depth = rng.randint(0, in_room - PAGE)
        with engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT id, content FROM messages WHERE room_id = :room "
                    "ORDER BY id DESC LIMIT :limit OFFSET :depth"
                ),
                {"room": room_id, "limit": PAGE, "depth": depth},
            ).all()

    def like_scan(text: str) -> Callable[[], Sequence[Any]]:
        def scan() -> Sequence[Any]:
            with engine.connect() as conn:
                return conn.execute(
                    sa.text(
                        "SELECT id, content FROM messages WHERE content LIKE :pattern "
                        "ORDER BY id DESC LIMIT :limit"
                    ),
                    {"pattern": f"%{text}%", "limit": PAGE + 1},
                ).all()

        return scan

    offset = timed("page by OFFSET (baseline)", BASELINE_TRIALS, offset_page)
    pages = [
        timed("page before a cursor", TRIALS, lambda: chat.messages_before(room_id, cursor())),
        timed("page after a cursor", TRIALS, lambda: chat.messages_after(room_id, cursor())),
        timed(
            "page around a message",
            TRIALS,
            lambda: chat.messages_around(room_id, rng.randint(bulk_low, high)),
        ),
    ]
    for figure in pages:
        figure.target_ms, figure.baseline_p95_ms = PAGE_TARGET_MS, offset.p95_ms
    result.figures += [*pages, offset]
    page_plans(mode, room_id, cursor(), rng.randint(bulk_low, high), result)

    for label, text in (("rare", RARE_WORD), ("common", word)):
        baseline = timed(f"{label} word by LIKE (baseline)", 5, like_scan(text))
        for where, room in (("the room", room_id), ("all rooms", None)):
            figure = timed(
                f"search {label} word, {where}",
                TRIALS,
                lambda text=text, room=room: (
                    search.search_messages(user_id, text, room_id=room).hits
                ),
                target_ms=SEARCH_TARGET_MS,
                baseline_p95_ms=baseline.p95_ms,
            )
            result.figures.append(figure)
        result.figures.append(baseline)
        result.plans[f"search {label} word"] = search_plan(room_id, user_id, text)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def print_mode(result: ModeResult) -> None:
    slower = result.bulk_with_index_s / (result.bulk_without_index_s or 1)
    print()
    print(f"== {result.mode}: a room of {result.size:,} messages (#{ROOM}) ==")
    print(
        f"bulk load: {result.bulk_without_index_s:.1f} s without the search index, "
        f"{result.bulk_with_index_s:.1f} s with it ({slower:.2f} x); "
        f"migration 0004 indexing an existing room of that size: {result.migration_s:.1f} s"
    )
    print(
        f"common word: {result.common_word!r} (in {100 * result.common_share:.1f}% of the "
        f"room); rare word: {RARE_WORD!r} ({RARE_COUNT} messages)"
    )
    header = ("query", "p50 ms", "p95 ms", "max ms", "rows", "target", "baseline p95", "ratio")
    lines = [header]
    for f in result.figures:
        ratio = f.baseline_p95_ms / f.p95_ms if f.baseline_p95_ms and f.p95_ms else None
        lines.append(
            (
                f.name,
                fmt(f.p50_ms, 2),
                fmt(f.p95_ms, 2),
                fmt(f.max_ms, 2),
                str(f.rows),
                f"<= {f.target_ms:g}" if f.target_ms else "",
                fmt(f.baseline_p95_ms, 1) if f.baseline_p95_ms else "",
                (f"{ratio:,.0f} x" if ratio >= 10 else f"{ratio:.1f} x") if ratio else "",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for index, line in enumerate(lines):
        numbers = zip(line[1:], widths[1:], strict=True)
        cells = [line[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in numbers]
        print("  ".join(cells))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    for name, plan in result.plans.items():
        print(f"\nplan, {name}:")
        print("\n".join(f"    {line}" for line in plan.splitlines()))


def checks(results: Sequence[ModeResult]) -> list[tuple[bool, str]]:
    found = []
    for result in results:
        for f in result.figures:
            if f.target_ms is not None:
                found.append(
                    (f.ok, f"{result.mode}: {f.name} p95 {f.p95_ms:.2f} ms <= {f.target_ms:g} ms")
                )
        for name, ok in result.range_scans.items():
            found.append((ok, f"{result.mode}: {name} is an index range scan on the cursor"))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__, argv, modes=MODES)
    size = QUICK_SIZE if args.quick else FULL_SIZE
    modes = args.mode or list(MODES)
    load_before = load_average()
    began = time.perf_counter()
    print(
        f"bench/history.py: a room of {size:,} messages, pages of {PAGE}, {TRIALS} trials per "
        f"figure; modes {', '.join(modes)}; load average {load_before[0]:.2f}"
    )
    run_id = f"{int(time.time())}_{random.randrange(1 << 16):04x}"
    results = [run_mode(mode, size, run_id) for mode in modes if mode in DATABASES]
    browser = history_chromium.run(args.quick) if "chromium" in modes else None
    for result in results:
        print_mode(result)
    found = checks(results)
    if browser is not None:
        history_chromium.print_result(browser)
        found += history_chromium.checks(browser)
    print()
    for ok, text in found:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    elapsed = time.perf_counter() - began
    if args.json is not None:
        write_json(
            {
                "size": size,
                "seconds": round(elapsed, 1),
                "machine": machine_json(load_before),
                "modes": [asdict(result) for result in results],
                "chromium": asdict(browser) if browser is not None else None,
            },
            args.json,
        )
    print(f"(ran in {elapsed:.0f} s)")
    print(f"{sum(ok for ok, _ in found)}/{len(found)} targets met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
