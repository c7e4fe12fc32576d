"""Start and stop the real app for end-to-end tests (prod mode, or `make run`'s dev mode),
bound to 127.0.0.1 only."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REFLEX_ENV = {
    "REFLEX_USE_SYSTEM_BUN": "1",
    "REFLEX_CHECK_LATEST_VERSION": "0",
    "REFLEX_TELEMETRY_ENABLED": "false",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepared_database(url: str, revision: str = "head") -> None:
    """Migrates the database (to `revision`) and loads the demo data into it."""
    env = {**os.environ, **REFLEX_ENV, "DATABASE_URL": url}
    subprocess.run([BIN / "alembic", "upgrade", revision], cwd=PROJECT_ROOT, env=env, check=True)
    subprocess.run([BIN / "python", "-m", "seeds"], cwd=PROJECT_ROOT, env=env, check=True)


@dataclass
class AppServer:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    database_url: str
    project_dir: Path
    # Where the backend listens: the same server as the pages, except in dev mode.
    backend_url: str = ""

    def __post_init__(self) -> None:
        self.backend_url = self.backend_url or self.base_url

    def frontend(self):
        """What this app's browser bundle knows (its own build, not the project's)."""
        from tests.support.reflex_client import Frontend

        return Frontend.load(self.project_dir / ".web")

    def stop(self) -> None:
        # reflex starts children (the web server's workers); the whole process group goes.
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL to the whole process group at once: the workers die mid-whatever, as in
        a crash or an OOM kill, with no shutdown code run."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


# What a running app needs of the project; a copy of it is where each test app runs.
_NOT_COPIED_ANYWHERE = shutil.ignore_patterns(
    ".git", ".venv", ".states", ".hypothesis", "test-artifacts", "__pycache__", "*.db*"
)
# The project's own run-time data folder only: packages in .web/node_modules have `data`
# folders of their own (@babel/helper-globals), and a copy without them cannot build.
_NOT_COPIED_AT_THE_ROOT = {"data"}


def _not_copied(folder: str, names: list[str]) -> set[str]:
    ignored = set(_NOT_COPIED_ANYWHERE(folder, names))
    if Path(folder) == PROJECT_ROOT:
        ignored |= _NOT_COPIED_AT_THE_ROOT & set(names)
    return ignored


def isolated_project(workdir: Path) -> Path:
    """A private copy of the project (its `.web` build included) for one app to run in.

    A production build writes the backend's port into `.web`: two apps built in the same
    folder would send one's pages to the other's port.
    """
    copy = workdir / "project"
    if not copy.exists():
        shutil.copytree(PROJECT_ROOT, copy, ignore=_not_copied, symlinks=True)
    return copy


def start_app(
    database_url: str, log_path: Path, extra_env: dict[str, str] | None = None
) -> AppServer:
    port = free_port()
    project = isolated_project(log_path.parent)
    env = {**os.environ, **REFLEX_ENV, "DATABASE_URL": database_url, **(extra_env or {})}
    command = [
        str(BIN / "reflex"),
        "run",
        "--env",
        "prod",
        "--backend-host",
        "127.0.0.1",
        "--backend-port",
        str(port),
    ]
    process = _start_process(command, project, env, log_path)
    server = AppServer(process, f"http://127.0.0.1:{port}", log_path, database_url, project)
    try:
        wait_until_serving(server, timeout=600)
    except BaseException:
        server.stop()
        raise
    return server


def wait_until_serving(server: AppServer, timeout: float) -> None:
    wait_for_urls(server, [f"{server.backend_url}/ping", f"{server.base_url}/login"], timeout)


def wait_for_urls(server: AppServer, urls: list[str], timeout: float) -> None:
    """Waits until every URL answers 200, in order (the backend's /ping, then a page)."""
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"The app exited early:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(pending[0], timeout=5) as response:
                if response.status == 200:
                    pending.pop(0)
                    continue
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    if pending:
        raise TimeoutError(f"The app did not start in {timeout} s:\n{server.log_tail()}")


def start_dev_app(log_path: Path, extra_env: dict[str, str] | None = None) -> AppServer:
    """`make run` itself (dev mode, hot reload on), in a private copy of the project.

    Its setup step is taken as done (`--assume-old=setup`): the copy shares this test run's
    virtualenv, which an editable re-install from the copy would repoint. The database is the
    copy's default one, in its data folder.
    """
    frontend_port, backend_port = free_port(), free_port()
    project = isolated_project(log_path.parent)
    env = {
        **os.environ,
        "REFLEX_FRONTEND_PORT": str(frontend_port),
        "REFLEX_BACKEND_PORT": str(backend_port),
        "REFLEX_API_URL": f"http://127.0.0.1:{backend_port}",
        **(extra_env or {}),
    }
    # Only the copy's Makefile may configure the run (an outer `make test` exports its own).
    for inherited in ("DATABASE_URL", "STREAM_CHAT_DATA_DIR", "REFLEX_HOT_RELOAD_OVERRIDE_PATHS"):
        env.pop(inherited, None)
    command = ["make", "--assume-old=setup", "run", f"VENV={BIN.parent}"]
    process = _start_process(command, project, env, log_path)
    server = AppServer(
        process,
        f"http://127.0.0.1:{frontend_port}",
        log_path,
        f"sqlite:///{project / 'data' / 'stream_chat.db'}",
        project,
        backend_url=f"http://127.0.0.1:{backend_port}",
    )
    try:
        wait_for_urls(server, [server.backend_url + "/ping", server.base_url + "/login"], 900)
    except BaseException:
        server.stop()
        raise
    return server


def _start_process(
    command: list[str], cwd: Path, env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def process_group_pids(group: int, program: str) -> set[int]:
    """The processes of a process group whose command line mentions `program`."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[2]) == group and program.encode() in cmdline:
            pids.add(int(stat.parent.name))
    return pids


def start_static_deploy(
    database_url: str, log_path: Path, extra_env: dict[str, str] | None = None
) -> tuple[AppServer, subprocess.Popen[bytes]]:
    """The README's static deploy in a private copy of the project: `make export` with the
    backend's URL compiled in, the backend alone (`reflex run --env prod --backend-only`),
    and the exported files behind a static server with the SPA fallback.

    Returns the backend (its `base_url` is the static site's) and the static server."""
    site_port, backend_port = free_port(), free_port()
    project = isolated_project(log_path.parent)
    backend_url = f"http://127.0.0.1:{backend_port}"
    env = {
        **os.environ,
        **REFLEX_ENV,
        "DATABASE_URL": database_url,
        "REFLEX_API_URL": backend_url,
        "ALLOWED_ORIGINS": f"http://127.0.0.1:{site_port}",
        **(extra_env or {}),
    }
    export = ["make", "--assume-old=setup", "export", f"VENV={BIN.parent}"]
    with log_path.with_suffix(".export.log").open("wb") as export_log:
        subprocess.run(export, cwd=project, env=env, stdout=export_log, check=True, timeout=900)
    site = _start_process(
        [
            str(BIN / "python"),
            "-m",
            "tests.support.static_site",
            str(project / ".web" / "build" / "client"),
            str(site_port),
        ],
        PROJECT_ROOT,
        env,
        log_path.with_suffix(".site.log"),
    )
    backend_only = [
        str(BIN / "reflex"),
        "run",
        "--env",
        "prod",
        "--backend-only",
        "--backend-host",
        "127.0.0.1",
        "--backend-port",
        str(backend_port),
    ]
    process = _start_process(backend_only, project, env, log_path)
    server = AppServer(
        process, f"http://127.0.0.1:{site_port}", log_path, database_url, project, backend_url
    )
    try:
        wait_until_serving(server, timeout=300)
    except BaseException:
        server.stop()
        site.kill()
        site.wait(timeout=10)
        raise
    return server, site
