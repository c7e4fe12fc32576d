"""Fixtures for the streams tests: one long-lived Node process per session."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "js"


class NodeHarness:
    """Talks JSON lines to tests/js/harness.mjs, which imports the real assets/streams.js."""

    def __init__(self) -> None:
        node = shutil.which("node") or "/usr/bin/node"
        # stderr goes to a file: a pipe nobody reads could fill up and block Node.
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in close())
        self._proc = subprocess.Popen(
            [
                node,
                "--import",
                (JS_DIR / "register.mjs").as_uri(),
                str(JS_DIR / "harness.mjs"),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self._ids = itertools.count(1)

    def call(self, cmd: str, **kwargs: Any) -> Any:
        request_id = next(self._ids)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps({"id": request_id, "cmd": cmd, **kwargs}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            self._stderr.seek(0)
            raise RuntimeError(f"node harness exited: {self._stderr.read()}")
        response = json.loads(line)
        assert response["id"] == request_id
        if not response["ok"]:
            raise RuntimeError(f"node harness error for {cmd}: {response['error']}")
        return response["result"]

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
            self._stderr.close()


@pytest.fixture(scope="session")
def js() -> Iterator[NodeHarness]:
    harness = NodeHarness()
    try:
        yield harness
    finally:
        harness.close()


def run_python(deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    """The client model's view of ``deliveries``, in the harness's result format."""
    from stream_chat.streams.client_model import ClientStreams

    # Through JSON, as on the wire, so tuples or shared objects cannot differ.
    deliveries = json.loads(json.dumps(deliveries))
    client = ClientStreams()
    outcomes = [
        {name: str(outcome) for name, outcome in client.apply_batches(d).items()}
        for d in deliveries
    ]
    streams = {
        name: {
            "dom_ids": s.dom_ids,
            "items": s.items,
            "is_empty": s.is_empty,
            "last_seq": s.last_seq,
            "epoch": s.epoch,
            "awaiting_reset": s.awaiting_reset,
            "channel": s.channel,
            "channel_seq": s.channel_seq,
            "tail": s.tail,
            "unseen": s.unseen,
        }
        for name, s in client.streams.items()
    }
    return {"outcomes": outcomes, "streams": streams}


@pytest.fixture(scope="session")
def py_client() -> Any:
    """``run_python`` as a fixture, for test modules that cannot import conftest."""
    return run_python


@pytest.fixture(params=["py", "js"])
def client_impl(request: pytest.FixtureRequest) -> Any:
    """Runs deliveries through the Python model or through assets/streams.js."""
    if request.param == "py":
        return run_python
    harness: NodeHarness = request.getfixturevalue("js")
    return lambda deliveries: harness.call("run_batches", deliveries=deliveries)
