"""Signing requests to ingest, for publishers, the simulator, the CLI and tests."""

from __future__ import annotations

from datetime import datetime

from arbor_ingest.domain.publishers import signature


def sign(body: bytes, key_id: str, secret: str, now: datetime) -> dict[str, str]:
    """The headers that authenticate ``body`` as sent by ``key_id`` at ``now``."""
    timestamp = str(int(now.timestamp()))
    return {
        "X-Arbor-Key-Id": key_id,
        "X-Arbor-Timestamp": timestamp,
        "X-Arbor-Signature": signature(secret.encode(), timestamp, body),
    }
