"""Internal publishers: who may write, proven by a signed request, at what rate.

A publisher signs ``"{timestamp}.{raw body}"`` with HMAC-SHA256 under its own secret
and sends ``X-Arbor-Key-Id``, ``X-Arbor-Timestamp`` (Unix seconds) and
``X-Arbor-Signature: v1=<hex>``. Several ``v1=`` values separated by commas are
allowed so that a secret can be rotated without downtime. The timestamp bounds replay:
a request older or newer than the tolerance is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from arbor_ingest.domain.errors import AuthenticationFailedError, PermissionDeniedError

CLOCK_SCOPE = "clock:write"
"""Lets a replay or the demo simulator publish simulated time (``ClockAdvanced``)."""
SCOPES = frozenset({"events:write", "imports:write", CLOCK_SCOPE})
_KEY_ID = re.compile(r"^[\w.\-]{1,64}$")
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class Publisher:
    key_id: str
    secret: bytes = field(repr=False)
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        """Refuse the request unless this publisher holds ``scope``."""
        if scope not in self.scopes:
            raise PermissionDeniedError(
                f"publisher {self.key_id} lacks the scope {scope}"
            )


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``v1=`` signature of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


class PublisherRegistry:
    """The configured publishers, by key id."""

    def __init__(self, publishers: list[Publisher]) -> None:
        self._by_key = {p.key_id: p for p in publishers}

    @classmethod
    def from_json(cls, text: str) -> PublisherRegistry:
        """Parse the configured list; errors name the entry, never a secret."""
        try:
            entries = json.loads(text)
        except ValueError:
            raise ValueError("publishers must be a JSON list") from None
        if not isinstance(entries, list):
            raise ValueError("publishers must be a JSON list")
        publishers = [_parse(n, entry) for n, entry in enumerate(entries)]
        if len({p.key_id for p in publishers}) != len(publishers):
            raise ValueError("publishers: key ids must be unique")
        return cls(publishers)

    def verify(
        self,
        *,
        key_id: str | None,
        timestamp: str | None,
        signatures: str | None,
        body: bytes,
        now: int,
        tolerance: int,
    ) -> Publisher:
        """The publisher that signed ``body``; raise AuthenticationFailedError."""
        if not key_id or not timestamp or not signatures:
            raise AuthenticationFailedError(
                "sign the request: X-Arbor-Key-Id, X-Arbor-Timestamp and "
                "X-Arbor-Signature are required"
            )
        publisher = self._by_key.get(key_id)
        if publisher is None:
            raise AuthenticationFailedError(f"unknown key id {key_id!r}")
        if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
            raise AuthenticationFailedError(
                f"X-Arbor-Timestamp must be Unix seconds within {tolerance} s of now"
            )
        expected = signature(publisher.secret, timestamp, body)
        offered = [s.strip() for s in signatures.split(",")]
        # Every candidate is compared in full and in constant time.
        matches = [hmac.compare_digest(expected, s) for s in offered]
        if not any(matches):
            raise AuthenticationFailedError("X-Arbor-Signature does not match")
        return publisher


def _parse(n: int, entry: object) -> Publisher:
    if not isinstance(entry, dict) or set(entry) != {"key_id", "secret", "scopes"}:
        raise ValueError(f"publishers[{n}] must have exactly key_id, secret, scopes")
    key_id, secret, scopes = entry["key_id"], entry["secret"], entry["scopes"]
    if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
        raise ValueError(f"publishers[{n}].key_id must match {_KEY_ID.pattern}")
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"publishers[{n}].secret must be at least {MIN_SECRET_LENGTH} characters"
        )
    if not isinstance(scopes, list) or not set(scopes) <= SCOPES:
        raise ValueError(f"publishers[{n}].scopes must be a subset of {sorted(SCOPES)}")
    return Publisher(key_id, secret.encode(), frozenset(scopes))


class TokenBucket:
    """Per-publisher request rate: ``rate`` per second with bursts up to ``burst``.

    Held in memory, so each replica enforces its own limit.
    Known limit: the effective limit is rate times replicas. It goes away when the
    buckets move to PostgreSQL (one row per publisher, updated per request) or a
    gateway in front enforces the budget.
    """

    def __init__(
        self, *, rate: float, burst: int, monotonic: Callable[[], float]
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """Spend one token; return 0, or the seconds to wait when none is left."""
        now = self._monotonic()
        tokens, then = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - then) * self._rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self._rate
        self._buckets[key] = (tokens - 1, now)
        return 0.0
