"""Running the real ``arbor`` app against services served on a loopback port."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner, Result

from arbor_cli.main import app
from tests.support import eventually

# Wide enough that Rich neither truncates a table cell nor wraps a JSON line.
_WIDE = {"COLUMNS": "400"}
_BOX_DRAWING = re.compile(r"[\u2500-\u257f]")
_START_SECONDS = 30.0


async def arbor(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    """Invoke ``arbor args`` as an operator would, off the test's event loop."""
    # The commands block on HTTP or call asyncio.run; on the loop they would stall
    # the services served from it, or refuse to start inside a running loop.
    runner, environment = CliRunner(), {**_WIDE, **(env or {})}
    return await asyncio.to_thread(
        lambda: runner.invoke(app, list(args), env=environment)
    )


def said(result: Result) -> str:
    """Everything the command printed, without panel borders or line breaks."""
    text = _BOX_DRAWING.sub(" ", result.stdout + result.stderr)
    return " ".join(text.split())


def printed_json(result: Result) -> Any:
    """The JSON document a successful command printed."""
    assert result.exit_code == 0, said(result)
    return json.loads(result.stdout)


@asynccontextmanager
async def serving(service: FastAPI) -> AsyncIterator[str]:
    """Serve ``service`` over HTTP on a free loopback port; yield its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # The caller runs the lifespan (runtime, consumers) on this loop, as the other
    # suites do; uvicorn only answers requests.
    config = uvicorn.Config(service, lifespan="off", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        await eventually(lambda: _started(server), timeout=_START_SECONDS)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()


async def _started(server: uvicorn.Server) -> bool:
    return server.started
