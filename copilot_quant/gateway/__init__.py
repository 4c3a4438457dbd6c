"""The simulated IB Gateway: speaks the TWS API socket protocol (server version 178) on loopback so the
unmodified ib_async client can connect, trade and stream against a simulated market.

Layers, bottom up (ib_async's stack in reverse): :mod:`~copilot_quant.gateway.wire` (framing),
:mod:`~copilot_quant.gateway.messages` (one codec module per message family),
:mod:`~copilot_quant.gateway.session` (one connection) and :mod:`~copilot_quant.gateway.handlers` (requests),
:mod:`~copilot_quant.gateway.market` / :mod:`~copilot_quant.gateway.clock` (replay and time),
:mod:`~copilot_quant.gateway.broker` (orders and account), :mod:`~copilot_quant.gateway.server` (the loop
thread and fault injection).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from copilot_quant.gateway.broker import SimBroker
    from copilot_quant.gateway.server import GatewayConfig, GatewayServer

__all__ = ["GatewayConfig", "GatewayServer", "SimBroker"]


def __getattr__(name: str) -> Any:
    # Lazy: importing the package (e.g. for wire or contracts) must not pull in pandas and the data layer.
    if name in ("GatewayConfig", "GatewayServer"):
        from copilot_quant.gateway import server  # noqa: PLC0415 - lazy on purpose, see above

        return getattr(server, name)
    if name == "SimBroker":
        from copilot_quant.gateway.broker import SimBroker  # noqa: PLC0415 - lazy on purpose

        return SimBroker
    raise AttributeError(f"module 'copilot_quant.gateway' has no attribute {name!r}")
