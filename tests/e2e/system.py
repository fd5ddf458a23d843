"""All five services as real processes in one namespace, with local mail and webhooks.

The whole system runs in event-clock mode: time moves only with the ``ClockAdvanced``
ticks the tests publish through ingest, as the demo simulator does.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiosmtpd.controller import Controller

from arbor_ingest.signing import sign
from tests.conftest import Namespace
from tests.e2e.conftest import MODULES, PREFIXES
from tests.e2e.processes import ServiceProcess, free_port

KEY_ID = "test-billing-engine"
SECRET = "test-only-secret-that-moves-the-clock-0001"
PUBLISHERS = json.dumps(
    [
        {
            "key_id": KEY_ID,
            "secret": SECRET,
            "scopes": ["events:write", "imports:write", "clock:write"],
        }
    ]
)


@dataclass
class Mailbox:
    """What the local SMTP server received."""

    messages: list[EmailMessage] = field(default_factory=list)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


@dataclass
class System:
    services: dict[str, ServiceProcess]
    mailbox: Mailbox

    def url(self, service: str) -> str:
        return self.services[service].url

    async def publish(self, *events: dict[str, Any]) -> None:
        """Send canonical events through ingest as the billing engine."""
        body = orjson.dumps({"events": list(events)})
        headers = sign(body, KEY_ID, SECRET, datetime.now(UTC))
        headers["Content-Type"] = "application/json"
        async with httpx.AsyncClient(base_url=self.url("ingest"), timeout=30) as http:
            response = await http.post(
                "/v1/events:batch", content=body, headers=headers
            )
        response.raise_for_status()
        rejected = [r for r in response.json()["results"] if r["status"] == "rejected"]
        assert not rejected, rejected

    async def tick(self, moment: str) -> None:
        """Advance simulated time for every service to ``moment`` (ISO, with offset)."""
        await self.publish(
            {
                "id": "tick-" + re.sub(r"[^\w.:\-]", "_", moment),
                "type": "ClockAdvanced",
                "data": {"now": moment},
            }
        )


@contextmanager
def smtp_server(mailbox: Mailbox) -> Iterator[int]:
    class Handler:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
            message = BytesParser(policy=default).parsebytes(envelope.content)
            assert isinstance(message, EmailMessage)
            mailbox.messages.append(message)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@contextmanager
def webhook_sink() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(202)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _extra(service: str, smtp_port: int, webhook_port: int) -> dict[str, str]:
    if service == "ingest":
        return {"ARBOR_INGEST_PUBLISHERS": PUBLISHERS}
    if service == "dunning":
        return {
            "ARBOR_DUNNING_SMTP_HOST": "127.0.0.1",
            "ARBOR_DUNNING_SMTP_PORT": str(smtp_port),
            "ARBOR_DUNNING_MAIL_FROM": "collections@arbor.test",
            "ARBOR_DUNNING_WEBHOOK_URL": f"http://127.0.0.1:{webhook_port}/send",
            "ARBOR_DUNNING_WEBHOOK_SECRET": "test-only-webhook-secret",
        }
    return {}


@contextmanager
def running_system(namespace: Namespace, logs: Path) -> Iterator[System]:
    """Migrate and start the five services; stop them all at the end."""
    mailbox = Mailbox()
    with ExitStack() as stack:
        smtp_port = stack.enter_context(smtp_server(mailbox))
        webhook_port = stack.enter_context(webhook_sink())
        services: dict[str, ServiceProcess] = {}
        for name, prefix in PREFIXES.items():
            env = namespace.env(name, prefix, free_port()) | {
                f"{prefix}CLOCK": "event",
                f"{prefix}LOG_FORMAT": "console",
                **_extra(name, smtp_port, webhook_port),
            }
            process = ServiceProcess(
                MODULES[name], env, int(env[f"{prefix}HTTP_PORT"]), logs / f"{name}.log"
            )
            process.migrate()
            process.start()
            stack.callback(process.stop)
            services[name] = process
        yield System(services, mailbox)
