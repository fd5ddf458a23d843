"""Portal settings, read from ``ARBOR_PORTAL_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from arbor_shared.settings import ServiceSettings


class PortalSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ARBOR_PORTAL_")

    http_port: int = 8005
    rate_limit_per_second: float = Field(
        default=20.0, gt=0, description="Sustained requests per customer per replica"
    )
    rate_limit_burst: int = Field(default=40, ge=1)
    max_page_size: int = Field(default=100, ge=1, le=500)
    max_body_bytes: int = Field(default=32_768, ge=1024)
    promise_horizon_days: int = Field(
        default=90, ge=1, description="How far ahead a promise to pay may be dated"
    )
