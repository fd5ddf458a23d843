"""Topic names: the one place they are spelled.

Every billing topic is keyed by customer id so that one customer's events stay in
order (RELIABILITY P4). Each input topic has a dead-letter twin, ``<topic>.dlq``.
"""

from __future__ import annotations

CUSTOMERS = "billing.customers.v1"
INVOICES = "billing.invoices.v1"
PAYMENTS = "billing.payments.v1"
LEDGER = "billing.ledger.v1"
CASES = "collections.cases.v1"
COHORTS = "segmentation.cohorts.v1"
RISK = "segmentation.risk.v1"
DUNNING = "dunning.actions.v1"
PORTAL = "portal.activity.v1"
CLOCK = "system.clock.v1"

ALL = (
    CUSTOMERS,
    INVOICES,
    PAYMENTS,
    LEDGER,
    CASES,
    COHORTS,
    RISK,
    DUNNING,
    PORTAL,
    CLOCK,
)

DLQ_SUFFIX = ".dlq"


def dead_letter_topic(topic: str) -> str:
    """Return the dead-letter topic that belongs to ``topic``."""
    return topic + DLQ_SUFFIX


class TopicNames:
    """Resolves base topic names under an optional namespace.

    Production runs with no namespace; tests give every test its own prefix so that
    each sees fresh topics on the one shared broker.
    """

    def __init__(self, prefix: str = "") -> None:
        self._prefix = f"{prefix}." if prefix else ""

    def __call__(self, base: str) -> str:
        return self._prefix + base

    def base(self, name: str) -> str:
        """Strip the namespace from a resolved name."""
        return name.removeprefix(self._prefix)

    def all_with_dead_letters(self) -> list[str]:
        """Every topic of the system, with its dead-letter twin, resolved."""
        return [self(t) for base in ALL for t in (base, dead_letter_topic(base))]
