"""Publisher authentication for write routes: signature, scope, then rate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from arbor_ingest.domain.errors import RateLimitedError
from arbor_ingest.domain.publishers import Publisher, PublisherRegistry, TokenBucket
from arbor_shared.clock import Clock

KEY_ID_HEADER = "X-Arbor-Key-Id"
TIMESTAMP_HEADER = "X-Arbor-Timestamp"
SIGNATURE_HEADER = "X-Arbor-Signature"


@dataclass
class Gatekeeper:
    """Admits signed requests from known publishers within their scope and rate."""

    registry: PublisherRegistry
    limiter: TokenBucket
    tolerance_seconds: int
    wall_clock: Clock

    async def admit(self, request: Request, scope: str) -> Publisher:
        """The publisher behind ``request``; raise an IngestError otherwise."""
        # The signature covers the raw bytes, before any parsing: a body that does
        # not verify is never interpreted.
        publisher = self.registry.verify(
            key_id=request.headers.get(KEY_ID_HEADER),
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            signatures=request.headers.get(SIGNATURE_HEADER),
            body=await request.body(),
            now=int(self.wall_clock.now().timestamp()),
            tolerance=self.tolerance_seconds,
        )
        publisher.require(scope)
        wait = self.limiter.take(publisher.key_id)
        if wait:
            raise RateLimitedError(wait)
        return publisher


async def admit(request: Request, scope: str) -> Publisher:
    """The publisher behind ``request`` if it holds ``scope``; raise otherwise."""
    gatekeeper: Gatekeeper = request.app.state.gatekeeper
    return await gatekeeper.admit(request, scope)


def signed_by(scope: str) -> Callable[[Request], Awaitable[Publisher]]:
    """A dependency admitting only publishers that hold ``scope``."""

    async def dependency(request: Request) -> Publisher:
        return await admit(request, scope)

    return dependency


EVENTS_WRITE = "events:write"

EventsWriter = Annotated[Publisher, Depends(signed_by(EVENTS_WRITE))]
"""The publisher of a request that writes canonical events."""

ImportsWriter = Annotated[Publisher, Depends(signed_by("imports:write"))]
"""The publisher of a request that imports a ledger export."""
