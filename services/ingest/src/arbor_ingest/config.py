"""Ingest settings, read from ``ARBOR_INGEST_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from arbor_shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ARBOR_INGEST_")

    http_port: int = 8001
