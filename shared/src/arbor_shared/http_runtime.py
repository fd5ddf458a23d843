"""The FastAPI dependency that hands routes their service's runtime."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from arbor_shared.runtime import ServiceRuntime


async def _runtime(request: Request) -> ServiceRuntime:
    # async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool,
    # a hand-off that costs more than the lookup on every request.
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(_runtime)]
"""The service's runtime, for route functions."""
