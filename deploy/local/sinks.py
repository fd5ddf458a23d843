"""Local stand-ins for the mail relay and the SMS/letter provider under ``make run``.

Reminders are real: dunning speaks SMTP and signed HTTP to these, and they keep what
arrives in ``.local/mail/`` (a Maildir any mail client opens) and
``.local/webhooks.jsonl``, so nothing leaves the machine.
"""

from __future__ import annotations

import json
import mailbox
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Sinks:
    folder: Path
    smtp_port: int = 0
    webhook_port: int = 0
    received_mail: int = 0
    received_webhooks: int = 0
    _stoppers: list[Any] = field(default_factory=list)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._start_smtp()
        self._start_webhooks()

    def stop(self) -> None:
        for stop in reversed(self._stoppers):
            stop()

    def _start_smtp(self) -> None:
        maildir = mailbox.Maildir(self.folder / "mail", create=True)
        sinks = self

        class Handler:
            async def handle_DATA(
                self, _server: Any, _session: Any, envelope: Any
            ) -> str:
                message = BytesParser(policy=default).parsebytes(envelope.content)
                assert isinstance(message, EmailMessage)
                maildir.add(message)
                sinks.received_mail += 1
                return "250 kept locally"

        self.smtp_port = _free_port()
        controller = Controller(Handler(), hostname="127.0.0.1", port=self.smtp_port)
        controller.start()
        self._stoppers.append(controller.stop)

    def _start_webhooks(self) -> None:
        log = self.folder / "webhooks.jsonl"
        sinks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                entry = {"path": self.path, "body": body.decode(errors="replace")}
                with log.open("a") as output:
                    output.write(json.dumps(entry) + "\n")
                sinks.received_webhooks += 1
                self.send_response(202)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.webhook_port = server.server_address[1]
        self._stoppers.append(server.shutdown)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
