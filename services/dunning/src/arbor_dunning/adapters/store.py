"""Reading and locking dunning's rows; the SQL the handlers and scheduler share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_dunning.adapters.policy_document import PolicyDocument
from arbor_dunning.adapters.tables import (
    contacts,
    customers,
    invoices,
    policies,
    steps,
)
from arbor_dunning.domain.calendar import WEEK, Locale
from arbor_dunning.domain.policy import DEFAULT_COHORT, Policy, default_policy

# Contacts in these states count as made (or possibly made) for caps and hand-over.
CONTACTED = ("decided", "sending", "sent", "unconfirmed")


@dataclass(frozen=True)
class Customer:
    customer_id: str
    name: str
    email: str | None
    language: str
    preferred_channel: str
    cohort: str
    locale: Locale


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    customer_id: str
    number: str | None
    currency: str
    amount_minor: int
    balance_minor: int
    due_date: date
    status: str
    hold: str | None
    planned: bool
    contacted: bool

    @property
    def collectable(self) -> bool:
        """Open, owing money and not on hold: the only state that is dunned."""
        return self.status == "open" and self.balance_minor > 0 and not self.hold


async def get_customer(session: AsyncSession, customer_id: str) -> Customer | None:
    row = (
        await session.execute(
            sa.select(customers).where(customers.c.customer_id == customer_id)
        )
    ).one_or_none()
    if row is None or row.time_zone is None:
        return None
    return Customer(
        row.customer_id,
        row.name,
        row.email,
        row.language,
        row.preferred_channel,
        row.cohort,
        Locale(row.time_zone, row.country),
    )


async def lock_invoice(session: AsyncSession, invoice_id: str) -> Invoice | None:
    """The invoice, locked for this transaction (serialises against the scheduler)."""
    row = (
        await session.execute(
            sa.select(invoices)
            .where(invoices.c.invoice_id == invoice_id)
            .with_for_update()
        )
    ).one_or_none()
    return _invoice(row) if row is not None else None


def _invoice(row: sa.Row[tuple[object, ...]]) -> Invoice:
    m = row._mapping
    return Invoice(**{name: m[name] for name in Invoice.__dataclass_fields__})


async def open_invoice_ids(session: AsyncSession, customer_id: str) -> list[str]:
    return list(
        (
            await session.scalars(
                sa.select(invoices.c.invoice_id).where(
                    invoices.c.customer_id == customer_id,
                    invoices.c.status == "open",
                )
            )
        ).all()
    )


async def policy_for(session: AsyncSession, cohort: str) -> Policy:
    """The newest policy of ``cohort``, else of the default cohort, else the seed."""
    for name in (cohort, DEFAULT_COHORT):
        row = (
            await session.execute(
                sa.select(policies.c.version, policies.c.document)
                .where(policies.c.cohort == name)
                .order_by(policies.c.version.desc())
                .limit(1)
            )
        ).one_or_none()
        if row is not None:
            document = PolicyDocument.model_validate(row.document, strict=False)
            return document.to_policy(name, row.version)
    return default_policy()


async def policy_by_version(session: AsyncSession, version: int) -> Policy | None:
    row = (
        await session.execute(
            sa.select(policies.c.cohort, policies.c.document).where(
                policies.c.version == version
            )
        )
    ).one_or_none()
    if row is None:
        return default_policy() if version == 1 else None
    document = PolicyDocument.model_validate(row.document, strict=False)
    return document.to_policy(row.cohort, version)


async def recent_contacts(
    session: AsyncSession, customer_id: str, now: datetime
) -> list[datetime]:
    """When the customer was contacted on any channel in the week before ``now``."""
    return list(
        (
            await session.scalars(
                sa.select(contacts.c.decided_at).where(
                    contacts.c.customer_id == customer_id,
                    contacts.c.channel != "task",
                    contacts.c.state.in_(CONTACTED),
                    contacts.c.decided_at > now - WEEK,
                )
            )
        ).all()
    )


async def last_contacted_offset(session: AsyncSession, invoice_id: str) -> int | None:
    """The furthest step offset already contacted for the invoice, if any."""
    offset: int | None = await session.scalar(
        sa.select(sa.func.max(steps.c.offset_days))
        .select_from(
            steps.join(
                contacts,
                sa.and_(
                    contacts.c.invoice_id == steps.c.invoice_id,
                    contacts.c.policy_version == steps.c.policy_version,
                    contacts.c.step == steps.c.step,
                ),
            )
        )
        .where(steps.c.invoice_id == invoice_id, contacts.c.state.in_(CONTACTED))
    )
    return offset
