"""The settings every service shares; each service subclasses with its own prefix.

Nothing environment-specific has a default: a deployment that forgets the database or
the broker fails at start instead of talking to the wrong one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """How to reach the broker; SASL and TLS for managed clusters such as Strimzi."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    bootstrap: str = Field(min_length=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    topic_prefix: str = ""
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    max_poll_records: int = Field(default=500, ge=1)
    session_timeout_ms: int = Field(default=20_000, ge=1_000)
    request_timeout_ms: int = Field(default=30_000, ge=1_000)


class ServiceSettings(BaseSettings):
    """Settings common to every service; subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", env_nested_delimiter="__"
    )

    database_url: SecretStr
    database_schema: str = Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    database_pool_size: int = Field(default=10, ge=1)
    kafka: KafkaSettings
    clock: Literal["wall", "event"] = "wall"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    otlp_endpoint: str | None = None
    oidc_issuer: str = Field(min_length=1)
    oidc_audience: str = Field(min_length=1)
    oidc_jwks_url: str = Field(min_length=1, description="https:// or file://")
    http_host: str = "127.0.0.1"
    http_port: int = Field(ge=1, le=65535)
    relay_batch_size: int = Field(default=1000, ge=1)
    consumers_enabled: bool = True
