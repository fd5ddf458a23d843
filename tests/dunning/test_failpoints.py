"""Real crashes at the named failpoints, in a child process, with a real SMTP server."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from arbor_dunning.adapters.tables import contacts
from tests.conftest import Namespace
from tests.dunning.conftest import Harness, customer, invoice
from tests.dunning.receivers import smtp_server

COURTESY = datetime(2026, 3, 13, 8, 0, 30, tzinfo=UTC)


async def _tick_in_child(env: dict[str, str], *, failpoint: str | None) -> int:
    armed = {"ARBOR_FAILPOINTS": failpoint} if failpoint else {}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.dunning.crash_tick",
        COURTESY.isoformat(),
        env=os.environ | env | armed,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode in (0, 137), errors.decode()
    return child.returncode


@pytest.mark.parametrize(
    ("failpoint", "after_crash", "final_state"),
    [
        # Died after deciding, before the hand-over: nothing left; recovery sends it.
        ("dunning_after_claim", 0, "sent"),
        # Died after the relay took it, before recording that: never sent again.
        ("dunning_after_send", 1, "unconfirmed"),
    ],
)
async def test_crash_at_failpoint_never_duplicates_the_email(
    dunning: Harness,
    namespace: Namespace,
    failpoint: str,
    after_crash: int,
    final_state: str,
) -> None:
    await dunning.feed(customer(), invoice())
    with smtp_server() as (mailbox, port):
        env = namespace.env("dunning", "ARBOR_DUNNING_", 8003) | {
            "ARBOR_DUNNING_CLOCK": "event",
            "ARBOR_DUNNING_SMTP_HOST": "127.0.0.1",
            "ARBOR_DUNNING_SMTP_PORT": str(port),
            "ARBOR_DUNNING_MAIL_FROM": "billing@arbor.example",
            "ARBOR_DUNNING_WEBHOOK_URL": "http://127.0.0.1:9/hook",
            "ARBOR_DUNNING_WEBHOOK_SECRET": "test-secret-of-enough-length",
            "ARBOR_DUNNING_RECOVERY_LEASE_SECONDS": "0",
        }

        assert await _tick_in_child(env, failpoint=failpoint) == 137
        assert len(mailbox.messages) == after_crash
        await _tick_in_child(env, failpoint=None)

        assert len(mailbox.messages) == 1
    async with dunning.runtime.sessions() as session:
        states = (await session.scalars(sa.select(contacts.c.state))).all()
    assert states == [final_state]
