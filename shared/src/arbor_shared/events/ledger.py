"""Facts derived by the receivables ledger in ingest: the only source of balances.

Downstream services consume these instead of re-deriving settlement, so every service
agrees on when an invoice was paid and what is still open.
"""

from __future__ import annotations

from typing import Literal

from arbor_shared import topics
from arbor_shared.events.base import (
    CalendarDate,
    EventData,
    Identifier,
    Instant,
    MinorUnits,
    SignedMinorUnits,
)
from arbor_shared.money import Currency

InvoiceStatus = Literal["open", "settled", "voided", "written_off"]
SettledBy = Literal["payment", "credit", "write_off", "void"]


class InvoiceBalanceChanged(EventData):
    """The invoice's balance after one ledger movement, with every component."""

    event_type = "InvoiceBalanceChanged"
    topic = topics.LEDGER

    invoice_id: Identifier
    currency: Currency
    issue_date: CalendarDate
    due_date: CalendarDate
    amount_minor: MinorUnits
    paid_minor: MinorUnits
    credited_minor: MinorUnits
    written_off_minor: MinorUnits
    balance_minor: SignedMinorUnits
    status: InvoiceStatus
    cause_event_id: str
    cause_event_type: str
    changed_at: Instant


class InvoiceSettled(EventData):
    """The balance reached zero; ``settled_at`` is that moment."""

    event_type = "InvoiceSettled"
    topic = topics.LEDGER

    invoice_id: Identifier
    currency: Currency
    issue_date: CalendarDate
    due_date: CalendarDate
    amount_minor: MinorUnits
    paid_minor: MinorUnits
    credited_minor: MinorUnits
    written_off_minor: MinorUnits
    settled_by: SettledBy
    settled_at: Instant
    settled_date: CalendarDate


class InvoiceReopened(EventData):
    """A settled invoice owes money again (a refund or an upward adjustment)."""

    event_type = "InvoiceReopened"
    topic = topics.LEDGER

    invoice_id: Identifier
    currency: Currency
    balance_minor: MinorUnits
    reopened_at: Instant


class CustomerBalanceChanged(EventData):
    """The customer's open balance and unapplied cash in one currency."""

    event_type = "CustomerBalanceChanged"
    topic = topics.LEDGER

    currency: Currency
    open_balance_minor: SignedMinorUnits
    unapplied_cash_minor: MinorUnits
    changed_at: Instant
