"""The one rule for text that reaches the database or a browser: user input and model output.

PostgreSQL refuses NUL in text columns, and a lone surrogate (`"\\ud800"`) cannot be encoded
as UTF-8, so SQLite's driver, JSON deltas and the websocket all fail on it. Both are invisible
and carry no meaning a reader could want, so they are **stripped** everywhere, the same way on
both databases, instead of refusing the message and making the writer hunt for them. Every
context applies `clean_text` to every text field it stores, and the assistant to every chunk
the model sends. Plain Python, no Reflex.
"""

import re

# NUL, and any UTF-16 surrogate code point that is not part of a valid pair. A Python str
# never holds a valid pair as two code points once decoded, so every surrogate is lone.
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` without NUL characters and lone surrogates."""
    return _UNSAFE.sub("", text)


def has_unsafe(text: str) -> bool:
    return _UNSAFE.search(text) is not None
