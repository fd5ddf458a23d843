"""Sending an AR export to a running ingest service in signed chunks.

The file is cut at record boundaries (a quoted field may span lines), each chunk
carries the header and the file line of its first record, and is signed with the
publisher's key. A chunk the service could not take (429, 503, a dropped connection)
is sent again as it was: the import is idempotent, so a repeat only adds duplicates.
"""

from __future__ import annotations

import asyncio
import csv
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from arbor_ingest.signing import sign
from arbor_shared.clock import Clock, SystemClock

logger = logging.getLogger(__name__)

ENDPOINT = "/v1/imports/ar-csv"
MAX_ATTEMPTS = 8


class ImportFailedError(Exception):
    """The service refused a chunk for a reason a retry cannot fix."""


@dataclass(frozen=True)
class Chunk:
    first_line: int
    text: str
    size_bytes: int


@dataclass
class ImportTotals:
    """The service's summaries, added up over the chunks sent."""

    rows: int = 0
    invoices: int = 0
    payments: int = 0
    customers: int = 0
    disputes: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def add(self, summary: dict[str, Any]) -> None:
        for name in ("rows", "invoices", "payments", "customers", "disputes"):
            setattr(self, name, getattr(self, name) + int(summary[name]))
        self.duplicates += int(summary["duplicates"])
        self.rejected += [(r["line"], r["reason"]) for r in summary["rejected"]]


@dataclass(frozen=True)
class Publisher:
    key_id: str
    secret: str = field(repr=False)


def chunks(path: Path, rows_per_chunk: int) -> Iterator[Chunk]:
    """The file in chunks of ``rows_per_chunk`` records, each with the header."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        pending: list[str] = []

        def lines() -> Iterator[str]:
            for line in file:
                pending.append(line)
                yield line

        reader = csv.reader(lines())
        if next(reader, None) is None:
            return
        header, body, records = "".join(pending), [], 0
        first_line, counted = 1 + len(pending), len(header.encode())
        pending.clear()
        for _record in reader:
            body += pending
            pending.clear()
            records += 1
            if records == rows_per_chunk:
                yield _chunk(first_line, header, body, counted)
                first_line, body, records = first_line + len(body), [], 0
                counted = 0
        if body:
            yield _chunk(first_line, header, body, counted)


def _chunk(first_line: int, header: str, body: list[str], extra: int) -> Chunk:
    # size_bytes is the share of the file the chunk covers, for progress bars: the
    # header counts once, with the first chunk.
    text = "".join(body)
    return Chunk(first_line, header + text, extra + len(text.encode()))


async def send_file(
    client: httpx.AsyncClient,
    path: Path,
    *,
    publisher: Publisher,
    params: dict[str, str],
    rows_per_chunk: int,
    mapping_json: str | None = None,
    on_chunk: Callable[[Chunk, ImportTotals], None] = lambda _c, _t: None,
    clock: Clock | None = None,
) -> ImportTotals:
    """Import ``path`` chunk by chunk; raise ImportFailedError on a refusal."""
    totals = ImportTotals()
    for chunk in chunks(path, rows_per_chunk):
        request = _request(client, chunk, params, mapping_json)
        summary = await _send(client, request, chunk, publisher, clock or SystemClock())
        totals.add(summary)
        on_chunk(chunk, totals)
    return totals


def _request(
    client: httpx.AsyncClient,
    chunk: Chunk,
    params: dict[str, str],
    mapping_json: str | None,
) -> httpx.Request:
    query = params | {"first_line": str(chunk.first_line)}
    if mapping_json is None:
        headers = {"Content-Type": "text/csv; charset=utf-8"}
        return client.build_request(
            "POST", ENDPOINT, params=query, content=chunk.text.encode(), headers=headers
        )
    return client.build_request(
        "POST",
        ENDPOINT,
        params=query,
        data={"mapping": mapping_json},
        files={"file": ("export.csv", chunk.text.encode(), "text/csv")},
    )


async def _send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    chunk: Chunk,
    publisher: Publisher,
    clock: Clock,
) -> dict[str, Any]:
    body = request.read()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        # Signed afresh on every attempt: a retry after a long wait would otherwise
        # carry a timestamp outside the service's tolerance.
        request.headers.update(
            sign(body, publisher.key_id, publisher.secret, clock.now())
        )
        try:
            response = await client.send(request)
        except httpx.TransportError as exc:
            wait = _backoff(attempt, None)
            logger.warning(
                "chunk at line %d: %r; retry in %.1f s", chunk.first_line, exc, wait
            )
            await asyncio.sleep(wait)
            continue
        if response.status_code in (429, 502, 503, 504):
            await asyncio.sleep(_backoff(attempt, response.headers.get("Retry-After")))
            continue
        if response.is_success:
            result: dict[str, Any] = response.json()
            return result
        raise ImportFailedError(
            f"chunk starting at line {chunk.first_line}: HTTP "
            f"{response.status_code}: {response.text[:2000]}"
        )
    raise ImportFailedError(
        f"chunk starting at line {chunk.first_line}: no answer after "
        f"{MAX_ATTEMPTS} attempts"
    )


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after is not None:
        try:
            return min(float(retry_after), 60.0)
        except ValueError:
            pass
    return float(min(2 ** (attempt - 1) * 0.25, 10.0))
