"""Exponential backoff with jitter for retrying transient failures."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``base`` up to ``cap`` seconds, with full jitter."""

    def __init__(self, base: float = 0.1, cap: float = 10.0) -> None:
        self._base = base
        self._cap = cap
        self._attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self._cap, self._base * 2**self._attempt)
        self._attempt += 1
        # Jitter spreads replicas that failed together; it is not security-relevant.
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311

    def reset(self) -> None:
        self._attempt = 0

    @property
    def attempts(self) -> int:
        return self._attempt
