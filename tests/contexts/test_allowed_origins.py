"""`settings.allowed_origins`: the app's own origins by default, exactly ALLOWED_ORIGINS when
set (the static deploy's frontend origin, say). Reflex's default allowed any origin."""

import pytest

from stream_chat import settings

REFLEX_URLS = ("REFLEX_FRONTEND_PORT", "REFLEX_BACKEND_PORT", "REFLEX_DEPLOY_URL", "REFLEX_API_URL")


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALLOWED_ORIGINS", *REFLEX_URLS):
        monkeypatch.delenv(name, raising=False)


def test_the_default_is_reflex_s_ports_on_loopback() -> None:
    assert settings.allowed_origins() == (
        "http://localhost:3000",
        "http://127.0.0.1:3000",
        "http://localhost:8000",
        "http://127.0.0.1:8000",
    )


def test_the_ports_and_urls_reflex_runs_with_are_the_app_s_own(monkeypatch) -> None:
    monkeypatch.setenv("REFLEX_FRONTEND_PORT", "41234")
    monkeypatch.setenv("REFLEX_BACKEND_PORT", "41234")
    monkeypatch.setenv("REFLEX_DEPLOY_URL", "https://chat.example.com/app/")
    monkeypatch.setenv("REFLEX_API_URL", "https://api.example.com:8443")
    assert settings.allowed_origins() == (
        "http://localhost:41234",
        "http://127.0.0.1:41234",
        "https://chat.example.com",
        "https://api.example.com:8443",
    )
    assert "*" not in settings.allowed_origins()


def test_allowed_origins_is_the_whole_list_when_set(monkeypatch) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", " https://chat.example.com/ ,http://10.0.0.5:8080,")
    monkeypatch.setenv("REFLEX_DEPLOY_URL", "https://ignored.example.com")
    assert settings.allowed_origins() == ("https://chat.example.com", "http://10.0.0.5:8080")
    monkeypatch.setenv("ALLOWED_ORIGINS", "*")
    assert settings.allowed_origins() == ("*",)
