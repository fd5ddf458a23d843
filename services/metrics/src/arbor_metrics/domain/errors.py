"""The one error base of the metrics service, mapped to HTTP in one place."""

from __future__ import annotations


class MetricsError(Exception):
    """A request the KPI rules cannot answer; the message names the bad value."""


class InvalidQueryError(MetricsError):
    """The KPI query contradicts itself (a window that ends before it starts)."""
