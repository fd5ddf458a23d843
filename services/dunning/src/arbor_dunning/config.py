"""Dunning settings, read from ``ARBOR_DUNNING_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from arbor_shared.settings import ServiceSettings


class DunningSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ARBOR_DUNNING_")

    http_port: int = 8003

    # The mail relay and the SMS/letter provider are environment-specific: no defaults.
    smtp_host: str = Field(min_length=1)
    smtp_port: int = Field(ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    mail_from: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    webhook_url: str = Field(pattern=r"^https?://")
    webhook_secret: SecretStr = Field(min_length=16)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)

    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = Field(default=1.0, gt=0)
    scheduler_batch_size: int = Field(default=100, ge=1)
    # A contact left half-done this long ago belongs to a replica that died.
    recovery_lease_seconds: float = Field(default=60.0, ge=0)
    max_delivery_attempts: int = Field(default=5, ge=1)
    seed_cohorts: tuple[str, ...] = ("default",)
