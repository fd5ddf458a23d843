"""A bare HTTP/1.1 keep-alive client, to offer a load without being the bottleneck.

At a few hundred requests per second httpx spent more CPU per request than the
server answering it (its pool's bookkeeping grows with the square of its
connections, and each request tries an import that fails), so the single-event
benchmark measured the client. This sends a POST with a Content-Length and reads a
Content-Length answer, which is all the benchmark needs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit


class Connection:
    """One kept-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body``; the answer's status code (its body is read and dropped)."""
        lines = [f"POST {path} HTTP/1.1", "Host: bench"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        length = next(
            int(field.split(":", 1)[1])
            for field in fields
            if field.lower().startswith("content-length:")
        )
        await self._reader.readexactly(length)
        return int(status_line.split(" ", 2)[1])

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


@contextlib.asynccontextmanager
async def connections(url: str, count: int) -> AsyncIterator[asyncio.Queue[Connection]]:
    """``count`` open connections to ``url``, free ones waiting in the queue."""
    parts = urlsplit(url)
    free: asyncio.Queue[Connection] = asyncio.Queue()
    opened: list[Connection] = []
    try:
        for _ in range(count):
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            opened.append(Connection(reader, writer))
            free.put_nowait(opened[-1])
        yield free
    finally:
        for connection in opened:
            await connection.close()
