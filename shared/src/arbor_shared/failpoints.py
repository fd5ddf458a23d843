"""Named crash points for fault-injection tests (RELIABILITY.md).

``ARBOR_FAILPOINTS=after_commit,relay_after_ack`` makes the process exit hard, with no
cleanup, the first time it reaches one of the named points. Production never sets it.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

_EXIT_CODE = 137


def _armed() -> frozenset[str]:
    return frozenset(filter(None, os.environ.get("ARBOR_FAILPOINTS", "").split(",")))


_ARMED = _armed()


def failpoint(name: str) -> None:
    """Exit the process immediately if the failpoint ``name`` is armed."""
    if name in _ARMED:
        logger.critical("failpoint %s reached: exiting hard", name)
        os._exit(_EXIT_CODE)
