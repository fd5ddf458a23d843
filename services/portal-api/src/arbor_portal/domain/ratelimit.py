"""Per-customer token buckets, kept in the memory of one replica.

Each replica enforces the limit on its own, so with N replicas behind a load balancer a
customer can reach at most N times the configured rate; that bound is accepted because
the limit protects the database from one noisy account, not billing from fraud.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

MAX_TRACKED = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allows ``rate`` requests per second per key with bursts up to ``burst``."""

    def __init__(self, *, rate: float, burst: int, max_tracked: int = MAX_TRACKED):
        self._rate = rate
        self._burst = float(burst)
        self._max_tracked = max_tracked
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def acquire(self, key: str, now: float) -> float:
        """Take one token for ``key``; return 0 if allowed, else seconds to wait."""
        bucket = self._bucket(key, now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=self._burst, updated=now)
            self._buckets[key] = bucket
            # Forgetting the least recently seen customer only gives it a full
            # bucket again, which is what an idle customer would have anyway.
            if len(self._buckets) > self._max_tracked:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket


def retry_after_seconds(wait: float) -> int:
    """The ``Retry-After`` value for a wait: whole seconds, at least one."""
    return max(1, math.ceil(wait))
