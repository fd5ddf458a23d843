"""The HTTP surface every service shares: probes, metrics, errors, limits, tracing."""

from __future__ import annotations

import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    MutableMapping,
    Sequence,
)
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Response, status
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arbor_shared.auth import TokenVerifier
from arbor_shared.http_runtime import Runtime
from arbor_shared.kafka.classify import is_transient
from arbor_shared.operations import router as operations_router
from arbor_shared.runtime import ServiceRuntime

logger = logging.getLogger(__name__)

Hook = Callable[[ServiceRuntime], Awaitable[None]]

_UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in _UNTRACED_PATHS


# One server span per request, with the caller's W3C trace context as its parent.
# FastAPI's own names it after the route its router selected; the contrib
# instrumentation matched every route a second time for the name and, with its
# attributes and middleware layers, cost twice as much CPU per request. The
# dependency, endpoint and serialization child spans are off: they say nothing
# the server span does not. HTTP metrics are Prometheus's, logs go to stdout.
_SERVER_SPANS: TelemetryConfig = {
    "tracing": True,
    "operation_spans": False,
    "metrics": False,
    "logs": False,
    "exclude": _untraced,
}


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter] = (),
    on_start: Sequence[Hook] = (),
    on_stop: Sequence[Hook] = (),
    max_body_bytes: int = 1_048_576,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """A FastAPI app with the runtime started in its lifespan and the probes mounted.

    Server spans go to ``tracer_provider``, the process-wide provider by default.
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        for hook in on_start:
            await hook(runtime)
        yield
        for hook in on_stop:
            await hook(runtime)
        await runtime.stop()

    app = FastAPI(
        title=title,
        description=description,
        lifespan=lifespan,
        version="0.1.0",
        telemetry=_SERVER_SPANS | {"tracer_provider": tracer_provider},
    )
    app.state.runtime = runtime
    settings = runtime.settings
    app.state.token_verifier = TokenVerifier(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        jwks_url=settings.oidc_jwks_url,
    )
    app.include_router(_probes(runtime))
    app.include_router(operations_router)
    for router in routers:
        app.include_router(router)
    app.add_middleware(TransientFailuresAs503)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    # The instrumentation declares support up to SQLAlchemy 2.0 only; the engine
    # events it hooks are unchanged in 2.1, so its version gate is skipped.
    SQLAlchemyInstrumentor().instrument(
        engine=runtime.engine.sync_engine, skip_dep_check=True
    )
    # Its span for every pool checkout ("connect") tells nothing the statement
    # spans do not, and cost each single-event transaction more than its COPY.
    unwrap(Engine, "connect")
    return app


def _probes(runtime: ServiceRuntime) -> APIRouter:
    router = APIRouter(tags=["probes"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(response: Response) -> dict[str, Any]:
        """Database and broker reachable and every consumer assigned partitions."""
        checks = await runtime.check_ready()
        ready = all(checks.values())
        if not ready:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "ready" if ready else "not ready", "checks": checks}

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(
            generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    return router


class TransientFailuresAs503:
    """Answers 503 when the database or broker is unavailable, never a 2xx or 500.

    A database or broker outage must never look like success (RELIABILITY F8/F9):
    the caller is told to retry. Anything else is a bug and reaches the server's
    error handler, which logs it once and answers 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if not is_transient(exc):
                raise
            logger.warning(
                "%s %s unavailable, answered 503: %r",
                scope["method"],
                scope["path"],
                exc,
            )
            response = JSONResponse(
                {"detail": "temporarily unavailable, retry later"},
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "1"},
            )
            await response(scope, _no_receive, send)


class BodySizeLimit:
    """Refuses request bodies over ``max_bytes`` with 413, even when chunked."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _BodyTooLargeError
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLargeError:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body exceeds {self.max_bytes} bytes"},
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
        )
        await response({"type": "http"}, _no_receive, send)


class _BodyTooLargeError(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


__all__ = ["Runtime", "create_service_app"]
