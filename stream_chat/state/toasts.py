"""The toasts a handler answers with. Each toast's id is its text, so the same message
again replaces the one on screen instead of stacking a copy under it."""

import reflex as rx
from reflex.event import EventSpec


def error_toast(text: str) -> EventSpec:
    return rx.toast.error(text, id=f"error:{text}")


def info_toast(text: str) -> EventSpec:
    return rx.toast.info(text, id=f"info:{text}")
