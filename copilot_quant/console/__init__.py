"""The operations console: a web page to watch (and, next to a running engine, control) live trading.

``copilot-quant live … --console PORT`` serves it from the engine's process, with controls (cancel, halt,
halt and flatten, resume); ``copilot-quant console --journal-dir DIR --account ACCOUNT`` serves it read-only
over an account's journal. See :mod:`copilot_quant.console.server` and the README's Console section.
"""

from copilot_quant.console.security import ConsoleToken, load_or_create_token
from copilot_quant.console.server import ConsoleServer, ServeOptions

__all__ = ["ConsoleServer", "ConsoleToken", "ServeOptions", "load_or_create_token"]
