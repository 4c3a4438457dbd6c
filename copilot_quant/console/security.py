"""The console's safety rules: the access token, the CSRF token derived from it, and which addresses it may bind.

Every request needs the token: ``Authorization: Bearer TOKEN``, the ``cq_console`` cookie, or ``?token=TOKEN``
once (the console then sets the cookie, HttpOnly, SameSite=Strict). The token is generated on first use and
stored owner-only (0600) in the token file; it is printed once, when it is created. Controls are POST and need
the CSRF token (``X-CSRF-Token`` header or ``csrf`` form field): an HMAC of the access token, so a page from
another origin that rides on the cookie cannot forge it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from copilot_quant.errors import ConfigError

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "ConsoleToken",
    "check_bind",
    "csrf_for",
    "default_token_file",
    "is_loopback",
    "load_or_create_token",
    "token_matches",
]

COOKIE = "cq_console"
CSRF_HEADER = "x-csrf-token"
_TOKEN_BYTES = 32


def default_token_file() -> Path:
    """``~/.copilot_quant/console.token`` (next to the default journal dir)."""
    return Path.home() / ".copilot_quant" / "console.token"


@dataclass(frozen=True, slots=True)
class ConsoleToken:
    """The access token, where it is kept, and whether it was just created (then it is printed once)."""

    value: str
    path: Path
    created: bool

    @property
    def csrf(self) -> str:
        return csrf_for(self.value)


def csrf_for(token: str) -> str:
    """The CSRF token that goes with ``token`` (HMAC-SHA256, hex)."""
    return hmac.new(token.encode(), b"copilot-quant console csrf", hashlib.sha256).hexdigest()


def load_or_create_token(path: str | Path | None = None) -> ConsoleToken:
    """Read the token from ``path`` (default :func:`default_token_file`) or create one there, mode 0600.

    A token file others may read (group or world bits set) is refused: anyone reading it could trade.
    """
    target = Path(path).expanduser() if path is not None else default_token_file()
    if target.exists():
        mode = stat.S_IMODE(target.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"the console token file {target} is readable by others (mode {mode:o}); "
                f"run `chmod 600 {target}` or remove it to have a new one generated"
            )
        value = target.read_text(encoding="utf-8").strip()
        if len(value) < 16:
            raise ConfigError(f"the console token file {target} holds no usable token; remove it")
        return ConsoleToken(value, target, created=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(_TOKEN_BYTES)
    # O_EXCL + 0600 at creation: the token is never readable by others, not even for a moment.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")
    return ConsoleToken(value, target, created=True)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, tls: bool, force: bool) -> None:
    """Refuse a non-loopback bind without TLS unless ``force`` (the token would cross the network in clear)."""
    if is_loopback(host) or tls or force:
        return
    raise ConfigError(
        f"refusing to serve the console on {host} without TLS: the access token and every control would "
        "travel in clear text. Bind 127.0.0.1 (and use an SSH tunnel), pass --tls-cert/--tls-key, or "
        "--force-insecure-bind if this network is trusted"
    )


def token_matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
