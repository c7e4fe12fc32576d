"""Runs a script against the real modules in assets/ under Node (with the stubs of
tests/js/register.mjs for what only a browser or Reflex provides)."""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).resolve().parent.parent / "js"


def run_node(script: str) -> Any:
    """What the ES module `script` prints (one JSON value); imports resolve from tests/js."""
    node = shutil.which("node") or "/usr/bin/node"
    result = subprocess.run(
        [node, "--import", (JS_DIR / "register.mjs").as_uri(), "--input-type=module", "-e", script],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)
