"""Connection settings for IB: explicit arguments, then ``IB_*`` environment variables / ``.env``, then defaults.

Precedence (highest first)::

    LiveDataFeedAdapter(host=..., port=..., client_id=...)     explicit arguments
    IB_HOST / IB_PORT / IB_CLIENT_ID / IB_PAPER_ACCOUNT           environment, then a .env file in the cwd
    127.0.0.1 / the port table below / client id 1                 defaults

Port table (the guide's): paper+TWS 7497, live+TWS 7496, paper+Gateway 4002, live+Gateway 4001.

Safety: ``paper_trading=True`` must never reach a live account. :func:`resolve_connection` refuses a
paper-mode connection to a well-known *live* port, and :func:`check_managed_accounts` (run right after the
handshake) refuses any account that is not a paper account (``DU…``) or that differs from
``IB_PAPER_ACCOUNT`` when that is set. Both raise :class:`~copilot_quant.errors.ConfigError` with the fix.

The other way round, ``paper_trading=False`` trades real money only when it is confirmed:
:func:`check_live_confirmed` wants ``confirm_live=True`` or ``COPILOT_QUANT_CONFIRM_LIVE=yes``. The engine
checks it when it is built, the broker adapter before it connects and before every order.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from copilot_quant.errors import ConfigError

__all__ = [
    "CONFIRM_LIVE_ENV",
    "DEFAULT_HOST",
    "PORT_TABLE",
    "ConnectionSettings",
    "IBSettings",
    "check_live_confirmed",
    "check_managed_accounts",
    "default_port",
    "live_confirmed",
    "resolve_connection",
]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_CLIENT_ID = 1

#: (paper_trading, use_gateway) -> port, exactly the guide's table.
PORT_TABLE: dict[tuple[bool, bool], int] = {
    (True, False): 7497,  # paper, TWS
    (False, False): 7496,  # live, TWS
    (True, True): 4002,  # paper, IB Gateway
    (False, True): 4001,  # live, IB Gateway
}
_LIVE_PORTS = frozenset({PORT_TABLE[(False, False)], PORT_TABLE[(False, True)]})
_PAPER_ACCOUNT_PREFIX = "DU"

#: Set to ``yes`` (or ``true``/``1``) to confirm live trading (``paper_trading=False``) without
#: ``confirm_live=True``.
CONFIRM_LIVE_ENV = "COPILOT_QUANT_CONFIRM_LIVE"


def default_port(paper_trading: bool, use_gateway: bool) -> int:
    """The guide's port for a mode and application."""
    return PORT_TABLE[(bool(paper_trading), bool(use_gateway))]


class IBSettings(BaseSettings):
    """``IB_HOST``, ``IB_PORT``, ``IB_CLIENT_ID`` and ``IB_PAPER_ACCOUNT`` from the environment or ``.env``.

    Unset values stay ``None`` so that the caller can tell "not configured" from a default.
    """

    model_config = SettingsConfigDict(
        env_prefix="IB_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",  # a .env usually holds other projects' variables too
        case_sensitive=False,
    )

    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    client_id: int | None = Field(default=None, ge=0)
    paper_account: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Where and how to connect, after precedence was applied. Immutable."""

    host: str
    port: int
    client_id: int
    paper_trading: bool
    use_gateway: bool
    paper_account: str | None = None

    def with_client_id(self, client_id: int) -> ConnectionSettings:
        return replace(self, client_id=client_id)

    def describe(self) -> str:
        mode = "paper" if self.paper_trading else "LIVE"
        app = "IB Gateway" if self.use_gateway else "TWS"
        return f"{mode} {app} at {self.host}:{self.port} (client id {self.client_id})"


_FIXES = {
    "port": "set IB_PORT to a whole number between 1 and 65535, e.g. 7497 for paper TWS",
    "client_id": "set IB_CLIENT_ID to a whole number >= 0, e.g. 1 (each connection needs its own id)",
    "host": "set IB_HOST to a host name or address such as 127.0.0.1",
}


def _load_env(env_file: str | Path | None) -> IBSettings:
    try:
        if env_file is None:
            return IBSettings()
        return IBSettings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            problems.append(
                f"IB_{field.upper()}={err.get('input')!r} is invalid ({err['msg']}); {_FIXES.get(field, 'fix it')}"
            )
        raise ConfigError("; ".join(problems)) from None


def _check_port(port: object) -> int:
    try:
        value = int(port)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ConfigError(f"port={port!r} is not a number; {_FIXES['port']}") from None
    if isinstance(port, float) and not port.is_integer():
        raise ConfigError(f"port={port!r} is not a whole number; {_FIXES['port']}")
    if not 1 <= value <= 65535:
        raise ConfigError(f"port={port!r} is out of range; {_FIXES['port']}")
    return value


def _check_client_id(client_id: object) -> int:
    try:
        value = int(client_id)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ConfigError(f"client_id={client_id!r} is not a number; {_FIXES['client_id']}") from None
    if value < 0:
        raise ConfigError(f"client_id={client_id!r} is negative; {_FIXES['client_id']}")
    return value


def resolve_connection(
    paper_trading: bool = True,
    host: str | None = None,
    port: int | None = None,
    client_id: int | None = None,
    use_gateway: bool = False,
    *,
    env_file: str | Path | None = None,
) -> ConnectionSettings:
    """Apply the precedence rules and the port-vs-mode safety check; raise ``ConfigError`` on bad input.

    ``client_id=0`` is a real id (IB binds manual TWS orders to it) and is honoured, never replaced.
    """
    env = _load_env(env_file)
    resolved_host = host if host is not None else env.host or DEFAULT_HOST
    if not isinstance(resolved_host, str) or not resolved_host.strip():
        raise ConfigError(f"host={resolved_host!r} is empty; {_FIXES['host']}")
    if port is not None:
        resolved_port = _check_port(port)
    elif env.port is not None:
        resolved_port = env.port
    else:
        resolved_port = default_port(paper_trading, use_gateway)
    if client_id is not None:
        resolved_id = _check_client_id(client_id)
    elif env.client_id is not None:
        resolved_id = env.client_id
    else:
        resolved_id = DEFAULT_CLIENT_ID
    paper_account = (env.paper_account or "").strip() or None

    if paper_trading and resolved_port in _LIVE_PORTS:
        source = "port argument" if port is not None else "IB_PORT"
        raise ConfigError(
            f"paper_trading=True but the {source} is {resolved_port}, a LIVE trading port "
            f"(7496 = live TWS, 4001 = live IB Gateway). Use 7497 (paper TWS) or 4002 (paper Gateway), "
            "or pass paper_trading=False if you really mean to trade real money."
        )
    if not paper_trading and resolved_port in (PORT_TABLE[(True, False)], PORT_TABLE[(True, True)]):
        log.warning(
            "paper_trading=False but port %d is a paper-trading port; orders will go to the paper account.",
            resolved_port,
        )
    return ConnectionSettings(
        host=resolved_host.strip(),
        port=resolved_port,
        client_id=resolved_id,
        paper_trading=bool(paper_trading),
        use_gateway=bool(use_gateway),
        paper_account=paper_account,
    )


def live_confirmed(confirm_live: bool) -> bool:
    """Whether real-money trading is confirmed: ``confirm_live=True`` or ``COPILOT_QUANT_CONFIRM_LIVE=yes``."""
    return bool(confirm_live) or os.environ.get(CONFIRM_LIVE_ENV, "").strip().lower() in {"yes", "true", "1"}


def check_live_confirmed(paper_trading: bool, confirm_live: bool, who: str = "paper_trading=False") -> None:
    """Raise :class:`ConfigError` when ``paper_trading=False`` is not confirmed (see :func:`live_confirmed`).

    ``who`` names what asked for live trading at the start of the message (the class and its argument).
    """
    if paper_trading or live_confirmed(confirm_live):
        return
    raise ConfigError(
        f"{who} trades real money and needs an explicit confirmation: pass confirm_live=True or set "
        f"{CONFIRM_LIVE_ENV}=yes (or keep paper_trading=True)"
    )


def check_managed_accounts(settings: ConnectionSettings, accounts: list[str]) -> str:
    """Return the account to trade in, or raise ``ConfigError`` if paper mode would touch a live account.

    Called right after the handshake with the accounts TWS/Gateway reports (managedAccounts).
    """
    accounts = [a.strip() for a in accounts if a and a.strip()]
    if not accounts:
        raise ConfigError(
            "TWS/Gateway reported no managed account; log in to TWS/IB Gateway with your account first."
        )
    if settings.paper_account is not None and settings.paper_account not in accounts:
        raise ConfigError(
            f"IB_PAPER_ACCOUNT={settings.paper_account} is not among the accounts this connection manages "
            f"({', '.join(accounts)}). Fix IB_PAPER_ACCOUNT or log in to the right paper account."
        )
    chosen = settings.paper_account or accounts[0]
    if settings.paper_trading:
        live = [a for a in accounts if not a.upper().startswith(_PAPER_ACCOUNT_PREFIX)]
        if live:
            raise ConfigError(
                f"paper_trading=True but TWS/Gateway is logged in to live account(s) {', '.join(live)} "
                f"(paper accounts start with '{_PAPER_ACCOUNT_PREFIX}'). Refusing to connect: log in with "
                "your paper trading user, or pass paper_trading=False to trade real money."
            )
    return chosen
