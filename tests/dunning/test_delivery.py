"""The transports against real local servers: SMTP and a signed webhook."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import pytest

from arbor_dunning.adapters.messages import Message
from arbor_dunning.adapters.senders import (
    DeliveryRefusedError,
    SmtpSender,
    WebhookSender,
)
from tests.conftest import Namespace
from tests.dunning.conftest import dunning_settings
from tests.dunning.receivers import WebhookReceiver, free_port, smtp_server

MESSAGE = Message(
    message_id="5a7c0f0e-0000-5000-8000-000000000001",
    channel="sms",
    customer_id="cus-1",
    invoice_id="inv-1",
    recipient="cus-1@example.com",
    language="en",
    subject="Invoice N-1 is due today",
    body="Please pay 1,200.00 EUR.",
)


async def test_email_reaches_the_smtp_server_with_its_message_id(
    namespace: Namespace,
) -> None:
    with smtp_server() as (mailbox, port):
        sender = SmtpSender(dunning_settings(namespace, smtp_port=port))
        await sender.send(MESSAGE)

    [mail] = mailbox.messages
    assert mail["To"] == "cus-1@example.com"
    assert mail["Message-ID"] == f"<{MESSAGE.message_id}@arbor-dunning>"
    assert mail["Subject"] == "Invoice N-1 is due today"
    assert "1,200.00 EUR" in str(mail.get_payload())


async def test_unreachable_relay_is_a_refusal_safe_to_retry(
    namespace: Namespace,
) -> None:
    sender = SmtpSender(dunning_settings(namespace, smtp_port=free_port()))

    with pytest.raises(DeliveryRefusedError):
        await sender.send(MESSAGE)


async def test_webhook_is_signed_over_timestamp_and_body(namespace: Namespace) -> None:
    receiver = WebhookReceiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = dunning_settings(namespace, webhook_url=f"http://127.0.0.1:{port}/sms")

    async with server:
        await WebhookSender(settings).send(MESSAGE)

    [(headers, body)] = receiver.requests
    secret = settings.webhook_secret.get_secret_value().encode()
    expected = hmac.new(
        secret, headers["x-arbor-timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers["x-arbor-signature"] == f"v1={expected}"
    assert headers["idempotency-key"] == MESSAGE.message_id
    assert json.loads(body)["body"] == "Please pay 1,200.00 EUR."


async def test_webhook_error_status_is_a_refusal(namespace: Namespace) -> None:
    receiver = WebhookReceiver(status=503)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = dunning_settings(namespace, webhook_url=f"http://127.0.0.1:{port}/sms")

    async with server:
        with pytest.raises(DeliveryRefusedError):
            await WebhookSender(settings).send(MESSAGE)
