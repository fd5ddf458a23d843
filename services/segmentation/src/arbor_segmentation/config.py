"""Segmentation settings, read from ``ARBOR_SEGMENTATION_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from arbor_shared.settings import ServiceSettings


class SegmentationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ARBOR_SEGMENTATION_")

    http_port: int = 8002
    timer_poll_seconds: float = Field(default=1.0, gt=0)
    timer_batch_size: int = Field(default=200, ge=1)
    rescore_batch_size: int = Field(default=500, ge=1)
    rescore_poll_seconds: float = Field(default=0.5, gt=0)
    model_save_seconds: float = Field(default=10.0, gt=0)
    preview_sample_size: int = Field(default=5, ge=0, le=50)
