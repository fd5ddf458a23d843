"""The FastAPI dependency that hands routes their service's runtime."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from arbor_shared.runtime import ServiceRuntime


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(_runtime)]
"""The service's runtime, for route functions."""
