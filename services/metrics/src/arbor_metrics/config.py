"""Metrics settings, read from ``ARBOR_METRICS_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from arbor_shared.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ARBOR_METRICS_")

    http_port: int = 8004
    grace_days: int = Field(
        default=0, ge=0, le=90, description="Days after due still counted on time"
    )
    gauge_window_days: int = Field(
        default=30, ge=1, le=3660, description="Window of the windowed gauges"
    )
    gauge_refresh_seconds: float = Field(default=15.0, gt=0, le=3600)
