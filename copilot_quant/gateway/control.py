"""A tiny line-based control port for a running simulated gateway: fault drills from another terminal.

``copilot-quant gateway --control-port 4010`` opens it on 127.0.0.1; ``copilot-quant gateway-ctl drop``
(or ``printf 'drop\\n' | nc 127.0.0.1 4010``) sends one command and prints the one-line reply, which starts
with ``ok`` or ``error``. Every command maps to one method of :class:`~copilot_quant.gateway.server.GatewayServer`
or its clock, so the Python API and the control port can never disagree.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from copilot_quant.errors import GatewayError

if TYPE_CHECKING:
    from copilot_quant.gateway.server import GatewayServer

__all__ = ["COMMANDS", "ControlServer", "execute", "send_command"]

log = logging.getLogger(__name__)

#: command -> (usage, what it does)
COMMANDS: dict[str, tuple[str, str]] = {
    "status": ("status", "market time, clock speed and connected clients"),
    "drop": ("drop", "drop every client connection"),
    "refuse": ("refuse SECONDS", "refuse new connections for SECONDS"),
    "restart": ("restart", "stop and start the gateway on the same port, keeping its state"),
    "lost": ("lost", "broadcast 1100: connectivity between IB and TWS lost"),
    "restored": ("restored [data-lost]", "broadcast 1102 (data maintained) or 1101 (data lost)"),
    "farm": (
        "farm CODE [FARM]",
        "broadcast a farm/connectivity code with TWS's text naming FARM: 2103-2108, 2157, 2158, 2110, 1300",
    ),
    "competing": ("competing", "emit 10197: no market data during a competing live session"),
    "reject": ("reject [REASON]", "reject the next order with error 201 and REASON"),
    "withhold": ("withhold on|off", "hold back execution reports (off releases them)"),
    "order-msg": (
        "order-msg ORDER_ID CODE [TEXT]",
        "error CODE about a working order, no status change (10349)",
    ),
    "answer-next": (
        "answer-next CODE [keep] [TEXT]",
        "answer the next order with CODE only (321, 110); with 'keep' accept it and then send CODE (10349)",
    ),
    "hold": (
        "hold ORDER_ID [WHY_HELD]",
        "report the order Inactive (default whyHeld=locate); it keeps working",
    ),
    "reactivate": ("reactivate ORDER_ID", "report a held order's real status again"),
    "correct": (
        "correct [EXEC_ID] [shares=N] [price=P]",
        "correct an execution (default the last) with a ….02 execId",
    ),
    "reset-lose": (
        "reset-lose N",
        "gateway reset: lose the N newest orders, roll their ids back, drop clients",
    ),
    "stall-bars": ("stall-bars [SYMBOL]", "stop keepUpToDate bar streams silently (ticks go on)"),
    "outage": ("outage SECONDS", "drop every client and refuse connections for SECONDS"),
    "port-reset": (
        "port-reset [PORT]",
        "1300: move the API port (default a free one), tell and drop clients",
    ),
    "exec-window": ("exec-window day|all", "reqExecutions answers the current day only (day), or everything"),
    "commissions": ("commissions normal|zero|late|release|currency:XXX", "how commission reports are sent"),
    "account-throttle": (
        "account-throttle SECONDS",
        "refresh account values every SECONDS of market time (0: every change)",
    ),
    "permission": (
        "permission CODE [SYMBOL]",
        "market-data permission code on subscriptions: 354, 10167 (delayed), 10168, 10089, 10090",
    ),
    "step": ("step [N]", "advance the market clock N bars (default 1)"),
    "pause": ("pause", "pause the market clock"),
    "speed": ("speed BARS_PER_SECOND", "run the market clock at this speed"),
    "help": ("help", "list the commands"),
}


def _number(args: list[str], usage: str, default: float | None = None) -> float:
    if not args:
        if default is None:
            raise GatewayError(f"missing argument; usage: {usage}")
        return default
    try:
        return float(args[0])
    except ValueError:
        raise GatewayError(f"{args[0]!r} is not a number; usage: {usage}") from None


def execute(gateway: GatewayServer, line: str) -> str:
    """Run one control command against ``gateway`` and return its one-line reply."""
    words = line.strip().split()
    if not words:
        return "error empty command; try 'help'"
    name, args = words[0].lower(), words[1:]
    if name not in COMMANDS:
        return f"error unknown command {name!r}; try 'help'"
    usage = COMMANDS[name][0]
    try:
        return "ok " + _ACTIONS[name](gateway, args, usage)
    except GatewayError as exc:
        return f"error {exc}"
    except Exception as exc:  # a control port must answer, never die; the cause is logged
        log.exception("control command %r failed", line)
        return f"error {type(exc).__name__}: {exc}"


def _status(gw: GatewayServer, args: list[str], usage: str) -> str:
    clients = sum(1 for _ in gw.sessions())
    return (
        f"time={gw.clock.now.isoformat()} clock={gw.clock.mode} speed={gw.clock.speed or 0} "
        f"clients={clients} port={gw.port}"
    )


def _restored(gw: GatewayServer, args: list[str], usage: str) -> str:
    data_lost = bool(args) and args[0].lower() in ("data-lost", "lost", "1101")
    gw.connectivity_restored(data_lost=data_lost)
    return "sent 1101" if data_lost else "sent 1102"


def _withhold(gw: GatewayServer, args: list[str], usage: str) -> str:
    if not args or args[0].lower() not in ("on", "off"):
        raise GatewayError(f"usage: {usage}")
    gw.withhold_executions(args[0].lower() == "on")
    return f"withholding {args[0].lower()}"


def _step(gw: GatewayServer, args: list[str], usage: str) -> str:
    bars = gw.clock.step(int(_number(args, usage, default=1)))
    return f"stepped to {gw.clock.now.isoformat()} ({len(bars)} bars)"


def _help(gw: GatewayServer, args: list[str], usage: str) -> str:
    return "; ".join(f"{u}: {what}" for u, what in COMMANDS.values())


def _drop(gw: GatewayServer, args: list[str], usage: str) -> str:
    return f"dropped {gw.drop_all()} connection(s)"


def _refuse(gw: GatewayServer, args: list[str], usage: str) -> str:
    seconds = _number(args, usage)
    gw.refuse_connections(seconds)
    return f"refusing for {seconds:g}s"


def _restart(gw: GatewayServer, args: list[str], usage: str) -> str:
    gw.restart()
    return f"restarted on port {gw.port}"


def _lost(gw: GatewayServer, args: list[str], usage: str) -> str:
    gw.connectivity_lost()
    return "sent 1100"


def _farm(gw: GatewayServer, args: list[str], usage: str) -> str:
    code = int(_number(args, usage))
    text = gw.faults.farm(code, args[1] if len(args) > 1 else None)
    return f"sent {code} {text!r}"


def _int(args: list[str], index: int, usage: str) -> int:
    if len(args) <= index:
        raise GatewayError(f"missing argument; usage: {usage}")
    try:
        return int(args[index])
    except ValueError:
        raise GatewayError(f"{args[index]!r} is not a whole number; usage: {usage}") from None


def _order_msg(gw: GatewayServer, args: list[str], usage: str) -> str:
    order_id, code = _int(args, 0, usage), _int(args, 1, usage)
    text = " ".join(args[2:]) or "Order TIF was set to DAY based on order preset."
    gw.faults.order_message(order_id, code, text)
    return f"sent {code} about order {order_id}"


def _answer_next(gw: GatewayServer, args: list[str], usage: str) -> str:
    code = _int(args, 0, usage)
    keep = len(args) > 1 and args[1].lower() == "keep"
    text = " ".join(args[2:] if keep else args[1:]) or f"Simulated answer {code}"
    gw.faults.answer_next_order(code, text, keeps_working=keep)
    return f"next order answered with {code}" + (" (it keeps working)" if keep else "")


def _hold(gw: GatewayServer, args: list[str], usage: str) -> str:
    order_id = _int(args, 0, usage)
    why = args[1] if len(args) > 1 else "locate"
    gw.faults.hold_order(order_id, why)
    return f"order {order_id} reported Inactive (whyHeld={why})"


def _reactivate(gw: GatewayServer, args: list[str], usage: str) -> str:
    order_id = _int(args, 0, usage)
    gw.faults.reactivate_order(order_id)
    return f"order {order_id} reactivated"


def _correct(gw: GatewayServer, args: list[str], usage: str) -> str:
    exec_id: str | None = None
    values: dict[str, float] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            exec_id = arg
            continue
        if key not in ("shares", "price"):
            raise GatewayError(f"unknown option {key!r}; usage: {usage}")
        values[key] = _number([value], usage)
    new_id = gw.faults.correct_execution(exec_id, shares=values.get("shares"), price=values.get("price"))
    return f"corrected by {new_id}"


def _reset_lose(gw: GatewayServer, args: list[str], usage: str) -> str:
    lost = gw.faults.reset_losing_orders(_int(args, 0, usage))
    return f"lost {lost} order(s), ids rolled back, clients dropped"


def _stall_bars(gw: GatewayServer, args: list[str], usage: str) -> str:
    return f"stalled {gw.faults.stall_bar_streams(args[0] if args else None)} bar stream(s)"


def _port_reset(gw: GatewayServer, args: list[str], usage: str) -> str:
    port = gw.faults.socket_port_reset(_int(args, 0, usage) if args else 0)
    return f"API port moved to {port}"


def _outage(gw: GatewayServer, args: list[str], usage: str) -> str:
    seconds = _number(args, usage)
    gw.faults.outage(seconds)
    return f"outage for {seconds:g}s"


def _exec_window(gw: GatewayServer, args: list[str], usage: str) -> str:
    if not args or args[0].lower() not in ("day", "all"):
        raise GatewayError(f"usage: {usage}")
    gw.faults.executions_today_only(args[0].lower() == "day")
    return f"executions window {args[0].lower()}"


def _commissions(gw: GatewayServer, args: list[str], usage: str) -> str:
    if not args:
        raise GatewayError(f"usage: {usage}")
    released = gw.faults.commission_reports(args[0])
    return f"commissions {args[0]}" + (f" ({released} released)" if released else "")


def _competing(gw: GatewayServer, args: list[str], usage: str) -> str:
    gw.competing_session()
    return "sent 10197"


def _reject(gw: GatewayServer, args: list[str], usage: str) -> str:
    gw.reject_next_order(" ".join(args) or "Simulated rejection")
    return "next order will be rejected"


def _pause(gw: GatewayServer, args: list[str], usage: str) -> str:
    gw.clock.pause()
    return "clock paused"


def _speed(gw: GatewayServer, args: list[str], usage: str) -> str:
    speed = _number(args, usage)
    gw.clock.run(speed)
    return f"clock at {speed:g} bars/s"


def _account_throttle(gw: GatewayServer, args: list[str], usage: str) -> str:
    seconds = _number(args, usage)
    gw.faults.throttle_account_updates(seconds)
    return (
        f"account values every {seconds:g}s of market time" if seconds else "account values on every change"
    )


def _permission(gw: GatewayServer, args: list[str], usage: str) -> str:
    code = _int(args, 0, usage)
    count = gw.faults.market_data_permission(code, args[1] if len(args) > 1 else None)
    return f"sent {code} to {count} subscription(s)"


_ACTIONS: dict[str, Callable[[GatewayServer, list[str], str], str]] = {
    "status": _status,
    "drop": _drop,
    "refuse": _refuse,
    "restart": _restart,
    "lost": _lost,
    "restored": _restored,
    "farm": _farm,
    "order-msg": _order_msg,
    "answer-next": _answer_next,
    "hold": _hold,
    "reactivate": _reactivate,
    "correct": _correct,
    "reset-lose": _reset_lose,
    "stall-bars": _stall_bars,
    "outage": _outage,
    "port-reset": _port_reset,
    "exec-window": _exec_window,
    "commissions": _commissions,
    "permission": _permission,
    "account-throttle": _account_throttle,
    "competing": _competing,
    "reject": _reject,
    "withhold": _withhold,
    "step": _step,
    "pause": _pause,
    "speed": _speed,
    "help": _help,
}


class _Handler(socketserver.StreamRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            reply = execute(self.server.gateway, line)
            log.info("control %r -> %s", line, reply)
            self.wfile.write((reply + "\n").encode())
            self.wfile.flush()


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], gateway: GatewayServer) -> None:
        self.gateway = gateway
        super().__init__(address, _Handler)


class ControlServer:
    """The control port of one gateway, served on its own daemon thread. Loopback only by default."""

    def __init__(self, gateway: GatewayServer, port: int = 0, host: str = "127.0.0.1") -> None:
        self._server = _TCPServer((host, port), gateway)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="gateway-control", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> ControlServer:
        self._thread.start()
        log.info("gateway control port listening on 127.0.0.1:%d", self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def send_command(port: int, command: str, host: str = "127.0.0.1", timeout: float = 30.0) -> str:
    """Send one command to a control port and return the reply line."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(command.strip().encode() + b"\n")
            reply = sock.makefile("rb").readline().decode().strip()
    except OSError as exc:
        raise GatewayError(
            f"cannot reach the gateway control port {host}:{port} ({exc}); "
            "start the gateway with --control-port"
        ) from None
    return reply
