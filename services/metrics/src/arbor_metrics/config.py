"""Metrics settings, read from ``ARBOR_METRICS_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from arbor_shared.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ARBOR_METRICS_")

    http_port: int = 8004
