import json

import pytest

from stream_chat.text import clean_text, has_unsafe


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("hello", "hello"),
        ("a\x00b", "ab"),
        ("\ud800tail", "tail"),
        ("lead\udfff", "lead"),
        ("x\ud83dy", "xy"),
        ("emoji 😀 stays", "emoji 😀 stays"),
        ("tabs\tand\nnewlines\r", "tabs\tand\nnewlines\r"),
        ("", ""),
    ],
)
def test_clean_text_strips_nul_and_lone_surrogates(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean
    # What comes out can always be stored and sent: UTF-8 and JSON encode it.
    clean_text(raw).encode("utf-8")
    json.dumps(clean_text(raw), ensure_ascii=False).encode("utf-8")


def test_has_unsafe() -> None:
    assert has_unsafe("a\x00") and has_unsafe("\ud800")
    assert not has_unsafe("plain 😀")
