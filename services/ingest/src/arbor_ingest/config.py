"""Ingest settings, read from ``ARBOR_INGEST_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from arbor_ingest.domain.publishers import PublisherRegistry
from arbor_shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ARBOR_INGEST_")

    http_port: int = 8001
    publishers: SecretStr = Field(
        description='JSON list of {"key_id", "secret", "scopes"}: the internal '
        "systems allowed to write, each with its own key"
    )
    signature_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    rate_per_second: float = Field(
        default=50.0, gt=0, description="Requests per second per publisher"
    )
    rate_burst: int = Field(default=100, ge=1)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # Above 5,000 events one batch statement would pass PostgreSQL's limit of
    # 32,767 bind parameters.
    max_batch_events: int = Field(default=5000, ge=1, le=5000)
    idempotency_retention_hours: int = Field(
        default=7 * 24,
        ge=1,
        description="How long the answer to an Idempotency-Key is replayed",
    )
    idempotency_purge_seconds: float = Field(default=600.0, gt=0)
    stripe_webhook_secret: SecretStr | None = None
    stripe_tolerance_seconds: int = Field(default=300, ge=1, le=3600)

    @field_validator("publishers")
    @classmethod
    def _publishers_parse(cls, value: SecretStr) -> SecretStr:
        # Parsing here makes a bad key list stop the deployment at start.
        PublisherRegistry.from_json(value.get_secret_value())
        return value

    def publisher_registry(self) -> PublisherRegistry:
        return PublisherRegistry.from_json(self.publishers.get_secret_value())
