"""Every refusal of the console's safety model, proven against a real server on 127.0.0.1."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from copilot_quant.console import ConsoleServer, ServeOptions, load_or_create_token
from copilot_quant.console.security import check_bind, csrf_for
from copilot_quant.errors import ConfigError

from tests.console.conftest import http

pytestmark = pytest.mark.timeout(60)


def test_the_token_file_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    first = load_or_create_token(tmp_path / "sub" / "token")
    assert first.created
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    again = load_or_create_token(tmp_path / "sub" / "token")
    assert not again.created
    assert again.value == first.value


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    load_or_create_token(path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_token(path)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_a_non_loopback_bind_without_tls_is_refused(host: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="without TLS"):
        check_bind(host, tls=False, force=False)
    check_bind(host, tls=True, force=False)  # with TLS it is allowed
    check_bind(host, tls=False, force=True)  # and when forced


def test_the_server_refuses_a_non_loopback_bind_before_it_starts(journal_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="without TLS"):
        ConsoleServer.for_journal(
            journal_file, ServeOptions(host="0.0.0.0", port=0, token_file=tmp_path / "t")
        )
    assert not (tmp_path / "t").exists()  # refused before any token was made


@pytest.mark.parametrize(
    "path", ["/", "/journal", "/journal.csv", "/events", "/static/plotly.min.js", "/api/overview"]
)
def test_every_path_without_the_token_is_401(readonly_console: ConsoleServer, path: str) -> None:
    url = readonly_console.url.rstrip("/") + path
    assert http(url).status == 401
    assert http(url, token="not-the-token-at-all").status == 401
    assert http(url, headers={"Cookie": "cq_console=wrong"}).status == 401


def test_the_token_in_the_url_sets_a_strict_httponly_cookie_and_leaves_the_url(
    readonly_console: ConsoleServer,
) -> None:
    answer = http(readonly_console.url + f"journal?table=fills&token={readonly_console.token.value}")
    assert answer.status == 303
    assert answer.headers["location"] == "/journal?table=fills"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    page = http(readonly_console.url, headers={"Cookie": f"cq_console={readonly_console.token.value}"})
    assert page.status == 200
    assert "journal (read-only)" in page.body


@pytest.mark.parametrize("action", ["halt", "flatten", "resume", "cancel"])
def test_the_read_only_console_has_no_controls(readonly_console: ConsoleServer, action: str) -> None:
    token = readonly_console.token.value
    url = readonly_console.url + f"control/{action}"
    post = http(
        url,
        token=token,
        method="POST",
        body={"who": "me", "why": "test"},
        headers={"X-CSRF-Token": csrf_for(token)},
    )
    assert post.status in (404, 405)
    assert http(url, token=token).status in (404, 405)
    assert "data-action" not in http(readonly_console.url, token=token).body  # no buttons either
