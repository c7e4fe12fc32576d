"""Start and stop the real app for end-to-end tests: prod mode, bound to 127.0.0.1 only."""

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
_NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", ".states", ".hypothesis", "test-artifacts", "__pycache__", "*.db*"
)


def isolated_project(workdir: Path) -> Path:
    """A private copy of the project (its `.web` build included) for one app to run in.

    A production build writes the backend's port into `.web`: two apps built in the same
    folder would send one's pages to the other's port.
    """
    copy = workdir / "project"
    if not copy.exists():
        shutil.copytree(PROJECT_ROOT, copy, ignore=_NOT_COPIED, symlinks=True)
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
    log = log_path.open("wb")
    process = subprocess.Popen(
        command,
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = AppServer(process, f"http://127.0.0.1:{port}", log_path, database_url, project)
    try:
        wait_until_serving(server, timeout=600)
    except BaseException:
        server.stop()
        raise
    return server


def wait_until_serving(server: AppServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"The app exited early:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/ping", timeout=2) as response:
                if response.status == 200:
                    with urllib.request.urlopen(f"{server.base_url}/login", timeout=5):
                        return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    raise TimeoutError(f"The app did not start in {timeout} s:\n{server.log_tail()}")
