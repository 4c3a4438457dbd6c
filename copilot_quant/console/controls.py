"""The console's controls over a running engine: cancel an order, halt, halt and flatten, resume.

Each needs who and why, is journaled as a ``console`` event (who, from where, when, why) before it acts, and
uses the machinery ``copilot-quant kill`` uses: a halt writes the engine's kill-switch file (so the halt
outlives a restart of the engine, exactly as a kill from the command line does) and engages the kill switch
at once; resume removes the file and releases the switch. Only the engine's console has controls; the
read-only console over a journal has none (the routes do not exist).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from copilot_quant.errors import ConfigError, JournalError
from copilot_quant.risk.kill_file import clear_kill_file, write_kill_file

if TYPE_CHECKING:
    from copilot_quant.live.engine import LiveStrategyEngine

__all__ = ["ControlRequest", "Controls"]

log = logging.getLogger(__name__)

_MAX_TEXT = 300


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """Who asks, from where, and why (both required: the journal must say)."""

    who: str
    why: str
    client: str

    @classmethod
    def parse(cls, who: str | None, why: str | None, client: str) -> ControlRequest:
        name = " ".join(str(who or "").split())[:_MAX_TEXT]
        reason = " ".join(str(why or "").split())[:_MAX_TEXT]
        if not name:
            raise ConfigError("say who you are (the 'who' field): the journal records who acted")
        if not reason:
            raise ConfigError("say why (the 'why' field): the journal records why")
        return cls(name, reason, client)

    def describe(self) -> str:
        return f"by {self.who} from {self.client}: {self.why}"


class Controls:
    """The engine's controls (see the module docstring)."""

    def __init__(self, engine: LiveStrategyEngine) -> None:
        self.engine = engine

    def _journal(self, action: str, request: ControlRequest) -> None:
        detail = f"{action} {request.describe()}"
        log.warning("console: %s", detail)
        journal = self.engine.journal
        if journal is None or journal.closed:
            return
        try:
            journal.record_event("console", detail)
        except JournalError as exc:
            log.error("console: could not journal %r: %s", detail, exc)

    def _kill_files(self) -> list[Path]:
        return self.engine.safety.kill_files()

    def halt(self, request: ControlRequest, *, flatten: bool = False) -> str:
        """Halt: cancel every open order (and close every position with ``flatten``); no new orders."""
        action = "halt and flatten" if flatten else "halt"
        self._journal(action, request)
        reason = f"console {action} {request.describe()}"
        self.engine.kill(reason, flatten=flatten)  # at once; the file below then asks for nothing more
        files = self._kill_files()
        if files:
            try:  # the durable half: a restarted engine refuses to start until it is cleared
                # (a reason's last word "flatten" would read as the marker: the suffix keeps it a reason)
                write_kill_file(files[0], f"{reason} (from the console)", flatten)
            except OSError as exc:
                log.error("console: cannot write the kill-switch file %s: %s", files[0], exc)
        return f"{action}: {reason}"

    def resume(self, request: ControlRequest) -> str:
        """Remove the kill-switch files and release the kill switch (liveness may still hold trading)."""
        self._journal("resume", request)
        for path in self._kill_files():
            clear_kill_file(path)
        released = self.engine.kill_switch.release()
        still = self.engine.halted
        said = "kill switch released" if released else "the kill switch was not engaged"
        return f"{said}; still halted: {still}" if still else said

    def cancel(self, order_id: str, request: ControlRequest) -> str:
        """Ask IB to cancel the engine's working order ``order_id``."""
        wanted = str(order_id).strip()
        order = next((o for o in self.engine.broker.get_open_orders() if str(o.order_id) == wanted), None)
        if order is None:
            raise ConfigError(f"no working order {wanted!r}; it may have filled or been cancelled already")
        self._journal(f"cancel order {wanted}", request)
        sent = self.engine.broker.cancel_order(
            order, reason=f"cancelled from the console {request.describe()}"
        )
        if not sent:
            raise ConfigError(f"the cancel of order {wanted} could not be sent (not connected?); try again")
        return f"cancel of order {wanted} sent"
