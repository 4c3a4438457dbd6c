"""Message codec of the simulated gateway: one module per message family.

Encoders return the list of fields of one outgoing message (message id first), ready for
:func:`copilot_quant.gateway.wire.encode_fields`; parsers read one incoming request from a
:class:`~copilot_quant.gateway.wire.FieldReader` positioned just after the message id. Layouts follow
``docs/tws-protocol-notes.md`` at server version 178 and are checked against ib_async's own decoder in
``tests/gateway/test_messages.py``.
"""

from copilot_quant.gateway.messages.ids import In, Out

__all__ = ["In", "Out"]
