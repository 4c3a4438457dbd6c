"""The live tests' gateway fixtures, reused as they are."""

from tests.live.conftest import (
    _journal_in_tmp,
    _no_leaked_ib_threads,
    feed,
    gateway,
    gateway_factory,
)

__all__ = ["_journal_in_tmp", "_no_leaked_ib_threads", "feed", "gateway", "gateway_factory"]
