"""Rendering reminders from Jinja2 templates, one per template name and language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    select_autoescape,
)
from jinja2.exceptions import TemplateNotFound

from arbor_dunning.domain.policy import Incentive
from arbor_shared.money import format_amount

FALLBACK_LANGUAGE = "en"
_TEMPLATES = Path(__file__).parent / "templates"

# Plain-text messages: HTML escaping would corrupt them, so only .html escapes.
_environment = Environment(
    loader=FileSystemLoader(_TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",)),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Message:
    """One reminder as it leaves the process; ``message_id`` is its idempotency key."""

    message_id: str
    channel: str
    customer_id: str
    invoice_id: str
    recipient: str | None
    language: str
    subject: str
    body: str


@dataclass(frozen=True)
class MessageFacts:
    """What a reminder says, already in the customer's zone and currency."""

    customer_name: str
    invoice_number: str
    currency: str
    amount_minor: int
    balance_minor: int
    due_date: date
    today: date
    incentive: str | None = None
    fee_minor: int | None = None
    changes: tuple[str, ...] = ()


def render(template: str, language: str, facts: MessageFacts) -> tuple[str, str]:
    """Subject and body of ``template`` in ``language`` (English if missing)."""
    loaded = _load(template, language)
    text = loaded.render(
        customer_name=facts.customer_name,
        invoice_number=facts.invoice_number,
        amount=format_amount(facts.amount_minor, facts.currency),
        balance=format_amount(facts.balance_minor, facts.currency),
        due_date=facts.due_date.isoformat(),
        today=facts.today.isoformat(),
        incentive=facts.incentive,
        fee=format_amount(facts.fee_minor, facts.currency) if facts.fee_minor else None,
        changes=facts.changes,
    )
    first, _, body = text.partition("\n")
    return first.removeprefix("Subject: ").strip(), body.lstrip("\n")


def _load(template: str, language: str) -> Template:
    try:
        return _environment.get_template(f"{template}.{language}.txt")
    except TemplateNotFound:
        return _environment.get_template(f"{template}.{FALLBACK_LANGUAGE}.txt")


def known_templates() -> set[str]:
    """Template names with at least the fallback language."""
    suffix = f".{FALLBACK_LANGUAGE}.txt"
    return {p.name.removesuffix(suffix) for p in _TEMPLATES.glob(f"*{suffix}")}


_INCENTIVES = {
    "en": {
        "early_payment_discount": "Pay by {until} and we take {percent} % off.",
        "payment_plan_offer": "You can spread the balance over a payment plan: "
        "reply by {until} to arrange it.",
        "fee_waiver": "Pay by {until} and we waive the late fee.",
    },
    "de": {
        "early_payment_discount": "Bei Zahlung bis {until} gewähren wir "
        "{percent} % Skonto.",
        "payment_plan_offer": "Gern bieten wir Ihnen eine Ratenzahlung an: "
        "antworten Sie bis {until}.",
        "fee_waiver": "Bei Zahlung bis {until} erlassen wir die Mahngebühr.",
    },
}


def incentive_text(
    incentive: Incentive | None, language: str, valid_until: date | None
) -> str | None:
    """The offer in the customer's language, or None without one."""
    if incentive is None:
        return None
    phrases = _INCENTIVES.get(language, _INCENTIVES[FALLBACK_LANGUAGE])
    return phrases[incentive.kind].format(
        until=valid_until.isoformat() if valid_until else "-",
        percent=incentive.percent or "",
    )
