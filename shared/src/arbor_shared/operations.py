"""Dead-letter review over HTTP, mounted on every service for operators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from arbor_shared.auth import Operator
from arbor_shared.http_runtime import Runtime
from arbor_shared.kafka.dead_letters import read_dead_letters, redrive
from arbor_shared.topics import ALL, dead_letter_topic

router = APIRouter(
    prefix="/v1/ops/dead-letters",
    tags=["operations"],
    responses={
        400: {"description": "The body is not valid JSON"},
        401: {"description": "Missing or invalid bearer token"},
        403: {"description": "The operator role is required"},
        413: {"description": "The body exceeds the service's size limit"},
    },
)

SourceTopic = Annotated[
    str, Query(description="a source topic, e.g. billing.ledger.v1", examples=[ALL[3]])
]


class DeadLetterRead(BaseModel):
    partition: int
    offset: int
    event_type: str
    consumer: str
    reason: str
    error: str
    source: str


class RedriveCreate(BaseModel):
    """Which letters of ``topic`` to send back; the consumer must be this service's."""

    topic: str
    offsets: list[str] = Field(
        min_length=1, max_length=10_000, examples=[["2:118", "0:7"]]
    )


class RedriveRead(BaseModel):
    redriven: int


def _dlq(runtime: Runtime, topic: str, where: str = "query") -> str:
    if topic not in ALL:
        # Shaped like FastAPI's own 422 body, which is what the OpenAPI declares.
        problem = {"loc": [where, "topic"], "msg": f"unknown topic {topic!r}"}
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, [problem | {"type": "value_error"}]
        )
    return runtime.topics(dead_letter_topic(topic))


@router.get("")
async def list_dead_letters(
    runtime: Runtime, _operator: Operator, topic: SourceTopic
) -> list[DeadLetterRead]:
    """Dead letters of a topic that this service's consumers refused, with reasons."""
    letters = await read_dead_letters(runtime.settings.kafka, _dlq(runtime, topic))
    own = f"{runtime.service}."
    return [
        DeadLetterRead(
            partition=d.partition,
            offset=d.offset,
            event_type=d.event_type,
            consumer=d.consumer,
            reason=d.reason,
            error=d.error,
            source=d.source,
        )
        for d in letters
        if d.consumer.startswith(own)
    ]


@router.post(":redrive")
async def redrive_dead_letters(
    runtime: Runtime, _operator: Operator, request: RedriveCreate
) -> RedriveRead:
    """Send chosen letters back to this service's consumer, after a fix."""
    letters = await read_dead_letters(
        runtime.settings.kafka, _dlq(runtime, request.topic, "body")
    )
    wanted = set(request.offsets)
    chosen = [
        d
        for d in letters
        if f"{d.partition}:{d.offset}" in wanted
        and d.consumer.startswith(f"{runtime.service}.")
    ]
    if len(chosen) != len(wanted):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "some offsets name no dead letter of this service in that topic",
        )
    return RedriveRead(redriven=await redrive(runtime.settings.kafka, chosen))
