"""Handing messages over: e-mail through SMTP, SMS and letters through a webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
import httpx

from arbor_dunning.adapters.messages import Message
from arbor_dunning.config import DunningSettings

logger = logging.getLogger(__name__)


class DeliveryRefusedError(Exception):
    """The transport said no before taking the message: retrying cannot duplicate."""


class Sender(Protocol):
    async def send(self, message: Message) -> None:
        """Hand ``message`` over, or raise; DeliveryRefusedError means not taken."""


class SmtpSender:
    """E-mail through the configured relay, with the contact's Message-ID."""

    def __init__(self, settings: DunningSettings) -> None:
        self._settings = settings

    async def send(self, message: Message) -> None:
        if not message.recipient:
            raise DeliveryRefusedError("the customer has no e-mail address")
        s = self._settings
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        try:
            await aiosmtplib.send(
                _email(message, s.mail_from),
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=password,
                start_tls=s.smtp_starttls,
                timeout=s.smtp_timeout_seconds,
            )
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPResponseException) as exc:
            # The relay refused or was unreachable: it did not accept the message.
            raise DeliveryRefusedError(repr(exc)) from exc


def _email(message: Message, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.recipient
    email["Subject"] = message.subject
    email["Message-ID"] = f"<{message.message_id}@arbor-dunning>"
    email["Content-Language"] = message.language
    email.set_content(message.body)
    return email


class WebhookSender:
    """SMS and letters: a signed POST the provider deduplicates by Idempotency-Key."""

    def __init__(self, settings: DunningSettings) -> None:
        self._url = settings.webhook_url
        self._secret = settings.webhook_secret.get_secret_value().encode()
        self._timeout = settings.webhook_timeout_seconds

    async def send(self, message: Message) -> None:
        body = json.dumps(
            {
                "message_id": message.message_id,
                "channel": message.channel,
                "customer_id": message.customer_id,
                "invoice_id": message.invoice_id,
                "language": message.language,
                "subject": message.subject,
                "body": message.body,
            },
            separators=(",", ":"),
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.message_id,
            "X-Arbor-Timestamp": timestamp,
            "X-Arbor-Signature": "v1=" + sign(self._secret, timestamp, body),
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(self._url, content=body, headers=headers)
                response.raise_for_status()
        except httpx.HTTPError as exc:
            # The provider deduplicates by Idempotency-Key, so any failure is safe to
            # retry with the same key.
            raise DeliveryRefusedError(repr(exc)) from exc


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp.body``, hex: what the provider recomputes."""
    return hmac.new(
        secret, timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()


class ChannelSenders:
    """Picks the sender for a channel."""

    def __init__(self, email: Sender, webhook: Sender) -> None:
        self._email = email
        self._webhook = webhook

    def for_channel(self, channel: str) -> Sender:
        return self._email if channel == "email" else self._webhook

    @staticmethod
    def retry_is_safe(channel: str) -> bool:
        """Whether an interrupted hand-over may be repeated without a duplicate."""
        return channel != "email"
