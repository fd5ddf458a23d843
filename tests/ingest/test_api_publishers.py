"""Publisher keys, request signatures and the rate limit, on plain values."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from arbor_ingest.domain.errors import AuthenticationFailedError, PermissionDeniedError
from arbor_ingest.domain.publishers import PublisherRegistry, TokenBucket
from arbor_ingest.signing import sign

SECRET = "s" * 40


def registry(*entries: dict[str, object]) -> PublisherRegistry:
    return PublisherRegistry.from_json(json.dumps(list(entries)))


def entry(
    key_id: str = "erp", secret: str = SECRET, scopes: object = None
) -> dict[str, object]:
    return {"key_id": key_id, "secret": secret, "scopes": scopes or ["events:write"]}


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    now = datetime(2024, 3, 1, 12, tzinfo=UTC)

    headers = sign(b'{"a":1}', "erp", SECRET, now)

    timestamp = str(int(now.timestamp()))
    digest = hmac.new(
        SECRET.encode(), f"{timestamp}.".encode() + b'{"a":1}', hashlib.sha256
    )
    assert headers == {
        "X-Arbor-Key-Id": "erp",
        "X-Arbor-Timestamp": timestamp,
        "X-Arbor-Signature": "v1=" + digest.hexdigest(),
    }


def test_verified_publisher_carries_its_scopes() -> None:
    keys = registry(entry(scopes=["imports:write"]))
    now = datetime(2024, 3, 1, tzinfo=UTC)
    headers = sign(b"body", "erp", SECRET, now)

    publisher = keys.verify(
        key_id=headers["X-Arbor-Key-Id"],
        timestamp=headers["X-Arbor-Timestamp"],
        signatures=headers["X-Arbor-Signature"],
        body=b"body",
        now=int(now.timestamp()) + 300,
        tolerance=300,
    )

    publisher.require("imports:write")
    with pytest.raises(PermissionDeniedError):
        publisher.require("events:write")


@pytest.mark.parametrize("timestamp", ["", "-5", "12.5", "1709251200x"])
def test_malformed_timestamps_are_refused(timestamp: str) -> None:
    keys = registry(entry())

    with pytest.raises(AuthenticationFailedError):
        keys.verify(
            key_id="erp",
            timestamp=timestamp,
            signatures="v1=00",
            body=b"",
            now=1709251200,
            tolerance=300,
        )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([entry(secret="short")], "at least 32 characters"),
        ([entry(scopes=["admin"])], "subset of"),
        ([entry(), entry()], "unique"),
        ([entry() | {"extra": 1}], "exactly key_id, secret, scopes"),
        ([entry(key_id="has space")], "key_id must match"),
    ],
)
def test_bad_publisher_lists_stop_the_start_without_showing_secrets(
    bad: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        PublisherRegistry.from_json(json.dumps(bad))

    assert SECRET not in str(caught.value)


def test_publisher_list_must_be_json() -> None:
    with pytest.raises(ValueError, match="JSON list"):
        PublisherRegistry.from_json("erp:secret")


def test_token_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, monotonic=lambda: now[0])

    assert [bucket.take("erp") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("erp") == pytest.approx(0.5)
    assert bucket.take("other") == 0.0
    now[0] = 0.5
    assert bucket.take("erp") == 0.0
    assert bucket.take("erp") == pytest.approx(0.5)
