"""The late-payment model's snapshot in the database."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_segmentation.adapters.tables import models
from arbor_segmentation.domain.prediction import MODEL_VERSION, LatePaymentModel


async def load(session: AsyncSession) -> LatePaymentModel | None:
    payload = await session.scalar(
        sa.select(models.c.payload).where(models.c.name == MODEL_VERSION)
    )
    return LatePaymentModel.load(payload) if payload else None


async def save(session: AsyncSession, model: LatePaymentModel, at: datetime) -> None:
    values = {"payload": model.dump(), "examples": model.examples, "saved_at": at}
    await session.execute(
        insert(models)
        .values(name=MODEL_VERSION, **values)
        .on_conflict_do_update(index_elements=[models.c.name], set_=values)
    )
